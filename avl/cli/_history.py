"""``avl history``: read a History from the command line."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from avl.cli._common import EXIT_OK

__all__ = ["register"]

_COLUMNS = ("seq", "time", "user", "role", "outcome", "verdict", "question", "sql")


def register(sub: Any) -> None:
    """Add ``history`` to the subcommands."""
    p = sub.add_parser(
        "history",
        help="recent questions from a History",
        description="Search a History: the newest entries first.",
        epilog="examples:\n  avl history --history sqlite:///history.db --limit 10\n"
        "  avl history --history postgresql://host/db --user ann --text invoices --csv\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--history",
        required=True,
        metavar="URL",
        help="History URL (sqlite:///..., postgresql://...)",
    )
    p.add_argument("--user", default=None, help="only this user's entries")
    p.add_argument("--text", default=None, help="full-text search in questions and SQL")
    p.add_argument("--limit", type=int, default=20, metavar="N", help="at most N entries")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="one JSON object per entry")
    fmt.add_argument("--csv", action="store_true", help="CSV with a header")
    p.set_defaults(func=_cmd_history)


def _row(e: Any) -> list[Any]:
    import datetime

    verdict = "" if e.allowed is None else ("allowed" if e.allowed else "rejected")
    when = ""
    if e.time is not None:
        stamp = datetime.datetime.fromtimestamp(e.time, tz=datetime.timezone.utc)
        when = stamp.strftime("%Y-%m-%d %H:%M:%S")
    return [e.seq, when, e.user, e.role or "", str(e.outcome), verdict, e.question, e.sql or ""]


def _cmd_history(args: argparse.Namespace, out: TextIO) -> int:
    from avl.cli._render import render_csv, render_json, render_table
    from avl.history import History

    history = History(args.history)
    try:
        page = history.search(user=args.user, text=args.text, limit=args.limit)
        entries = list(page.entries if hasattr(page, "entries") else page)
        if args.json:
            for e in entries:
                render_json(e.to_dict(), out)
        elif args.csv:
            render_csv(_COLUMNS, [_row(e) for e in entries], out)
        else:
            render_table(_COLUMNS, [_row(e) for e in entries], out)
    finally:
        history.close()
    return EXIT_OK
