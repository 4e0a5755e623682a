"""Deferred work for a fast start: names imported and patterns compiled on first use.

``avl check`` must stay close to Python importing sqlglot, and ``avl ask`` close to
importing numpy and sqlglot; every module imported and every pattern compiled at
import costs milliseconds a short command never gets back.

- :func:`lazy_names` gives a package the module ``__getattr__`` and ``__dir__`` of
  PEP 562: each public name is imported from its defining module the first time it
  is looked up (the package imports it under ``if TYPE_CHECKING:`` for type checkers
  and keeps it in ``__all__``, so ``from avl.x import Name`` and the docs see it).
- :func:`lazy_module` stands for a module (``asyncio`` in a class whose async twin
  is rarely used) and imports it at the first attribute looked up.
- :class:`LazyPattern` has the methods of :class:`re.Pattern` that avl calls and
  compiles the expression the first time one of them runs.
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any

__all__ = ["LazyPattern", "lazy_module", "lazy_names"]


def lazy_names(
    package: str, names: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package`` for names loaded on first use.

    Args:
        package: the package's ``__name__``.
        names: public name -> the module (absolute) that defines it.

    Returns:
        ``(__getattr__, __dir__)``, to assign at the package's module level. A name
        once loaded is stored in the package, so later lookups are plain ones.
    """

    def __getattr__(name: str) -> Any:
        source = names.get(name)
        if source is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(source), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *names})

    return __getattr__, __dir__


class _LazyModule:
    __slots__ = ("_home", "_name")

    def __init__(self, name: str, home: str | None) -> None:
        self._name = name
        self._home = home

    def __getattr__(self, attr: str) -> Any:
        module = importlib.import_module(self._name)
        if self._home is not None:
            # the importing module's global now names the module itself
            setattr(sys.modules[self._home], self._name.rpartition(".")[2], module)
        return getattr(module, attr)

    def __repr__(self) -> str:
        return f"lazy_module({self._name!r})"


def lazy_module(name: str, home: str | None = None) -> Any:
    """A stand-in for module ``name`` that imports it when an attribute is read.

    Use it with the real import for type checkers::

        if TYPE_CHECKING:
            import asyncio
        else:
            asyncio = lazy_module("asyncio")

    With ``home`` (the ``__name__`` of the module that holds the stand-in, under the
    last part of ``name``), the first attribute read replaces the stand-in there with
    the module itself, so that later reads in a hot path cost a plain global lookup::

        if TYPE_CHECKING:
            from avl.safety.rules import columns
        else:
            columns = lazy_module("avl.safety.rules.columns", __name__)
    """
    return _LazyModule(name, home)


class LazyPattern:
    """A :class:`re.Pattern` compiled on first use (same results, same errors)."""

    __slots__ = ("_compiled", "_flags", "_source")

    def __init__(self, source: str, flags: int = 0) -> None:
        self._source = source
        self._flags = flags
        self._compiled: re.Pattern[str] | None = None

    @property
    def compiled(self) -> re.Pattern[str]:
        """The compiled pattern (compiled now if it was not yet)."""
        compiled = self._compiled
        if compiled is None:
            compiled = self._compiled = re.compile(self._source, self._flags)
        return compiled

    @property
    def pattern(self) -> str:
        """The source of the expression."""
        return self._source

    def search(self, string: str, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[str] | None:
        """:meth:`re.Pattern.search`."""
        return self.compiled.search(string, pos, endpos)

    def match(self, string: str, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[str] | None:
        """:meth:`re.Pattern.match`."""
        return self.compiled.match(string, pos, endpos)

    def fullmatch(
        self, string: str, pos: int = 0, endpos: int = sys.maxsize
    ) -> re.Match[str] | None:
        """:meth:`re.Pattern.fullmatch`."""
        return self.compiled.fullmatch(string, pos, endpos)

    def finditer(
        self, string: str, pos: int = 0, endpos: int = sys.maxsize
    ) -> Iterator[re.Match[str]]:
        """:meth:`re.Pattern.finditer`."""
        return self.compiled.finditer(string, pos, endpos)

    def sub(self, repl: str, string: str, count: int = 0) -> str:
        """:meth:`re.Pattern.sub` (with a string replacement)."""
        return self.compiled.sub(repl, string, count)

    def __repr__(self) -> str:
        return f"LazyPattern({self._source!r}, {self._flags!r})"
