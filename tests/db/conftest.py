"""One Database suite, every engine: the ``backend`` fixture opens the same small
shop (customers, orders with a tenant column, and a 200,000-row table for slow
joins) on real SQLite, PostgreSQL, MariaDB and DuckDB, directly and through
SQLAlchemy, with unique table names. The shop is built once per engine and test
session: every test only reads (and checks that writes are refused)."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from avl.assistant import Database

CUSTOMERS = [(1, "Ann", "Paris", 1), (2, "Bob", "London", 1), (3, "Cid", "Paris", 2)]
ORDERS = [(1, 1, 10.0, 1), (2, 1, 20.0, 1), (3, 3, 30.0, 2), (4, 2, 5.0, 1)]
BIG_ROWS = 200_000


def tag() -> str:
    """A unique lower-case tag of letters (no digits: table names read as words)."""
    return "".join(chr(97 + int(ch, 16)) for ch in uuid.uuid4().hex[:10])


@attrs.define
class Backend:
    """A prepared database: how to open it and the names of its tables."""

    name: str
    open: Callable[..., Database]
    customers: str
    orders: str
    big: str
    dialect: str
    count: Callable[[str], int]  # rows of a table, read outside avl
    can_write_while_open: bool = True


def _ddl(c: str, o: str, b: str, fk: bool = True) -> list[str]:
    ref = f" REFERENCES {c}(id)" if fk else ""
    return [
        f"CREATE TABLE {c} (id INTEGER PRIMARY KEY, name VARCHAR(40), city VARCHAR(40), "
        "tenant_id INTEGER)",
        f"CREATE TABLE {o} (id INTEGER PRIMARY KEY, customer_id INTEGER{ref}, "
        "total NUMERIC(8,2), tenant_id INTEGER)",
        f"CREATE TABLE {b} (id INTEGER PRIMARY KEY, k INTEGER)",
    ]


def _inserts(c: str, o: str) -> list[str]:
    return [
        f"INSERT INTO {c} VALUES "
        + ", ".join(f"({i}, '{n}', '{t}', {g})" for i, n, t, g in CUSTOMERS),
        f"INSERT INTO {o} VALUES "
        + ", ".join(f"({i}, {cu}, {tot}, {g})" for i, cu, tot, g in ORDERS),
    ]


def _sqlite(tmp_path: Path) -> tuple[Path, str, str, str]:
    t = tag()
    c, o, b = f"cust_{t}", f"ord_{t}", f"big_{t}"
    path = tmp_path / f"{t}.db"
    conn = sqlite3.connect(path)
    for s in _ddl(c, o, b) + _inserts(c, o):
        conn.execute(s)
    conn.execute(
        f"INSERT INTO {b} WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
        f"WHERE i < {BIG_ROWS}) SELECT i, i % 3 FROM n"
    )
    conn.commit()
    conn.close()
    return path, c, o, b


def _sqlite_count(path: Path) -> Callable[[str], int]:
    def count(table: str) -> int:
        with sqlite3.connect(path) as conn:
            return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    return count


@pytest.fixture(scope="session")
def pg_tables(postgres_dsn: str) -> Iterator[tuple[str, str, str, str]]:
    import psycopg

    t = tag()
    c, o, b = f"cust_{t}", f"ord_{t}", f"big_{t}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        for s in _ddl(c, o, b) + _inserts(c, o):
            conn.execute(s)
        conn.execute(f"INSERT INTO {b} SELECT i, i % 3 FROM generate_series(1, {BIG_ROWS}) i")
        conn.execute(f"ANALYZE {b}")
    yield postgres_dsn, c, o, b
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        for name in (o, c, b):
            conn.execute(f"DROP TABLE IF EXISTS {name}")


def _pg_count(dsn: str) -> Callable[[str], int]:
    def count(table: str) -> int:
        import psycopg

        with psycopg.connect(dsn) as conn:
            return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    return count


def mysql_connect(url: str, **kw: Any) -> Any:
    import pymysql

    from avl.assistant._db._mysql import connect_args

    args = connect_args(url)
    args.update(kw)
    return pymysql.connect(**args)


@pytest.fixture(scope="session")
def my_tables(mysql_url: str) -> Iterator[tuple[str, str, str, str]]:
    t = tag()
    c, o, b = f"cust_{t}", f"ord_{t}", f"big_{t}"
    conn = mysql_connect(mysql_url, autocommit=True)
    with conn.cursor() as cur:
        for s in _ddl(c, o, b) + _inserts(c, o):
            cur.execute(s)
        cur.execute(f"INSERT INTO {b} SELECT seq, seq % 3 FROM seq_1_to_{BIG_ROWS}")
    yield mysql_url, c, o, b
    with conn.cursor() as cur:
        for name in (o, c, b):
            cur.execute(f"DROP TABLE IF EXISTS {name}")
    conn.close()


def _my_count(url: str) -> Callable[[str], int]:
    def count(table: str) -> int:
        conn = mysql_connect(url)
        try:
            with conn.cursor() as cur:
                cur.execute(f"SELECT COUNT(*) FROM {table}")
                return int(cur.fetchone()[0])
        finally:
            conn.close()

    return count


def _duckdb(tmp_path: Path) -> tuple[Path, str, str, str]:
    import duckdb

    t = tag()
    c, o, b = f"cust_{t}", f"ord_{t}", f"big_{t}"
    path = tmp_path / f"{t}.duckdb"
    conn = duckdb.connect(str(path))
    for s in _ddl(c, o, b) + _inserts(c, o):
        conn.execute(s)
    conn.execute(f"INSERT INTO {b} SELECT i, i % 3 FROM range(1, {BIG_ROWS} + 1) t(i)")
    conn.close()
    return path, c, o, b


def _duckdb_count(path: Path) -> Callable[[str], int]:
    def count(table: str) -> int:
        import duckdb

        conn = duckdb.connect(str(path), read_only=True)
        try:
            return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
        finally:
            conn.close()

    return count


BACKENDS = [
    "sqlite",
    "sqlite-conn",
    "postgres",
    "postgres-conn",
    "mariadb",
    "mariadb-conn",
    "duckdb",
    "sa-sqlite",
    "sa-postgres",
    "sa-mariadb",
    "sa-generic-sqlite",
    "sa-generic-postgres",
    "sa-generic-mariadb",
]


def _generic(db: Database) -> Database:
    db._engine.native = False  # type: ignore[attr-defined]  # the generic SQLAlchemy path
    return db


@pytest.fixture(scope="session")
def sqlite_shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str, str]:
    return _sqlite(tmp_path_factory.mktemp("sqlite"))


@pytest.fixture(scope="session")
def duckdb_shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str, str]:
    return _duckdb(tmp_path_factory.mktemp("duckdb"))


def make_backend(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Open the shop for backend ``name`` (built once per engine and session)."""
    base = name.removeprefix("sa-generic-").removeprefix("sa-")
    kind = base.removesuffix("-conn")
    if kind == "sqlite":
        path, c, o, b = request.getfixturevalue("sqlite_shop")
        count = _sqlite_count(path)
    elif kind == "postgres":
        dsn, c, o, b = request.getfixturevalue("pg_tables")
        count = _pg_count(dsn)
    elif kind == "mariadb":
        url, c, o, b = request.getfixturevalue("my_tables")
        count = _my_count(url)
    else:
        path, c, o, b = request.getfixturevalue("duckdb_shop")
        count = _duckdb_count(path)
    dialect = {"sqlite": "sqlite", "postgres": "postgres", "mariadb": "mysql"}.get(kind, "duckdb")
    opened: list[Any] = []

    def open_db(**kw: Any) -> Database:
        if name == "sqlite":
            db = Database(f"sqlite:///{path}", **kw)
        elif name == "sqlite-conn":
            conn = sqlite3.connect(path, check_same_thread=False)
            opened.append(conn)
            db = Database(conn, **kw)
        elif name == "postgres":
            db = Database(dsn, **kw)
        elif name == "postgres-conn":
            import psycopg

            conn = psycopg.connect(dsn)
            opened.append(conn)
            db = Database(conn, **kw)
        elif name == "mariadb":
            db = Database(url, **kw)
        elif name == "mariadb-conn":
            conn = mysql_connect(url)
            opened.append(conn)
            db = Database(conn, **kw)
        elif name == "duckdb":
            db = Database(f"duckdb:///{path}", **kw)
        else:
            import sqlalchemy as sa

            if kind == "sqlite":
                sa_url = f"sqlite:///{path}"
            elif kind == "postgres":
                sa_url = dsn.replace("postgresql://", "postgresql+psycopg://", 1)
            else:
                sa_url = url.replace("mysql://", "mysql+pymysql://", 1)
            engine = sa.create_engine(sa_url)
            opened.append(engine)
            db = Database(engine, **kw)
            if name.startswith("sa-generic-"):
                _generic(db)
        return db

    def cleanup() -> None:
        for obj in opened:
            (obj.dispose if hasattr(obj, "dispose") else obj.close)()

    request.addfinalizer(cleanup)
    return Backend(
        name=name,
        open=open_db,
        customers=c,
        orders=o,
        big=b,
        dialect=dialect,
        count=count,
        can_write_while_open=kind != "duckdb",
    )


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Every engine, with the same shop."""
    return make_backend(request.param, request, tmp_path)
