"""Introspection through ``information_schema`` (PostgreSQL and MySQL/MariaDB), over
several schemas at once.

A table in the connection's default schema keeps its bare name; a table in any
other schema is named ``schema.table``, in the prompt, in the policy and in the
SQL the model writes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from avl.assistant._db._types import ColumnSpec, ForeignKeySpec, TableSpec

__all__ = ["display_name", "introspect_info_schema", "wanted"]

Meta = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]


def display_name(schema: str, table: str, default: str) -> str:
    """``table`` in the default schema, else ``schema.table``."""
    return table if schema == default else f"{schema}.{table}"


def wanted(want: set[str] | None, schema: str, table: str, default: str) -> bool:
    """Whether ``schema.table`` is asked for (by its display or its qualified name)."""
    if want is None:
        return True
    return (
        display_name(schema, table, default).lower() in want or f"{schema}.{table}".lower() in want
    )


def introspect_info_schema(
    meta: Meta,
    *,
    postgres: bool,
    schemas: Sequence[str],
    default: str,
    want: set[str] | None,
) -> tuple[list[TableSpec], list[ForeignKeySpec], dict[str, tuple[str, str]]]:
    """Read columns, primary and foreign keys and comments of ``schemas``.

    Returns:
        The tables, the foreign keys, and ``display name -> (schema, table)`` of the
        tables in a schema other than ``default``.
    """
    if not schemas:
        return [], [], {}
    ph = ", ".join(["%s"] * len(schemas))
    args = list(schemas)
    comment = (
        "COALESCE(col_description((quote_ident(c.table_schema) || '.' || "
        "quote_ident(c.table_name))::regclass, c.ordinal_position::int), '')"
        if postgres
        else "c.COLUMN_COMMENT"
    )
    rows = meta(
        f"SELECT c.table_schema, c.table_name, c.column_name, c.data_type, {comment} "
        f"FROM information_schema.columns c WHERE c.table_schema IN ({ph}) "
        "ORDER BY c.table_schema, c.table_name, c.ordinal_position",
        args,
    )
    pk_rows = meta(
        "SELECT k.table_schema, k.table_name, k.column_name "
        "FROM information_schema.table_constraints t "
        "JOIN information_schema.key_column_usage k ON k.constraint_name = t.constraint_name "
        "AND k.table_schema = t.table_schema AND k.table_name = t.table_name "
        f"WHERE t.constraint_type = 'PRIMARY KEY' AND t.table_schema IN ({ph})",
        args,
    )
    pks = {(str(s), str(t), str(c)) for s, t, c in pk_rows}
    if postgres:
        fk_rows = meta(
            "SELECT k.table_schema, k.table_name, k.column_name, u.table_schema, "
            "u.table_name, u.column_name, k.constraint_name "
            "FROM information_schema.referential_constraints r "
            "JOIN information_schema.key_column_usage k ON k.constraint_name = "
            "r.constraint_name AND k.constraint_schema = r.constraint_schema "
            "JOIN information_schema.key_column_usage u ON u.constraint_name = "
            "r.unique_constraint_name AND u.constraint_schema = r.unique_constraint_schema "
            "AND u.ordinal_position = k.position_in_unique_constraint "
            f"WHERE k.table_schema IN ({ph})",
            args,
        )
        tcomments = {
            (str(s), str(t)): c
            for s, t, c in meta(
                "SELECT n.nspname, c.relname, COALESCE(obj_description(c.oid, 'pg_class'), '') "
                "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                f"WHERE n.nspname IN ({ph}) AND c.relkind IN ('r', 'v', 'p', 'm', 'f')",
                args,
            )
        }
    else:
        fk_rows = meta(
            "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, REFERENCED_TABLE_SCHEMA, "
            "REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME, CONSTRAINT_NAME "
            "FROM information_schema.KEY_COLUMN_USAGE WHERE "
            f"TABLE_SCHEMA IN ({ph}) AND REFERENCED_TABLE_NAME IS NOT NULL "
            "ORDER BY TABLE_SCHEMA, TABLE_NAME, CONSTRAINT_NAME, ORDINAL_POSITION",
            args,
        )
        tcomments = {
            (str(s), str(t)): c
            for s, t, c in meta(
                "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_COMMENT FROM information_schema.TABLES "
                f"WHERE TABLE_SCHEMA IN ({ph})",
                args,
            )
        }
    cols: dict[tuple[str, str], list[ColumnSpec]] = {}
    for schema, table, column, dtype, ccomment in rows:
        s, t = str(schema), str(table)
        if not wanted(want, s, t, default):
            continue
        cols.setdefault((s, t), []).append(
            ColumnSpec(
                name=str(column),
                type=str(dtype),
                primary_key=(s, t, str(column)) in pks,
                comment=str(ccomment or ""),
            )
        )
    qualified = {display_name(s, t, default): (s, t) for (s, t) in cols if s != default}
    specs = [
        TableSpec(
            name=display_name(s, t, default),
            columns=c,
            comment=str(tcomments.get((s, t), "") or ""),
        )
        for (s, t), c in cols.items()
    ]
    groups: dict[tuple[str, str, str], list[tuple[Any, ...]]] = {}
    for r in fk_rows:
        if (str(r[0]), str(r[1])) in cols:
            groups.setdefault((str(r[0]), str(r[1]), str(r[6])), []).append(r)
    fks = [
        ForeignKeySpec(
            table=display_name(str(g[0][0]), str(g[0][1]), default),
            columns=[str(r[2]) for r in g],
            ref_table=display_name(str(g[0][3] or g[0][0]), str(g[0][4]), default),
            ref_columns=[str(r[5]) for r in g],
        )
        for g in groups.values()
    ]
    return specs, fks, qualified
