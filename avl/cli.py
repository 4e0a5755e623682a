"""The ``avl`` command line.

Subcommands::

    avl demo                       sample database, offline model: SQL, verdicts, rows
    avl check [SQL] [--dialect D] [--max-rows N] [--allow-table T]...
                                   SafeQuery verdict; exit 0 allowed, 1 rejected, 2 error
    avl ask QUESTION --db URL      answer one question
    avl train --db URL --question Q --sql S | --ddl FILE | --documentation TEXT
                                   append to the training file used by ``avl ask``
    avl history --history URL      recent questions from a History
    avl eval QUESTIONS.jsonl --db URL
                                   execution accuracy on your own question set
    avl serve / avl openapi        the web adapter (``avl.web``)

``ask``, ``train`` and ``eval`` read ``--config FILE.toml`` and the ``AVL_*``
environment variables (see :mod:`avl.console`). Training is kept in a JSON-lines
file (``--training``, default ``avl_training.jsonl``) that ``ask`` loads.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from avl.errors import AvlError

__all__ = ["build_parser", "main"]

EXIT_OK = 0
EXIT_REJECTED = 1
EXIT_ERROR = 2


def _print_answer(answer: Any, out: TextIO, *, as_json: bool = False) -> None:
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


# ------------------------------------------------------------------ commands
def _cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    from avl.assistant import Assistant
    from avl.assistant._demo import DEMO_PAIRS, DEMO_QUESTIONS, create_demo_database

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
                _print_answer(assistant.ask(q, user="demo"), out)
            out.write("SafeQuery stops what a model must never run:\n")
            guard = assistant.guard_for(None)
            for sql in ("DELETE FROM orders", "SELECT name FROM customers; DROP TABLE orders"):
                v = guard.check(sql)
                codes = ", ".join(str(getattr(x.code, "value", x.code)) for x in v.violations)
                out.write(f"  {sql}\n    -> {'allowed' if v.allowed else 'REJECTED: ' + codes}\n")
        finally:
            assistant.close()
    return EXIT_OK


def _cmd_check(args: argparse.Namespace, out: TextIO) -> int:
    from avl.safety import Policy, SafeQuery

    sql = " ".join(args.sql) if args.sql else sys.stdin.read()
    if not sql.strip():
        raise _UsageError("no SQL given (pass it as arguments or on stdin)")
    kw: dict[str, Any] = {"dialect": args.dialect}
    if args.max_rows is not None:
        kw["max_rows"] = args.max_rows
    if args.allow_table:
        kw["allowed_tables"] = args.allow_table
    if args.deny_column:
        kw["denied_columns"] = args.deny_column
    verdict = SafeQuery(Policy(**kw)).check(sql)
    if args.json:
        out.write(
            json.dumps(
                {
                    "allowed": verdict.allowed,
                    "sql": verdict.sql,
                    "violations": [
                        {"code": str(getattr(v.code, "value", v.code)), "message": v.message}
                        for v in verdict.violations
                    ],
                }
            )
            + "\n"
        )
    elif verdict.allowed:
        out.write(f"allowed\n{verdict.sql}\n")
    else:
        out.write("rejected\n")
        for v in verdict.violations:
            pos = f" at {v.position.line}:{v.position.col}" if v.position is not None else ""
            out.write(f"  {getattr(v.code, 'value', v.code)}{pos}: {v.message}\n")
    return EXIT_OK if verdict.allowed else EXIT_REJECTED


def _console(args: argparse.Namespace) -> Any:
    from avl.console import Console

    env: dict[str, str] = {}
    import os

    env.update(os.environ)
    if getattr(args, "config", None):
        env["AVL_CONFIG"] = args.config
    if getattr(args, "db", None):
        env["AVL_DB"] = args.db
    if getattr(args, "model", None):
        env["AVL_MODEL"] = args.model
    if getattr(args, "history", None):
        env["AVL_HISTORY"] = args.history
    return Console.from_env(env)


def _load_training(assistant: Any, path: Path) -> int:
    if not path.exists():
        return 0
    n = 0
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _UsageError(f"{path}:{lineno}: not JSON ({exc})") from exc
        assistant.train(
            **{k: item[k] for k in ("ddl", "documentation", "question", "sql") if item.get(k)},
            added_by=str(item.get("added_by", "cli")),
        )
        n += 1
    return n


def _cmd_ask(args: argparse.Namespace, out: TextIO) -> int:
    console = _console(args)
    try:
        _load_training(console.assistant, Path(args.training))
        answer = console.assistant.ask(" ".join(args.question), user=args.user, role=args.role)
        _print_answer(answer, out, as_json=args.json)
        if answer.verdict is not None and not answer.verdict.allowed:
            return EXIT_REJECTED
        return EXIT_OK if not answer.error else EXIT_ERROR
    finally:
        console.close()


def _cmd_train(args: argparse.Namespace, out: TextIO) -> int:
    item: dict[str, str] = {}
    if args.question or args.sql:
        if not (args.question and args.sql):
            raise _UsageError("--question and --sql go together")
        item.update(question=args.question, sql=args.sql)
    if args.ddl:
        item["ddl"] = Path(args.ddl).read_text(encoding="utf-8")
    if args.documentation:
        item["documentation"] = args.documentation
    if not item:
        raise _UsageError("give --question/--sql, --ddl FILE or --documentation TEXT")
    console = _console(args)
    try:
        ids = console.assistant.train(**item, added_by=args.user)  # validates (SafeQuery)
    finally:
        console.close()
    item["added_by"] = args.user
    with Path(args.training).open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(item) + "\n")
    out.write(f"trained {', '.join(ids)} -> {args.training}\n")
    return EXIT_OK


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
            raise _UsageError(
                f"{args.questions}:{lineno}: expected JSON with question and sql"
            ) from exc
    if not pairs:
        raise _UsageError(f"{args.questions} holds no questions")
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


# ------------------------------------------------------------- web extension
def _web_commands(sub: Any) -> None:
    """Register ``serve`` and ``openapi``; they call :mod:`avl.web` lazily."""
    p = sub.add_parser("serve", help="serve the console over HTTP (avl.web)")
    p.add_argument("--config", help="a console TOML file")
    p.add_argument("--db", help="database URL")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(func=_cmd_serve)
    p = sub.add_parser("openapi", help="print the OpenAPI document (avl.web)")
    p.add_argument("--config", help="a console TOML file")
    p.set_defaults(func=_cmd_openapi)


def _cmd_serve(args: argparse.Namespace, out: TextIO) -> int:
    from avl.web.cli import serve

    console = _console(args)
    try:
        serve(console, args.host, args.port)
    finally:
        console.close()
    return EXIT_OK


def _cmd_openapi(args: argparse.Namespace, out: TextIO) -> int:
    from avl.web.cli import openapi_spec

    out.write(json.dumps(openapi_spec(None), indent=2) + "\n")
    return EXIT_OK


class _UsageError(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``avl`` (for documentation and tests)."""
    ap = argparse.ArgumentParser(prog="avl", description="Ask a database safely.")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="run the offline demo on a sample database")
    p.add_argument("--db", help="where to write the sample database (default: a temp dir)")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser(
        "check", help="check SQL with SafeQuery (exit 0 allowed, 1 rejected, 2 error)"
    )
    p.add_argument("sql", nargs="*", help="the SQL (default: read stdin)")
    p.add_argument("--dialect", default="sqlite")
    p.add_argument("--max-rows", type=int, default=None)
    p.add_argument("--allow-table", action="append", default=[])
    p.add_argument("--deny-column", action="append", default=[])
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_check)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--db", help="database URL (or AVL_DB)")
        p.add_argument("--config", help="a console TOML file (or AVL_CONFIG)")
        p.add_argument("--model", help="model URL (default offline://)")
        p.add_argument("--training", default="avl_training.jsonl", help="training file")
        p.add_argument("--user", default="cli")

    p = sub.add_parser("ask", help="answer a question")
    p.add_argument("question", nargs="+")
    common(p)
    p.add_argument("--role", default=None)
    p.add_argument("--history", help="History URL to record into (e.g. sqlite:///history.db)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_ask)

    p = sub.add_parser("train", help="add training (validated) to the training file")
    common(p)
    p.add_argument("--question")
    p.add_argument("--sql")
    p.add_argument("--ddl", help="a file of CREATE TABLE statements")
    p.add_argument("--documentation")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("history", help="recent questions from a History")
    p.add_argument("--history", required=True, help="History URL (sqlite:///..., postgresql://...)")
    p.add_argument("--user", default=None)
    p.add_argument("--text", default=None)
    p.add_argument("--limit", type=int, default=20)
    p.set_defaults(func=_cmd_history)

    p = sub.add_parser("eval", help="execution accuracy on a JSONL question set")
    p.add_argument("questions", help="JSONL with question and sql")
    p.add_argument("--db", required=True)
    p.add_argument("--model", default=None)
    p.add_argument("--no-loo", action="store_true", help="skip the leave-one-out setting")
    p.add_argument("--show", type=int, default=0, help="print this many misses")
    p.set_defaults(func=_cmd_eval)

    _web_commands(sub)
    return ap


def main(
    argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Run the ``avl`` command line.

    Args:
        argv: the arguments (default ``sys.argv[1:]``).
        out: where to print results (default stdout).
        err: where to print errors (default stderr).

    Returns:
        The exit code: 0 success/allowed, 1 rejected, 2 error.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:
        return int(exc.code or 0) if exc.code in (0, None) else EXIT_ERROR
    try:
        code: int = args.func(args, out)
        return code
    except (AvlError, _UsageError, OSError) as exc:
        err.write(f"avl {args.command}: error: {exc}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        err.write("interrupted\n")
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
