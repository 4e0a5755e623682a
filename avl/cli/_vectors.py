"""``avl vectors``: check and repair a ``file://`` vector store.

::

    avl vectors check PATH    open strictly: exit 0 intact, 2 damaged (file, offset, records)
    avl vectors repair PATH   keep what is intact, move damaged files aside, report the loss
                              (exit 0 intact, 1 repaired with loss)

The store must not be open in another process. ``--dim`` and ``--metric`` are read
from the store when omitted.
"""

from __future__ import annotations

import argparse
import json
from typing import Any, TextIO

from avl.cli._common import EXIT_OK, EXIT_REJECTED, examples

__all__ = ["register"]


def register(sub: Any) -> None:
    """Add ``vectors check`` and ``vectors repair`` to the subcommands."""
    p = sub.add_parser(
        "vectors",
        help="check or repair a file:// vector store",
        description="Check or repair a file:// vector store (it must not be open).",
        **examples("avl vectors check ./vectors", "avl vectors repair file:///srv/avl/vectors"),
    )
    cmds = p.add_subparsers(dest="vectors_command", required=True, metavar="{check,repair}")
    for name, helptext, func in (
        ("check", "open the store strictly and report damage", _cmd_check),
        ("repair", "keep what is intact and report what was lost", _cmd_repair),
    ):
        c = cmds.add_parser(
            name,
            help=helptext,
            **examples(
                f"avl vectors {name} ./vectors",
                f"avl vectors {name} file:///srv/avl/vectors --dim 384 --metric cosine --json",
            ),
        )
        c.add_argument(
            "path", help="the store directory, e.g. ./vectors (file:///path also accepted)"
        )
        c.add_argument(
            "--dim", type=int, default=None, help="vector dimension, e.g. 384 (default: read)"
        )
        c.add_argument(
            "--metric", default=None, help="cosine, ip or l2, e.g. --metric ip (default: read)"
        )
        c.add_argument("--json", action="store_true", help="print the result as JSON")
        c.set_defaults(func=func)


def _path(raw: str) -> str:
    if raw.startswith("file://"):
        from avl.vectors.backends.file import path_of

        return str(path_of(raw))
    return raw


def _cmd_check(args: argparse.Namespace, out: TextIO) -> int:
    from avl.vectors.backends.file import check

    count = check(_path(args.path), dim=args.dim, metric=args.metric)
    if args.json:
        out.write(json.dumps({"path": args.path, "intact": True, "vectors": count}) + "\n")
    else:
        out.write(f"{args.path}: intact ({count} vectors)\n")
    return EXIT_OK


def _cmd_repair(args: argparse.Namespace, out: TextIO) -> int:
    import attrs

    from avl.vectors.backends.file import repair

    report = repair(_path(args.path), dim=args.dim, metric=args.metric)
    if args.json:
        out.write(json.dumps(attrs.asdict(report), default=str) + "\n")
    else:
        out.write(report.summary() + "\n")
    return EXIT_OK if report.intact else EXIT_REJECTED
