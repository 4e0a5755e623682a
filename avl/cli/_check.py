"""``avl check``: SafeQuery verdicts from the command line.

``avl check "SQL"`` checks the text as one statement (a second statement after a
``;`` is itself a violation). ``avl check -f FILE`` and ``avl check -`` (standard
input) read a script: each statement gets its own verdict, shown with the line it
starts on. The exit code is 0 when everything is allowed, 1 when any statement is
rejected and 2 on an error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import attrs

from avl.cli._common import EXIT_OK, EXIT_REJECTED, UsageError, console_from_args, startup
from avl.cli._render import Style, render_csv, render_json, style_for
from avl.errors import violation_code

__all__ = ["Statement", "register", "split_statements", "verdict_json"]

_EXAMPLES = """examples:
  avl check "SELECT id FROM orders"
  avl check --dialect postgres --allow-table orders --max-rows 100 "SELECT * FROM orders"
  avl check -f queries.sql                 one verdict per statement
  cat queries.sql | avl check -            the same from standard input
  avl check --json "DELETE FROM users"     the HTTP API's /v1/sql/check body
  avl check --config avl.toml --role analyst "SELECT email FROM customers"
                                           the policy of a role in a config
"""


def register(sub: Any) -> None:
    """Add ``check`` to the subcommands."""
    p = sub.add_parser(
        "check",
        help="check SQL with SafeQuery (exit 0 allowed, 1 rejected, 2 error)",
        description="Check SQL with SafeQuery before it runs.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "sql",
        nargs="*",
        help="the SQL to check as one statement; '-' reads a script from standard input "
        "(default when nothing is given)",
    )
    p.add_argument(
        "-f",
        "--file",
        action="append",
        default=[],
        metavar="FILE",
        help="a SQL script to check, one verdict per statement (repeatable)",
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        help="check under the policy of this console TOML file (its database, [policy] "
        "and [roles]), e.g. --config avl.toml; the options below narrow it further",
    )
    p.add_argument(
        "--role",
        default=None,
        help="with --config: the role whose policy applies, e.g. --role analyst",
    )
    p.add_argument(
        "--dialect",
        default=None,
        help="the SQL dialect: sqlite, postgres, mysql, duckdb... (default: sqlite, or the "
        "database's with --config), e.g. --dialect postgres",
    )
    p.add_argument(
        "--max-rows", type=int, default=None, metavar="N", help="add or lower LIMIT to N rows"
    )
    p.add_argument(
        "--allow-table",
        action="append",
        default=[],
        metavar="TABLE",
        help="only these tables may be read (repeatable; default: any non-system table)",
    )
    p.add_argument(
        "--deny-column",
        action="append",
        default=[],
        metavar="TABLE.COLUMN",
        help="a column that must never be read (repeatable)",
    )
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument(
        "--json",
        action="store_true",
        help="print the HTTP API's POST /v1/sql/check body, one line per statement",
    )
    fmt.add_argument("--csv", action="store_true", help="print CSV (one row per statement)")
    p.set_defaults(func=_cmd_check)


@attrs.frozen(kw_only=True)
class Statement:
    """One statement of a script and where it starts.

    Attributes:
        sql: the statement's text (comments kept, the closing ``;`` dropped).
        source: the file name, ``"<stdin>"`` or ``"<arg>"``.
        line: the 1-based line of the script where the text starts.
        col: the 1-based column of that line where the text starts.
    """

    sql: str
    source: str
    line: int
    col: int


def split_statements(text: str, *, dialect: str, source: str = "<stdin>") -> list[Statement]:
    """Split a script into statements at the ``;`` tokens of ``dialect``.

    Semicolons inside strings, quoted names and comments do not split. Text that
    the tokenizer cannot read (an unterminated string) stays one statement, so
    SafeQuery reports the error with its position.
    """
    from sqlglot.dialects.dialect import Dialect
    from sqlglot.errors import SqlglotError
    from sqlglot.tokenizer_core import TokenType

    try:
        tokens = Dialect.get_or_raise(dialect).tokenize(text)
        cuts = [t.start for t in tokens if t.token_type == TokenType.SEMICOLON]
    except (SqlglotError, ValueError):
        cuts = []
    out: list[Statement] = []
    start = 0
    for end in [*cuts, len(text)]:
        piece = text[start:end]
        stripped = piece.lstrip()
        if stripped.strip():
            at = start + (len(piece) - len(stripped))
            line = text.count("\n", 0, at) + 1
            col = at - (text.rfind("\n", 0, at) + 1) + 1
            out.append(Statement(sql=stripped.rstrip(), source=source, line=line, col=col))
        start = end + 1
    return out


def verdict_json(
    verdict: Any, *, statement: Statement | None = None, role: str = "default"
) -> dict[str, Any]:
    """The ``POST /v1/sql/check`` response body for ``verdict`` (the HTTP API's own
    serializer, :func:`avl.web.verdict_body`); for a statement of a script, each
    violation's line and column are those of the script (its character offset,
    relative to the statement, is left out)."""
    from avl.web import verdict_body

    body = verdict_body(verdict, role=role)
    if statement is not None and (statement.line, statement.col) != (1, 1):
        for v, out in zip(verdict.violations, body["violations"], strict=True):
            pos = _script_position(v.position, statement)
            if pos is not None and out.get("position") is not None:
                out["position"] = {"line": pos[0], "col": pos[1], "offset": None}
    return body


def _script_position(position: Any, statement: Statement | None) -> tuple[int, int] | None:
    if position is None:
        return None
    line, col = int(position.line), int(position.col)
    if statement is None:
        return line, col
    return statement.line + line - 1, (statement.col + col - 1 if line == 1 else col)


def _statements(args: argparse.Namespace) -> Iterator[Statement]:
    for name in args.file:
        try:
            text = Path(name).read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise UsageError(f"{name}: not UTF-8 text ({exc.reason})") from exc
        yield from split_statements(text, dialect=args.dialect, source=name)
    if args.sql == ["-"] or (not args.sql and not args.file):
        yield from split_statements(sys.stdin.read(), dialect=args.dialect)
    elif args.sql:
        if "-" in args.sql:
            raise UsageError("'-' (standard input) cannot be mixed with SQL arguments")
        sql = " ".join(args.sql)
        if len(args.sql) == 1 and sql.lower().endswith(".sql") and Path(sql).is_file():
            raise UsageError(f"{sql!r} is a file: check it with 'avl check -f {sql}'")
        yield Statement(sql=sql, source="<arg>", line=1, col=1)


def _policy(args: argparse.Namespace) -> Any:
    """The policy to check under: the config's (for ``--role``) or a fresh one, narrowed
    by ``--max-rows``, ``--allow-table`` and ``--deny-column``."""
    from avl.safety import Policy

    kw: dict[str, Any] = {}
    if args.max_rows is not None:
        kw["max_rows"] = args.max_rows
    if args.allow_table:
        kw["allowed_tables"] = args.allow_table
    if args.dialect:
        kw["dialect"] = args.dialect
    if not args.config:
        if args.role:
            raise UsageError("--role picks a policy from --config FILE")
        kw.setdefault("dialect", "sqlite")
        if args.deny_column:
            kw["denied_columns"] = args.deny_column
        return Policy(**kw)
    console = console_from_args(argparse.Namespace(config=args.config))
    try:
        base = console.policy_for(args.role)
        kw.setdefault("dialect", console.assistant.dialect)
    finally:
        console.close()
    if args.max_rows is not None and base.max_rows is not None:
        kw["max_rows"] = min(base.max_rows, args.max_rows)
    if args.allow_table and base.allowed_tables is not None:
        mine = {t.lower() for t in base.allowed_tables}
        kw["allowed_tables"] = [t for t in args.allow_table if t.lower() in mine]
    if args.deny_column:
        kw["denied_columns"] = [*base.denied_columns, *args.deny_column]
    return attrs.evolve(base, **kw)


def _cmd_check(args: argparse.Namespace, out: TextIO) -> int:
    with startup():
        from avl.safety import SafeQuery

        guard = SafeQuery(_policy(args))
    role = args.role or "default"
    if not args.dialect:
        args.dialect = guard.policy.dialect
    statements = list(_statements(args))
    if not statements:
        raise UsageError("no SQL given (pass it as an argument, with -f FILE, or on stdin)")
    results = [(s, guard.check(s.sql)) for s in statements]
    script = len(results) > 1 or statements[0].source != "<arg>"
    if args.json:
        for s, v in results:
            render_json(verdict_json(v, statement=s if script else None, role=role), out)
    elif args.csv:
        rows = []
        for s, v in results:
            codes = " ".join(violation_code(x) for x in v.violations)
            rows.append([s.source, s.line, "allowed" if v.allowed else "rejected", codes, s.sql])
        render_csv(["source", "line", "verdict", "codes", "sql"], rows, out)
    else:
        style = style_for(out)
        for s, v in results:
            _print_verdict(s, v, out, style, script=script)
    return EXIT_OK if all(v.allowed for _, v in results) else EXIT_REJECTED


def _print_verdict(
    statement: Statement, verdict: Any, out: TextIO, style: Style, *, script: bool
) -> None:
    where = f"{statement.source}:{statement.line}: " if script else ""
    if verdict.allowed:
        out.write(f"{where}{style('allowed', 'green', 'bold')}\n{verdict.sql}\n")
        return
    out.write(f"{where}{style('rejected', 'red', 'bold')}\n")
    lines = statement.sql.splitlines() or [""]
    for v in verdict.violations:
        code = violation_code(v)
        pos = _script_position(v.position, statement if script else None)
        at = f" at {pos[0]}:{pos[1]}" if pos else ""
        out.write(f"  {style(code, 'yellow')}{at}: {v.message}\n")
        if v.position is not None and 1 <= v.position.line <= len(lines):
            _caret(lines[v.position.line - 1], v.position.col, out, style)


def _caret(text: str, col: int, out: TextIO, style: Style) -> None:
    """The statement's line with a caret under column ``col`` (cut around it when long)."""
    col = max(1, min(col, len(text) + 1))
    start = max(0, col - 60)
    shown = text[start : start + 100]
    lead = "…" if start else ""
    out.write(f"    {lead}{shown}\n")
    out.write(f"    {' ' * (len(lead) + col - 1 - start)}{style('^', 'red', 'bold')}\n")
