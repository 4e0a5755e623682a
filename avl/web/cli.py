"""Entry points for the command line: ``avl serve`` and ``avl openapi``."""

from __future__ import annotations

import logging
import os
from typing import Any

from avl._optional import require
from avl.errors import ConfigError
from avl.web._auth import is_loopback
from avl.web._settings import WebSettings

__all__ = ["openapi_spec", "serve"]

log = logging.getLogger("avl.web")


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


_WILDCARD_BINDS = frozenset({"0.0.0.0", "::", "[::]", "*"})


def serve(
    console: Any,
    host: str | None = "127.0.0.1",
    port: int = 8000,
    *,
    settings: WebSettings | None = None,
    log_level: str = "info",
    access_log: bool = False,
    **overrides: Any,
) -> None:
    """Serve the console under uvicorn (blocks until stopped).

    Secure by default: ``host=None`` (or ``""``) binds loopback (``127.0.0.1``),
    never every interface; binding anything else without an authenticator is
    refused, because an open text-to-SQL endpoint hands the database to anyone.
    When no authenticator is given and ``AVL_API_KEYS_FILE`` is set, API keys are
    served from that file and follow its changes (see
    :class:`avl.web.KeyFileAuthenticator`; ``avl keys`` manages it). A specific
    address bound is added to ``allowed_hosts``; the names clients use for a public
    server must be configured (``allowed_hosts=["api.example.com"]``, or
    ``AVL_ALLOWED_HOSTS="avl.example.com, 10.0.0.0/8"`` in the environment, added to
    the settings' list).

    Args:
        console: the console.
        host: the address to bind (default and ``None``: ``127.0.0.1``).
        port: the port.
        settings: the web settings (see :func:`avl.web.create_app`).
        log_level: uvicorn's log level.
        access_log: uvicorn's access log (off: it halves throughput).
        **overrides: :class:`~avl.web.WebSettings` fields.

    Raises:
        avl.errors.ConfigError: a non-loopback ``host`` with no authenticator, a bad
            port, a bad ``AVL_ALLOWED_HOSTS`` entry, or a bad API keys file.
        avl.errors.MissingDependencyError: uvicorn or Starlette is missing.
    """
    import attrs

    from avl.web import create_app

    bind = "127.0.0.1" if host is None or not str(host).strip() else str(host).strip()
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(f"port must be an integer from 0 to 65535, got {port!r}")
    effective = settings if settings is not None else WebSettings()
    if overrides:
        try:
            effective = attrs.evolve(effective, **overrides)
        except TypeError as exc:
            raise ConfigError(f"unknown web setting: {exc}") from exc
    hosts_env = os.environ.get("AVL_ALLOWED_HOSTS", "")
    extra_hosts = [h for h in hosts_env.replace(",", " ").split() if h]
    if extra_hosts:
        effective = attrs.evolve(effective, allowed_hosts=(*effective.allowed_hosts, *extra_hosts))
    keys_file = os.environ.get("AVL_API_KEYS_FILE")
    if effective.authenticator is None and keys_file:
        from avl.web._keys import KeyFileAuthenticator

        effective = attrs.evolve(effective, authenticator=KeyFileAuthenticator(keys_file))
    loopback = bind != "testclient" and is_loopback(bind)
    if effective.authenticator is None and not loopback:
        raise ConfigError(
            f"refusing to serve on {bind!r} without an authenticator: callers would get "
            "unauthenticated access to the database. Configure API keys (AVL_API_KEYS_FILE, "
            "avl keys create) or another authenticator, or bind 127.0.0.1"
        )
    if not loopback and bind not in _WILDCARD_BINDS:
        effective = attrs.evolve(
            effective, allowed_hosts=(*effective.allowed_hosts, bind.strip("[]"))
        )
    elif bind in _WILDCARD_BINDS and not effective.allowed_hosts:
        log.warning(
            "serving on every interface but allowed_hosts is empty: only requests for "
            "localhost, 127.0.0.1 and [::1] will be answered (421 otherwise)"
        )
    uvicorn = require("uvicorn", extra="web")
    app = create_app(console, effective)
    uvicorn.run(app, host=bind, port=port, log_level=log_level, access_log=access_log)
