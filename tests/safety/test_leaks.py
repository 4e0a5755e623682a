"""The leak oracle: the bypass suite run on real SQLite, PostgreSQL, MariaDB and DuckDB.

See ``tests/safety/_bypass.py``. Each engine gets its own planted tables (unique
names); every statement SafeQuery allows is run, and no secret may appear in any
result. The oracle is not vacuous: a share of the suite is allowed and runs.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from tests.conftest import need_module
from tests.safety import _bypass as B
from tests.safety._engines import mariadb, my_rows, pg_rows, postgres


def _assert_clean(out: B.Outcome, minimum_ran: int) -> None:
    assert out.leaks == [], out.leaks
    assert out.ran >= minimum_ran, (out.ran, out.errors[:5])
    assert out.refused >= out.checked // 2


def test_sqlite(tmp_path: Path) -> None:
    n = B.names()
    con = sqlite3.connect(tmp_path / "leaks.db")
    try:
        for statement in B.ddl(n):
            con.execute(statement)
        con.commit()
        out = B.run_oracle(
            "sqlite", n, lambda sql: list(con.execute(sql).fetchall()), sqlite3.Error, "main."
        )
    finally:
        con.close()
    _assert_clean(out, minimum_ran=20)


def test_postgres(postgres_dsn: str) -> None:
    psycopg = need_module("psycopg")
    n = B.names()
    with postgres(postgres_dsn) as con:
        try:
            for statement in B.ddl(n):
                con.execute(statement)

            def run(sql: str) -> list[tuple[Any, ...]]:
                with con.transaction():
                    con.execute("SET LOCAL statement_timeout = '5s'")
                    return pg_rows(con, sql)

            out = B.run_oracle("postgres", n, run, psycopg.Error, "public.")
        finally:
            for table in (n.users, n.orders, n.secrets):
                con.execute(f"DROP TABLE IF EXISTS {table}")
    _assert_clean(out, minimum_ran=20)


def test_mariadb(mysql_url: str) -> None:
    pymysql = need_module("pymysql")
    n = B.names()
    with mariadb(mysql_url) as con:
        try:
            with con.cursor() as cur:
                for statement in B.ddl(n, text="VARCHAR(64)"):
                    cur.execute(statement)

            def run(sql: str) -> list[tuple[Any, ...]]:
                with con.cursor() as cur:
                    cur.execute("SET SESSION max_statement_time = 5")
                return my_rows(con, sql)

            out = B.run_oracle("mysql", n, run, pymysql.MySQLError, "test.")
        finally:
            with con.cursor() as cur:
                for table in (n.users, n.orders, n.secrets):
                    cur.execute(f"DROP TABLE IF EXISTS {table}")
    _assert_clean(out, minimum_ran=20)


def test_duckdb(tmp_path: Path) -> None:
    duckdb = need_module("duckdb")
    n = B.names()
    secret_file = tmp_path / "leak.csv"
    secret_file.write_text(f"x\nFILESECRET{n.tag}\n", encoding="utf-8")
    con = duckdb.connect(str(tmp_path / "leaks.duckdb"))
    try:
        for statement in B.ddl(n, text="VARCHAR"):
            con.execute(statement)
        out = B.run_oracle(
            "duckdb",
            n,
            lambda sql: con.execute(sql).fetchall(),
            duckdb.Error,
            "main.",
            str(secret_file),
        )
    finally:
        con.close()
    _assert_clean(out, minimum_ran=20)
