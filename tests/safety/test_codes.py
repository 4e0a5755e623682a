"""One case per violation code, on every dialect it applies to.

Each row is (code, dialect, sql) under the ``app`` policy unless the code needs its own
(``POLICY_FOR``). The check must refuse the statement and report that code.
``test_every_code_is_covered`` keeps the table complete as codes are added.
"""

from __future__ import annotations

import pytest

from avl.safety import Policy, SafeQuery, ViolationCode

SCHEMA = {
    "users": ["id", "name", "email", "password_hash", "tenant_id"],
    "orders": ["id", "user_id", "total", "status", "tenant_id", "created_at"],
}
MAIN = ("sqlite", "postgres", "mysql", "duckdb")
OTHERS = ("tsql", "snowflake", "bigquery", "oracle")


def policy(name: str, dialect: str) -> Policy:
    if name == "app":
        return Policy(
            dialect=dialect,
            schema=SCHEMA,
            allowed_tables=list(SCHEMA),
            denied_columns=["users.password_hash"],
            max_rows=100,
        )
    if name == "appns":  # no schema: columns unknown, denied names still known
        return Policy(
            dialect=dialect, allowed_tables=list(SCHEMA), denied_columns=["users.password_hash"]
        )
    if name == "deny":
        return Policy(dialect=dialect, denied_tables=["orders"])
    if name == "shallow":
        return Policy(dialect=dialect, max_depth=2)
    if name == "short":
        return Policy(dialect=dialect, max_length=30)
    if name == "noclamp":
        return Policy(dialect=dialect, max_rows=10, clamp_limit=False)
    if name == "tenant":
        return Policy(dialect=dialect, row_filters={"orders": "tenant_id = :tenant_id"})
    if name == "default":
        return Policy(dialect=dialect)
    raise AssertionError(name)


POLICY_FOR = {
    "empty": "default",
    "table_denied": "deny",
    "too_deep": "shallow",
    "too_long": "short",
    "limit_too_large": "noclamp",
    "missing_parameter": "tenant",
    "invalid_parameter": "tenant",
    "unresolved_column": "appns",
}

ALL = MAIN + OTHERS
# code -> {dialect or tuple of dialects: sql}
CASES: dict[str, dict[tuple[str, ...], str]] = {
    "parse_error": {ALL: "SELECT FROM WHERE ((("},
    "empty": {ALL: " ; -- nothing"},
    "statement_kind": {ALL: "DELETE FROM users"},
    "multiple_statements": {ALL: "SELECT id FROM users; SELECT id FROM orders"},
    "table_not_allowed": {ALL: "SELECT id FROM invoices"},
    "table_denied": {ALL: "SELECT id FROM orders"},
    "column_denied": {ALL: "SELECT password_hash FROM users"},
    "unknown_table": {ALL: "SELECT u.id FROM users WHERE nowhere.id = 1"},
    "unknown_column": {ALL: "SELECT nickname FROM users"},
    "unresolved_column": {
        ("duckdb",): "SELECT #4 FROM users",
        ("sqlite", "postgres", "mysql"): (
            "WITH t AS (SELECT * FROM users ORDER BY 5) SELECT id FROM t"
        ),
    },
    "double_quoted_string": {("sqlite",): "SELECT id FROM users WHERE \"zz\" = 'zz'"},
    "function_denied": {
        ("sqlite",): "SELECT load_extension('/tmp/x.so')",
        ("postgres",): "SELECT query_to_xml('SELECT 1', true, false, '')",
        ("mysql",): "SELECT LOAD_FILE('/etc/passwd')",
        ("duckdb",): "SELECT * FROM query_table('users')",
        OTHERS: "SELECT sleep(5)",
    },
    "function_not_allowed": {ALL: "SELECT my_helper(id) FROM users"},
    "table_function_not_allowed": {ALL: "SELECT * FROM my_rows(1) AS r"},
    "type_not_allowed": {("sqlite", "postgres", "duckdb"): "SELECT CAST(name AS mood) FROM users"},
    "system_catalog": {
        ("sqlite",): "SELECT * FROM pragma_table_info('users')",
        ("postgres",): "SELECT * FROM pg_show_all_settings()",
        ("mysql",): "SELECT @@version",
        ("duckdb",): "SELECT * FROM duckdb_settings()",
        OTHERS: "SELECT table_name FROM information_schema.tables",
        ("postgres", "mysql"): "SELECT table_name FROM information_schema.tables",
    },
    "constant_predicate": {ALL: "SELECT id FROM users WHERE name = 'x' OR 1 = 1"},
    "constant_union": {ALL: "SELECT id, name FROM users UNION ALL SELECT NULL, NULL"},
    "too_many_joins": {ALL: "SELECT u.id FROM users u JOIN orders o ON u.id = u.id"},
    "too_deep": {ALL: "SELECT id FROM (SELECT id FROM (SELECT id FROM (SELECT id FROM t) a) b) c"},
    "too_long": {ALL: "SELECT id, name, email FROM users WHERE id > 100"},
    "limit_too_large": {(*MAIN, "snowflake", "bigquery"): "SELECT id FROM users LIMIT 500"},
    "resource_exhaustion": {
        ("sqlite",): "SELECT length(printf('%.*c', 1000000000, 'x'))",
        ("postgres",): "SELECT length(repeat(repeat('x', 100000), 10000))",
        ("mysql",): "SELECT LENGTH(REPEAT('x', 1000000000))",
        ("duckdb",): "SELECT count(*) FROM range(10000000000)",
        OTHERS: "SELECT COUNT(*) FROM (SELECT 1 AS x) t WHERE LENGTH(REPEAT('x', 1000000000)) > 0",
    },
    "unbounded_recursion": {
        MAIN: "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT n FROM r",
    },
    "unknown_node": {
        ("mysql",): "SELECT _utf8mb4'x' AS s",
        ("postgres",): "SELECT id FROM users WHERE name IS JSON",
        ("sqlite",): "SELECT id FROM users WHERE name MATCH 'a'",
        ("duckdb",): "SELECT [x FOR x IN [1, 2]] AS l",
    },
    "comment_hidden_code": {ALL: "SELECT id FROM users WHERE name = 'admin' -- ' AND id = 1"},
    "into": {(*MAIN, "tsql"): "SELECT * INTO stolen FROM orders"},
    "locking_clause": {(*MAIN, "oracle"): "SELECT id FROM orders FOR UPDATE"},
    "data_modifying_cte": {MAIN: "WITH d AS (DELETE FROM orders RETURNING id) SELECT id FROM d"},
    "set_operation_mismatch": {ALL: "SELECT id FROM users UNION ALL SELECT id, name FROM users"},
    "order_by_position": {ALL: "SELECT id, name FROM users ORDER BY 3"},
    "missing_parameter": {ALL: "SELECT id FROM orders"},
    "invalid_parameter": {MAIN: "SELECT id FROM orders"},
    "suspicious_expression": {ALL: "SELECT id FROM users WHERE id = 1 / 0"},
    "obfuscation": {
        ("mysql",): "SELECT id FROM users WHERE name = 0x61646d696e",
        ("sqlite",): "SELECT id FROM users WHERE name = X'61646d696e'",
        ("postgres", "duckdb"): "SELECT id FROM users WHERE name = CHR(97) || CHR(100)",
    },
    "ambiguous_literal": {("mysql",): "SELECT id FROM users WHERE name = '\\' OR 1=1 -- '"},
    "variable_assignment": {("mysql",): "SELECT @a := 1 AS x"},
}
PARAMS = {"invalid_parameter": {"tenant_id": object()}}

ROWS = [
    (code, dialect, sql)
    for code, table in CASES.items()
    for dialects, sql in table.items()
    for dialect in dialects
]


@pytest.mark.parametrize(("code", "dialect", "sql"), ROWS, ids=[f"{c}-{d}" for c, d, _ in ROWS])
def test_code(code: str, dialect: str, sql: str) -> None:
    guard = SafeQuery(policy(POLICY_FOR.get(code, "app"), dialect), cache_size=0)
    verdict = guard.check(sql, PARAMS.get(code))
    assert verdict.allowed is False
    assert verdict.sql is None
    assert code in [v.code.value for v in verdict.violations], verdict.violations
    found = next(v for v in verdict.violations if v.code.value == code)
    assert found.message


def test_every_code_is_covered_on_the_main_dialects() -> None:
    assert set(CASES) == {c.value for c in ViolationCode}
    only = {"double_quoted_string": {"sqlite"}, "ambiguous_literal": {"mysql"},
            "variable_assignment": {"mysql"},
            "type_not_allowed": {"sqlite", "postgres", "duckdb"}}  # fmt: skip
    for code, table in CASES.items():
        covered = {d for dialects in table for d in dialects}
        assert covered >= only.get(code, set(MAIN)), code
