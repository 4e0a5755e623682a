"""Column rules: which column every reference reads, and the marks columns carry.

A denied column stays denied whatever it is called: the checker follows each column
through ``SELECT *`` and its modifiers (``* EXCLUDE``, ``* REPLACE``, ``* RENAME``), column
lists on CTEs, derived tables and table aliases (``AS t(a, b)``), ``VALUES`` aliases,
positional references (``ORDER BY 4``, DuckDB's ``#4``), DuckDB's ``COLUMNS(...)`` and a
``*`` inside a function, and the columns a ``NATURAL JOIN`` compares without naming
them. Where it cannot prove which column a reference reads while a
denied column is in reach, it refuses (``unresolved_column``).

With a schema, an unknown column is ``unknown_column``; in SQLite a double-quoted name
that is no column is a string to the engine, so it is a violation
(``double_quoted_string``) unless it stands as a plain value compared with a column
(``name = "Bob"``, the style of much generated SQL), where the rewrite makes it a real
string literal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from avl.safety._verdict import ViolationCode
from avl.safety.rules._util import is_constant

if TYPE_CHECKING:
    from avl.safety._walk import Rel, Run, Scope

__all__ = [
    "column",
    "columns_fn",
    "lambda_params",
    "natural_join",
    "positional",
    "star",
    "star_value",
    "unit_word",
    "use",
]

C = ViolationCode


def use(run: Run, src: Rel, name: str, node: exp.Expr) -> None:
    """Read column ``name`` of ``src``: unknown column, denied mark, record."""
    if src.colset is not None and name not in src.colset:
        if run.c.schema is not None:
            run.flag(C.UNKNOWN_COLUMN, f"{src.name} has no column {name!r}", node)
        return
    if name in src.marked:
        run.flag(C.COLUMN_DENIED, f"column {src.name}.{name} is denied", node)
    if src.key:
        run.columns.add((src.key, name))


def _denied_any(run: Run, name: str, node: exp.Expr) -> None:
    if name in run.c.denied_cols:
        run.flag(C.COLUMN_DENIED, f"column {name!r} may be a denied column", node)


def _qualified(run: Run, node: exp.Column, scope: Scope) -> Rel | None:
    """The source a qualified column names (``t.x``, ``db.t.x``); None when not in scope."""
    parts = list(node.parts[:-1])
    names = [str(p.name).lower() for p in parts]
    src = scope.lookup(".".join(names)) if len(names) > 1 else None
    if src is None:
        src = scope.lookup(names[-1])
        if src is not None and len(names) > 1 and src.key is not None:
            # db.t.x must name the same table as the source (not another db's t)
            key = src.key.lower().split(".")
            if key[-len(names) :] != names[-len(key) :]:
                src = None
    return src


def column(run: Run, node: exp.Column, scope: Scope) -> bool:
    """Rule for a column reference."""
    this = node.this
    if type(this) is exp.Star:
        star(run, node, scope, carry=False)
        return True
    name = str(this.name).lower() if isinstance(this, exp.Identifier) else node.name.lower()
    if node.args.get("table") is not None:
        src = _qualified(run, node, scope)
        if src is None:
            qualifier = ".".join(str(p.name) for p in node.parts[:-1])
            if run.c.schema is not None:
                run.flag(
                    C.UNKNOWN_TABLE,
                    f"{qualifier!r} is not a table in scope (column {qualifier}.{name})",
                    node,
                )
            else:
                _denied_any(run, name, node)
            return True
        use(run, src, name, node)
        return True
    _bare(run, name, scope, node)
    return True


def _bare(run: Run, name: str, scope: Scope, node: exp.Expr) -> None:
    s: Scope | None = scope
    all_known = True
    while s is not None:
        hits = [src for src in s.sources.values() if src.colset is not None and name in src.colset]
        unknown = [src for src in s.sources.values() if src.colset is None]
        if hits:
            for src in hits:
                use(run, src, name, node)
            for src in unknown:
                if name in src.marked:
                    run.flag(C.COLUMN_DENIED, f"column {src.name}.{name} is denied", node)
            return
        # PostgreSQL and DuckDB read a bare table name or alias as the whole row
        whole = s.sources.get(name)
        if whole is not None and whole.marked:
            run.flag(
                C.COLUMN_DENIED,
                f"{name!r} may read whole rows of {whole.name}, denied columns included",
                node,
            )
            return
        if unknown:
            all_known = False
            for src in unknown:
                use(run, src, name, node)
            return
        if whole is not None or name in s.aliases:
            return
        s = s.parent
    if run.c.schema is not None and all_known:
        if _sqlite_string(run, node):
            return
        run.flag(C.UNKNOWN_COLUMN, f"column {name!r} is not in any table in scope", node)
    else:
        _denied_any(run, name, node)


def _sqlite_string(run: Run, node: exp.Expr) -> bool:
    """A double-quoted name SQLite would read as a string: allowed only as a compared value."""
    if not run.c.sqlite_strings or not isinstance(node, exp.Column) or node.table:
        return False
    ident = node.this
    meta = getattr(ident, "_meta", None)
    if not (isinstance(ident, exp.Identifier) and ident.args.get("quoted") and meta):
        return False
    start = meta.get("start")
    if not isinstance(start, int) or run.sql[start : start + 1] != '"':
        return False
    parent = node.parent
    other: exp.Expr | None = None
    if isinstance(parent, (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Like, exp.ILike,
                           exp.Glob, exp.NullSafeEQ, exp.NullSafeNEQ)):  # fmt: skip
        other = parent.expression if parent.this is node else parent.this
    elif isinstance(parent, (exp.In, exp.Between)) and node is not parent.this:
        other = parent.this
    if isinstance(other, exp.Expr) and not is_constant(other):
        run.strings.append(node)
        return True
    run.flag(
        C.DOUBLE_QUOTED_STRING,
        f'"{ident.name}" is no column; SQLite would read it as the string '
        f"'{ident.name}' (write strings in single quotes)",
        node,
    )
    return True


# -------------------------------------------------------------------- stars
def _star_of(node: exp.Expr) -> exp.Star | None:
    if isinstance(node, exp.Star):
        return node
    if isinstance(node, exp.Column) and isinstance(node.this, exp.Star):
        return node.this
    return None


def star(
    run: Run, node: exp.Expr, scope: Scope, *, carry: bool
) -> tuple[list[str] | None, frozenset[str]]:
    """Expand ``*`` / ``t.*``: the names it yields (None: unknown) and their marks.

    Marked columns are reported here unless ``carry`` (a CTE body or derived table
    passes them on, and they are reported where they are read).
    """
    qualifier = ""
    if isinstance(node, exp.Column):
        qualifier = ".".join(str(p.name).lower() for p in node.parts[:-1])
    the_star = _star_of(node)
    excluded: set[str] = set()
    replaced: set[str] = set()
    renames: dict[str, str] = {}
    if the_star is not None:
        for key, value in the_star.args.items():
            if not value:
                continue
            items = value if isinstance(value, list) else [value]
            if key == "except_":
                for item in items:
                    excluded.add(str(item.name).lower())
            elif key == "replace":
                for item in items:
                    if isinstance(item, exp.Alias):
                        run.expr(item.this, scope)
                        replaced.add(item.alias.lower())
                    else:
                        run.unknown(item)
            elif key == "rename":
                for item in items:
                    if isinstance(item, exp.Alias) and isinstance(item.this, exp.Column):
                        renames[item.this.name.lower()] = item.alias.lower()
                    else:
                        run.unknown(item)
            else:
                run.unknown(items[0] if isinstance(items[0], exp.Expr) else node)
    if qualifier:
        src = scope.lookup(qualifier)
        if src is None:
            if run.c.schema is not None:
                run.flag(C.UNKNOWN_TABLE, f"{qualifier!r} is not a table in scope", node)
            return None, frozenset()
        srcs = [src]
    else:
        srcs = list(scope.sources.values())
    names: list[str] | None = []
    marks: set[str] = set()
    for src in srcs:
        for col in sorted(src.marked - excluded - replaced):
            if carry:
                marks.add(renames.get(col, col))
            elif src.colset is None or col in src.colset:
                run.flag(
                    C.COLUMN_DENIED, f"SELECT * reads the denied column {src.name}.{col}", node
                )
        if src.cols is None:
            names = None
        else:
            if src.key:
                key = src.key
                run.columns.update((key, c) for c in src.cols if c not in excluded)
            if names is not None:
                names.extend(renames.get(c, c) for c in src.cols if c not in excluded)
    return names, frozenset(marks)


def star_value(run: Run, node: exp.Expr, scope: Scope) -> bool:
    """A ``*`` used as a value (``struct_pack(*)``, ``to_json(t.*)``); ``count(*)`` reads nothing."""
    parent = node.parent
    if isinstance(node, exp.Star) and isinstance(parent, exp.Count):
        return True
    if isinstance(parent, exp.Select) and node in parent.expressions:
        return True  # the select list expands it itself
    star(run, node, scope, carry=False)
    return True


def columns_fn(run: Run, node: exp.Expr, scope: Scope) -> bool:
    """DuckDB ``COLUMNS(...)``: a list of names is resolved; a pattern or lambda may read
    any column, so it is refused while a denied column is in reach."""
    arg = node.this
    items = arg.expressions if isinstance(arg, exp.Array) else None
    if items is not None and all(isinstance(i, exp.Literal) and i.is_string for i in items):
        for item in items:
            _bare(run, str(item.this).lower(), scope, node)
        return True
    if isinstance(arg, (exp.Star, exp.Column)) and _star_of(arg) is not None:
        star(run, arg, scope, carry=False)
        return True
    for src in scope.sources.values():
        if src.marked:
            run.flag(
                C.COLUMN_DENIED,
                f"COLUMNS(...) may read the denied column {src.name}.{sorted(src.marked)[0]}",
                node,
            )
            return True
    if not isinstance(arg, (exp.Literal, exp.Lambda)):
        run.unknown(arg)
    return True


def positional(run: Run, node: exp.Expr, scope: Scope) -> bool:
    """DuckDB ``#n`` outside ORDER BY: the n-th column of the FROM relations."""
    parent = node.parent
    while isinstance(parent, exp.Ordered):
        parent = parent.parent
    if isinstance(parent, exp.Order):
        return True  # a select-list position, checked with ORDER BY n
    number = node.this
    try:
        index = int(number.this) if isinstance(number, exp.Literal) else -1
    except ValueError:
        index = -1
    seen = 0
    for src in scope.sources.values():
        if src.cols is None:
            if any(s.marked for s in scope.sources.values()):
                run.flag(
                    C.UNRESOLVED_COLUMN,
                    f"#{index} reads a column the checker cannot name while a denied column "
                    "is in reach",
                    node,
                )
            return True
        if index <= seen + len(src.cols):
            use(run, src, src.cols[index - seen - 1], node)
            return True
        seen += len(src.cols)
    if index < 1 or index > seen:
        run.flag(C.ORDER_BY_POSITION, f"#{index} is past the {seen} columns of FROM", node)
    return True


def lambda_params(run: Run, node: exp.Expr, scope: Scope) -> bool:
    """A lambda parameter may not share a name with a source or a denied column in scope.

    sqlglot reads ``lambda u: u.password_hash`` as a field of the parameter ``u``, but
    DuckDB reads ``u.password_hash`` as the column of the table aliased ``u``: the denied
    column came back. Where the two readings can differ, the checker refuses.
    """
    params = [str(p.name).lower() for p in node.expressions if isinstance(p, exp.Expr)]
    for param in params:
        s: Scope | None = scope
        while s is not None:
            clash = param in s.sources or any(
                param in src.marked or (src.colset is None and param in run.c.denied_cols)
                for src in s.sources.values()
            )
            if clash:
                run.flag(
                    C.UNRESOLVED_COLUMN,
                    f"the lambda parameter {param!r} has the name of a table or denied "
                    "column in scope (engines read it differently)",
                    node,
                )
                break
            s = s.parent
    return False  # the body is walked as usual


# date and time part names (PostgreSQL, DuckDB, MySQL, T-SQL, Snowflake spellings)
DATE_UNITS: frozenset[str] = frozenset(
    [
        "year",
        "years",
        "month",
        "months",
        "day",
        "days",
        "hour",
        "hours",
        "minute",
        "minutes",
        "second",
        "seconds",
        "millisecond",
        "milliseconds",
        "microsecond",
        "microseconds",
        "nanosecond",
        "nanoseconds",
        "week",
        "weeks",
        "quarter",
        "quarters",
        "decade",
        "decades",
        "century",
        "centuries",
        "millennium",
        "millennia",
        "millenium",
        "epoch",
        "dow",
        "doy",
        "isodow",
        "isoyear",
        "isoweek",
        "timezone",
        "timezone_hour",
        "timezone_minute",
        "julian",
        "dayofweek",
        "dayofyear",
        "dayofmonth",
        "weekday",
        "weekofyear",
        "yearofweek",
        "yearweek",
        "day_of_week",
        "day_of_year",
        "week_of_year",
        "epoch_second",
        "epoch_millisecond",
        "epoch_microsecond",
        "epoch_nanosecond",
        "second_microsecond",
        "minute_microsecond",
        "minute_second",
        "hour_microsecond",
        "hour_second",
        "hour_minute",
        "day_microsecond",
        "day_second",
        "day_minute",
        "day_hour",
        "year_month",
        "yy",
        "yyyy",
        "mm",
        "m",
        "dd",
        "d",
        "hh",
        "mi",
        "n",
        "ss",
        "s",
        "ms",
        "mcs",
        "ns",
        "qq",
        "q",
        "wk",
        "ww",
        "dy",
        "y",
        "w",
        "dw",
        "iso_week",
        "iso_year",
        "date",
        "time",
        "datetime",
        "timestamp",
    ]
)


def unit_word(run: Run, node: exp.Expr, scope: Scope) -> bool:
    """A bare word in a date-part position (``DATE_TRUNC(x, ts)``, ``date_part(x, ts)``,
    ``date_diff(x, a, b)``) is a column to PostgreSQL and DuckDB.

    sqlglot reads it as a unit keyword, so ``DATE_TRUNC(password_hash, now())`` read the
    denied column (its value came back in the error: ``unit "pw..." not recognized``).
    A word that is no date part is checked as a column; a date-part word is refused when
    a denied column of that name is in reach.
    """
    parent = node.parent
    if not (
        isinstance(parent, exp.Func)
        and not isinstance(parent, exp.Interval)
        and (node.arg_key == "unit" or (isinstance(parent, exp.Extract) and node.arg_key == "this"))
    ):
        return False
    name = str(node.name).lower()
    if name not in DATE_UNITS:
        column(run, exp.column(name), scope)
        return True
    s: Scope | None = scope
    while s is not None:
        for src in s.sources.values():
            if name in src.marked or (src.colset is None and name in run.c.denied_cols):
                run.flag(
                    C.COLUMN_DENIED,
                    f"{name!r} in a date-part position may read the denied column "
                    f"{src.name}.{name}",
                    node,
                )
                return True
        s = s.parent
    return True


RULES = {
    exp.Var: unit_word,
    exp.Lambda: lambda_params,
    exp.Column: column,
    exp.Star: star_value,
    exp.Columns: columns_fn,
    exp.PositionalColumn: positional,
}


def natural_join(run: Run, left: list[Rel], right: Rel, node: exp.Expr) -> None:
    """``NATURAL JOIN`` compares every column name both sides have, unnamed.

    Joining a table to ``(SELECT 'guess' AS password_hash)`` would test a guess of a
    denied column against every row, so a denied (marked) column of either side that
    the other side has, or may have (its columns unknown), is refused.
    """
    sides = [(src, [right]) for src in left] + [(right, left)]
    for src, others in sides:
        for name in sorted(src.marked):
            for other in others:
                if other.colset is not None and name not in other.colset:
                    continue
                if other.colset is None:
                    run.flag(
                        C.UNRESOLVED_COLUMN,
                        f"NATURAL JOIN may compare the denied column {name!r} (the other "
                        "side's columns are unknown)",
                        node,
                    )
                else:
                    run.flag(
                        C.COLUMN_DENIED,
                        f"NATURAL JOIN compares the denied column {name!r}",
                        node,
                    )
                break
