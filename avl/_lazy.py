"""Deferred work for a fast start: regular expressions compiled on first use.

``import avl.safety`` (and so ``avl check``) must stay close to importing sqlglot;
compiling every module-level pattern at import costs milliseconds a short command
never gets back. :class:`LazyPattern` has the methods of :class:`re.Pattern` that
avl calls and compiles the expression the first time one of them runs.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator

__all__ = ["LazyPattern"]


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
