"""The guessing oracle: an allowed statement may not answer differently for a right guess.

A secret need not appear in a result to leak: a statement that compares a denied column
(or another tenant's row) with a guess leaks it when its rows, or whether it fails,
depend on whether the guess was right. Every statement below is checked with the
held-out contract's policy (``tests/safety/_bypass.py``, with and without a schema);
each one SafeQuery allows is run on the real engine twice, once with the planted secret
as the guess and once with a wrong guess, and the two outcomes (rows, or the error's
class) must be the same.

Found this way: ``NATURAL JOIN (SELECT 'guess' AS password_hash)`` compared the denied
column without naming it (all four engines), and DuckDB read
``WITH RECURSIVE orders AS (SELECT * FROM orders)`` as the real table, outside the row
filter and the denied columns, while the checker read the CTE.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from avl.safety import SafeQuery
from tests.conftest import need_module
from tests.safety import _bypass as B
from tests.safety._engines import mariadb, my_rows, pg_rows, postgres

# {u} users, {o} orders; {g} a guess of ann's password_hash, {t} of tenant 2's notes
GUESSES = [
    "SELECT name FROM {u} NATURAL JOIN (SELECT '{g}' AS password_hash) AS g",
    "SELECT a.name FROM {u} AS a NATURAL JOIN (SELECT 1 AS id, '{g}' AS password_hash) AS g",
    "SELECT g.x FROM (SELECT 1 AS x, '{g}' AS password_hash) AS g NATURAL JOIN {u}",
    "SELECT name FROM {u} NATURAL LEFT JOIN (SELECT '{g}' AS password_hash, 1 AS hit) AS g "
    "WHERE g.hit = 1",
    "SELECT name FROM {u} WHERE password_hash = '{g}'",
    "SELECT name FROM {u} JOIN (SELECT '{g}' AS p) AS g ON g.p = {u}.password_hash",
    "SELECT name FROM {u} JOIN (SELECT '{g}' AS password_hash) AS g USING (password_hash)",
    "SELECT name FROM {u} ORDER BY password_hash = '{g}' DESC, name LIMIT 1",
    "SELECT name FROM {u} WHERE (id, password_hash) IN (SELECT 1, '{g}')",
    "SELECT count(*) FILTER (WHERE password_hash = '{g}') FROM {u}",
    "SELECT name, count(*) OVER (PARTITION BY password_hash = '{g}') FROM {u}",
    "SELECT name FROM {u} GROUP BY name HAVING max(password_hash) = '{g}'",
    "SELECT count(*) FROM {u} AS u WHERE EXISTS (SELECT 1 FROM {u} AS v WHERE v.password_hash = '{g}')",
    "WITH RECURSIVE {u} AS (SELECT * FROM {u}) SELECT name FROM {u} WHERE password_hash = '{g}'",
    "WITH RECURSIVE r AS (SELECT * FROM {u}) SELECT name FROM r WHERE password_hash = '{g}'",
    "SELECT count(*) FROM {o} WHERE notes = '{t}'",
    "SELECT count(*) FROM {o} NATURAL JOIN (SELECT '{t}' AS notes) AS g",
    "SELECT id FROM {o} WHERE id = 3 AND notes = '{t}'",
    "SELECT (SELECT count(*) FROM {o} WHERE notes = '{t}') AS n",
    "WITH RECURSIVE {o} AS (SELECT * FROM {o}) SELECT count(*) FROM {o} WHERE notes = '{t}'",
    "SELECT count(*) FROM {o} AS a JOIN {o} AS b ON a.id = b.id WHERE b.notes = '{t}'",
    "SELECT count(*) FROM {u} AS u, LATERAL (SELECT u.password_hash = '{g}' AS hit) AS x "
    "WHERE x.hit",
]
WRONG = "nope-not-it"


def _outcome(run: Callable[[str], list[tuple[Any, ...]]], failure: Any, sql: str) -> str:
    try:
        return repr(sorted(map(repr, run(sql))))
    except failure as exc:
        return f"error {type(exc).__name__}"


def _oracle(
    dialect: str,
    n: B.Names,
    run: Callable[[str], list[tuple[Any, ...]]],
    failure: Any,
) -> None:
    leaks = []
    compared = 0
    for policy in B.policies(dialect, n):
        guard = SafeQuery(policy, cache_size=0)
        for template in GUESSES:
            right = template.format(
                u=n.users, o=n.orders, g=f"PWSECRET{n.tag}1", t=f"TENANTSECRET{n.tag}3"
            )
            wrong = template.format(u=n.users, o=n.orders, g=WRONG, t=WRONG)
            verdicts = [guard.check(sql, {"tenant": B.TENANT}) for sql in (right, wrong)]
            assert verdicts[0].allowed == verdicts[1].allowed, template
            if not verdicts[0].allowed:
                continue
            outcomes = [_outcome(run, failure, v.sql or "") for v in verdicts]
            compared += 1
            if outcomes[0] != outcomes[1]:
                leaks.append((template, outcomes))
    assert leaks == []
    assert compared >= 4  # not vacuous: guesses on allowed columns and rows still run


def test_sqlite(tmp_path: Path) -> None:
    n = B.names()
    con = sqlite3.connect(tmp_path / "guess.db")
    try:
        for statement in B.ddl(n):
            con.execute(statement)
        _oracle("sqlite", n, lambda s: con.execute(s).fetchall(), sqlite3.Error)
    finally:
        con.close()


def test_duckdb(tmp_path: Path) -> None:
    duckdb = need_module("duckdb")
    n = B.names()
    con = duckdb.connect(str(tmp_path / "guess.duckdb"))
    try:
        for statement in B.ddl(n, text="VARCHAR"):
            con.execute(statement)
        _oracle("duckdb", n, lambda s: con.execute(s).fetchall(), duckdb.Error)
    finally:
        con.close()


def test_postgres(postgres_dsn: str) -> None:
    psycopg = need_module("psycopg")
    n = B.names()
    with postgres(postgres_dsn) as con:
        try:
            for statement in B.ddl(n):
                con.execute(statement)

            def run(sql: str) -> list[tuple[Any, ...]]:
                with con.transaction():
                    return pg_rows(con, sql)

            _oracle("postgres", n, run, psycopg.Error)
        finally:
            for table in (n.users, n.orders, n.secrets):
                con.execute(f"DROP TABLE IF EXISTS {table}")


def test_mariadb(mysql_url: str) -> None:
    pymysql = need_module("pymysql")
    n = B.names()
    with mariadb(mysql_url) as con:
        try:
            for statement in B.ddl(n, text="VARCHAR(64)"):
                my_rows(con, statement)
            _oracle("mysql", n, lambda s: my_rows(con, s), pymysql.MySQLError)
        finally:
            for table in (n.users, n.orders, n.secrets):
                my_rows(con, f"DROP TABLE IF EXISTS {table}")


@pytest.mark.parametrize("dialect", ["sqlite", "postgres", "mysql", "duckdb"])
def test_natural_join_without_denied_columns_stays_allowed(dialect: str) -> None:
    from avl.safety import Policy

    guard = SafeQuery(
        Policy(
            dialect=dialect,
            schema={"a": ["id", "x"], "b": ["id", "y"], "u": ["id", "pw"]},
            denied_columns=["u.pw"],
        )
    )
    assert guard.check("SELECT x, y FROM a NATURAL JOIN b").allowed is True
    assert guard.check("SELECT u.id FROM u NATURAL JOIN b").allowed is True  # compares id only
    refused = guard.check("SELECT u.id FROM u NATURAL JOIN (SELECT 'g' AS pw) AS g")
    assert [v.code.value for v in refused.violations] == ["column_denied"]


@pytest.mark.parametrize("dialect", ["sqlite", "postgres", "mysql", "duckdb"])
def test_recursive_ctes_name_themselves_only_in_the_recursive_term(dialect: str) -> None:
    from avl.safety import Policy

    guard = SafeQuery(Policy(dialect=dialect))
    ok = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT n FROM r"
    assert guard.check(ok).allowed is True
    for sql in (
        "WITH RECURSIVE t AS (SELECT * FROM t) SELECT * FROM t",
        "WITH RECURSIVE t AS (SELECT * FROM t UNION ALL SELECT 1) SELECT * FROM t",
        "WITH RECURSIVE t AS (SELECT 1 AS n EXCEPT SELECT n FROM t) SELECT * FROM t",
    ):
        assert "unknown_table" in [v.code.value for v in guard.check(sql).violations], sql


def test_lambda_parameters_never_share_a_source_name() -> None:
    """DuckDB read ``lambda u: u.password_hash`` over ``FROM users u`` as the table's
    column (sqlglot, as a field of the parameter): the denied column came back."""
    from avl.safety import Policy

    for schema in ({"users": ["id", "name", "password_hash"]}, None):
        guard = SafeQuery(
            Policy(dialect="duckdb", schema=schema, denied_columns=["users.password_hash"])
        )
        for sql in (
            "SELECT list_transform([1], lambda u: u.password_hash) FROM users u",
            "SELECT list_transform([1], lambda users: users.password_hash) FROM users",
            "SELECT list_transform([1], lambda password_hash: password_hash) FROM users",
        ):
            codes = [v.code.value for v in guard.check(sql).violations]
            assert codes == ["unresolved_column"], (sql, codes)
        assert guard.check("SELECT list_transform([1, 2], lambda x: x + 1) FROM users").allowed
