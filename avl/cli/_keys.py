"""``avl keys``: create, list and revoke the API keys ``avl serve`` accepts.

The keys live hashed in a key file (``--file``, default ``$AVL_API_KEYS_FILE`` or
``avl_keys.json``); see :class:`avl.web.KeyFile`. A running ``avl serve`` reading
the same file picks the changes up within a second.
"""

from __future__ import annotations

import argparse
import json
import os
from datetime import datetime, timezone
from typing import Any, TextIO

from avl.cli._common import EXIT_OK, UsageError, examples

__all__ = ["register"]

_DEFAULT_FILE = "avl_keys.json"


def register(sub: Any) -> None:
    """Add ``keys`` (with ``create``, ``list``, ``revoke``) to the subcommands."""
    p = sub.add_parser(
        "keys",
        help="manage the API keys of avl serve",
        **examples(
            "avl keys create --user ann --role analyst",
            "avl keys list --file /etc/avl/keys.json",
            "avl keys revoke k_3f2a...",
        ),
    )
    keys = p.add_subparsers(dest="keys_command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--file",
        default=None,
        help=f"the key file (default: $AVL_API_KEYS_FILE, else {_DEFAULT_FILE})",
    )
    c = keys.add_parser(
        "create",
        parents=[common],
        help="make a key (printed once)",
        **examples(
            "avl keys create --user ann --role analyst",
            "avl keys create --user etl --permission train --context tenant_id=7 --json",
        ),
    )
    c.add_argument("--user", required=True, help="who the key authenticates as")
    c.add_argument("--role", default="default", help="the role (picks the SafeQuery policy)")
    c.add_argument(
        "--permission",
        action="append",
        default=[],
        metavar="P",
        help="train, history:all or sql:any-role (repeatable)",
    )
    c.add_argument(
        "--context",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a row-filter value, e.g. tenant_id=7 (repeatable; numbers stay numbers)",
    )
    c.add_argument("--json", action="store_true", help="print the key and its record as JSON")
    c.set_defaults(func=_cmd_create)
    ls = keys.add_parser(
        "list",
        parents=[common],
        help="the stored keys (never the keys themselves)",
        **examples("avl keys list", "avl keys list --file /etc/avl/keys.json --json"),
    )
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    ls.set_defaults(func=_cmd_list)
    r = keys.add_parser(
        "revoke",
        parents=[common],
        help="remove a key by its id",
        **examples("avl keys revoke k_3f2a...      (the id from avl keys list)"),
    )
    r.add_argument("id", help="the key's id (from avl keys list)")
    r.set_defaults(func=_cmd_revoke)


def _file(args: argparse.Namespace) -> Any:
    from avl.web import KeyFile

    return KeyFile(args.file or os.environ.get("AVL_API_KEYS_FILE") or _DEFAULT_FILE)


def _context(pairs: list[str]) -> dict[str, object]:
    out: dict[str, object] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--context expects KEY=VALUE, got {pair!r}")
        value: object = raw
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        if isinstance(parsed, (int, float, bool)):
            value = parsed
        out[name.strip()] = value
    return out


def _when(created: float | None) -> str:
    if created is None:
        return "-"
    return datetime.fromtimestamp(created, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")


def _cmd_create(args: argparse.Namespace, out: TextIO) -> int:
    kf = _file(args)
    record, key = kf.create(
        user=args.user,
        role=args.role,
        permissions=args.permission,
        context=_context(args.context),
    )
    if args.json:
        out.write(json.dumps({"key": key, **record.to_dict(), "file": str(kf.path)}) + "\n")
        return EXIT_OK
    out.write(f"created key {record.id} for user {args.user!r} (role {args.role!r}) in {kf.path}\n")
    out.write(f"{key}\n")
    out.write("Keep it now: only its hash is stored.\n")
    return EXIT_OK


def _cmd_list(args: argparse.Namespace, out: TextIO) -> int:
    records = _file(args).records()
    if args.json:
        for r in records:
            row = r.to_dict()
            row.pop("sha256")
            out.write(json.dumps(row) + "\n")
        return EXIT_OK
    if not records:
        out.write("no keys\n")
        return EXIT_OK
    out.write(f"{'id':<10} {'user':<16} {'role':<12} {'created (UTC)':<17} permissions\n")
    for r in records:
        who = r.identity
        perms = ",".join(sorted(who.permissions)) or "-"
        out.write(
            f"{r.id or '-':<10} {who.user:<16} {who.role:<12} {_when(r.created):<17} {perms}\n"
        )
    return EXIT_OK


def _cmd_revoke(args: argparse.Namespace, out: TextIO) -> int:
    kf = _file(args)
    record = kf.revoke(args.id)
    out.write(f"revoked key {record.id} (user {record.identity.user!r}) in {kf.path}\n")
    return EXIT_OK
