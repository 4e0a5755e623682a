"""The rewrite, after the walk: row filters, the row limit, SQLite double-quoted strings.

* Row filters: each reference of a filtered table becomes
  ``(SELECT * FROM t WHERE <filter>) AS <alias>``; the filter's parameters are written
  by the template writer (``_template.py``), whose literals end in the same place
  whatever the server's escape settings (``standard_conforming_strings``,
  ``NO_BACKSLASH_ESCAPES``), and are proved by parsing them back. The alias keeps its
  quotes, and ``db.t.col`` references of an unaliased ``db.t`` become ``t.col``.
* ``max_rows``: a ``LIMIT`` (``TOP``, ``FETCH FIRST``) added or clamped; when only that
  changes, the text is edited at the token (formatting and comments survive).
* SQLite: a double-quoted name the walk read as a string becomes a single-quoted literal.
"""

from __future__ import annotations

import itertools
import re
from typing import TYPE_CHECKING

from sqlglot import exp
from sqlglot.errors import ErrorLevel

from avl._lazy import LazyPattern
from avl.errors import AvlError
from avl.safety._verdict import ViolationCode
from avl.safety.rules._util import SETOPS, number

if TYPE_CHECKING:
    from avl.safety._checker import RowFilter
    from avl.safety._walk import Run

__all__ = ["FENCES", "fence_of", "rewrite"]

C = ViolationCode
# dialects whose row limit is a trailing LIMIT clause (text can be appended)
_LIMIT_LAST = frozenset(
    {"sqlite", "postgres", "mysql", "duckdb", "snowflake", "bigquery", "redshift", "spark",
     "spark2", "databricks", "hive", "presto", "trino", "athena", "clickhouse", "doris",
     "starrocks", "materialize", "risingwave", "singlestore", "dune"}
)  # fmt: skip


#: what closes a row-filter wrapper so the engine applies the filter before anything
#: the caller wrote: without it PostgreSQL pulls the subquery up and orders the quals by
#: cost (``CAST(notes AS boolean)`` ran before ``tenant_id + 0 = 1`` and its error quoted
#: another tenant's row), and SQLite ran the caller's ``json(notes)`` on another
#: tenant's row when an index on ``notes`` drove the scan (the error told the row
#: exists). A subquery with ``OFFSET``/``LIMIT`` is neither pulled up nor receives
#: pushed-down conditions on these engines (MySQL/MariaDB: not merged, no
#: derived-condition pushdown).
FENCES: dict[str, str] = {
    "postgres": " OFFSET 0",
    "duckdb": " OFFSET 0",
    "sqlite": " LIMIT -1 OFFSET 0",
    "mysql": " LIMIT 18446744073709551615",
}


def fence_of(select: exp.Select, dialect: str) -> str:
    """The ``LIMIT``/``OFFSET`` tail of a wrapper ``select``, as :data:`FENCES` writes it."""
    return "".join(
        " " + node.sql(dialect=dialect)
        for node in (select.args.get("limit"), select.args.get("offset"))
        if isinstance(node, exp.Expr)
    )


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _wrap(run: Run, statements: list[exp.Expr], substitutions: dict[str, str]) -> bool:
    """Replace each row-filtered table reference; True when the tree changed."""
    changed = False
    import secrets  # loaded for row filters only (it loads OpenSSL)

    nonce = secrets.token_hex(8)
    for index, (table, rf) in enumerate(run.wraps):
        predicate = _predicate(run, table, rf)
        if predicate is None:
            continue
        token = f"avlrowfilter{nonce}{index}"
        inner = table.copy()
        inner.set("alias", None)
        # a PIVOT/UNPIVOT runs on the filtered rows, outside the wrapper: inside, it
        # could forge the filter's column (PIVOT (count(*) AS id FOR tenant_id IN (2 AS
        # tenant)) made a ``tenant_id`` of 1 beside another tenant's notes)
        pivots = inner.args.get("pivots")
        inner.set("pivots", None)
        alias = table.args.get("alias")
        if isinstance(alias, exp.TableAlias):
            alias = alias.copy()
        else:
            alias = exp.TableAlias(this=table.this.copy())
            if table.args.get("db") is not None:
                _unqualify(run, statements, table)
        # a comparison of two marker names (a bare name would become ``name <> 0`` in
        # T-SQL), replaced by the predicate text after generation
        marker = exp.EQ(this=exp.column(token + "a"), expression=exp.column(token + "b"))
        wrapper = exp.Subquery(this=exp.select("*").from_(inner).where(marker), alias=alias)
        if pivots:
            wrapper.set("pivots", pivots)
        table.replace(wrapper)
        substitutions[token] = predicate + FENCES.get(run.p.dialect, "")
        changed = True
    return changed


def _unqualify(run: Run, statements: list[exp.Expr], table: exp.Table) -> None:
    """``db.t.col`` of an unaliased, wrapped ``db.t`` becomes ``t.col`` (the wrapper's name)."""
    parts = run.c.parts_of(table)
    for statement in statements:
        for col in statement.find_all(exp.Column):
            if col.args.get("db") is None:
                continue
            qualifier = [run.c.norm(p) for p in col.parts[:-1]]
            if (
                qualifier
                and qualifier[-1] == parts[-1]
                and parts[-len(qualifier) :] == tuple(qualifier)
            ):
                col.set("db", None)
                col.set("catalog", None)


def _span(node: object) -> tuple[int, int] | None:
    """Where an identifier is in the text (``end`` exclusive), when the parser kept it."""
    meta = getattr(node, "_meta", None)
    if isinstance(node, exp.Identifier) and meta:
        start, end = meta.get("start"), meta.get("end")
        if isinstance(start, int) and isinstance(end, int):
            return start, end + 1
    return None


def _predicate(run: Run, table: exp.Table, rf: RowFilter) -> str | None:
    """A row filter's predicate with its parameters written in (reported when it cannot be)."""
    missing = sorted({n for n in rf.template.params if n not in run.params})
    if missing:
        run.flag(
            C.MISSING_PARAMETER,
            f"the row filter on {table.name!r} needs the parameter(s) {', '.join(missing)}",
            table,
        )
        return None
    try:
        return run.c.filter_text(rf, run.params)
    except AvlError as exc:
        run.flag(
            C.INVALID_PARAMETER,
            f"a parameter of the row filter on {table.name!r} cannot be written as a "
            f"literal: {exc}",
            table,
        )
        return None


def _wrap_text(run: Run, statements: list[exp.Expr]) -> list[tuple[int, int, str]] | None:
    """Row filters as edits of the text (None when a reference's span is unknown).

    Editing the text leaves the rest of the statement exactly as written: sqlglot never
    regenerates (and so never renames) a function or clause the user wrote.
    """
    sql = run.sql
    edits: list[tuple[int, int, str]] = []
    for table, rf in run.wraps:
        args = table.args
        if not args.keys() <= _NAME_ARGS:
            return None
        parts = [args[k] for k in ("catalog", "db", "this") if args.get(k) is not None]
        spans = [_span(p) for p in parts]
        if not parts or any(sp is None for sp in spans):
            return None
        alias = args.get("alias")
        if alias is not None and _span(alias.this) is None:
            return None  # an alias the parser made up (not in the text)
        predicate = _predicate(run, table, rf)
        if predicate is None:
            continue
        start = min(sp[0] for sp in spans if sp is not None)
        if not _AFTER_FROM.search(sql, 0, start):
            return None  # not written after FROM/JOIN/a comma (PostgreSQL's TABLE t, say)
        this_span = spans[-1]
        assert this_span is not None
        fence = FENCES.get(run.p.dialect, "")
        text = f"(SELECT * FROM {sql[start : this_span[1]]} WHERE {predicate}{fence})"
        if alias is None:
            text += f" AS {sql[this_span[0] : this_span[1]]}"
            if len(parts) > 1:
                unqualified = _unqualify_text(run, statements, table)
                if unqualified is None:
                    return None
                edits.extend(unqualified)
        edits.append((start, this_span[1], text))
    edits.sort()
    for (_, end, _), (start, _, _) in itertools.pairwise(edits):
        if start < end:
            return None
    return edits


def _unqualify_text(
    run: Run, statements: list[exp.Expr], table: exp.Table
) -> list[tuple[int, int, str]] | None:
    """Edits that turn ``db.t.col`` into ``t.col`` for an unaliased, wrapped ``db.t``."""
    parts = run.c.parts_of(table)
    edits: list[tuple[int, int, str]] = []
    for statement in statements:
        for col in statement.find_all(exp.Column):
            if col.args.get("db") is None:
                continue
            names = col.parts[:-1]
            qualifier = [run.c.norm(p) for p in names]
            if not (
                qualifier
                and qualifier[-1] == parts[-1]
                and parts[-len(qualifier) :] == tuple(qualifier)
            ):
                continue
            first, last = _span(names[0]), _span(names[-1])
            if first is None or last is None:
                return None
            edits.append((first[0], last[0], ""))
    return edits


def _apply(sql: str, edits: list[tuple[int, int, str]]) -> str:
    out = sql
    for start, end, text in sorted(edits, reverse=True):
        out = out[:start] + text + out[end:]
    return out


def rewrite(run: Run, statements: list[exp.Expr]) -> str:
    """The SQL to run (empty when the rewrite itself found a violation)."""
    max_rows = run.p.max_rows
    textual = run.p.dialect in _LIMIT_LAST
    if (
        textual
        and max_rows is not None
        and not run.wraps
        and not run.strings
        and len(statements) == 1
        and run.statement_end is not None
    ):
        root = statements[0]
        if type(root) is exp.Select and root.args.get("limit") is None:
            # the common case: a LIMIT appended to the text
            return f"{run.sql[: run.statement_end]} LIMIT {max_rows}"
    substitutions: dict[str, str] = {}
    changed = False
    if run.wraps:
        edits = _wrap_text(run, statements) if textual and len(statements) == 1 else None
        if edits is None:
            changed = _wrap(run, statements, substitutions)
        else:
            run.edits.extend(edits)
    if run.violations:
        return ""
    if changed and run.strings:
        for col in run.strings:
            col.replace(exp.Literal.string(str(col.this.name)))
    elif run.strings:
        for col in run.strings:
            span = _span(col.this)
            if span is not None:
                run.edits.append((span[0], span[1], _quote(str(col.this.name))))
    textual = textual and not changed
    if run.p.max_rows is not None and len(statements) == 1:
        changed = _limit(run, statements[0], textual) or changed
        root = statements[0]
        if run.bound_outside and isinstance(root, exp.Query):
            end = run.statement_end
            if textual and end is not None:
                # PERCENT / WITH TIES: bound the (edited) statement from outside, as text
                inner = _apply(run.sql[:end], [e for e in run.edits if e[1] <= end])
                return f"SELECT * FROM ({inner}) AS _bounded LIMIT {run.p.max_rows}"
            outer = exp.select("*").from_(root.subquery("_bounded"))
            outer.set("limit", exp.Limit(expression=exp.Literal.number(run.p.max_rows)))
            statements[0] = outer
            if run.strings and not changed:
                for col in run.strings:
                    col.replace(exp.Literal.string(str(col.this.name)))
            run.edits = []
            changed = True
    if run.violations:
        return ""
    if run.edits and not changed:
        # only the text changed (row filters, LIMIT, string quotes): no regeneration
        return _apply(run.sql, run.edits)
    if not changed:
        sql = run.sql
        if sql.strip().endswith(";") and not _ends_in_comment(sql):
            return sql.strip().rstrip(";").rstrip()
        return sql
    try:
        # RAISE: a construct sqlglot cannot write in this dialect must not be silently
        # dropped from the statement we hand back (fail closed)
        out = ";\n".join(
            s.sql(dialect=run.c.dialect, unsupported_level=ErrorLevel.RAISE) for s in statements
        )
    except Exception as exc:
        run.flag(
            C.UNKNOWN_NODE,
            f"the rewritten statement cannot be written in {run.p.dialect}: {exc}",
        )
        return ""
    for token, predicate in substitutions.items():
        pattern = re.compile(re.escape(token) + r"a\s*=\s*" + re.escape(token) + "b")
        pieces = pattern.split(out)
        count = len(pieces) - 1
        out = predicate.join(pieces)
        if count != 1:
            run.flag(C.UNKNOWN_NODE, "the row filter could not be placed in the rewrite")
            return ""
    return out


_NAME_ARGS = frozenset({"this", "db", "catalog", "alias"})
_LIMITABLE = (exp.Select, *SETOPS)
_AFTER_FROM = LazyPattern(r"(?:\bFROM|\bJOIN|,)\s*\Z", re.IGNORECASE)


def _ends_in_comment(sql: str) -> bool:
    tail = sql.rstrip().rstrip(";")
    return "--" in tail.rsplit("\n", 1)[-1] or tail.endswith("*/")


def _limit(run: Run, root: exp.Expr, textual: bool) -> bool:
    max_rows = run.p.max_rows
    assert max_rows is not None
    if not isinstance(root, _LIMITABLE):
        if isinstance(root, exp.Subquery):
            # (SELECT ...) as a whole statement: limit the outside
            if root.args.get("limit") is None:
                root.set("limit", exp.Limit(expression=exp.Literal.number(max_rows)))
                return True
            return False
        return False
    current = root.args.get("limit")
    if current is None:
        end = run.statement_end
        if textual and end is not None:
            run.edits.append((end, len(run.sql), f" LIMIT {max_rows}"))
            return False
        root.set("limit", exp.Limit(expression=exp.Literal.number(max_rows)))
        return True
    value_node = (
        current.args.get("expression")
        if isinstance(current, exp.Limit)
        else current.args.get("count")
    )
    if isinstance(current, exp.Fetch) and value_node is None:
        value_node = exp.Literal.number(1)
    if isinstance(current, (exp.Fetch, exp.Limit)):
        opts = current.args.get("limit_options")
        if opts is not None and (opts.args.get("percent") or opts.args.get("with_ties")):
            # PERCENT and WITH TIES can return any number of rows: bound them from outside
            run.bound_outside = True
            return True
    value = number(value_node, subqueries=False) if isinstance(value_node, exp.Expr) else None
    if value is None or value != int(value) or value < 0:
        run.flag(C.LIMIT_TOO_LARGE, "the row limit is not a constant number", current)
        return False
    if value <= max_rows:
        return False
    if not run.p.clamp_limit:
        run.flag(C.LIMIT_TOO_LARGE, f"LIMIT {int(value)} is above max_rows={max_rows}", current)
        return False
    meta = getattr(value_node, "_meta", None)
    if (
        textual
        and isinstance(value_node, exp.Literal)
        and meta
        and "start" in meta
        and "end" in meta
    ):
        run.edits.append((meta["start"], meta["end"] + 1, str(max_rows)))
        return False
    key = "expression" if isinstance(current, exp.Limit) else "count"
    current.set(key, exp.Literal.number(max_rows))
    return True
