"""``avl mcp``: serve avl's tools to an MCP client over stdio."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from avl.cli._common import EXIT_OK, UsageError, console_from_args, context_of
from avl.errors import UnknownRoleError

__all__ = ["register"]

_EXAMPLES = """examples:
  avl mcp --db sqlite:///shop.db
  avl mcp --config avl.toml --role analyst --user agent --context tenant=7

An MCP client (Claude Desktop, an IDE, an agent framework) starts this command and
speaks the protocol on its standard input and output; see examples/mcp_client.json.
"""


def register(sub: Any) -> None:
    """Add ``mcp`` to the subcommands."""
    p = sub.add_parser(
        "mcp",
        help="serve avl's tools to an MCP client over stdio",
        description="Serve ask, check_sql, run_sql, list_tables, describe_table, "
        "search_history and explain to an MCP client over stdio.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--db", metavar="URL", help="database URL (or AVL_DB)")
    p.add_argument("--config", metavar="FILE", help="a console TOML file (or AVL_CONFIG)")
    p.add_argument("--model", metavar="URL", help="model for ask (default offline://)")
    p.add_argument("--history", metavar="URL", help="History to record into")
    p.add_argument("--role", default=None, help="the policy role every call runs as")
    p.add_argument("--user", default="mcp", help="the user for limits and history (mcp)")
    p.add_argument(
        "--context",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a row-filter parameter, e.g. tenant=7 (repeatable; digits become integers)",
    )
    p.set_defaults(func=_cmd_mcp)


def _cmd_mcp(args: argparse.Namespace, out: TextIO) -> int:
    from avl.mcp import Caller, create_server

    caller = Caller(user=args.user, role=args.role, context=context_of(args.context))
    console = console_from_args(args)
    try:
        try:
            console.policy_for(args.role)
        except UnknownRoleError as exc:
            raise UsageError(str(exc)) from exc
        create_server(console, caller).run()
    finally:
        console.close()
    return EXIT_OK
