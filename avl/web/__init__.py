"""The web adapter: an ASGI app over a console (Starlette, in the ``web`` extra).

``import avl.web`` is cheap: Starlette is imported by :func:`create_app`, not here,
and each name below is imported on first use.

Example:
    >>> from avl.web import create_app          # doctest: +SKIP
    >>> from avl.console import Console         # doctest: +SKIP
    >>> app = create_app(Console())             # doctest: +SKIP
    >>> # uvicorn.run(app, host="127.0.0.1", port=8000)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from avl._lazy import lazy_names
from avl._optional import require

if TYPE_CHECKING:
    from avl.web._auth import (
        PERMISSIONS,
        ApiKeyAuthenticator,
        AsyncAuthenticator,
        Authenticator,
        ChainAuthenticator,
        Identity,
        hash_api_key,
        is_loopback,
    )
    from avl.web._jwt import ClaimMapping, JWKSCache, JWTAuthenticator
    from avl.web._keys import KeyFile, KeyFileAuthenticator, KeyRecord
    from avl.web._protocols import ConsoleLike
    from avl.web._schemas import answer_body, history_body, verdict_body
    from avl.web._settings import DEFAULT_PAGE_CSP, LOOPBACK_HOSTS, WebSettings
    from avl.web.cli import openapi_spec, serve

__all__ = [
    "DEFAULT_PAGE_CSP",
    "LOOPBACK_HOSTS",
    "PERMISSIONS",
    "ApiKeyAuthenticator",
    "AsyncAuthenticator",
    "Authenticator",
    "ChainAuthenticator",
    "ClaimMapping",
    "ConsoleLike",
    "Identity",
    "JWKSCache",
    "JWTAuthenticator",
    "KeyFile",
    "KeyFileAuthenticator",
    "KeyRecord",
    "WebSettings",
    "answer_body",
    "create_app",
    "hash_api_key",
    "history_body",
    "is_loopback",
    "openapi_spec",
    "serve",
    "verdict_body",
]


# loaded on first use: ``avl ask --json`` reads the response bodies without the
# authenticators, JWT and key-file modules
__getattr__, __dir__ = lazy_names(
    __name__,
    {
        **dict.fromkeys(
            (
                "PERMISSIONS",
                "ApiKeyAuthenticator",
                "AsyncAuthenticator",
                "Authenticator",
                "ChainAuthenticator",
                "Identity",
                "hash_api_key",
                "is_loopback",
            ),
            "avl.web._auth",
        ),
        **dict.fromkeys(("ClaimMapping", "JWKSCache", "JWTAuthenticator"), "avl.web._jwt"),
        **dict.fromkeys(("KeyFile", "KeyFileAuthenticator", "KeyRecord"), "avl.web._keys"),
        "ConsoleLike": "avl.web._protocols",
        **dict.fromkeys(("answer_body", "history_body", "verdict_body"), "avl.web._schemas"),
        **dict.fromkeys(("DEFAULT_PAGE_CSP", "LOOPBACK_HOSTS", "WebSettings"), "avl.web._settings"),
        **dict.fromkeys(("openapi_spec", "serve"), "avl.web.cli"),
    },
)


def create_app(console: ConsoleLike, settings: WebSettings | None = None, **overrides: Any) -> Any:
    """Build the ASGI app for a console.

    The app mounts anywhere: standalone under uvicorn, inside Starlette or FastAPI
    (``app.mount("/avl", create_app(console))``), or under Django's ASGI handler.
    Its middlewares, outermost first: tracing, route metrics, security headers,
    the Host allow-list, CORS (when configured), the cross-site guard, the body
    limit, authentication, rate limiting and the verdict cache (see the docs).

    Args:
        console: an :class:`avl.console.Console` (or any object of the
            :class:`ConsoleLike` shape).
        settings: the :class:`WebSettings`; default: no authenticator (loopback
            callers only), the loopback host names only, CORS off, 2 MiB body
            limit.
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
    from avl.web._settings import WebSettings

    base = settings if settings is not None else WebSettings()
    if overrides:
        try:
            base = attrs.evolve(base, **overrides)
        except TypeError as exc:
            from avl.errors import ConfigError

            raise ConfigError(f"unknown web setting: {exc}") from exc
    return build_app(console, base)
