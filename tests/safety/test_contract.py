"""The held-out evaluation's calls, exactly as the issue names them."""

from __future__ import annotations

import sqlite3

import pytest

import avl.errors
from avl.safety import Policy, SafeQuery
from tests.conftest import need_module

SCHEMA = {"users": ["id", "name", "password_hash"], "orders": ["id", "user_id", "total"]}


@pytest.fixture
def guard() -> SafeQuery:
    return SafeQuery(
        Policy(
            dialect="sqlite",
            schema=SCHEMA,
            allowed_tables=["users", "orders"],
            denied_columns=["users.password_hash"],
            max_rows=50,
        )
    )


@pytest.mark.parametrize(
    ("sql", "code"),
    [
        ("SELECT * FROM users", "column_denied"),
        ("SELECT name FROM users WHERE id = 1 OR 1 = 1", "constant_predicate"),
        ("SELECT 1; DROP TABLE users", "multiple_statements"),
        ("SELECT name FROM secrets", "table_not_allowed"),
        ("SELECT nickname FROM users", "unknown_column"),
    ],
)
def test_check_rejects_with_code(guard: SafeQuery, sql: str, code: str) -> None:
    verdict = guard.check(sql)
    assert verdict.allowed is False
    assert verdict.sql is None
    assert code in [v.code.value for v in verdict.violations]


def test_check_allows_and_rewrites(guard: SafeQuery) -> None:
    verdict = guard.check("SELECT u.name, o.total FROM users u JOIN orders o ON o.user_id = u.id")
    assert verdict.allowed is True
    assert verdict.violations == ()
    assert verdict.sql == (
        "SELECT u.name, o.total FROM users u JOIN orders o ON o.user_id = u.id LIMIT 50"
    )
    assert guard.check("SELECT id FROM orders LIMIT 100000").sql == "SELECT id FROM orders LIMIT 50"


def test_template_render_and_verify_round_trip() -> None:
    template = SafeQuery.template("SELECT id FROM users WHERE name = :name", dialect="sqlite")
    sql = template.render(name="O'Brien \\ é")
    assert sql == "SELECT id FROM users WHERE name = 'O''Brien \\ é'"
    assert template.verify(sql) == {"name": "O'Brien \\ é"}
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE users (id INTEGER, name TEXT)")
    db.execute("INSERT INTO users VALUES (7, ?)", ("O'Brien \\ é",))
    assert db.execute(sql).fetchall() == [(7,)]


def test_template_verify_rejects_injection() -> None:
    template = SafeQuery.template("SELECT id FROM users WHERE name = :name", dialect="sqlite")
    with pytest.raises(avl.errors.UnsafeQueryError):
        template.verify("SELECT id FROM users WHERE name = '' OR '1'='1'")


# ------------------------------------------------------------------ every dialect
CONTRACT_SCHEMA = {
    "users": ["id", "name", "password_hash", "tenant_id"],
    "orders": ["id", "user_id", "total", "tenant_id", "notes"],
}


def contract_guard(dialect: str) -> SafeQuery:
    """The exact call of the held-out evaluation."""
    return SafeQuery(
        Policy(
            dialect=dialect,
            schema=CONTRACT_SCHEMA,
            allowed_tables=["users", "orders"],
            denied_columns=["users.password_hash"],
            row_filters={"orders": "tenant_id = :tenant"},
            max_rows=20,
        )
    )


@pytest.mark.parametrize("dialect", ["sqlite", "postgres", "mysql", "duckdb"])
def test_contract_on_every_dialect(dialect: str) -> None:
    guard = contract_guard(dialect)
    verdict = guard.check("SELECT id, total FROM orders", {"tenant": 1})
    assert verdict.allowed is True
    assert verdict.violations == ()
    assert verdict.sql is not None
    assert "tenant_id = 1" in verdict.sql
    refused = guard.check("SELECT name, password_hash FROM users", {"tenant": 1})
    assert refused.allowed is False
    assert [v.code.value for v in refused.violations] == ["column_denied"]
    assert refused.sql is None
    missing = guard.check("SELECT id FROM orders")
    assert [v.code.value for v in missing.violations] == ["missing_parameter"]


def test_contract_row_filter_runs_on_duckdb() -> None:
    duckdb = need_module("duckdb")
    con = duckdb.connect()
    try:
        con.execute(
            "CREATE TABLE orders (id INTEGER, user_id INTEGER, total INTEGER, tenant_id INTEGER, notes VARCHAR)"
        )
        con.execute(
            "INSERT INTO orders VALUES (1, 1, 10, 1, 'a'), (2, 2, 20, 2, 'b'), (3, 1, 30, 1, 'c')"
        )
        sql = contract_guard("duckdb").check("SELECT id FROM orders ORDER BY id", {"tenant": 1}).sql
        assert sql is not None
        assert con.execute(sql).fetchall() == [(1,), (3,)]
        sql = contract_guard("duckdb").check("SELECT count(*) FROM orders", {"tenant": 2}).sql
        assert sql is not None
        assert con.execute(sql).fetchall() == [(1,)]
    finally:
        con.close()


def test_contract_template_on_every_dialect() -> None:
    for dialect in ("sqlite", "postgres", "mysql", "duckdb"):
        template = SafeQuery.template("SELECT id FROM users WHERE name = :name", dialect=dialect)
        sql = template.render(name="it's")
        assert template.verify(sql) == {"name": "it's"}
        with pytest.raises(avl.errors.UnsafeQueryError):
            template.verify("SELECT id FROM users WHERE name = 'x' OR '1'='1'")
