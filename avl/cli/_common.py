"""What every ``avl`` command shares: exit codes, the usage error, the console."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any, TextIO

__all__ = [
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_REJECTED",
    "UsageError",
    "console_from_args",
    "load_training",
    "print_answer",
]

EXIT_OK = 0
EXIT_REJECTED = 1
EXIT_ERROR = 2


class UsageError(Exception):
    """A command was called wrongly; printed as ``avl CMD: error: ...`` with exit 2."""


def print_answer(answer: Any, out: TextIO, *, as_json: bool = False) -> None:
    """Print one :class:`avl.assistant.Answer` as text or as one JSON line."""
    if as_json:
        out.write(json.dumps(answer.to_dict(), default=str) + "\n")
        return
    v = answer.verdict
    out.write(f"Q: {answer.question}\n")
    out.write(f"SQL: {answer.sql}\n")
    if v is not None:
        if v.allowed:
            out.write("verdict: allowed\n")
        else:
            codes = ", ".join(
                f"{getattr(x.code, 'value', x.code)} ({x.message})" for x in v.violations
            )
            out.write(f"verdict: REJECTED {codes}\n")
    if answer.error:
        out.write(f"error: {answer.error}\n")
    if answer.columns:
        out.write("  " + " | ".join(answer.columns) + "\n")
        for r in answer.rows[:20]:
            out.write("  " + " | ".join("NULL" if x is None else str(x) for x in r) + "\n")
        if len(answer.rows) > 20:
            out.write(f"  ... {len(answer.rows) - 20} more row(s)\n")
    out.write("\n")


def console_from_args(args: argparse.Namespace) -> Any:
    """A :class:`avl.console.Console` from ``--config``/``--db``/``--model``/``--history``
    over the ``AVL_*`` environment variables."""
    from avl.console import Console

    env: dict[str, str] = dict(os.environ)
    if getattr(args, "config", None):
        env["AVL_CONFIG"] = args.config
    if getattr(args, "db", None):
        env["AVL_DB"] = args.db
    if getattr(args, "model", None):
        env["AVL_MODEL"] = args.model
    if getattr(args, "history", None):
        env["AVL_HISTORY"] = args.history
    return Console.from_env(env)


def load_training(assistant: Any, path: Path) -> int:
    """Train ``assistant`` from a JSON-lines training file; returns how many items."""
    if not path.exists():
        return 0
    n = 0
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}:{lineno}: not JSON ({exc})") from exc
        assistant.train(
            **{k: item[k] for k in ("ddl", "documentation", "question", "sql") if item.get(k)},
            added_by=str(item.get("added_by", "cli")),
        )
        n += 1
    return n
