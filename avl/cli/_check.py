"""``avl check``: a SafeQuery verdict from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from avl.cli._common import EXIT_OK, EXIT_REJECTED, UsageError

__all__ = ["register"]


def register(sub: Any) -> None:
    """Add ``check`` to the subcommands."""
    p = sub.add_parser(
        "check", help="check SQL with SafeQuery (exit 0 allowed, 1 rejected, 2 error)"
    )
    p.add_argument("sql", nargs="*", help="the SQL (default: read stdin)")
    p.add_argument("--dialect", default="sqlite")
    p.add_argument("--max-rows", type=int, default=None)
    p.add_argument("--allow-table", action="append", default=[])
    p.add_argument("--deny-column", action="append", default=[])
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_check)


def _cmd_check(args: argparse.Namespace, out: TextIO) -> int:
    from avl.safety import Policy, SafeQuery

    sql = " ".join(args.sql) if args.sql else sys.stdin.read()
    if not sql.strip():
        raise UsageError("no SQL given (pass it as arguments or on stdin)")
    kw: dict[str, Any] = {"dialect": args.dialect}
    if args.max_rows is not None:
        kw["max_rows"] = args.max_rows
    if args.allow_table:
        kw["allowed_tables"] = args.allow_table
    if args.deny_column:
        kw["denied_columns"] = args.deny_column
    verdict = SafeQuery(Policy(**kw)).check(sql)
    if args.json:
        out.write(
            json.dumps(
                {
                    "allowed": verdict.allowed,
                    "sql": verdict.sql,
                    "violations": [
                        {"code": str(getattr(v.code, "value", v.code)), "message": v.message}
                        for v in verdict.violations
                    ],
                }
            )
            + "\n"
        )
    elif verdict.allowed:
        out.write(f"allowed\n{verdict.sql}\n")
    else:
        out.write("rejected\n")
        for v in verdict.violations:
            pos = f" at {v.position.line}:{v.position.col}" if v.position is not None else ""
            out.write(f"  {getattr(v.code, 'value', v.code)}{pos}: {v.message}\n")
    return EXIT_OK if verdict.allowed else EXIT_REJECTED
