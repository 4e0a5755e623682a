"""``avl history``: read a History from the command line."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from avl.cli._common import EXIT_OK

__all__ = ["register"]


def register(sub: Any) -> None:
    """Add ``history`` to the subcommands."""
    p = sub.add_parser("history", help="recent questions from a History")
    p.add_argument("--history", required=True, help="History URL (sqlite:///..., postgresql://...)")
    p.add_argument("--user", default=None)
    p.add_argument("--text", default=None)
    p.add_argument("--limit", type=int, default=20)
    p.set_defaults(func=_cmd_history)


def _cmd_history(args: argparse.Namespace, out: TextIO) -> int:
    from avl.history import History

    history = History(args.history)
    try:
        page = history.search(user=args.user, text=args.text, limit=args.limit)
        for e in page.entries if hasattr(page, "entries") else page:
            verdict = "" if e.allowed is None else ("allowed" if e.allowed else "rejected")
            out.write(f"{e.seq:>5} {e.user:<12} {e.outcome!s:<12} {verdict:<9} {e.question}\n")
            if e.sql:
                out.write(f"      {e.sql}\n")
    finally:
        history.close()
    return EXIT_OK
