"""``avl serve`` and ``avl openapi``: the web adapter (:mod:`avl.web`), loaded lazily."""

from __future__ import annotations

import argparse
import json
from typing import Any, TextIO

from avl.cli._common import EXIT_OK, UsageError, console_from_args, examples

__all__ = ["register"]


def register(sub: Any) -> None:
    """Add ``serve`` and ``openapi`` to the subcommands."""
    p = sub.add_parser(
        "serve",
        help="serve the console over HTTP (avl.web)",
        description="Serve the web console and its JSON API.",
        epilog="examples:\n  avl serve --db sqlite:///shop.db\n  avl serve --config avl.toml --port 8080",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", metavar="FILE", help="a console TOML file (or AVL_CONFIG)")
    p.add_argument("--db", metavar="URL", help="database URL (or AVL_DB)")
    p.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, loopback only)"
    )
    p.add_argument("--port", type=_port, default=8000, help="TCP port, 1-65535 (default: 8000)")
    p.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a host name clients use besides localhost, e.g. avl.example.com (repeatable)",
    )
    p.add_argument(
        "--log-format",
        choices=("text", "json"),
        default=None,
        help="avl's log records as text or JSON lines on stderr (or AVL_LOG_FORMAT; "
        "default text), with trace ids, request id, user and outcome (avl.logs)",
    )
    p.add_argument(
        "--log-level", default=None, help="avl's log level (or AVL_LOG_LEVEL; default INFO)"
    )
    p.set_defaults(func=_cmd_serve)
    p = sub.add_parser(
        "openapi",
        help="print the OpenAPI document (avl.web)",
        **examples("avl openapi > openapi.json", "avl openapi --config avl.toml"),
    )
    p.add_argument("--config", metavar="FILE", help="a console TOML file, e.g. avl.toml")
    p.set_defaults(func=_cmd_openapi)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be between 1 and 65535, got {port}")
    return port


def _check_free(host: str, port: int) -> None:
    """Fail with a clear message before starting when the address cannot be bound."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UsageError(f"cannot resolve --host {host!r}: {exc}") from exc
    family, kind, proto, _, addr = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(addr)
        except OSError as exc:
            raise UsageError(
                f"cannot listen on {host}:{port} ({exc.strerror or exc}); "
                "is another server running there? pick another with --port"
            ) from exc


def _cmd_serve(args: argparse.Namespace, out: TextIO) -> int:
    from avl.web.cli import serve

    _check_free(args.host, args.port)
    _configure_logs(args)
    console = console_from_args(args)
    try:
        serve(console, args.host, args.port, allowed_hosts=tuple(args.allowed_host))
    finally:
        console.close()
    return EXIT_OK


def _configure_logs(args: argparse.Namespace) -> None:
    import os

    from avl.logs import configure_logging

    fmt = args.log_format or os.environ.get("AVL_LOG_FORMAT") or "text"
    if fmt not in ("text", "json"):
        raise UsageError(f"AVL_LOG_FORMAT must be text or json, got {fmt!r}")
    level = args.log_level or os.environ.get("AVL_LOG_LEVEL") or "INFO"
    configure_logging(level, json=fmt == "json", static_fields={"service": "avl"})


def _cmd_openapi(args: argparse.Namespace, out: TextIO) -> int:
    from avl.web.cli import openapi_spec

    out.write(json.dumps(openapi_spec(None), indent=2) + "\n")
    return EXIT_OK
