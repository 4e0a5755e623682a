"""``avl demo``: the sample shop database with the offline model."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any, TextIO

from avl.cli._common import EXIT_OK, examples, print_answer
from avl.typing import violation_code

__all__ = ["register"]


def register(sub: Any) -> None:
    """Add ``demo`` to the subcommands."""
    p = sub.add_parser(
        "demo",
        help="run the offline demo on a sample database",
        **examples("avl demo", "avl demo --db shop.db      keep the sample database"),
    )
    p.add_argument(
        "--db",
        help="where to write the sample database, e.g. --db shop.db (default: a temp dir)",
    )
    p.set_defaults(func=_cmd_demo)


def _cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    from avl.assistant import DEMO_PAIRS, DEMO_QUESTIONS, Assistant, create_demo_database

    with tempfile.TemporaryDirectory(prefix="avl-demo-") as tmp:
        path = Path(args.db) if args.db else Path(tmp) / "avl_demo.db"
        create_demo_database(path)
        out.write(f"Sample shop database: {path}\n")
        assistant = Assistant(db=f"sqlite:///{path}")
        try:
            assistant.train_from_database()
            for q, s in DEMO_PAIRS:
                assistant.train(question=q, sql=s, added_by="demo")
            out.write(
                f"Trained on {len(assistant.training_data('schema'))} tables and "
                f"{len(assistant.training_data('sql'))} example question(s); model: offline (no key, no network)\n\n"
            )
            for q in DEMO_QUESTIONS:
                print_answer(assistant.ask(q, user="demo"), out)
            out.write("SafeQuery stops what a model must never run:\n")
            guard = assistant.guard_for(None)
            for sql in ("DELETE FROM orders", "SELECT name FROM customers; DROP TABLE orders"):
                v = guard.check(sql)
                codes = ", ".join(violation_code(x) for x in v.violations)
                out.write(f"  {sql}\n    -> {'allowed' if v.allowed else 'REJECTED: ' + codes}\n")
        finally:
            assistant.close()
    return EXIT_OK
