"""Policy: the rules one SafeQuery enforces, as a frozen, hashable value."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from avl._args import describe
from avl.errors import ConfigError
from avl.safety._verdict import StatementKind

__all__ = ["Policy"]

SchemaSpec = tuple[tuple[str, tuple[str, ...]], ...]


def _dialect_name(value: object) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"Policy.dialect must be a string, got {type(value).__name__}")
    name = value.strip().lower()
    aliases = {"postgresql": "postgres", "mariadb": "mysql", "mssql": "tsql", "sqlserver": "tsql"}
    name = aliases.get(name, name)
    from sqlglot.dialects.dialect import Dialect

    try:
        Dialect.get_or_raise(name)
    except ValueError as exc:
        raise ConfigError(f"Policy.dialect: {exc}") from exc
    return name


def _names(value: object) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return frozenset([value])
    if not isinstance(value, Iterable):
        raise ConfigError(f"expected a list of names, got {type(value).__name__}")
    out = []
    for item in _items(value, "a list of names"):
        if not isinstance(item, str) or not item.strip():
            raise ConfigError(f"expected non-empty name strings, got {describe(item)}")
        out.append(item.strip())
    return frozenset(out)


def _items(value: Iterable[Any], expected: str) -> list[Any]:
    """The caller's iterable as a list; whatever iterating it raises (a 0-d array, a
    hostile object) becomes a ConfigError."""
    try:
        return list(value)
    except Exception as exc:
        raise ConfigError(f"expected {expected}, got {describe(value)}") from exc


def _names_required(value: object) -> frozenset[str]:
    return _names(value) or frozenset()


def _kinds(value: object) -> frozenset[StatementKind]:
    if isinstance(value, (str, StatementKind)):
        value = [value]
    if not isinstance(value, Iterable):
        raise ConfigError(f"allowed_kinds: expected statement kinds, got {type(value).__name__}")
    out = []
    for item in _items(value, "allowed_kinds: statement kinds"):
        try:
            if not isinstance(item, (str, StatementKind)):
                raise ValueError(item)
            out.append(StatementKind(str(getattr(item, "value", item)).lower()))
        except ValueError as exc:
            known = ", ".join(k.value for k in StatementKind)
            raise ConfigError(
                f"allowed_kinds: unknown kind {describe(item)} (known: {known})"
            ) from exc
    return frozenset(out)


def _schema(value: object) -> SchemaSpec | None:
    if value is None:
        return None
    if isinstance(value, tuple) and all(
        isinstance(x, tuple) and len(x) == 2 and isinstance(x[1], tuple) for x in value
    ):
        items: Iterable[Any] = value
    elif isinstance(value, Mapping):
        items = _items(value.items(), "schema: a mapping of table -> columns")
    else:
        raise ConfigError(
            f"schema: expected a mapping of table -> columns, got {type(value).__name__}"
        )
    out = []
    for table, columns in items:
        if not isinstance(table, str) or not table.strip():
            raise ConfigError(
                f"schema: table names must be non-empty strings, got {describe(table)}"
            )
        if isinstance(columns, Mapping):  # {column: type}
            columns = list(columns)
        if isinstance(columns, str) or not isinstance(columns, Iterable):
            raise ConfigError(f"schema[{describe(table)}]: expected a list of column names")
        cols = []
        for col in _items(columns, f"schema[{describe(table)}]: column names"):
            if not isinstance(col, str) or not col:
                raise ConfigError(
                    f"schema[{describe(table)}]: column names must be strings, got {describe(col)}"
                )
            cols.append(col)
        out.append((table.strip(), tuple(cols)))
    return tuple(sorted(out))


def _row_filters(value: object) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if isinstance(value, tuple) and all(isinstance(x, tuple) and len(x) == 2 for x in value):
        items: Iterable[Any] = value
    elif isinstance(value, Mapping):
        items = _items(value.items(), "row_filters: a mapping of table -> predicate")
    else:
        raise ConfigError("row_filters: expected a mapping of table -> predicate")
    out = []
    for table, predicate in items:
        if not isinstance(table, str) or not isinstance(predicate, str) or not predicate.strip():
            raise ConfigError(
                f"row_filters: expected table -> predicate strings, got {describe(table)}: {describe(predicate)}"
            )
        out.append((table.strip(), predicate.strip()))
    return tuple(sorted(out))


def _function_names(instance: Any, attribute: Any, value: frozenset[str]) -> None:
    """Every name must be a function the dialect's rules know (a typo gets a suggestion)."""
    if not value:
        return
    from avl.safety.allowlists import catalog

    known = catalog(instance.dialect).known()
    for name in sorted(value):
        lowered = name.lower()
        if "." in lowered or lowered in known:
            continue
        hint = catalog(instance.dialect).suggest(lowered)
        raise ConfigError(
            f"Policy.{attribute.name}: {describe(name)} is not a function SafeQuery knows in "
            f"{instance.dialect}{hint}; name a user-defined function in user_functions "
            "(or qualify it with its schema)"
        )


def _optional_name(instance: Any, attribute: Any, value: object) -> None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ConfigError(
            f"Policy.{attribute.name} must be a non-empty string or None, got {describe(value)}"
        )


def _positive(instance: Any, attribute: Any, value: int | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(
            f"Policy.{attribute.name} must be a positive integer or None, got {describe(value)}"
        )


def _positive_int(instance: Any, attribute: Any, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(
            f"Policy.{attribute.name} must be a positive integer, got {describe(value)}"
        )


@attrs.frozen(kw_only=True)
class Policy:
    """The rules a :class:`~avl.safety.SafeQuery` enforces.

    A policy is a frozen, hashable value: lists given to it are stored as
    frozensets or tuples, so it can key a cache. Change one with
    ``attrs.evolve(policy, max_rows=50)`` (the validators run again).

    Table and column names follow the dialect's identifier rules: unquoted names
    fold to the dialect's case (lower in PostgreSQL, upper in Snowflake/Oracle,
    case-insensitive in SQLite/T-SQL/BigQuery), names written in the dialect's
    quotes keep their case. A name may be qualified (``"public.orders"``,
    ``"otherdb.public.orders"``). A reference is allowed only when it names
    exactly an allowed table: ``orders`` matches the entry ``orders`` and nothing
    else, ``sales.orders`` matches ``sales.orders`` and nothing else, since the
    server resolves an unqualified name through its search path (PostgreSQL,
    DuckDB), current database (MySQL) or attached databases (SQLite), which
    SafeQuery cannot see. Name that schema in ``default_schema`` and unqualified
    names (in the SQL and in the policy) are read as names in it. Deny rules
    (``denied_tables``, ``denied_columns``, ``row_filters``) match in both
    directions and whatever the case instead, so ``users`` denies ``public.users``
    and ``USERS``, and ``sales.users`` denies a bare ``users``.

    Attributes:
        dialect: any sqlglot dialect name (``"sqlite"``, ``"postgres"``,
            ``"mysql"``, ``"tsql"``, ``"snowflake"``...); a typo gets a
            "did you mean".
        allowed_kinds: statement kinds that may run; default read-only queries
            (``SELECT`` with CTEs, set operations and window functions).
        allowed_tables: if given, the only tables that may be read (matched
            exactly, see above).
        default_schema: the schema (``"sales"``, or ``"db.sales"``) the server
            resolves unqualified table names to, when the deployment pins it (a
            fixed ``search_path``, the connection's database); without it an
            unqualified reference never matches a qualified allow-list entry.
        denied_tables: tables that may never be read.
        denied_columns: ``table.column`` names that may never be read (a bare
            ``column`` is denied in every table); a ``SELECT *`` over such a
            table is a violation too. Column names compare case-insensitively.
        schema: optional ``{table: [columns]}``; unknown tables and columns then
            become violations.
        max_rows: if set, a ``LIMIT`` (``TOP``, ``FETCH FIRST``) is added to the
            outermost query when it has none, and a larger one is clamped (or
            reported, when ``clamp_limit`` is false).
        clamp_limit: clamp a too-large constant ``LIMIT`` instead of rejecting it.
        max_statements: how many statements one text may hold (default 1).
        allowed_functions: functions to allow on top of the dialect's default
            allow-list (``avl/safety/allowlists/<dialect>.py``), in expressions and as
            table functions: built-in names the dialect knows (a typo is a
            ``ConfigError`` with a "did you mean"), or schema-qualified names
            (``public.my_func``). Never-listed functions may be named here too: the
            deployment then vouches for them.
        denied_functions: functions to refuse although the default allow-list holds
            them (case-insensitive); they win over ``allowed_functions``.
        user_functions: names of user-defined functions to allow as written (any name
            is accepted; SafeQuery cannot know what they do).
        allow_system_catalogs: allow ``information_schema``, ``pg_catalog``,
            ``sqlite_master``, ``mysql.*`` and the like (default: refused).
        flag_constant_predicates: refuse conditions that do not depend on any row
            (``OR 1=1``); ``WHERE 1=1 AND ...`` stays allowed.
        max_joins: joins per ``SELECT``.
        max_cartesian: unrelated row sources per ``SELECT`` (default 1: every
            table must be related to the others by a join or ``WHERE`` condition that
            mentions both sides; a one-row aggregate, a ``VALUES`` list or a small
            bounded generator may still multiply a table).
        max_depth: nesting depth of subqueries.
        max_length: characters in the SQL text.
        max_generated_rows: the most rows a row generator (``generate_series``,
            ``range``...) may be asked for through constant arguments, and the largest
            constant a recursive CTE may count to.
        max_value_length: the longest value a size-producing function (``repeat``,
            ``lpad``, ``printf`` widths, ``zeroblob``...) may be asked to build through
            constant arguments, nesting included.
        row_filters: ``{table: predicate}``; the predicate (with ``:name``
            parameters bound from ``check(params=...)``) is applied to every
            reference of the table, in joins, subqueries, CTEs and set
            operations alike.

    Example:
        >>> policy = Policy(dialect="postgres", allowed_tables=["orders"], max_rows=100)
        >>> policy.max_rows
        100
    """

    dialect: str = attrs.field(default="sqlite", converter=_dialect_name)
    allowed_kinds: frozenset[StatementKind] = attrs.field(
        default=frozenset([StatementKind.SELECT]), converter=_kinds
    )
    allowed_tables: frozenset[str] | None = attrs.field(default=None, converter=_names)
    default_schema: str | None = attrs.field(default=None, validator=_optional_name)
    denied_tables: frozenset[str] = attrs.field(default=frozenset(), converter=_names_required)
    denied_columns: frozenset[str] = attrs.field(default=frozenset(), converter=_names_required)
    schema: SchemaSpec | None = attrs.field(default=None, converter=_schema)
    max_rows: int | None = attrs.field(default=None, validator=_positive)
    clamp_limit: bool = True
    max_statements: int = attrs.field(default=1, validator=_positive_int)
    denied_functions: frozenset[str] = attrs.field(
        default=frozenset(), converter=_names_required, validator=_function_names
    )
    allowed_functions: frozenset[str] = attrs.field(
        default=frozenset(), converter=_names_required, validator=_function_names
    )
    user_functions: frozenset[str] = attrs.field(default=frozenset(), converter=_names_required)
    allow_system_catalogs: bool = False
    flag_constant_predicates: bool = True
    max_joins: int = attrs.field(default=32, validator=_positive_int)
    max_cartesian: int = attrs.field(default=1, validator=_positive_int)
    max_depth: int = attrs.field(default=12, validator=_positive_int)
    max_length: int = attrs.field(default=100_000, validator=_positive_int)
    max_generated_rows: int = attrs.field(default=1_000_000, validator=_positive_int)
    max_value_length: int = attrs.field(default=1_000_000, validator=_positive_int)
    row_filters: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=_row_filters)
