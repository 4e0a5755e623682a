"""Entry points for the command line: ``avl serve`` and ``avl openapi``."""

from __future__ import annotations

import os
from typing import Any

from avl._optional import require
from avl.errors import ConfigError
from avl.web._auth import is_loopback
from avl.web._settings import WebSettings

__all__ = ["openapi_spec", "serve"]


def openapi_spec(console: Any = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document, without running a server.

    Args:
        console: unused today (the API does not depend on the console's
            configuration); accepted so callers can pass theirs.

    Returns:
        The document as a JSON-ready dict.

    Example:
        >>> openapi_spec()["openapi"]
        '3.1.0'
    """
    from avl.web._openapi import build_spec

    return build_spec()


def serve(
    console: Any,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    settings: WebSettings | None = None,
    log_level: str = "info",
    access_log: bool = False,
    **overrides: Any,
) -> None:
    """Serve the console under uvicorn (blocks until stopped).

    Secure by default: binding a non-loopback address without an authenticator is
    refused, because an open text-to-SQL endpoint hands the database to anyone.
    When no authenticator is given and ``AVL_API_KEYS_FILE`` is set, API keys are
    loaded from that file (see :meth:`avl.web.ApiKeyAuthenticator.from_file`); this
    is how ``avl serve`` gets credentials.

    Args:
        console: the console.
        host: the address to bind.
        port: the port.
        settings: the web settings (see :func:`avl.web.create_app`).
        log_level: uvicorn's log level.
        access_log: uvicorn's access log (off: it halves throughput).
        **overrides: :class:`~avl.web.WebSettings` fields.

    Raises:
        avl.errors.ConfigError: a non-loopback ``host`` with no authenticator, or a
            bad API keys file.
        avl.errors.MissingDependencyError: uvicorn or Starlette is missing.
    """
    import attrs

    from avl.web import create_app

    effective = settings if settings is not None else WebSettings()
    if overrides:
        effective = attrs.evolve(effective, **overrides)
    keys_file = os.environ.get("AVL_API_KEYS_FILE")
    if effective.authenticator is None and keys_file:
        from avl.web._auth import ApiKeyAuthenticator

        effective = attrs.evolve(effective, authenticator=ApiKeyAuthenticator.from_file(keys_file))
    if effective.authenticator is None and not is_loopback(host):
        raise ConfigError(
            f"refusing to serve on {host!r} without an authenticator: callers would get "
            "unauthenticated access to the database. Configure API keys (AVL_API_KEYS_FILE) or another "
            "authenticator, or bind 127.0.0.1"
        )
    uvicorn = require("uvicorn", extra="web")
    app = create_app(console, effective)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=access_log)
