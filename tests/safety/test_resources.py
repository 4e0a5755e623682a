"""The policy-layer resource rules: sizes, spans, aggregates, cartesian products, recursion.

Each refused statement is one of the resource class of issue 19 (or a close variant);
each allowed one is an analyst's query of the same shape that must keep working.
"""

from __future__ import annotations

import pytest

from avl.safety import Policy, SafeQuery

REFUSED = [
    ("sqlite", "SELECT length(printf('%.*c', 1000000000, 'x'))", "resource_exhaustion"),
    ("sqlite", "SELECT printf('%1000000000d', 1)", "resource_exhaustion"),
    ("sqlite", "SELECT zeroblob(1000000000)", "resource_exhaustion"),
    ("sqlite", "SELECT hex(randomblob(500000000))", "resource_exhaustion"),
    ("sqlite", "SELECT zeroblob(1000 * 1000 * 1000)", "resource_exhaustion"),
    ("sqlite", "SELECT zeroblob((SELECT 2000000000))", "resource_exhaustion"),
    ("postgres", "SELECT length(repeat(repeat('x', 100000), 10000))", "resource_exhaustion"),
    ("postgres", "SELECT repeat('x', CAST('1000000000' AS int))", "resource_exhaustion"),
    ("postgres", "SELECT repeat('x', abs(-1000000000))", "resource_exhaustion"),
    ("postgres", "SELECT lpad('x', 2000000000)", "resource_exhaustion"),
    ("postgres", "SELECT format('%1000000000s', 'x')", "resource_exhaustion"),
    ("postgres", "SELECT array_fill(1, ARRAY[100000, 100000])", "resource_exhaustion"),
    ("postgres", "SELECT string_agg(x::text, '') FROM generate_series(1, 1000000) x", "resource_exhaustion"),
    ("postgres", "SELECT count(*) FROM generate_series(1, 10000000000)", "resource_exhaustion"),
    ("postgres", "SELECT count(*) FROM generate_series('2000-01-01'::date, '2100-01-01'::date, '1 second'::interval)", "resource_exhaustion"),
    ("postgres", "SELECT count(*) FROM generate_series(now(), now() + interval '100 years', interval '1 second')", "resource_exhaustion"),
    ("mysql", "SELECT LENGTH(REPEAT('x', 1000000000))", "resource_exhaustion"),
    ("mysql", "SELECT LENGTH(SPACE(1000000000))", "resource_exhaustion"),
    ("duckdb", "SELECT count(*) FROM range(10000000000)", "resource_exhaustion"),
    ("duckdb", "SELECT list_resize([1], 1000000000)", "resource_exhaustion"),
    ("duckdb", "SELECT bar(1, 0, 1, 1000000000)", "resource_exhaustion"),
    ("duckdb", "SELECT format('{:>1000000000}', 'x')", "resource_exhaustion"),
    # cartesian products, plain and disguised
    ("postgres", "SELECT count(*) FROM orders a, orders b", "too_many_joins"),
    ("postgres", "SELECT count(*) FROM orders a CROSS JOIN orders b", "too_many_joins"),
    ("postgres", "SELECT count(*) FROM orders a JOIN users b ON a.id = a.id", "too_many_joins"),
    ("postgres", "SELECT count(*) FROM orders a JOIN users b ON TRUE", "too_many_joins"),
    ("postgres", "SELECT count(*) FROM orders a, users b WHERE a.id + b.id >= 0", "too_many_joins"),
    ("postgres", "SELECT count(*) FROM orders a JOIN users b ON a.id = b.id OR a.id = a.id", "too_many_joins"),
    ("postgres", "WITH w AS (SELECT * FROM orders) SELECT count(*) FROM w a, w b", "too_many_joins"),
    ("postgres", "SELECT count(*) FROM generate_series(1, 1000000) a, generate_series(1, 1000000) b", "too_many_joins"),
    # recursion
    ("sqlite", "WITH RECURSIVE r(s) AS (SELECT 'x' UNION ALL SELECT s || s FROM r WHERE length(s) < 1000000000) SELECT max(length(s)) FROM r", "resource_exhaustion"),
    ("postgres", "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 100000000000) SELECT count(*) FROM r", "resource_exhaustion"),
    ("postgres", "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r", "unbounded_recursion"),
    ("postgres", "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n IS NOT NULL) SELECT count(*) FROM r", "unbounded_recursion"),
    ("duckdb", "WITH RECURSIVE r(s) AS (SELECT 'x' UNION ALL SELECT repeat(s, 2) FROM r WHERE length(s) < 100) SELECT s FROM r", "resource_exhaustion"),
]  # fmt: skip

ALLOWED = [
    ("sqlite", "SELECT printf('%5.2f', total) FROM orders"),
    ("sqlite", "SELECT substr(name, 1, 10) FROM users"),
    ("postgres", "SELECT repeat('*', stars) FROM orders"),
    ("postgres", "SELECT lpad(name, 20) FROM users"),
    ("postgres", "SELECT count(*) FROM generate_series(1, 1000) g"),
    ("postgres", "SELECT d FROM generate_series('2024-01-01'::date, '2024-12-31'::date, '1 day'::interval) d"),
    ("postgres", "SELECT generate_series(date_trunc('month', CURRENT_DATE) - interval '6 months', date_trunc('month', CURRENT_DATE), interval '1 month') AS m"),
    ("postgres", "SELECT string_agg(x::text, ',') FROM generate_series(1, 1000) x"),
    ("postgres", "SELECT string_agg(name, ',') FROM users"),
    ("postgres", "SELECT m, count(o.id) FROM generate_series(1, 12) m LEFT JOIN orders o ON o.month = m GROUP BY m"),
    ("postgres", "SELECT o.id, t.total FROM orders o CROSS JOIN (SELECT sum(total) AS total FROM orders) t"),
    ("postgres", "SELECT o.id, v.label FROM orders o, (VALUES (1, 'a'), (2, 'b')) v(k, label) WHERE v.k = o.status"),
    ("postgres", "SELECT u.name FROM users u, orders o WHERE o.user_id = u.id"),
    ("postgres", "SELECT u.name FROM users u JOIN orders o USING (id)"),
    ("postgres", "SELECT u.name FROM users u, LATERAL (SELECT * FROM orders o WHERE o.user_id = u.id) x"),
    ("postgres", "SELECT a.id FROM orders a, users b WHERE b.id = 1"),
    ("postgres", "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 100) SELECT n FROM r"),
    ("postgres", "WITH RECURSIVE sub(id, depth) AS (SELECT id, 0 FROM users WHERE id = 1 UNION ALL SELECT u.id, s.depth + 1 FROM users u JOIN sub s ON u.id = s.id + 1 WHERE s.depth < 5) SELECT id FROM sub"),
    ("sqlite", "WITH RECURSIVE split(word, rest) AS (SELECT '', name || ',' FROM users UNION ALL SELECT substr(rest, 1, instr(rest, ',') - 1), substr(rest, instr(rest, ',') + 1) FROM split WHERE rest <> '') SELECT word FROM split"),
    ("duckdb", "SELECT count(*) FROM range(1000)"),
    ("duckdb", "SELECT u.id, r.range FROM users u, range(3) r"),
]  # fmt: skip


def guard(dialect: str) -> SafeQuery:
    return SafeQuery(Policy(dialect=dialect), cache_size=0)


@pytest.mark.parametrize(("dialect", "sql", "code"), REFUSED, ids=[s[:50] for _, s, _ in REFUSED])
def test_resource_class_is_refused(dialect: str, sql: str, code: str) -> None:
    verdict = guard(dialect).check(sql)
    assert verdict.allowed is False
    assert code in [c.value for c in verdict.codes], verdict.violations


@pytest.mark.parametrize(("dialect", "sql"), ALLOWED, ids=[s[:50] for _, s in ALLOWED])
def test_analyst_queries_of_the_same_shape_pass(dialect: str, sql: str) -> None:
    verdict = guard(dialect).check(sql)
    assert verdict.allowed is True, verdict.violations


def test_bounds_follow_the_policy() -> None:
    sql = "SELECT count(*) FROM generate_series(1, 5000) g"
    assert guard("postgres").check(sql).allowed is True
    tight = SafeQuery(Policy(dialect="postgres", max_generated_rows=1000))
    assert [c.value for c in tight.check(sql).codes] == ["resource_exhaustion"]
    wide = SafeQuery(Policy(dialect="postgres", max_cartesian=2))
    assert wide.check("SELECT count(*) FROM orders a, orders b").allowed is True
    small = SafeQuery(Policy(dialect="postgres", max_value_length=10))
    assert {c.value for c in small.check("SELECT repeat('x', 11)").codes} == {"resource_exhaustion"}
