"""The web adapter: an ASGI app over a console (Starlette, in the ``web`` extra).

``import avl.web`` is cheap: Starlette is imported by :func:`create_app`, not here.

Example:
    >>> from avl.web import create_app          # doctest: +SKIP
    >>> from avl.console import Console         # doctest: +SKIP
    >>> app = create_app(Console())             # doctest: +SKIP
    >>> # uvicorn.run(app, host="127.0.0.1", port=8000)
"""

from __future__ import annotations

from typing import Any

from avl._optional import require
from avl.web._auth import (
    PERMISSIONS,
    ApiKeyAuthenticator,
    Authenticator,
    ChainAuthenticator,
    Identity,
    JWTAuthenticator,
    hash_api_key,
    is_loopback,
)
from avl.web._settings import WebSettings
from avl.web.cli import openapi_spec, serve

__all__ = [
    "PERMISSIONS",
    "ApiKeyAuthenticator",
    "Authenticator",
    "ChainAuthenticator",
    "Identity",
    "JWTAuthenticator",
    "WebSettings",
    "create_app",
    "hash_api_key",
    "is_loopback",
    "openapi_spec",
    "serve",
]


def create_app(console: Any, settings: WebSettings | None = None, **overrides: Any) -> Any:
    """Build the ASGI app for a console.

    The app mounts anywhere: standalone under uvicorn, inside Starlette or FastAPI
    (``app.mount("/avl", create_app(console))``), or under Django's ASGI handler.

    Args:
        console: an :class:`avl.console.Console` (or any object with its shape:
            ``assistant``, ``limiter``, ``history``, ``metrics``, ``guard_for``).
        settings: the :class:`WebSettings`; default: no authenticator (loopback
            callers only), CORS off, 2 MiB body limit.
        **overrides: fields of :class:`WebSettings` to change
            (``create_app(console, authenticator=auth)``).

    Returns:
        The ASGI application.

    Raises:
        avl.errors.MissingDependencyError: Starlette is not installed
            (``pip install 'avl[web]'``).
        avl.errors.ConfigError: a setting is invalid.

    Example:
        >>> app = create_app(console, cors_origins=["https://app.example"])  # doctest: +SKIP
    """
    require("starlette", extra="web")
    import attrs

    from avl.web._app import build_app

    base = settings if settings is not None else WebSettings()
    if overrides:
        try:
            base = attrs.evolve(base, **overrides)
        except TypeError as exc:
            from avl.errors import ConfigError

            raise ConfigError(f"unknown web setting: {exc}") from exc
    return build_app(console, base)
