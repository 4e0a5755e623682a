"""``avl ask``, ``avl train`` and ``avl eval``: the Assistant from the command line."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any, TextIO

from avl.cli._common import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_REJECTED,
    UsageError,
    config_of,
    console_from_args,
    console_options,
    load_training,
    print_answer,
    startup,
)

__all__ = ["register"]


def _parser(sub: Any, name: str, help: str, examples: str) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        name,
        help=help,
        description=help[0].upper() + help[1:] + ".",
        epilog="examples:\n" + examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return p


def register(sub: Any) -> None:
    """Add ``ask``, ``train`` and ``eval`` to the subcommands."""
    p = _parser(
        sub,
        "ask",
        "answer a question about a database",
        '  avl ask "how many orders are there?" --db sqlite:///shop.db\n'
        '  avl ask "top 5 customers by total" --config avl.toml --role analyst --csv\n',
    )
    p.add_argument("question", nargs="+", help="the question, in plain language")
    console_options(p)
    p.add_argument("--role", default=None, help="the policy role to ask as (from the config)")
    p.add_argument(
        "--history", metavar="URL", help="History to record into, e.g. sqlite:///history.db"
    )
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument(
        "--json",
        action="store_true",
        help="print the answer as JSON: the HTTP API's POST /v1/ask response body",
    )
    fmt.add_argument("--csv", action="store_true", help="print the result rows as CSV")
    p.set_defaults(func=_cmd_ask)

    p = _parser(
        sub,
        "train",
        "add training (validated) to the training file",
        '  avl train --db sqlite:///shop.db --question "Paris customers?" \\\n'
        "      --sql \"SELECT name FROM customers WHERE city = 'Paris'\"\n"
        "  avl train --db sqlite:///shop.db --ddl schema.sql\n",
    )
    console_options(p)
    p.add_argument("--question", help="a question (with --sql)")
    p.add_argument("--sql", help="the SQL that answers --question (checked by SafeQuery)")
    p.add_argument("--ddl", metavar="FILE", help="a file of CREATE TABLE statements")
    p.add_argument("--documentation", metavar="TEXT", help="free-text documentation")
    p.set_defaults(func=_cmd_train)

    p = _parser(
        sub,
        "eval",
        "measure execution accuracy on a JSONL question set",
        "  avl eval questions.jsonl --db sqlite:///shop.db --show 5\n"
        "  avl eval questions.jsonl --config avl.toml --json\n",
    )
    p.add_argument("questions", help="JSON lines, each with question and sql")
    p.add_argument(
        "--db", metavar="URL", help="the database the questions ask, e.g. sqlite:///shop.db"
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        help="a console TOML file whose db (and model) to use, e.g. --config avl.toml",
    )
    p.add_argument(
        "--model",
        default=None,
        metavar="URL",
        help="model, e.g. openai:gpt-4o (default offline://)",
    )
    p.add_argument("--no-loo", action="store_true", help="skip the leave-one-out setting")
    p.add_argument("--show", type=int, default=0, metavar="N", help="print this many misses")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(func=_cmd_eval)


def _cmd_ask(args: argparse.Namespace, out: TextIO) -> int:
    with startup():
        console = console_from_args(args)
    try:
        load_training(console.assistant, Path(args.training))
        answer = console.assistant.ask(" ".join(args.question), user=args.user, role=args.role)
        print_answer(answer, out, as_json=args.json, as_csv=args.csv, role=args.role)
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
        fh.flush()
        os.fsync(fh.fileno())  # acknowledged only once it is on disk
    out.write(f"trained {', '.join(ids)} -> {args.training}\n")
    return EXIT_OK


def _cmd_eval(args: argparse.Namespace, out: TextIO) -> int:
    from avl.assistant import Assistant, evaluate_questions

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
    config = config_of(args)
    db: Any = args.db or os.environ.get("AVL_DB") or config.get("db")
    if not db:
        raise UsageError("give --db URL (or --config FILE with db = ..., or set AVL_DB)")
    if isinstance(db, dict):
        from avl.assistant import Database

        db = Database.from_config(db)
    model = args.model or os.environ.get("AVL_MODEL") or config.get("model") or "offline://"
    assistant = Assistant(db=db, model=model, cache_threshold=None, max_rows=10**6)
    try:
        assistant.train_from_database()
        r = evaluate_questions(assistant, pairs, leave_one_out=not args.no_loo)
    finally:
        assistant.close()
    if args.json:
        from avl.cli._render import render_json

        render_json(
            {
                "questions": r.n,
                "schema_only": r.schema_only,
                "leave_one_out": r.leave_one_out,
                "recall": r.recall / r.n,
                "prompt_tokens": r.prompt_tokens,
                "full_schema_tokens": r.full_schema_tokens,
                "misses": [{"question": q, "gold": gold, "got": got} for q, gold, got in r.misses],
            },
            out,
        )
        return EXIT_OK
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
