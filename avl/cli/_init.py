"""``avl init``: write an ``avl.toml`` console configuration, asking or from flags.

The wizard asks for the database URL (and connects to it, to check it and to list
its tables), the model, the history, the rate limits and any roles with denied
columns and row filters. API keys are never written: a hosted model reads its key
from the environment (``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``, ``GEMINI_API_KEY``)
and the wizard only says whether it is set. ``--non-interactive`` takes everything
from flags, for scripts. The file is checked by building a Console from it before it
is written.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

from avl.cli._common import EXIT_OK, UsageError
from avl.errors import AvlError

__all__ = ["register", "to_toml"]

_EXAMPLES = """examples:
  avl init                                  answer a few questions
  avl init --non-interactive --db sqlite:///shop.db --history sqlite:///history.db \\
      --role analyst --deny-column analyst:customers.email \\
      --row-filter "analyst:orders=tenant_id = :tenant"
"""

_KEY_VARS = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "gemini": "GEMINI_API_KEY",
}


def register(sub: Any) -> None:
    """Add ``init`` to the subcommands."""
    p = sub.add_parser(
        "init",
        help="write an avl.toml console configuration (a short wizard)",
        description=(__doc__ or "").split("\n\n", 1)[1] if __doc__ else None,
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--output", "-o", default="avl.toml", metavar="FILE", help="where to write (avl.toml)"
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.add_argument(
        "--non-interactive", action="store_true", help="ask nothing: take every value from flags"
    )
    p.add_argument("--db", metavar="URL", help="database URL, e.g. sqlite:///shop.db")
    p.add_argument(
        "--model",
        metavar="URL",
        help="model: offline:// (default), openai:gpt-4o, anthropic:..., ollama:llama3",
    )
    p.add_argument(
        "--history",
        metavar="URL",
        help="History URL (default sqlite:///avl_history.db; 'none' for no history)",
    )
    p.add_argument(
        "--rates", help="requests per user, e.g. '10/second; 1000/day' ('none' for no limit)"
    )
    p.add_argument(
        "--ratelimit-storage", metavar="URL", help="memory:// (default) or redis://host:6379/0"
    )
    p.add_argument("--role", action="append", default=[], help="a role to define (repeatable)")
    p.add_argument(
        "--deny-column",
        action="append",
        default=[],
        metavar="ROLE:TABLE.COLUMN",
        help="a column a role may never read (repeatable)",
    )
    p.add_argument(
        "--row-filter",
        action="append",
        default=[],
        metavar="ROLE:TABLE=CONDITION",
        help="rows a role may read, e.g. 'analyst:orders=tenant_id = :tenant' (repeatable)",
    )
    p.add_argument(
        "--no-check", action="store_true", help="write without connecting to the database"
    )
    p.set_defaults(func=_cmd_init)


# --------------------------------------------------------------------- TOML
def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a valid TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _key(name: object) -> str:
    text = str(name)
    if text and all(c.isalnum() or c in "_-" for c in text):
        return text
    return json.dumps(text, ensure_ascii=False)


def to_toml(config: Mapping[str, Any], *, header: str = "") -> str:
    """Write a console configuration as TOML (plain keys first, then tables).

    Nested tables of tables (``roles.analyst``) become ``[roles.analyst]`` sections;
    other mappings inside a section are inline tables.
    """
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    if lines:
        lines.append("")
    tables: list[tuple[str, Mapping[str, Any]]] = []
    for k, v in config.items():
        if isinstance(v, Mapping):
            if v and all(isinstance(x, Mapping) for x in v.values()):
                tables.extend((f"{_key(k)}.{_key(n)}", sub) for n, sub in v.items())
            else:
                tables.append((_key(k), v))
        else:
            lines.append(f"{_key(k)} = {_toml_value(v)}")
    for name, body in tables:
        lines += ["", f"[{name}]"]
        lines += [f"{_key(k)} = {_toml_value(v)}" for k, v in body.items()]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------- wizard
class _Asker:
    """Asks questions on ``out`` and reads answers from standard input."""

    def __init__(self, out: TextIO, interactive: bool) -> None:
        self.out = out
        self.interactive = interactive

    def ask(
        self, question: str, default: str, check: Callable[[str], str | None] | None = None
    ) -> str:
        if not self.interactive:
            return default
        while True:
            self.out.write(f"{question} [{default}]: " if default else f"{question}: ")
            self.out.flush()
            line = sys.stdin.readline()
            if not line:  # end of input: take the default
                self.out.write("\n")
                return default
            answer = line.strip() or default
            problem = check(answer) if check else None
            if problem is None:
                return answer
            self.out.write(f"  {problem}\n")

    def yes(self, question: str, default: bool = False) -> bool:
        answer = self.ask(question + " (y/n)", "y" if default else "n")
        return answer.lower().startswith("y")


def _tables_of(db: str) -> dict[str, list[str]]:
    """Connect to ``db`` and list its tables and columns (raises an avl error)."""
    from avl.assistant import Database

    database = Database(db)
    try:
        snap = database.introspect()
    finally:
        database.close()
    return {t.name: [c.name for c in t.columns] for t in snap.tables}


def _split_role(text: str, flag: str) -> tuple[str, str]:
    role, sep, rest = text.partition(":")
    if not sep or not role or not rest:
        raise UsageError(f"{flag} {text!r}: expected ROLE:VALUE")
    return role, rest


def _model_note(model: str) -> str | None:
    provider = model.split(":", 1)[0].split("/", 1)[0].lower()
    var = _KEY_VARS.get(provider)
    if var is None:
        return None
    state = "is set" if os.environ.get(var) else "is NOT set: export it before 'avl ask'"
    return f"{var} {state} (keys are read from the environment, never written to the file)"


def _cmd_init(args: argparse.Namespace, out: TextIO) -> int:
    path = Path(args.output)
    if path.exists() and not args.force:
        raise UsageError(f"{path} exists (use --force to overwrite it)")
    asker = _Asker(out, interactive=not args.non_interactive)
    if asker.interactive:
        out.write(
            "avl init: a console configuration in a few questions (Enter keeps the default).\n"
        )

    tables: dict[str, list[str]] = {}

    def check_db(url: str) -> str | None:
        if args.no_check:
            return None
        try:
            tables.update(_tables_of(url))
        except AvlError as exc:  # shown to the person, who can try another URL
            return f"cannot use {url}: {exc}"
        out.write(f"  connected: {len(tables)} table(s)\n")
        return None

    db = asker.ask("Database URL", args.db or "sqlite:///shop.db", check_db)
    if not asker.interactive and not args.no_check:
        problem = check_db(db)
        if problem:
            raise UsageError(problem)
    model = asker.ask(
        "Model (offline://, openai:gpt-4o, anthropic:..., ollama:llama3)",
        args.model or "offline://",
    )
    note = _model_note(model)
    if note:
        out.write(f"  {note}\n")
    history = asker.ask(
        "History URL ('none' for no history)", args.history or "sqlite:///avl_history.db"
    )
    rates = asker.ask(
        "Requests per user ('none' for no limit)", args.rates or "10/second; 1000/day"
    )
    storage = args.ratelimit_storage or "memory://"
    if rates.lower() != "none":
        storage = asker.ask("Rate-limit storage (memory:// or redis://...)", storage)

    roles: dict[str, dict[str, Any]] = {r: {} for r in args.role}
    for spec in args.deny_column:
        role, col = _split_role(spec, "--deny-column")
        roles.setdefault(role, {}).setdefault("denied_columns", []).append(col)
    for spec in args.row_filter:
        role, rest = _split_role(spec, "--row-filter")
        table, sep, cond = rest.partition("=")
        if not sep or not table.strip() or not cond.strip():
            raise UsageError(f"--row-filter {spec!r}: expected ROLE:TABLE=CONDITION")
        roles.setdefault(role, {}).setdefault("row_filters", {})[table.strip()] = cond.strip()
    if asker.interactive and asker.yes("Add a role with its own policy?"):
        while True:
            role = asker.ask("  Role name", "analyst")
            body = roles.setdefault(role, {})
            if tables:
                out.write(f"  tables: {', '.join(sorted(tables))}\n")
            denied = asker.ask("  Columns it may never read (table.column, comma-separated)", "")
            if denied:
                body["denied_columns"] = [c.strip() for c in denied.split(",") if c.strip()]
            while asker.yes("  Add a row filter (rows it may read)?"):
                table = asker.ask("    Table", "")
                cond = asker.ask("    Condition, e.g. tenant_id = :tenant", "")
                if table and cond:
                    body.setdefault("row_filters", {})[table] = cond
            if not asker.yes("Add another role?"):
                break

    config: dict[str, Any] = {"db": db, "model": model}
    config["history"] = "" if history.lower() == "none" else history
    if rates.lower() == "none":
        config["ratelimit"] = {"rates": ""}
    else:
        config["ratelimit"] = {"rates": rates, "storage": storage}
    if roles:
        config["roles"] = roles
    if not args.no_check:
        _validate(config)
    today = datetime.date.today().isoformat()
    text = to_toml(
        config,
        header=f"avl console configuration, written by 'avl init' on {today}.\n"
        "API keys are read from the environment, never from this file.",
    )
    path.write_text(text, encoding="utf-8")
    out.write(f"wrote {path}\n")
    out.write(f'next: avl ask "how many rows are in ...?" --config {path}\n')
    return EXIT_OK


def _validate(config: Mapping[str, Any]) -> None:
    """Build a Console from ``config`` (without a history or training) to check it."""
    from avl.console import Console

    probe = {**config, "history": "", "train_from_database": False}
    provider = str(config.get("model", "")).split(":", 1)[0].split("/", 1)[0].lower()
    if provider in _KEY_VARS and not os.environ.get(_KEY_VARS[provider]):
        probe["model"] = "offline://"  # the key is not in this shell; checked at run time
    console = Console.from_config(probe)
    console.close()
