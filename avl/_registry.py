"""Backends chosen by URL scheme or by object.

Each primitive keeps one immutable :class:`Registry` that maps a URL scheme to a
``"module:attribute"`` factory string. The module is imported on first use, so
``import avl`` loads no backend. An unknown scheme raises
:class:`~avl.errors.ConfigError` suggesting the closest known one.

Example:
    >>> from avl._registry import Registry
    >>> reg = Registry(kind="storage", entries={"memory": "collections:OrderedDict"})
    >>> reg.scheme_of("memory://")
    'memory'
"""

from __future__ import annotations

import difflib
import importlib
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

import attrs

from avl.errors import ConfigError, MissingDependencyError

__all__ = ["Registry", "redact_url", "scheme_of"]


def scheme_of(url: str) -> str:
    """Return the lower-cased scheme of ``url`` (the part before ``://``).

    ``postgres`` is read as ``postgresql``; ``postgresql+psycopg`` as ``postgresql``;
    ``mariadb`` as ``mysql``.

    Raises:
        ConfigError: ``url`` is not a string or has no scheme.
    """
    if not isinstance(url, str):
        raise ConfigError(f"expected a backend URL string, got {type(url).__name__}")
    if "://" not in url:
        raise ConfigError(
            f"backend URL {redact_url(url)!r} has no scheme (expected e.g. 'memory://')"
        )
    scheme = url.split("://", 1)[0].lower().split("+", 1)[0]
    return {"postgres": "postgresql", "mariadb": "mysql", "rediss": "redis"}.get(scheme, scheme)


_PASSWORD_PARAM = re.compile(r"(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&;]+)")


def redact_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***`` (for messages and logs):
    the one in ``user:password@host`` (with or without a scheme), and a
    ``password=`` parameter (a URL's query, a libpq ``key=value`` string)."""
    bare = "://" not in url  # "user:pw@host/db" with the scheme forgotten: still redacted
    try:
        parts = urlsplit("//" + url if bare else url)
    except ValueError:
        return "<unparseable URL>"
    text = url
    if parts.password is not None:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        text = parts._replace(netloc=netloc).geturl()
        if bare:
            text = text[2:]
    return _PASSWORD_PARAM.sub(r"\1***", text)


def _freeze(entries: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(entries))


@attrs.frozen(kw_only=True)
class Registry:
    """An immutable map from URL scheme to a lazily imported backend factory.

    Attributes:
        kind: what the backends are, for messages ("rate-limit storage").
        entries: scheme -> ``"package.module:Factory"``.
        extras: scheme -> the avl extra that the backend needs (for messages).
    """

    kind: str
    entries: Mapping[str, str] = attrs.field(converter=_freeze)
    extras: Mapping[str, str] = attrs.field(factory=dict, converter=_freeze)

    def schemes(self) -> tuple[str, ...]:
        """The known schemes, sorted."""
        return tuple(sorted(self.entries))

    def scheme_of(self, url: str) -> str:
        """Return the scheme of ``url`` if this registry knows it.

        Raises:
            ConfigError: the URL has no scheme or an unknown one; the message
                suggests the closest known scheme.
        """
        if not isinstance(url, str):
            raise ConfigError(f"the {self.kind} URL must be a string, got {type(url).__name__}")
        if "://" not in url:
            # say what this registry takes, not a generic example of another kind
            known = ", ".join(f"{s}://" for s in self.schemes())
            raise ConfigError(f"{self.kind} URL {redact_url(url)!r} has no scheme (known: {known})")
        scheme = scheme_of(url)
        if scheme not in self.entries:
            close = difflib.get_close_matches(scheme, self.entries, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            known = ", ".join(f"{s}://" for s in self.schemes())
            raise ConfigError(
                f"unknown {self.kind} scheme {scheme!r} in {redact_url(url)!r}{hint} "
                f"(known: {known})"
            )
        return scheme

    def factory(self, url: str) -> Callable[..., Any]:
        """Import and return the factory registered for ``url``'s scheme.

        Raises:
            ConfigError: unknown scheme.
            MissingDependencyError: the backend's optional dependency is missing.
        """
        scheme = self.scheme_of(url)
        module_name, _, attr = self.entries[scheme].partition(":")
        try:
            module = importlib.import_module(module_name)
        except MissingDependencyError:
            raise
        except ImportError as exc:
            extra = self.extras.get(scheme, "all")
            missing = getattr(exc, "name", None) or module_name
            raise MissingDependencyError(missing, extra) from exc
        factory: Callable[..., Any] = getattr(module, attr)
        return factory

    def create(self, url: str, /, **kwargs: Any) -> Any:
        """Build the backend for ``url``: ``factory(url, **kwargs)``."""
        return self.factory(url)(url, **kwargs)
