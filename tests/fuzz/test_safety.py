"""Garbage into Policy and SafeQuery.check: only avl errors, no hang.

Each test draws arguments from :mod:`tests.fuzz._harness` (wrong types, huge and
non-finite numbers, NUL and lone surrogates, ragged and deep containers, NumPy arrays
of every shape, objects whose dunders raise) and calls one public method through
:func:`~tests.fuzz._harness.call`, which fails on any exception that is not an
:class:`~avl.errors.AvlError` and on any call running past its alarm. When a call
fails, the stored data it could have touched is compared with a snapshot taken
before it.

Bounded for CI (derandomised, a few hundred examples per test); set
``AVL_FUZZ_EXAMPLES`` (and ``AVL_FUZZ_RANDOM=1``) for a longer, random run.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from avl.safety import Policy, SafeQuery
from tests.fuzz._harness import call, fuzz, garbage, text

# ---------------------------------------------------------------------- SafeQuery
POLICY_FIELDS = [a for a in Policy.__attrs_attrs__ if a.init]  # type: ignore[attr-defined]
DIALECTS = ["sqlite", "postgres", "mysql", "duckdb"]
GUARDS = [SafeQuery(Policy(dialect=d, max_rows=100)) for d in DIALECTS]
sql_text = st.sampled_from(
    [
        "SELECT 1",
        "SELECT * FROM t WHERE a = :p",
        "SELECT '\ud800'",
        "SELECT '\x00'",
        "SELECT " + "(" * 5000 + "1" + ")" * 5000,
        "SELECT 1; DROP TABLE t",
        "WITH RECURSIVE r AS (SELECT 1 UNION ALL SELECT 1 FROM r) SELECT * FROM r",
        "SELECT * FROM t " + "JOIN t USING (a) " * 300,
        "/*",
        "'",
        "SELECT 1e999999, -0x, 1.2.3",
    ]
) | text.map(lambda t: "SELECT " + t)


@fuzz
@given(
    kwargs=st.dictionaries(st.sampled_from([a.name for a in POLICY_FIELDS]), garbage, max_size=4)
)
def test_policy(kwargs: dict[str, Any]) -> None:
    call("Policy", Policy, **kwargs)


@fuzz
@given(
    guard=st.sampled_from(GUARDS),
    sql=sql_text | text | garbage,
    params=st.none() | garbage | st.dictionaries(text, garbage, max_size=3),
)
def test_safequery_check(guard: SafeQuery, sql: Any, params: Any) -> None:
    call("SafeQuery.check", guard.check, sql, params)
