"""``avl history``: read, anchor and verify a History from the command line.

Every subcommand opens the History with ``create=False``: reading history never
creates a file or a table in a user's database.

::

    avl history --history URL [--user U] [--text T] [--limit N]   recent questions
    avl history anchor --history URL [--out FILE]                 print (or append) an anchor
    avl history verify --history URL [--anchor FILE]              check the chain (exit 1: not ok)

The HMAC key, when the History has one, is read from the environment variable named
by ``--hmac-key-env`` (default ``AVL_HISTORY_KEY``, used when it is set), never from
the command line.
"""

from __future__ import annotations

import argparse
import os
from typing import Any, TextIO

from avl.cli._common import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_REJECTED,
    UsageError,
    examples,
    history_url,
)

__all__ = ["register"]

DEFAULT_KEY_ENV = "AVL_HISTORY_KEY"
_COLUMNS = ("seq", "time", "user", "role", "outcome", "verdict", "question", "sql")


def _connection(p: argparse.ArgumentParser, *, sub: bool) -> None:
    # In a subcommand the options must not reset what was given before it.
    default: Any = argparse.SUPPRESS if sub else None
    p.add_argument(
        "--history",
        default=default,
        metavar="URL",
        help="History URL, e.g. sqlite:///history.db or postgresql://host/db (default: "
        "AVL_HISTORY, or the history of --config); never created",
    )
    p.add_argument(
        "--config",
        default=default,
        metavar="FILE",
        help="a console TOML file whose history to read, e.g. --config avl.toml",
    )
    p.add_argument(
        "--table", default=default, help="table prefix of the history (default avl_history)"
    )
    p.add_argument(
        "--hmac-key-env",
        default=default,
        metavar="VAR",
        help=f"environment variable holding the HMAC key (default {DEFAULT_KEY_ENV} when set)",
    )


def register(sub: Any) -> None:
    """Add ``history`` (and ``history anchor`` / ``history verify``) to the subcommands."""
    p = sub.add_parser(
        "history",
        help="recent questions from a History; anchor and verify its chain",
        description="Search a History: the newest entries first. Nothing is ever created "
        "in the database.",
        epilog="examples:\n  avl history --history sqlite:///history.db --limit 10\n"
        "  avl history --history postgresql://host/db --user ann --text invoices --csv\n"
        "  avl history --config avl.toml --json\n"
        "  avl history anchor --history sqlite:///history.db --out /mnt/audit/anchors.jsonl\n"
        "  avl history verify --history sqlite:///history.db --anchor /mnt/audit/anchors.jsonl\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _connection(p, sub=False)
    p.add_argument("--user", default=None, help="only this user's entries")
    p.add_argument("--text", default=None, help="full-text search in questions and SQL")
    p.add_argument("--limit", type=int, default=20, metavar="N", help="at most N entries")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument(
        "--json",
        action="store_true",
        help="one JSON object: the HTTP API's GET /v1/history response body",
    )
    fmt.add_argument("--csv", action="store_true", help="CSV with a header")
    p.set_defaults(func=_cmd_history)
    cmds = p.add_subparsers(dest="history_command", required=False, metavar="{anchor,verify}")
    a = cmds.add_parser(
        "anchor",
        help="print the chain head as an anchor (JSON) to keep elsewhere",
        **examples(
            "avl history anchor --history sqlite:///history.db",
            "avl history anchor --config avl.toml --out /mnt/audit/anchors.jsonl",
        ),
    )
    _connection(a, sub=True)
    a.add_argument(
        "--out", default=None, metavar="FILE", help="append the anchor to FILE (JSON lines)"
    )
    a.set_defaults(func=_cmd_anchor)
    v = cmds.add_parser(
        "verify",
        help="check the hash chain (and that it reaches an anchor)",
        **examples(
            "avl history verify --history sqlite:///history.db",
            "avl history verify --config avl.toml --anchor /mnt/audit/anchors.jsonl",
        ),
    )
    _connection(v, sub=True)
    v.add_argument(
        "--anchor",
        default=None,
        metavar="FILE",
        help="an anchor file (the last anchor in it is checked)",
    )
    v.set_defaults(func=_cmd_verify)


def _open(args: argparse.Namespace) -> Any:
    from avl.history import History

    url = history_url(args)
    env_name = getattr(args, "hmac_key_env", None)
    key = None
    if env_name:
        key = os.environ.get(env_name)
        if not key:
            raise UsageError(f"--hmac-key-env {env_name}: the variable is not set")
    elif os.environ.get(DEFAULT_KEY_ENV):
        key = os.environ[DEFAULT_KEY_ENV]
    return History(url, hmac_key=key, table_prefix=getattr(args, "table", None), create=False)


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

    if isinstance(args.limit, int) and not 1 <= args.limit <= 10_000:
        raise UsageError(f"--limit must be within 1..10000, got {args.limit}")
    history = _open(args)
    try:
        page = history.search(user=args.user, text=args.text, limit=args.limit)
        entries = list(page)
        if args.json:
            from avl.web import history_body

            render_json(history_body(entries, next_cursor=page.next_cursor), out)
        elif args.csv:
            render_csv(_COLUMNS, [_row(e) for e in entries], out)
        else:
            render_table(_COLUMNS, [_row(e) for e in entries], out)
    finally:
        history.close()
    return EXIT_OK


def _cmd_anchor(args: argparse.Namespace, out: TextIO) -> int:
    from avl.history import FileAnchorSink

    history = _open(args)
    try:
        anchor = history.anchor()
    finally:
        history.close()
    if args.out:
        FileAnchorSink(args.out).write(anchor)
    out.write(anchor.to_json() + "\n")
    return EXIT_OK


def _cmd_verify(args: argparse.Namespace, out: TextIO) -> int:
    from avl.history import read_anchors

    anchor = None
    if args.anchor:
        anchors = read_anchors(args.anchor)
        if not anchors:
            raise UsageError(f"{args.anchor}: no anchor in the file")
        anchor = anchors[-1]
    history = _open(args)
    try:
        report = history.verify(anchor=anchor)
    finally:
        history.close()
    against = f" up to the anchor at seq {anchor.seq}" if anchor is not None else ""
    if report.ok:
        out.write(f"ok: {report.checked} entries verified{against} (head seq {report.head_seq})\n")
        return EXIT_OK
    out.write(f"NOT OK ({report.problem}): {report.message}\n")
    return EXIT_REJECTED if report.problem is not None else EXIT_ERROR
