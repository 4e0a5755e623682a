"""``avl serve`` and ``avl openapi``: the web adapter (:mod:`avl.web`), loaded lazily."""

from __future__ import annotations

import argparse
import json
from typing import Any, TextIO

from avl.cli._common import EXIT_OK, console_from_args

__all__ = ["register"]


def register(sub: Any) -> None:
    """Add ``serve`` and ``openapi`` to the subcommands."""
    p = sub.add_parser("serve", help="serve the console over HTTP (avl.web)")
    p.add_argument("--config", help="a console TOML file")
    p.add_argument("--db", help="database URL")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a host name clients use besides localhost (repeatable)",
    )
    p.set_defaults(func=_cmd_serve)
    p = sub.add_parser("openapi", help="print the OpenAPI document (avl.web)")
    p.add_argument("--config", help="a console TOML file")
    p.set_defaults(func=_cmd_openapi)


def _cmd_serve(args: argparse.Namespace, out: TextIO) -> int:
    from avl.web.cli import serve

    console = console_from_args(args)
    try:
        serve(console, args.host, args.port, allowed_hosts=tuple(args.allowed_host))
    finally:
        console.close()
    return EXIT_OK


def _cmd_openapi(args: argparse.Namespace, out: TextIO) -> int:
    from avl.web.cli import openapi_spec

    out.write(json.dumps(openapi_spec(None), indent=2) + "\n")
    return EXIT_OK
