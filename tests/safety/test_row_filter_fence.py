"""Row filters run before anything the caller wrote, on the real engines.

Wrapping a filtered table in ``(SELECT * FROM t WHERE <filter>)`` is not enough: the
planner may pull the subquery up and evaluate the caller's expressions on rows the
filter removes. PostgreSQL orders the quals by cost, so with the filter
``tenant_id + 0 = :t`` the caller's ``CAST(notes AS boolean)`` ran first and its error
quoted another tenant's ``notes``; SQLite, when the index on ``notes`` drives the
scan (``notes > '' AND json(notes) IS NOT NULL``), ran ``json(notes)`` on another
tenant's row and failed, which tells the caller such a row exists (DuckDB and MariaDB
were not seen to do it). The rewrite closes each wrapper with a fence the planner does
not cross
(``OFFSET 0``; ``LIMIT -1 OFFSET 0`` on SQLite; a ``LIMIT`` on MySQL/MariaDB).

Each engine gets one table whose tenant-1 rows take every expression below without an
error and whose tenant-2 row makes each of them fail; run as tenant 1 through
SafeQuery, no statement may fail.
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

SECRET = "TENANTSECRET"
FILTERS = [
    "tenant_id = :t",
    "tenant_id + 0 = :t",
    "abs(tenant_id) = :t",
    "CAST(tenant_id AS CHAR(5)) = CAST(:t AS CHAR(5))",
    "lower(region) = 'eu'",
]
# {t}: the table; each fails on the tenant-2 row (notes = SECRET, or '(' on MySQL/SQLite)
CALLERS = {
    "postgres": [
        "SELECT id FROM {t} WHERE CAST(notes AS boolean)",
        "SELECT id FROM {t} WHERE notes::int >= 0",
        "SELECT id FROM {t} WHERE id = 3 AND CAST(notes AS int) >= 0",
        "SELECT id FROM {t} WHERE notes = '{s}' AND CAST(notes AS int) >= 0",
        "SELECT count(*) FROM {t} GROUP BY CAST(notes AS int)",
        "SELECT a.id FROM {t} AS a JOIN {t} AS b ON CAST(a.notes AS int) = b.id",
        "SELECT id FROM {t} WHERE EXISTS (SELECT 1 FROM {t} AS x WHERE CAST(x.notes AS int) = 1)",
    ],
    "duckdb": [
        "SELECT id FROM {t} WHERE CAST(notes AS boolean)",
        "SELECT id FROM {t} WHERE id = 3 AND CAST(notes AS int) >= 0",
        "SELECT id FROM {t} WHERE notes = '{s}' AND CAST(notes AS int) >= 0",
        "SELECT count(*) FROM {t} GROUP BY CAST(notes AS int)",
    ],
    "sqlite": [
        "SELECT id FROM {t} WHERE notes > '' AND json(notes) IS NOT NULL",
        "SELECT id FROM {t} WHERE id = 3 AND json(notes) IS NOT NULL",
        "SELECT id FROM {t} WHERE json(notes) IS NOT NULL",
    ],
    "mysql": [
        "SELECT id FROM {t} WHERE 'x' REGEXP notes",
        "SELECT id FROM {t} WHERE notes = '(' AND 'x' REGEXP notes",
        "SELECT id FROM {t} WHERE id = 3 AND 'x' REGEXP notes",
    ],
}


def _exercise(
    dialect: str,
    table: str,
    run: Callable[[str], list[tuple[Any, ...]]],
    failure: type[BaseException] | tuple[type[BaseException], ...],
) -> None:
    failed = []
    ran = 0
    for row_filter in FILTERS:
        guard = SafeQuery(
            Policy(dialect=dialect, allowed_tables=[table], row_filters={table: row_filter}),
            cache_size=0,
        )
        for template in CALLERS[dialect]:
            sql = template.format(t=table, s=SECRET)
            verdict = guard.check(sql, {"t": 1})
            assert verdict.allowed, (sql, verdict.violations)
            assert verdict.sql is not None
            try:
                rows = run(verdict.sql)
            except failure as exc:
                failed.append((row_filter, sql, str(exc).splitlines()[0]))
                continue
            ran += 1
            assert SECRET not in repr(rows)
    assert failed == []
    assert ran == len(FILTERS) * len(CALLERS[dialect])


def _ddl(table: str, bad: str, index: bool = True) -> list[str]:
    out = [
        f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, tenant_id INTEGER, "
        f"region VARCHAR(10), notes VARCHAR(40))",
        f"INSERT INTO {table} VALUES (1, 1, 'eu', '1'), (2, 1, 'eu', '0'), (3, 2, 'us', '{bad}')",
    ]
    if index:
        out.append(f"CREATE INDEX {table}_notes ON {table} (notes)")
    return out


def test_postgres(postgres_dsn: str) -> None:
    psycopg = need_module("psycopg")
    table = f"rf_fence_{uuid.uuid4().hex[:8]}"
    with postgres(postgres_dsn) as con:
        try:
            for statement in _ddl(table, SECRET):
                con.execute(statement)
            con.execute(f"ANALYZE {table}")
            _exercise("postgres", table, lambda s: pg_rows(con, s), psycopg.Error)
        finally:
            con.execute(f"DROP TABLE IF EXISTS {table}")


def test_duckdb(tmp_path: Path) -> None:
    duckdb = need_module("duckdb")
    con = duckdb.connect(str(tmp_path / "fence.duckdb"))
    try:
        for statement in _ddl("rf_fence", SECRET):
            con.execute(statement)
        _exercise("duckdb", "rf_fence", lambda s: con.execute(s).fetchall(), duckdb.Error)
    finally:
        con.close()


def test_sqlite(tmp_path: Path) -> None:
    con = sqlite3.connect(tmp_path / "fence.db")
    try:
        for statement in _ddl("rf_fence", "("):
            con.execute(statement)
        _exercise("sqlite", "rf_fence", lambda s: con.execute(s).fetchall(), sqlite3.Error)
    finally:
        con.close()


def test_mariadb(mysql_url: str) -> None:
    pymysql = need_module("pymysql")
    table = f"rf_fence_{uuid.uuid4().hex[:8]}"
    with mariadb(mysql_url) as con:
        try:
            for statement in _ddl(table, "("):
                my_rows(con, statement)
            _exercise("mysql", table, lambda s: my_rows(con, s), pymysql.MySQLError)
        finally:
            my_rows(con, f"DROP TABLE IF EXISTS {table}")


@pytest.mark.parametrize("dialect", ["postgres", "duckdb", "sqlite", "mysql"])
def test_an_unfenced_filter_written_by_the_caller_is_wrapped_again(dialect: str) -> None:
    guard = SafeQuery(Policy(dialect=dialect, row_filters={"orders": "tenant_id = :t"}))
    first = guard.check("SELECT id FROM orders", {"t": 1}).sql
    assert first is not None
    # the rewrite is a fixed point...
    assert guard.check(first, {"t": 1}).sql == first
    # ...but the same filter written without the fence is wrapped (and fenced) again
    own = "SELECT id FROM (SELECT * FROM orders WHERE tenant_id = 1) AS orders"
    again = guard.check(own, {"t": 1}).sql
    assert again is not None
    assert again != own
    assert again.count("tenant_id = 1") == 2


def test_duckdb_pivot_runs_on_the_filtered_rows(tmp_path: Path) -> None:
    """A PIVOT written on a filtered table runs outside the wrapper: inside it, the pivot
    made a ``tenant_id`` column of 1 beside another tenant's notes, and the filter
    passed them."""
    duckdb = need_module("duckdb")
    con = duckdb.connect(str(tmp_path / "pivot.duckdb"))
    try:
        for statement in _ddl("rf_pivot", SECRET, index=False):
            con.execute(statement)
        guard = SafeQuery(Policy(dialect="duckdb", row_filters={"rf_pivot": "tenant_id = :t"}))
        sql = (
            "SELECT * FROM rf_pivot PIVOT (max(notes) AS n, count(*) AS id "
            "FOR tenant_id IN (2 AS tenant))"
        )
        verdict = guard.check(sql, {"t": 1})
        assert verdict.sql is not None
        assert verdict.sql.index("tenant_id = 1") < verdict.sql.index("PIVOT")
        rows = con.execute(verdict.sql).fetchall()
        assert len(rows) == 2
        assert SECRET not in repr(rows)
    finally:
        con.close()
