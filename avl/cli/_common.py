"""What every ``avl`` command shares: exit codes, the usage error, the console."""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    import argparse
    from pathlib import Path

__all__ = [
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_REJECTED",
    "UsageError",
    "config_of",
    "console_from_args",
    "console_options",
    "context_of",
    "examples",
    "history_url",
    "load_training",
    "print_answer",
    "startup",
]

EXIT_OK = 0
EXIT_REJECTED = 1
EXIT_ERROR = 2


class UsageError(Exception):
    """A command was called wrongly; printed as ``avl CMD: error: ...`` with exit 2."""


#: set by :func:`avl.cli.main` when it runs the process's own command line (``argv``
#: not given): only then is the process one-shot, and :func:`startup` pauses the GC
WHOLE_PROCESS = False


@contextlib.contextmanager
def startup() -> Iterator[None]:
    """The start-up of a one-shot command (its imports and set-up), without the cyclic
    garbage collector.

    Importing creates a hundred thousand objects that live as long as the process
    (modules, classes, functions); the collector, triggered by every few hundred new
    objects, would walk them again and again, about a tenth of ``avl ask``'s start-up,
    to find next to nothing. Collection is paused while the block runs; at its end the
    objects then alive are frozen (:func:`gc.freeze`: later collections skip them, and
    they are never freed, which a one-shot process does not need) and the collector
    resumes, as it was, for the command's own work. Long-running commands (``serve``,
    ``shell``, ``mcp``) do not use this, and it does nothing when ``main`` is called
    with arguments (tests, a program running several commands in one process), nor
    a second time in one process.
    """
    global WHOLE_PROCESS
    if not WHOLE_PROCESS:
        yield
        return
    WHOLE_PROCESS = False  # once per process: a second command run in it collects as usual
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.freeze()
            gc.enable()


def console_options(p: argparse.ArgumentParser) -> None:
    """Add what builds a console: ``--db``, ``--config``, ``--model``, ``--training``
    and ``--user`` (read by :func:`console_from_args` and :func:`load_training`)."""
    p.add_argument("--db", metavar="URL", help="database URL, e.g. sqlite:///shop.db (or AVL_DB)")
    p.add_argument(
        "--config", metavar="FILE", help="a console TOML file, e.g. avl.toml (or AVL_CONFIG)"
    )
    p.add_argument(
        "--model", metavar="URL", help="model, e.g. offline://, openai:gpt-4o (default offline://)"
    )
    p.add_argument(
        "--training",
        default="avl_training.jsonl",
        metavar="FILE",
        help="the JSON-lines training file (default: avl_training.jsonl)",
    )
    p.add_argument(
        "--user", default="cli", help="who is asking, for history and limits, e.g. --user ann"
    )


def examples(*lines: str) -> dict[str, Any]:
    """``add_parser`` keywords for an epilog of examples, shown as written
    (``sub.add_parser("demo", help="...", **examples("avl demo --db shop.db"))``)."""
    import argparse

    return {
        "epilog": "examples:\n" + "".join(f"  {line}\n" for line in lines),
        "formatter_class": argparse.RawDescriptionHelpFormatter,
    }


def print_answer(
    answer: Any,
    out: TextIO,
    *,
    as_json: bool = False,
    as_csv: bool = False,
    role: str | None = None,
) -> None:
    """Print one :class:`avl.assistant.Answer`: text with an aligned table, JSON or CSV.

    JSON is the ``POST /v1/ask`` response body (:func:`avl.web.answer_body`, the one
    serializer of both; ``role`` is the role in its verdict); CSV is the result rows
    under their header.
    """
    from avl.cli._render import render_csv, render_json, render_table, style_for
    from avl.typing import violation_code

    if as_json:
        from avl.web import answer_body

        render_json(answer_body(answer, role=role or "default"), out)
        return
    if as_csv:
        render_csv(list(answer.columns), answer.rows, out)
        return
    style = style_for(out)
    v = answer.verdict
    out.write(f"{style('Q:', 'bold')} {answer.question}\n")
    out.write(f"{style('SQL:', 'bold')} {answer.sql}\n")
    if v is not None:
        if v.allowed:
            out.write(f"verdict: {style('allowed', 'green')}\n")
        else:
            codes = ", ".join(f"{violation_code(x)} ({x.message})" for x in v.violations)
            out.write(f"verdict: {style('REJECTED', 'red', 'bold')} {codes}\n")
    if getattr(answer, "abstained", False):
        out.write(f"{style('abstained:', 'yellow')} {answer.reason}\n")
        if answer.understood:
            out.write(f"understood: {answer.understood}\n")
    if answer.error:
        out.write(f"{style('error:', 'red')} {answer.error}\n")
    if answer.columns:
        shown = answer.rows[:_SHOWN_ROWS]
        render_table(list(answer.columns), shown, out, style=style)
        more = len(answer.rows) - len(shown)
        if more > 0:
            out.write(style(f"... {more} more row(s) (use --csv or --json for all)", "dim") + "\n")
        elif getattr(answer, "truncated", False):
            out.write(style("(the row cap cut the result)", "dim") + "\n")
    summary = getattr(answer, "summary", None)
    if summary:
        out.write(f"{style('summary:', 'bold')} {summary}\n")
    out.write("\n")


#: rows an answer prints as a table (``--csv`` and ``--json`` print all)
_SHOWN_ROWS = 20


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


def context_of(pairs: list[str]) -> dict[str, Any]:
    """Row-filter parameters from ``--context KEY=VALUE`` options (digits become
    integers).

    Raises:
        UsageError: a pair without ``=`` or without a key.
    """
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--context {pair!r}: expected KEY=VALUE")
        out[key.strip()] = int(value) if value.strip().lstrip("-").isdigit() else value
    return out


def config_of(args: argparse.Namespace) -> dict[str, Any]:
    """The console TOML of ``--config`` (else ``AVL_CONFIG``) as a mapping; ``{}``
    when neither is given.

    Raises:
        UsageError: the file cannot be read or is not TOML.
    """
    from avl.console import _read_toml
    from avl.errors import ConfigError

    path = getattr(args, "config", None) or os.environ.get("AVL_CONFIG")
    if not path:
        return {}
    try:
        return _read_toml(path)
    except ConfigError as exc:
        raise UsageError(f"cannot read config: {exc}") from exc


def history_url(args: argparse.Namespace) -> str:
    """The History URL: ``--history``, else ``AVL_HISTORY``, else ``history`` (a URL,
    or the ``url`` of a ``[history]`` table) in ``--config``/``AVL_CONFIG``.

    Raises:
        UsageError: none is given, or the config file cannot be read.
    """
    if getattr(args, "history", None):
        return str(args.history)
    if os.environ.get("AVL_HISTORY"):
        return os.environ["AVL_HISTORY"]
    config = getattr(args, "config", None) or os.environ.get("AVL_CONFIG")
    if config:
        url = config_of(args).get("history")
        if isinstance(url, dict):
            url = url.get("url")
        if isinstance(url, str) and url:
            return url
        raise UsageError(f'{config!r} has no history URL (history = "sqlite:///...")')
    raise UsageError("give --history URL (or --config FILE, or set AVL_HISTORY)")


def load_training(assistant: Any, path: Path) -> int:
    """Train ``assistant`` from a JSON-lines training file; returns how many items.

    A damaged line is never skipped: it raises :class:`~avl.errors.CorruptionError`
    naming the file, the line, its byte offset and how many items from there on are
    not loaded.
    """
    import json

    from avl.errors import CorruptionError

    if not path.exists():
        return 0
    data = path.read_bytes()
    lines = data.split(b"\n")
    n = 0
    offset = 0
    for lineno, raw in enumerate(lines, start=1):
        problem = ""
        item: Any = None
        if raw.strip():
            try:
                item = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                problem = f"not UTF-8 ({exc})"
            except json.JSONDecodeError as exc:
                problem = f"not JSON ({exc})"
            if not problem and not isinstance(item, dict):
                problem = "not a JSON object"
            if problem:
                rest = sum(1 for r in lines[lineno - 1 :] if r.strip())
                raise CorruptionError(
                    f"{path}:{lineno} (byte {offset}): {problem}; {rest} training item(s) from "
                    "there on are not loaded",
                    path=str(path),
                    offset=offset,
                    records_affected=rest,
                )
            assistant.train(
                **{k: item[k] for k in ("ddl", "documentation", "question", "sql") if item.get(k)},
                added_by=str(item.get("added_by", "cli")),
            )
            n += 1
        offset += len(raw) + 1
    return n
