"""Names the parser keeps no trace of are refused when the policy guards them.

sqlglot drops the extra arguments of some functions (``sha256(1, pw)`` parses as
``sha256(1)``): the checker would never see a name the engine is handed. A guarded
name (a denied column or table, a row-filtered table, a table outside the allow-list,
a system catalogue) that no node of the tree holds is refused; syntax words sqlglot
reads without keeping (``NULLS LAST``, ``UNBOUNDED PRECEDING``) are not names and pass.
"""

from __future__ import annotations

import pytest

from avl.safety import Policy, SafeQuery

SCHEMA = {
    "users": ["id", "name", "password_hash"],
    "orders": ["id", "tenant_id", "total", "notes"],
    "secrets": ["k", "v"],
}


def guard(dialect: str) -> SafeQuery:
    return SafeQuery(
        Policy(
            dialect=dialect,
            schema=SCHEMA,
            allowed_tables=["users", "orders"],
            denied_columns=["users.password_hash"],
            row_filters={"orders": "tenant_id = :tenant"},
            max_rows=100,
        )
    )


@pytest.mark.parametrize("dialect", ["postgres", "duckdb"])
@pytest.mark.parametrize(
    ("sql", "name"),
    [
        ("SELECT sha256(1, password_hash) FROM users", "password_hash"),
        ("SELECT id FROM users WHERE sha256(1, password_hash) IS NOT NULL", "password_hash"),
        ("SELECT any_value(1, (SELECT v FROM secrets)) FROM users", "secrets"),
    ],
)
def test_a_dropped_guarded_name_is_refused(dialect: str, sql: str, name: str) -> None:
    verdict = guard(dialect).check(sql, {"tenant": 1})
    assert not verdict.allowed
    assert verdict.sql is None
    dropped = [v for v in verdict.violations if "kept no trace" in v.message]
    if dropped:  # where the parser dropped it; otherwise another rule refused first
        assert dropped[0].code.value == "unknown_node"
        assert repr(name) in dropped[0].message
        assert dropped[0].position is not None
        assert sql[dropped[0].position.offset :].lower().startswith(name)
    assert any(
        "kept no trace" in v.message
        or v.code.value
        in {"column_denied", "table_not_allowed", "parse_error", "constant_predicate"}
        for v in verdict.violations
    ), verdict.violations


def test_sha256_with_an_extra_argument_is_refused_by_this_rule() -> None:
    # the class the rule exists for: without it this verdict was "allowed"
    verdict = guard("postgres").check("SELECT sha256(1, password_hash) FROM users")
    assert [v.code.value for v in verdict.violations] == ["unknown_node"]


ANALYST = [
    "SELECT id, SUM(total) OVER (ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING"
    " AND CURRENT ROW) AS running FROM orders",
    "SELECT id, name FROM users WHERE name = :who",
    "SELECT o.id, u.name FROM orders AS o JOIN users AS u ON u.id = o.id",
    "SELECT EXTRACT(year FROM CURRENT_DATE) AS y, id FROM orders",
]
NULLS_LAST = "SELECT name FROM users ORDER BY name DESC NULLS LAST"  # not MySQL syntax


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [(d, q) for d in ("sqlite", "postgres", "mysql", "duckdb") for q in ANALYST]
    + [(d, NULLS_LAST) for d in ("sqlite", "postgres", "duckdb")],
)
def test_analyst_syntax_words_still_pass(dialect: str, sql: str) -> None:
    verdict = guard(dialect).check(sql, {"tenant": 1, "who": "Ada"})
    assert verdict.allowed, verdict.violations


def test_a_malformed_call_is_described_not_a_checker_failure() -> None:
    # sqlglot builds a node it cannot write back (EOMONTH() with no argument): the
    # message quotes the text instead of failing inside the generator
    verdict = SafeQuery(
        Policy(dialect="tsql", schema=SCHEMA, row_filters={"orders": "tenant_id = :t"})
    ).check("SELECT id FROM orders WHERE eomonth() IS NOT NULL", {"t": 1})
    codes = [v.code.value for v in verdict.violations]
    assert codes == ["constant_predicate"], verdict.violations
    assert "eomonth" in verdict.violations[0].message
    assert "does not understand" not in verdict.violations[0].message
