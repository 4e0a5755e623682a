"""Hypothesis: calls of allowed functions are allowed on a benign schema.

A query built from any allowed function of the dialect's list, with any number of
column arguments, in any clause, is never refused for its functions (a wrong argument
count may be a parse error: sqlglot checks arity). And every allowed name is allowed
with some argument count (except the few forms sqlglot cannot parse, listed here).
A rewritten benign query checked again is allowed and unchanged.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avl.safety import Policy, SafeQuery
from avl.safety.allowlists import dialect_modules, entries

SCHEMA = {"t": ["a", "b", "c", "d", "tenant_id"], "u": ["a", "e"]}
DIALECTS = ("sqlite", "postgres", "mysql", "duckdb", "bigquery", "snowflake", "tsql")
GUARDS = {
    d: SafeQuery(
        Policy(
            dialect=d,
            schema=SCHEMA,
            allowed_tables=list(SCHEMA),
            max_rows=100,
            row_filters={"t": "tenant_id = :tenant"},
        ),
        cache_size=0,
    )
    for d in DIALECTS
}
FUNCTIONS = {
    d: sorted(
        (e.name, e.kind) for e in entries(dialect_modules()[d].FUNCTIONS) if e.kind != "syntax"
    )
    for d in DIALECTS
}
# (type_not_allowed is left out: a column given where a type is expected, as in
# T-SQL's TRY_CONVERT(a), is read as an unknown type)
FUNCTION_CODES = {"function_not_allowed", "function_denied", "system_catalog", "unknown_node"}
# forms sqlglot 30 cannot parse (the engine would take them): PostgreSQL's 3-argument
# CONVERT, DuckDB's APPLY, MySQL's and BigQuery's DATE_ADD-style calls needing INTERVAL
UNPARSEABLE = {
    ("postgres", "convert"),
    ("duckdb", "apply"),
    ("mysql", "date_add"),
    ("mysql", "date_sub"),
    ("bigquery", "datetime_add"),
    ("bigquery", "datetime_sub"),
    ("bigquery", "timestamp_add"),
    ("bigquery", "format_datetime"),
}


@st.composite
def calls(draw: st.DrawFn) -> tuple[str, str, str]:
    dialect = draw(st.sampled_from(DIALECTS))
    name, kind = draw(st.sampled_from(FUNCTIONS[dialect]))
    args = ", ".join(draw(st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=3)))
    call = f"{name}({args})"
    if kind == "window":
        call += " OVER (ORDER BY a)"
    shape = draw(st.sampled_from(["select", "where", "order", "cte", "join"]))
    if shape == "select":
        sql = f"SELECT {call} AS x FROM t"
    elif shape == "where":
        sql = f"SELECT a FROM t WHERE {call} IS NOT NULL"
    elif shape == "order":
        sql = f"SELECT a FROM t ORDER BY {call}"
    elif shape == "cte":
        sql = f"WITH w AS (SELECT {call} AS x, a FROM t) SELECT x FROM w"
    else:
        sql = f"SELECT t.a, {call} AS x FROM t JOIN u ON u.a = t.a"
    return dialect, name, sql


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=calls())
def test_allowed_functions_are_never_refused_for_being_functions(
    case: tuple[str, str, str],
) -> None:
    dialect, name, sql = case
    verdict = GUARDS[dialect].check(sql, {"tenant": 3})
    # (a wrong argument count can also make the rewrite unwritable: not a function refusal)
    codes = {
        v.code.value
        for v in verdict.violations
        if not v.message.startswith("the rewritten statement cannot be written")
    }
    assert not codes & FUNCTION_CODES, (dialect, name, sql, verdict.violations)
    if verdict.allowed and dialect != "tsql":
        # (T-SQL's TOP makes sqlglot regenerate the statement, and it drops the extra
        # arguments of a call with the wrong argument count: no such call runs anyway)
        assert verdict.sql is not None
        again = GUARDS[dialect].check(verdict.sql, {"tenant": 3})
        assert again.allowed, (verdict.sql, again.violations)
        assert again.sql == verdict.sql


def test_every_allowed_name_is_allowed_with_some_arguments() -> None:
    refused = []
    for dialect in DIALECTS:
        guard = GUARDS[dialect]
        for name, kind in FUNCTIONS[dialect]:
            over = " OVER (ORDER BY a)" if kind == "window" else ""
            forms = [f"SELECT {name}({args}){over} AS x FROM t" for args in
                     ("", "a", "a, b", "a, b, c", "a, b, c, d")]  # fmt: skip
            if not any(guard.check(sql, {"tenant": 1}).allowed for sql in forms):
                refused.append((dialect, name))
    assert set(refused) <= UNPARSEABLE, sorted(set(refused) - UNPARSEABLE)
