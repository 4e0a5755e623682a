"""The rewrite: row-filter values written by the template writer, and two former bugs.

* A row filter's parameter is written with the template module's literal writer, whose
  literals end in the same place whatever the server's settings: on PostgreSQL with
  ``standard_conforming_strings`` on and off, and on MariaDB with and without
  ``NO_BACKSLASH_ESCAPES``, no value (short payloads of quotes, backslashes and SQL
  punctuation, searched exhaustively) returns another tenant's rows.
* ``SELECT "order".id FROM orders AS "order"`` keeps the alias's quotes, and
  ``SELECT db.orders.id FROM db.orders`` still resolves, on SQLite, PostgreSQL and
  MariaDB, with a row filter on ``orders``.
"""

from __future__ import annotations

import itertools
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest

from avl.safety import Policy, SafeQuery
from tests.safety._engines import mariadb, my_rows, pg_rows, postgres

ALPHABET = ["\\", "'", '"', " ", "-", "x", ")"]
KEYS = ["alpha", "it's", "back\\slash", "\\'", "a'b\\c"]


def payloads() -> list[str]:
    """Every string of up to 3 characters over the alphabet, plus the issue's payload."""
    out = ["\\' OR 1=1)tenant_key--", "\\'); SELECT 1; --", "' OR ''='", "\\\\' OR 1=1 --"]
    for size in (1, 2, 3):
        out.extend("".join(p) for p in itertools.product(ALPHABET, repeat=size))
    return out + KEYS


def guard(dialect: str, table: str) -> SafeQuery:
    return SafeQuery(
        Policy(
            dialect=dialect,
            allowed_tables=[table],
            row_filters={table: "tenant_key = :tenant"},
            max_rows=1000,
        ),
        cache_size=0,
    )


def _rows_per_key(run: Any, table: str, g: SafeQuery, exact: bool, pad_space: bool = False) -> None:
    """Only rows of the tenant asked for come back (MariaDB's PAD SPACE collations
    compare 'a ' equal to 'a': that is the engine's equality, not a leak)."""
    leaked = []
    for value in payloads():
        verdict = g.check(f"SELECT tenant_key, secret FROM {table}", {"tenant": value})
        assert verdict.allowed, (value, verdict.violations)
        assert verdict.sql is not None
        rows = run(verdict.sql)
        keys = {r[0] for r in rows}
        same = (
            {k.rstrip(" ") for k in keys} <= {value.rstrip(" ")} if pad_space else keys <= {value}
        )
        if not same:
            leaked.append((value, verdict.sql, keys))
        if exact and value in KEYS and not pad_space:
            assert keys == {value}, (value, verdict.sql, rows)
    assert leaked == []


def _seed() -> list[tuple[str, str]]:
    return [(key, f"secret-of-{key}") for key in KEYS]


@pytest.mark.parametrize("conforming", ["on", "off"])
def test_postgres_row_filter_values_hold_under_both_string_modes(
    postgres_dsn: str, conforming: str
) -> None:
    table = f"rf_{uuid.uuid4().hex[:10]}"
    with postgres(postgres_dsn) as con:
        try:
            con.execute(f"CREATE TABLE {table} (tenant_key text, secret text)")
            with con.cursor() as cur:
                cur.executemany(f"INSERT INTO {table} VALUES (%s, %s)", _seed())
            con.execute(f"SET standard_conforming_strings = {conforming}")
            con.execute("SET escape_string_warning = off")
            _rows_per_key(lambda sql: pg_rows(con, sql), table, guard("postgres", table), True)
        finally:
            con.execute("SET standard_conforming_strings = on")
            con.execute(f"DROP TABLE IF EXISTS {table}")


@pytest.mark.parametrize("mode", ["", "NO_BACKSLASH_ESCAPES"])
def test_mariadb_row_filter_values_hold_under_both_escape_modes(mysql_url: str, mode: str) -> None:
    table = f"rf_{uuid.uuid4().hex[:10]}"
    with mariadb(mysql_url) as con, con.cursor() as cur:
        try:
            cur.execute(f"CREATE TABLE {table} (tenant_key VARCHAR(64), secret VARCHAR(64))")
            cur.executemany(f"INSERT INTO {table} VALUES (%s, %s)", _seed())
            cur.execute(f"SET SESSION sql_mode = '{mode}'")
            # exact in the default mode; with NO_BACKSLASH_ESCAPES a value holding a
            # backslash matches nothing (its backslashes come back doubled): fewer rows,
            # never another tenant's
            _rows_per_key(
                lambda sql: my_rows(con, sql), table, guard("mysql", table), not mode, True
            )
            if not mode:
                for key in KEYS:
                    sql = (
                        guard("mysql", table)
                        .check(f"SELECT tenant_key FROM {table}", {"tenant": key})
                        .sql
                    )
                    assert sql is not None
                    assert my_rows(con, sql) == [(key,)]
        finally:
            cur.execute("SET SESSION sql_mode = DEFAULT")
            cur.execute(f"DROP TABLE IF EXISTS {table}")


def test_sqlite_row_filter_values_hold(tmp_path: Path) -> None:
    table = f"rf_{uuid.uuid4().hex[:10]}"
    con = sqlite3.connect(tmp_path / "rf.db")
    try:
        con.execute(f"CREATE TABLE {table} (tenant_key TEXT, secret TEXT)")
        con.executemany(f"INSERT INTO {table} VALUES (?, ?)", _seed())
        _rows_per_key(lambda sql: con.execute(sql).fetchall(), table, guard("sqlite", table), True)
    finally:
        con.close()


def test_a_value_the_writer_cannot_hold_is_invalid_parameter() -> None:
    verdict = guard("postgres", "orders").check("SELECT secret FROM orders", {"tenant": "a\x00b"})
    assert verdict.codes == ("invalid_parameter",)
    assert "NUL" in verdict.violations[0].message


# ------------------------------------------------------------ the two rewrite bugs
def _bug_policy(dialect: str, table: str, qualified: str) -> SafeQuery:
    return SafeQuery(
        Policy(
            dialect=dialect,
            allowed_tables=[table, qualified],
            row_filters={table: "tenant_id = :tenant"},
        ),
        cache_size=0,
    )


def _statements(table: str, qualified: str) -> dict[str, str]:
    return {
        "quoted_alias": f'SELECT "order".id FROM {table} AS "order" ORDER BY 1',
        "qualified_column": f"SELECT {qualified}.id FROM {qualified} ORDER BY 1",
    }


def _exercise(dialect: str, table: str, qualified: str, run: Any) -> None:
    g = _bug_policy(dialect, table, qualified)
    for name, sql in _statements(table, qualified).items():
        verdict = g.check(sql, {"tenant": 1})
        assert verdict.allowed, (name, verdict.violations)
        assert verdict.sql is not None
        assert [tuple(r) for r in run(verdict.sql)] == [(1,), (2,)], (name, verdict.sql)
        assert g.check(verdict.sql, {"tenant": 1}).sql == verdict.sql


def test_rewrite_bugs_sqlite(tmp_path: Path) -> None:
    table = f"ord_{uuid.uuid4().hex[:10]}"
    con = sqlite3.connect(tmp_path / "bugs.db")
    try:
        con.execute(f"CREATE TABLE {table} (id INTEGER, tenant_id INTEGER)")
        con.executemany(f"INSERT INTO {table} VALUES (?, ?)", [(1, 1), (2, 1), (3, 2)])
        con.commit()
        _exercise("sqlite", table, f"main.{table}", lambda sql: con.execute(sql).fetchall())
    finally:
        con.close()


def test_rewrite_bugs_postgres(postgres_dsn: str) -> None:
    table = f"ord_{uuid.uuid4().hex[:10]}"
    with postgres(postgres_dsn) as con:
        try:
            con.execute(f"CREATE TABLE {table} (id int, tenant_id int)")
            con.execute(f"INSERT INTO {table} VALUES (1, 1), (2, 1), (3, 2)")
            _exercise("postgres", table, f"public.{table}", lambda sql: pg_rows(con, sql))
        finally:
            con.execute(f"DROP TABLE IF EXISTS {table}")


def test_rewrite_bugs_mariadb(mysql_url: str) -> None:
    table = f"ord_{uuid.uuid4().hex[:10]}"
    with mariadb(mysql_url) as con, con.cursor() as cur:
        try:
            cur.execute(f"CREATE TABLE {table} (id int, tenant_id int)")
            cur.execute(f"INSERT INTO {table} VALUES (1, 1), (2, 1), (3, 2)")
            g = _bug_policy("mysql", table, f"test.{table}")
            sql = f"SELECT test.{table}.id FROM test.{table} ORDER BY 1"
            verdict = g.check(sql, {"tenant": 1})
            assert verdict.allowed
            assert verdict.sql is not None
            assert [tuple(r) for r in my_rows(con, verdict.sql)] == [(1,), (2,)]
            quoted = f"SELECT `order`.id FROM {table} AS `order` ORDER BY 1"
            verdict = g.check(quoted, {"tenant": 1})
            assert verdict.allowed
            assert verdict.sql is not None
            assert [tuple(r) for r in my_rows(con, verdict.sql)] == [(1,), (2,)]
        finally:
            cur.execute(f"DROP TABLE IF EXISTS {table}")


def test_rewrite_keeps_the_alias_quotes() -> None:
    g = _bug_policy("postgres", "orders", "public.orders")
    assert g.check('SELECT "order".id FROM orders AS "order"', {"tenant": 1}).sql == (
        'SELECT "order".id FROM (SELECT * FROM orders WHERE tenant_id = 1 OFFSET 0) AS "order"'
    )
    assert g.check("SELECT public.orders.id FROM public.orders", {"tenant": 1}).sql == (
        "SELECT orders.id FROM (SELECT * FROM public.orders WHERE tenant_id = 1 OFFSET 0) AS orders"
    )
