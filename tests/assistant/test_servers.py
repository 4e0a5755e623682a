"""End to end on real SQLite, PostgreSQL and MariaDB databases: train from the
database, ask, and compare with the gold SQL's rows; queries run read-only."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from avl.assistant import Assistant, EventKind
from avl.errors import QueryError


def _tag() -> str:
    # letters only: digits in a table name would read as numbers in the question
    return "".join(chr(97 + int(ch, 16)) for ch in uuid.uuid4().hex[:8])


def _questions(c: str, o: str) -> list[tuple[str, str]]:
    return [
        (f"How many {c} are there?", f"SELECT COUNT(*) FROM {c}"),
        (f"Which {c} are from Paris?", f"SELECT name FROM {c} WHERE city = 'Paris'"),
        (f"What is the average total of {o}?", f"SELECT AVG(total) FROM {o}"),
        (f"How many {c} are there in each city?", f"SELECT city, COUNT(*) FROM {c} GROUP BY city"),
    ]


def _schema(tag: str, o_fk: str) -> tuple[str, str, list[str]]:
    c, o = f"cust_{tag}", f"ord_{tag}"
    return (
        c,
        o,
        [
            f"CREATE TABLE {c} (id INTEGER PRIMARY KEY, name VARCHAR(40), city VARCHAR(40))",
            f"CREATE TABLE {o} (id INTEGER PRIMARY KEY, {c}_id INTEGER {o_fk.format(c=c)}, total NUMERIC(8,2))",
            f"INSERT INTO {c} VALUES (1, 'Ann', 'Paris'), (2, 'Bob', 'London'), (3, 'Cid', 'Paris')",
            f"INSERT INTO {o} VALUES (1, 1, 10.00), (2, 1, 20.00), (3, 3, 30.00)",
        ],
    )


def _norm(rows: Any) -> Counter[tuple[Any, ...]]:
    return Counter(tuple(float(x) if hasattr(x, "as_tuple") else x for x in r) for r in rows)


@pytest.fixture
def pg(postgres_dsn: str) -> Iterator[tuple[str, str, str]]:
    import psycopg

    tag = _tag()
    c, o, stmts = _schema(tag, "REFERENCES {c}(id)")
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        for s in stmts:
            conn.execute(s)
        conn.execute(f"COMMENT ON TABLE {c} IS 'people who buy'")
        conn.execute(f"COMMENT ON COLUMN {o}.total IS 'in euros'")
    yield postgres_dsn, c, o
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {o}")
        conn.execute(f"DROP TABLE IF EXISTS {c}")


@pytest.fixture
def my(mysql_url: str) -> Iterator[tuple[str, str, str]]:
    import pymysql

    tag = _tag()
    c, o, stmts = _schema(tag, ", FOREIGN KEY ({c}_id) REFERENCES {c}(id)")
    stmts[1] = (
        f"CREATE TABLE {o} (id INTEGER PRIMARY KEY, {c}_id INTEGER, total NUMERIC(8,2), "
        f"FOREIGN KEY ({c}_id) REFERENCES {c}(id))"
    )
    conn = pymysql.connect(
        host="127.0.0.1", port=3306, user="root", database="test", autocommit=True
    )
    with conn.cursor() as cur:
        for s in stmts:
            cur.execute(s)
        cur.execute(f"ALTER TABLE {c} COMMENT = 'people who buy'")
        cur.execute(f"ALTER TABLE {o} MODIFY total NUMERIC(8,2) COMMENT 'in euros'")
    yield mysql_url, c, o
    with conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {o}")
        cur.execute(f"DROP TABLE IF EXISTS {c}")
    conn.close()


def _run(url: str, c: str, o: str, gold_runner: Any, comments: bool = True) -> Assistant:
    a = Assistant(db=url, cache_threshold=None)
    ids = a.train_from_database(tables=[c, o])
    assert len(ids) == 2
    schema = {i.table: i.text for i in a.training_data("schema")}
    if comments:  # table and column comments reach the schema text
        assert schema[c].startswith("-- people who buy\n")
        assert "-- in euros" in schema[o]
    (fk,) = a.view().foreign_keys
    assert (fk.table, fk.ref_table) == (o, c)
    for q, gold in _questions(c, o):
        ans = a.ask(q)
        assert ans.error == "", (q, ans.sql, ans.error)
        assert _norm(ans.rows) == _norm(gold_runner(gold)), (q, ans.sql)
    return a


def test_sqlite_end_to_end(tmp_path: Path) -> None:
    import sqlite3

    c, o, stmts = _schema(_tag(), "REFERENCES {c}(id)")
    path = tmp_path / "e2e.db"
    conn = sqlite3.connect(path)
    for s in stmts:
        conn.execute(s)
    conn.commit()
    a = _run(f"sqlite:///{path}", c, o, lambda sql: conn.execute(sql).fetchall(), comments=False)
    with pytest.raises(QueryError, match=r"readonly|read-only"):
        a.db.execute(f"DELETE FROM {c}")
    assert a.db.in_transaction() is False
    assert conn.execute(f"SELECT COUNT(*) FROM {c}").fetchone() == (3,)
    conn.close()
    a.close()


@pytest.mark.postgres
def test_postgres_end_to_end(pg: tuple[str, str, str]) -> None:
    import psycopg

    url, c, o = pg
    with psycopg.connect(url) as conn:
        a = _run(url, c, o, lambda sql: conn.execute(sql).fetchall())
    # the connection is read-only and has a statement timeout
    with pytest.raises(QueryError, match="read-only"):
        a.db.execute(f"DELETE FROM {c}")
    with pytest.raises(QueryError, match="timeout"):
        a.db.timeout_s = 0.05
        a.db.execute("SELECT pg_sleep(1)")
    assert a.db.in_transaction() is False
    a.close()


def _cancel_mid_stream(url: str, c: str, o: str) -> None:
    """Close a stream after its SQL event: no open transaction, and the connection
    answers the next question normally."""
    a = Assistant(db=url, cache_threshold=None)
    a.train_from_database(tables=[c, o])
    stream = a.stream(f"How many {c} are there?")
    for ev in stream:
        if ev.kind is EventKind.SQL:
            break
    stream.close()  # type: ignore[attr-defined]
    assert a.db.in_transaction() is False
    assert a.ask(f"How many {o} are there?").rows == ((3,),)
    a.close()


@pytest.mark.postgres
def test_postgres_cancel_mid_stream(pg: tuple[str, str, str]) -> None:
    _cancel_mid_stream(*pg)


@pytest.mark.mysql
def test_mariadb_end_to_end(my: tuple[str, str, str]) -> None:
    import pymysql

    url, c, o = my
    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", database="test")

    def gold(sql: str) -> Any:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()

    a = _run(url, c, o, gold)
    with pytest.raises(QueryError):
        a.db.execute(f"DELETE FROM {c}")
    assert a.db.in_transaction() is False
    with conn.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM {c}")
        assert cur.fetchone() == (3,)
    conn.close()
    a.close()


@pytest.mark.mysql
def test_mariadb_cancel_mid_stream(my: tuple[str, str, str]) -> None:
    _cancel_mid_stream(*my)


@pytest.mark.postgres
def test_postgres_explain_flags_full_scans_and_suggests_index(postgres_dsn: str) -> None:
    import psycopg

    t = f"ev_{_tag()}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {t} (id INTEGER PRIMARY KEY, kind TEXT, user_id INTEGER)")
        conn.execute(
            f"INSERT INTO {t} SELECT i, 'k' || (i % 7), i % 50 FROM generate_series(1, 20000) i"
        )
        conn.execute(f"CREATE INDEX {t}_user ON {t} (user_id)")
        conn.execute(f"ANALYZE {t}")
    try:
        a = Assistant(db=postgres_dsn)
        a.train_from_database(tables=[t])
        scan = a.explain(f"SELECT id FROM {t} WHERE kind = 'k1'")
        assert scan.full_scans == (t,)
        assert scan.suggestions == (f'CREATE INDEX ix_{t}_kind ON "{t}" ("kind")',)
        indexed = a.explain(f"SELECT id FROM {t} WHERE user_id = 3")
        assert (indexed.full_scans, indexed.suggestions) == ((), ())
        assert a.db.in_transaction() is False
        a.close()
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {t}")


@pytest.mark.mysql
def test_mariadb_explain_flags_full_scans_and_suggests_index(mysql_url: str) -> None:
    import pymysql

    t = f"ev_{_tag()}"
    conn = pymysql.connect(
        host="127.0.0.1", port=3306, user="root", database="test", autocommit=True
    )
    cur = conn.cursor()
    cur.execute(
        f"CREATE TABLE {t} (id INTEGER PRIMARY KEY, kind VARCHAR(10), user_id INTEGER, "
        f"KEY {t}_user (user_id))"
    )
    cur.executemany(
        f"INSERT INTO {t} VALUES (%s, %s, %s)",
        [(i, f"k{i % 7}", i % 50) for i in range(1, 5001)],
    )
    cur.execute(f"ANALYZE TABLE {t}")
    cur.fetchall()
    try:
        a = Assistant(db=mysql_url)
        a.train_from_database(tables=[t])
        scan = a.explain(f"SELECT id FROM {t} WHERE kind = 'k1'")
        assert scan.full_scans == (t,)
        assert scan.suggestions == (f"CREATE INDEX ix_{t}_kind ON `{t}` (`kind`)",)
        indexed = a.explain(f"SELECT id FROM {t} WHERE user_id = 3")
        assert (indexed.full_scans, indexed.suggestions) == ((), ())
        a.close()
    finally:
        cur.execute(f"DROP TABLE IF EXISTS {t}")
        conn.close()


@pytest.mark.postgres
def test_postgres_runs_one_statement_only(pg: tuple[str, str, str]) -> None:
    import psycopg

    from avl.assistant._db import Database

    url, c, _ = pg
    db = Database(url)
    # without SafeQuery in front: a COMMIT cannot end the read-only transaction
    for sql in (f"COMMIT; DROP TABLE {c}", f"SELECT 1; DELETE FROM {c}"):
        with pytest.raises(QueryError, match="multiple commands"):
            db.execute(sql)
    assert db.execute(f"SELECT COUNT(*) FROM {c} WHERE name LIKE '%n%'").rows == ((1,),)
    assert db.in_transaction() is False
    db.close()
    with psycopg.connect(url) as conn:
        assert conn.execute(f"SELECT COUNT(*) FROM {c}").fetchone() == (3,)


@pytest.mark.mysql
def test_mariadb_refuses_ddl_despite_its_implicit_commit(my: tuple[str, str, str]) -> None:
    import pymysql

    from avl.assistant._db import Database

    url, c, o = my
    extra = f"x_{_tag()}"
    db = Database(url)
    for sql in (f"DROP TABLE {o}", f"CREATE TABLE {extra} (i INTEGER)", f"TRUNCATE TABLE {o}"):
        with pytest.raises(QueryError, match="READ ONLY"):
            db.execute(sql)
    db.close()
    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", database="test")
    with conn.cursor() as cur:
        cur.execute(f"SHOW TABLES LIKE '{extra}'")
        assert cur.fetchall() == ()
        cur.execute(f"SELECT COUNT(*) FROM {o}")
        assert cur.fetchone() == (3,)
    # a borrowed connection is read-only while avl uses it, and writable after
    borrowed = Database(conn)
    with pytest.raises(QueryError, match="READ ONLY"):
        borrowed.execute(f"CREATE TABLE {extra} (i INTEGER)")
    assert borrowed.execute(f"SELECT COUNT(*) FROM {c}").rows == ((3,),)
    with conn.cursor() as cur:
        cur.execute(f"INSERT INTO {c} VALUES (4, 'Dan', 'Oslo')")
        cur.execute(f"SELECT COUNT(*) FROM {c}")
        assert cur.fetchone() == (4,)
    conn.rollback()
    conn.close()


@pytest.mark.mysql
def test_a_multi_statement_mysql_connection_is_refused(mysql_url: str) -> None:
    import pymysql
    from pymysql.constants import CLIENT

    from avl.errors import ConfigError

    conn = pymysql.connect(
        host="127.0.0.1", user="root", database="test", client_flag=CLIENT.MULTI_STATEMENTS
    )
    with pytest.raises(ConfigError, match="MULTI_STATEMENTS"):
        Assistant(db=conn)
    conn.close()
