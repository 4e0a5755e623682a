"""``avl ask``, ``avl train`` and ``avl eval``: the Assistant from the command line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, TextIO

from avl.cli._common import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_REJECTED,
    UsageError,
    console_from_args,
    load_training,
    print_answer,
)

__all__ = ["register"]


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", help="database URL (or AVL_DB)")
    p.add_argument("--config", help="a console TOML file (or AVL_CONFIG)")
    p.add_argument("--model", help="model URL (default offline://)")
    p.add_argument("--training", default="avl_training.jsonl", help="training file")
    p.add_argument("--user", default="cli")


def register(sub: Any) -> None:
    """Add ``ask``, ``train`` and ``eval`` to the subcommands."""
    p = sub.add_parser("ask", help="answer a question")
    p.add_argument("question", nargs="+")
    _common(p)
    p.add_argument("--role", default=None)
    p.add_argument("--history", help="History URL to record into (e.g. sqlite:///history.db)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_ask)

    p = sub.add_parser("train", help="add training (validated) to the training file")
    _common(p)
    p.add_argument("--question")
    p.add_argument("--sql")
    p.add_argument("--ddl", help="a file of CREATE TABLE statements")
    p.add_argument("--documentation")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("eval", help="execution accuracy on a JSONL question set")
    p.add_argument("questions", help="JSONL with question and sql")
    p.add_argument("--db", required=True)
    p.add_argument("--model", default=None)
    p.add_argument("--no-loo", action="store_true", help="skip the leave-one-out setting")
    p.add_argument("--show", type=int, default=0, help="print this many misses")
    p.set_defaults(func=_cmd_eval)


def _cmd_ask(args: argparse.Namespace, out: TextIO) -> int:
    console = console_from_args(args)
    try:
        load_training(console.assistant, Path(args.training))
        answer = console.assistant.ask(" ".join(args.question), user=args.user, role=args.role)
        print_answer(answer, out, as_json=args.json)
        if answer.verdict is not None and not answer.verdict.allowed:
            return EXIT_REJECTED
        return EXIT_OK if not answer.error else EXIT_ERROR
    finally:
        console.close()


def _cmd_train(args: argparse.Namespace, out: TextIO) -> int:
    item: dict[str, str] = {}
    if args.question or args.sql:
        if not (args.question and args.sql):
            raise UsageError("--question and --sql go together")
        item.update(question=args.question, sql=args.sql)
    if args.ddl:
        item["ddl"] = Path(args.ddl).read_text(encoding="utf-8")
    if args.documentation:
        item["documentation"] = args.documentation
    if not item:
        raise UsageError("give --question/--sql, --ddl FILE or --documentation TEXT")
    console = console_from_args(args)
    try:
        ids = console.assistant.train(**item, added_by=args.user)  # validates (SafeQuery)
    finally:
        console.close()
    item["added_by"] = args.user
    with Path(args.training).open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(item) + "\n")
    out.write(f"trained {', '.join(ids)} -> {args.training}\n")
    return EXIT_OK


def _cmd_eval(args: argparse.Namespace, out: TextIO) -> int:
    from avl.assistant import Assistant
    from avl.assistant._eval import evaluate_questions

    pairs: list[tuple[str, str]] = []
    for lineno, line in enumerate(Path(args.questions).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            pairs.append((str(row["question"]), str(row.get("sql") or row["query"])))
        except (json.JSONDecodeError, KeyError) as exc:
            raise UsageError(
                f"{args.questions}:{lineno}: expected JSON with question and sql"
            ) from exc
    if not pairs:
        raise UsageError(f"{args.questions} holds no questions")
    assistant = Assistant(
        db=args.db, model=args.model or "offline://", cache_threshold=None, max_rows=10**6
    )
    try:
        assistant.train_from_database()
        r = evaluate_questions(assistant, pairs, leave_one_out=not args.no_loo)
    finally:
        assistant.close()
    out.write(f"questions: {r.n}\n")
    out.write(f"execution accuracy, schema only:   {r.schema_only / r.n:.1%} ({r.schema_only})\n")
    if r.leave_one_out is not None:
        out.write(
            f"execution accuracy, leave-one-out: {r.leave_one_out / r.n:.1%} ({r.leave_one_out})\n"
        )
    out.write(f"schema-retrieval recall: {r.recall / r.n:.3f}\n")
    out.write(
        f"prompt tokens (schema part): {r.prompt_tokens:.0f} vs whole schema {r.full_schema_tokens:.0f}\n"
    )
    for q, gold, got in r.misses[: args.show]:
        out.write(f"  miss: {q}\n    gold: {gold}\n    got:  {got}\n")
    return EXIT_OK
