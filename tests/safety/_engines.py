"""Connections to the real engines the safety tests run SQL on (one helper per engine)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from tests.conftest import need_module


@contextmanager
def postgres(dsn: str) -> Iterator[Any]:
    """An autocommit psycopg connection."""
    psycopg = need_module("psycopg")
    with psycopg.connect(dsn, autocommit=True) as con:
        yield con


@contextmanager
def mariadb(url: str) -> Iterator[Any]:
    """An autocommit PyMySQL connection."""
    pymysql = need_module("pymysql")
    parts = urlsplit(url)
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


def pg_rows(con: Any, sql: str) -> list[tuple[Any, ...]]:
    """Run ``sql`` on PostgreSQL (``%`` escaped for psycopg) and fetch every row."""
    with con.cursor() as cur:
        cur.execute(sql.replace("%", "%%"))
        return list(cur.fetchall()) if cur.description else []


def my_rows(con: Any, sql: str) -> list[tuple[Any, ...]]:
    """Run ``sql`` on MariaDB and fetch every row."""
    with con.cursor() as cur:
        cur.execute(sql)
        return list(cur.fetchall())
