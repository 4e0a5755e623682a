"""``avl audit report``: a period of the History, its rejections, and the chain's integrity."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from avl.cli._common import EXIT_OK, EXIT_REJECTED, UsageError, examples

__all__ = ["register"]


def register(sub: Any) -> None:
    """Add ``audit`` (with ``audit report``) to the subcommands."""
    p = sub.add_parser(
        "audit",
        help="audit reports from a History (outcomes, rejections, chain verification)",
        description="Audit reports from a History.",
        **examples(
            "avl audit report --history sqlite:///history.db --since 7d",
            "avl audit report --config avl.toml --json",
        ),
    )
    inner = p.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")
    r = inner.add_parser(
        "report",
        help="entries, outcomes, rejections by code, users, chain and anchor verification",
        description="Summarise a period of the History (entries, outcomes, rejections by "
        "violation code, users, the latest refused entries) and verify the whole hash chain "
        "and the latest anchor. Exit 0 when everything verifies, 1 when the chain or the "
        "anchor does not, 2 on errors.",
        epilog="examples:\n"
        "  avl audit report --history sqlite:///history.db --since 30d --html > audit.html\n"
        "  avl audit report --config avl.toml --since 2025-12-01 --anchors anchors.jsonl\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    r.add_argument("--history", metavar="URL", help="History URL (default: AVL_HISTORY)")
    r.add_argument("--config", metavar="FILE", help="console config whose history to read")
    r.add_argument(
        "--hmac-key-env",
        metavar="VAR",
        help="environment variable holding the "
        "History's HMAC key (for a keyed chain and signed anchors)",
    )
    r.add_argument("--since", default="30d", metavar="WHEN", help="start (default 30d)")
    r.add_argument("--until", default=None, metavar="WHEN", help="end (default now)")
    r.add_argument(
        "--anchors", metavar="FILE", help="anchors kept outside the database (JSON lines)"
    )
    r.add_argument(
        "--details", action="store_true", help="include refused entries' question and SQL"
    )
    r.add_argument(
        "--max-rejected", type=int, default=100, metavar="N", help="list at most N refusals"
    )
    fmt = r.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="JSON (the default is text)")
    fmt.add_argument("--html", action="store_true", help="one self-contained HTML page")
    r.set_defaults(func=_cmd_report)


def _open_history(args: argparse.Namespace) -> Any:
    import os

    from avl.cli._costs import history_url
    from avl.history import History

    url = history_url(args)
    if args.hmac_key_env:
        key = os.environ.get(args.hmac_key_env)
        if not key:
            raise UsageError(f"${args.hmac_key_env} is not set")
        return History(url, hmac_key=key.encode("utf-8"), create=False)
    return History(url, create=False)  # reading never creates tables in a user's database


def _read_anchors(path: str) -> list[Any]:
    from avl.history import read_anchors

    return list(read_anchors(path))


def _cmd_report(args: argparse.Namespace, out: TextIO) -> int:
    from avl.audit import audit_report, render_html
    from avl.cli._render import render_json, render_table

    anchors = _read_anchors(args.anchors) if args.anchors else []
    history = _open_history(args)
    try:
        report = audit_report(
            history,
            since=args.since,
            until=args.until,
            anchors=anchors,
            details=args.details,
            max_rejected=args.max_rejected,
        )
    finally:
        history.close()
    code = EXIT_OK if report.ok else EXIT_REJECTED
    if args.json:
        render_json(report.to_dict(), out)
        return code
    if args.html:
        out.write(render_html(report))
        return code
    v = report.verification
    out.write(f"entries: {report.entries}\n")
    out.write(
        "chain: "
        + ("verified" if v.ok else f"FAILED ({v.problem} at seq {v.seq}: {v.message})")
        + f", {v.checked} checked, head seq {v.head_seq} {v.head_hash}\n"
    )
    for a in report.anchors:
        if a.verified is not None:
            state = "verified" if a.verified else f"FAILED ({a.message})"
            out.write(f"latest anchor: seq {a.seq} {a.head_hash}: {state}\n")
    out.write("\noutcomes\n")
    render_table(("outcome", "entries"), list(report.outcomes.items()), out)
    out.write("\nrejections by code\n")
    render_table(("code", "entries"), list(report.rejections.items()), out)
    out.write("\nusers\n")
    render_table(
        ("user", "entries", "rejected", "errors", "rate_limited", "cost_usd"),
        [
            (u.user or "-", u.entries, u.rejected, u.errors, u.rate_limited, f"{u.cost_usd:.4f}")
            for u in report.users
        ],
        out,
    )
    return code
