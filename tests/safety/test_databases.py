"""Rewritten queries run on real SQLite, PostgreSQL and MariaDB and return exactly the allowed rows."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from avl.safety import Policy, SafeQuery
from tests.conftest import need_module

USERS = [(1, "ann", 1, "h1"), (2, "bob", 1, "h2"), (3, "cat", 2, "h3"), (4, "dan", 2, "h4")]
ORDERS = [
    (1, 1, 1, 5),
    (2, 1, 1, 15),
    (3, 2, 1, 25),
    (4, 2, 1, 35),
    (5, 3, 2, 45),
    (6, 4, 2, 55),
    (7, 3, 2, 65),
]
MAX_ROWS = 3

Run = Callable[[str], list[tuple[Any, ...]]]


def expected(tenant: int) -> dict[str, list[tuple[Any, ...]]]:
    users = {u[0]: u for u in USERS if u[2] == tenant}
    orders = [o for o in ORDERS if o[2] == tenant]
    return {
        "plain": [(o[0],) for o in orders][:MAX_ROWS],
        "join": [(users[o[1]][1], o[3]) for o in orders if o[1] in users][:MAX_ROWS],
        "subquery": sorted({(users[o[1]][1],) for o in orders if o[1] in users})[:MAX_ROWS],
        "cte": [(sum(1 for o in orders if o[3] > 10),)],
        "union": sorted([(o[0],) for o in orders] * 2)[:MAX_ROWS],
        "other_tenant": [],
        "limit_clamped": [(o[0],) for o in orders][:MAX_ROWS],
    }


def queries(users: str, orders: str) -> dict[str, str]:
    return {
        "plain": f"SELECT id FROM {orders} ORDER BY id",
        "join": f"SELECT u.name, o.total FROM {users} AS u JOIN {orders} AS o ON o.user_id = u.id ORDER BY o.id",
        "subquery": f"SELECT name FROM {users} WHERE id IN (SELECT user_id FROM {orders}) ORDER BY name",
        "cte": f"WITH big AS (SELECT * FROM {orders} WHERE total > 10) SELECT COUNT(*) FROM big",
        "union": f"SELECT id FROM {orders} UNION ALL SELECT id FROM {orders} ORDER BY 1",
        "other_tenant": f"SELECT id FROM {orders} WHERE tenant_id = 3 - tenant_id ORDER BY id",
        "limit_clamped": f"SELECT id FROM {orders} ORDER BY id LIMIT 1000",
    }


def guard(dialect: str, users: str, orders: str) -> SafeQuery:
    return SafeQuery(
        Policy(
            dialect=dialect,
            allowed_tables=[users, orders],
            denied_columns=[f"{users}.password_hash"],
            schema={
                users: ["id", "name", "tenant_id", "password_hash"],
                orders: ["id", "user_id", "tenant_id", "total"],
            },
            max_rows=MAX_ROWS,
            row_filters={orders: "tenant_id = :tenant_id", users: "tenant_id = :tenant_id"},
        )
    )


def exercise(dialect: str, users: str, orders: str, run: Run) -> None:
    g = guard(dialect, users, orders)
    for tenant in (1, 2):
        want = expected(tenant)
        for name, sql in queries(users, orders).items():
            verdict = g.check(sql, {"tenant_id": tenant})
            assert verdict.allowed, (name, verdict.violations)
            assert verdict.sql is not None
            rows = [
                tuple(
                    int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v
                    for v in r
                )
                for r in run(verdict.sql)
            ]
            assert rows == want[name], (dialect, tenant, name, verdict.sql)
            again = g.check(verdict.sql, {"tenant_id": tenant})
            assert again.sql == verdict.sql  # idempotent on the rewritten text
    refused = g.check(f"SELECT name, password_hash FROM {users}", {"tenant_id": 1})
    assert [v.code.value for v in refused.violations] == ["column_denied"]
    assert g.check(f"SELECT id FROM {orders}").violations[0].code.value == "missing_parameter"


def names() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:10]
    return f"sq_users_{tag}", f"sq_orders_{tag}"


def test_sqlite(tmp_path: Path) -> None:
    users, orders = names()
    con = sqlite3.connect(tmp_path / "safety.db")
    try:
        con.execute(
            f"CREATE TABLE {users} (id INTEGER PRIMARY KEY, name TEXT, tenant_id INTEGER, password_hash TEXT)"
        )
        con.execute(
            f"CREATE TABLE {orders} (id INTEGER PRIMARY KEY, user_id INTEGER, tenant_id INTEGER, total INTEGER)"
        )
        con.executemany(f"INSERT INTO {users} VALUES (?, ?, ?, ?)", USERS)
        con.executemany(f"INSERT INTO {orders} VALUES (?, ?, ?, ?)", ORDERS)
        con.commit()
        exercise("sqlite", users, orders, lambda sql: list(con.execute(sql).fetchall()))
    finally:
        con.close()


@pytest.fixture
def pg(postgres_dsn: str) -> Iterator[Any]:
    psycopg = need_module("psycopg")
    with psycopg.connect(postgres_dsn, autocommit=True) as con:
        yield con


def test_postgres(pg: Any) -> None:
    users, orders = names()
    try:
        pg.execute(
            f"CREATE TABLE {users} (id int PRIMARY KEY, name text, tenant_id int, password_hash text)"
        )
        pg.execute(
            f"CREATE TABLE {orders} (id int PRIMARY KEY, user_id int, tenant_id int, total int)"
        )
        with pg.cursor() as cur:
            cur.executemany(f"INSERT INTO {users} VALUES (%s, %s, %s, %s)", USERS)
            cur.executemany(f"INSERT INTO {orders} VALUES (%s, %s, %s, %s)", ORDERS)

        def run(sql: str) -> list[tuple[Any, ...]]:
            with pg.cursor() as cur:
                cur.execute(sql.replace("%", "%%") if "%" in sql else sql)
                return list(cur.fetchall())

        exercise("postgres", users, orders, run)
    finally:
        pg.execute(f"DROP TABLE IF EXISTS {users}")
        pg.execute(f"DROP TABLE IF EXISTS {orders}")


@pytest.fixture
def my(mysql_url: str) -> Iterator[Any]:
    pymysql = need_module("pymysql")
    parts = urlsplit(mysql_url)
    con = pymysql.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=parts.username or "root",
        password=parts.password or "",
        database=(parts.path or "/test").lstrip("/") or "test",
        autocommit=True,
    )
    try:
        yield con
    finally:
        con.close()


def test_mariadb(my: Any) -> None:
    users, orders = names()
    with my.cursor() as cur:
        try:
            cur.execute(
                f"CREATE TABLE {users} (id int PRIMARY KEY, name varchar(20), tenant_id int, password_hash varchar(20))"
            )
            cur.execute(
                f"CREATE TABLE {orders} (id int PRIMARY KEY, user_id int, tenant_id int, total int)"
            )
            cur.executemany(f"INSERT INTO {users} VALUES (%s, %s, %s, %s)", USERS)
            cur.executemany(f"INSERT INTO {orders} VALUES (%s, %s, %s, %s)", ORDERS)

            def run(sql: str) -> list[tuple[Any, ...]]:
                cur.execute(sql)
                return list(cur.fetchall())

            exercise("mysql", users, orders, run)
        finally:
            cur.execute(f"DROP TABLE IF EXISTS {users}")
            cur.execute(f"DROP TABLE IF EXISTS {orders}")
