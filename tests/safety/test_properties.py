"""Hypothesis: ``check`` never raises, and an allowed rewrite checked again is unchanged."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avl.safety import Policy, SafeQuery, Verdict, ViolationCode

GUARDS = {
    dialect: SafeQuery(
        Policy(
            dialect=dialect,
            max_rows=100,
            denied_columns=["users.password_hash"],
            row_filters={"orders": "tenant_id = :tenant_id"},
        ),
        cache_size=0,
    )
    for dialect in ("sqlite", "postgres", "mysql", "tsql", "oracle", "snowflake", "bigquery")
}
PARAMS = {"tenant_id": 7}

WORDS = [
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "UNION", "ALL", "JOIN", "ON", "GROUP BY",
    "ORDER BY", "HAVING", "LIMIT", "OFFSET", "WITH", "AS", "IN", "EXISTS", "CASE", "WHEN",
    "THEN", "ELSE", "END", "NULL", "DISTINCT", "INTO", "DELETE", "DROP", "UPDATE", "SET",
    "users", "orders", "id", "name", "total", "tenant_id", "password_hash", "u", "o", "*",
    "1", "0", "42", "'x'", "''", "'a''b'", "(", ")", ",", ";", "=", "<", ">", "+", "-", "/",
    "||", "--", "/*", "*/", "#", "/*!", "sleep(1)", "count(*)", "@@version", ":p", "?",
    "\\", '"', "`", "[", "]",
]  # fmt: skip

sqlish = st.lists(st.sampled_from(WORDS), min_size=0, max_size=30).map(" ".join)

columns = st.sampled_from(["id", "name", "total", "u.id", "o.total", "COUNT(*)", "1"])
conds = st.sampled_from(
    ["id = 1", "name LIKE 'a%'", "total > 10 AND id < 5", "1 = 1 AND id = 2", "o.total IS NOT NULL"]
)


@st.composite
def queries(draw: st.DrawFn) -> str:
    cols = draw(st.lists(columns, min_size=1, max_size=3, unique=True))
    source = draw(
        st.sampled_from(
            [
                "users AS u",
                "orders AS o",
                "users AS u JOIN orders AS o ON o.id = u.id",
                "(SELECT id, name, total FROM orders) AS o",
            ]
        )
    )
    sql = f"SELECT {', '.join(cols)} FROM {source}"
    if draw(st.booleans()):
        sql += f" WHERE {draw(conds)}"
    if draw(st.booleans()):
        sql += " ORDER BY 1"
    if draw(st.booleans()):
        sql += f" LIMIT {draw(st.integers(min_value=0, max_value=10**6))}"
    if draw(st.booleans()):
        sql = f"WITH c AS (SELECT id, total FROM orders) {sql}"
    return sql


def _is_verdict(verdict: Verdict) -> None:
    assert isinstance(verdict, Verdict)
    assert verdict.allowed == (not verdict.violations)
    assert (verdict.sql is not None) == verdict.allowed
    for v in verdict.violations:
        assert isinstance(v.code, ViolationCode)
        assert v.message


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(max_size=200), dialect=st.sampled_from(sorted(GUARDS)))
def test_check_never_raises_on_any_text(text: str, dialect: str) -> None:
    _is_verdict(GUARDS[dialect].check(text, PARAMS))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sql=sqlish, dialect=st.sampled_from(sorted(GUARDS)))
def test_check_never_raises_on_sqlish_text(sql: str, dialect: str) -> None:
    _is_verdict(GUARDS[dialect].check(sql, PARAMS))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sql=queries(), dialect=st.sampled_from(sorted(GUARDS)))
def test_rewrite_is_allowed_and_idempotent(sql: str, dialect: str) -> None:
    guard = GUARDS[dialect]
    first = guard.check(sql, PARAMS)
    _is_verdict(first)
    if not first.allowed:
        return
    assert first.sql is not None
    second = guard.check(first.sql, PARAMS)
    assert second.allowed, (first.sql, second.violations)
    assert second.sql == first.sql
