"""Qualified allow-list entries name exactly one table, on the real engines.

A policy that allows ``sales.invoices`` must not let an unqualified ``invoices``
through: the server resolves that name through its search path (PostgreSQL, DuckDB),
its current database (MariaDB) or ``temp`` before ``main`` (SQLite), and there it can be
another schema's table holding other data. Each engine gets two same-named tables in
two schemas, the one outside the allow-list holding a secret; every statement the
policy allows is run, and the secret never appears.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from avl.safety import Policy, SafeQuery
from tests.conftest import need_module
from tests.safety._engines import mariadb, my_rows, pg_rows, postgres

SECRET = "OTHERSCHEMASECRET"


def _codes(verdict: Any) -> list[str]:
    return [v.code.value for v in verdict.violations]


@pytest.mark.parametrize("dialect", ["postgres", "duckdb", "mysql", "sqlite"])
def test_unqualified_reference_is_not_a_qualified_entry(dialect: str) -> None:
    guard = SafeQuery(Policy(dialect=dialect, allowed_tables=["sales.invoices"]))
    assert guard.check("SELECT id FROM sales.invoices").allowed is True
    for sql in (
        "SELECT id FROM invoices",
        "SELECT id FROM other.invoices",
        "SELECT id FROM db.sales.invoices",
        "SELECT id FROM sales.invoices JOIN invoices AS i ON i.id = invoices.id",
    ):
        assert "table_not_allowed" in _codes(guard.check(sql)), sql


def test_quoted_names_with_dots_are_one_name() -> None:
    dotted = SafeQuery(Policy(dialect="postgres", allowed_tables=['"sales.invoices"']))
    assert dotted.check('SELECT id FROM "sales.invoices"').allowed is True
    assert _codes(dotted.check("SELECT id FROM sales.invoices")) == ["table_not_allowed"]
    qualified = SafeQuery(Policy(dialect="postgres", allowed_tables=["sales.invoices"]))
    assert _codes(qualified.check('SELECT id FROM "sales.invoices"')) == ["table_not_allowed"]


def test_an_unqualified_entry_never_matches_a_qualified_reference() -> None:
    guard = SafeQuery(Policy(dialect="postgres", allowed_tables=["invoices"]))
    assert guard.check("SELECT id FROM invoices").allowed is True
    assert _codes(guard.check("SELECT id FROM other.invoices")) == ["table_not_allowed"]


def test_default_schema_says_where_unqualified_names_go() -> None:
    policy = Policy(dialect="postgres", allowed_tables=["sales.invoices"], default_schema="sales")
    guard = SafeQuery(policy)
    assert guard.check("SELECT id FROM invoices").allowed is True
    assert guard.check("SELECT id FROM sales.invoices").allowed is True
    assert _codes(guard.check("SELECT id FROM public.invoices")) == ["table_not_allowed"]
    bare = SafeQuery(Policy(dialect="postgres", allowed_tables=["orders"], default_schema="sales"))
    assert bare.check("SELECT id FROM sales.orders").allowed is True
    assert _codes(bare.check("SELECT id FROM public.orders")) == ["table_not_allowed"]
    catalog = SafeQuery(
        Policy(dialect="duckdb", allowed_tables=["lake.sales.t"], default_schema="lake.sales")
    )
    assert catalog.check("SELECT id FROM t").allowed is True
    assert catalog.check("SELECT id FROM sales.t").allowed is True
    assert _codes(catalog.check("SELECT id FROM other.sales.t")) == ["table_not_allowed"]


def test_default_schema_must_be_a_name() -> None:
    from avl.errors import ConfigError

    with pytest.raises(ConfigError, match="default_schema"):
        Policy(default_schema="  ")


def test_deny_rules_still_match_both_ways() -> None:
    guard = SafeQuery(
        Policy(
            dialect="postgres",
            allowed_tables=["invoices", "sales.invoices", "public.invoices"],
            denied_columns=["sales.invoices.memo"],
            row_filters={"sales.invoices": "tenant_id = :t"},
        )
    )
    # a bare invoices may be sales.invoices: the deny rule and the filter apply
    assert _codes(guard.check("SELECT memo FROM invoices", {"t": 1})) == ["column_denied"]
    assert "tenant_id = 1" in (guard.check("SELECT id FROM invoices", {"t": 1}).sql or "")
    # another schema's table is another table
    assert guard.check("SELECT memo FROM public.invoices", {"t": 1}).allowed is True


# ------------------------------------------------------------- on the real engines
STATEMENTS = [
    "SELECT * FROM {t}",
    "SELECT note FROM {t}",
    "SELECT note FROM {s}.{t}",
    "SELECT note FROM {o}.{t}",
    'SELECT note FROM "{s}.{t}"',
    "SELECT a.note FROM {s}.{t} AS a JOIN {t} AS b ON a.id = b.id",
    "SELECT note FROM {s}.{t} UNION ALL SELECT note FROM {t}",
]


def _oracle(
    dialect: str,
    run: Callable[[str], list[tuple[Any, ...]]],
    failure: type[BaseException] | tuple[type[BaseException], ...],
    allowed_schema: str,
    other_schema: str,
    table: str,
) -> None:
    guard = SafeQuery(
        Policy(dialect=dialect, allowed_tables=[f"{allowed_schema}.{table}"]), cache_size=0
    )
    ran = []
    for template in STATEMENTS:
        sql = template.format(t=table, s=allowed_schema, o=other_schema)
        if dialect == "mysql":
            sql = sql.replace('"', "`")
        verdict = guard.check(sql)
        if not verdict.allowed:
            continue
        assert verdict.sql is not None
        try:
            rows = run(verdict.sql)
        except failure:
            continue
        assert SECRET not in repr(rows), (sql, rows)
        ran.append((sql, rows))
    # not vacuous: the qualified statement ran and read the allowed table
    assert any("ok-row" in repr(rows) for _, rows in ran), ran
    # pinned to the schema the server really resolves to, a bare name is that table
    pinned = SafeQuery(
        Policy(
            dialect=dialect, allowed_tables=[f"{other_schema}.{table}"], default_schema=other_schema
        )
    )
    verdict = pinned.check(f"SELECT note FROM {table}")
    assert verdict.allowed is True
    assert verdict.sql is not None
    assert SECRET in repr(run(verdict.sql))  # the default schema does hold it


def test_postgres_search_path(postgres_dsn: str) -> None:
    need_module("psycopg")
    import psycopg

    tag = uuid.uuid4().hex[:8]
    schema, table = f"rq_sales_{tag}", f"rq_inv_{tag}"
    with postgres(postgres_dsn) as con:
        try:
            con.execute(f"CREATE SCHEMA {schema}")
            con.execute(f"CREATE TABLE {schema}.{table} (id INT, note TEXT)")
            con.execute(f"INSERT INTO {schema}.{table} VALUES (1, 'ok-row')")
            con.execute(f"CREATE TABLE public.{table} (id INT, note TEXT)")
            con.execute(f"INSERT INTO public.{table} VALUES (1, '{SECRET}')")
            _oracle("postgres", lambda s: pg_rows(con, s), psycopg.Error, schema, "public", table)
        finally:
            con.execute(f"DROP TABLE IF EXISTS public.{table}")
            con.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def test_mariadb_current_database(mysql_url: str) -> None:
    pymysql = need_module("pymysql")
    tag = uuid.uuid4().hex[:8]
    other, table = f"rq_sales_{tag}", f"rq_inv_{tag}"
    with mariadb(mysql_url) as con:
        with con.cursor() as cur:
            cur.execute("SELECT DATABASE()")
            current = str(cur.fetchone()[0])
        try:
            for statement in (
                f"CREATE DATABASE {other}",
                f"CREATE TABLE {other}.{table} (id INT, note VARCHAR(40))",
                f"INSERT INTO {other}.{table} VALUES (1, 'ok-row')",
                f"CREATE TABLE {table} (id INT, note VARCHAR(40))",
                f"INSERT INTO {table} VALUES (1, '{SECRET}')",
            ):
                my_rows(con, statement)
            _oracle("mysql", lambda s: my_rows(con, s), pymysql.MySQLError, other, current, table)
        finally:
            my_rows(con, f"DROP TABLE IF EXISTS {table}")
            my_rows(con, f"DROP DATABASE IF EXISTS {other}")


def test_sqlite_temp_shadows_main(tmp_path: Path) -> None:
    con = sqlite3.connect(tmp_path / "q.db")
    try:
        con.execute("CREATE TABLE inv (id INT, note TEXT)")
        con.execute("INSERT INTO inv VALUES (1, 'ok-row')")
        con.execute("CREATE TEMP TABLE inv (id INT, note TEXT)")
        con.execute(f"INSERT INTO temp.inv VALUES (1, '{SECRET}')")
        _oracle("sqlite", lambda s: con.execute(s).fetchall(), sqlite3.Error, "main", "temp", "inv")
    finally:
        con.close()


def test_duckdb_search_path(tmp_path: Path) -> None:
    duckdb = need_module("duckdb")
    con = duckdb.connect(str(tmp_path / "q.duckdb"))
    try:
        con.execute("CREATE SCHEMA sales")
        con.execute("CREATE TABLE sales.inv (id INT, note VARCHAR)")
        con.execute("INSERT INTO sales.inv VALUES (1, 'ok-row')")
        con.execute("CREATE TABLE main.inv (id INT, note VARCHAR)")
        con.execute(f"INSERT INTO main.inv VALUES (1, '{SECRET}')")
        _oracle("duckdb", lambda s: con.execute(s).fetchall(), duckdb.Error, "sales", "main", "inv")
    finally:
        con.close()


@pytest.mark.parametrize("dialect", ["mysql", "postgres", "sqlite", "duckdb"])
def test_deny_rules_match_whatever_the_case(dialect: str) -> None:
    # MySQL/MariaDB with lower_case_table_names=1 (the default on Windows and macOS) reads
    # ORDERS as orders: on such a server (MariaDB 10.11, checked by hand) the upper-cased
    # name stepped around the row filter, the denied column and the denied table
    guard = SafeQuery(
        Policy(
            dialect=dialect,
            row_filters={"orders": "tenant_id = :t"},
            denied_columns=["users.password_hash"],
            denied_tables=["secrets"],
        )
    )
    q = "`" if dialect == "mysql" else '"'
    for name in ("ORDERS", "Orders", f"{q}ORDERS{q}", "test.ORDERS"):
        verdict = guard.check(f"SELECT notes FROM {name}", {"t": 1})
        assert "tenant_id = 1" in (verdict.sql or ""), (name, verdict)
    for name in ("USERS", f"{q}Users{q}"):
        verdict = guard.check(f"SELECT password_hash FROM {name}")
        assert [v.code.value for v in verdict.violations] == ["column_denied"], name
    assert [v.code.value for v in guard.check("SELECT * FROM SECRETS").violations] == [
        "table_denied"
    ]
