"""Soundness of ``verify`` against real databases.

Hypothesis splices strings built from quote, backslash, comment and keyword
characters into a statement the way legacy code does. Whenever ``verify`` accepts
the result, the real database must run it as the template with exactly the values
that ``verify`` returned: one row, the same columns, the same values.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avl.errors import UnsafeQueryError
from avl.safety._template import template

TEMPLATE = "SELECT :a AS a, :b AS b"
_pieces = st.sampled_from(
    ["'", "''", '"', "\\", "\\'", ";", "--", " -- ", "/*", "*/", "#", "/*!", " ", "\n",
     "OR", " OR 1=1", "1", "a", "x", "é", "😀", ",", "(", ")", "||", "AS", "SELECT"]
)  # fmt: skip
_payloads = st.lists(_pieces, max_size=8).map("".join)


def _spliced(quote: str, a: str, b: str) -> str:
    return f"SELECT {quote}{a}{quote} AS a, {quote}{b}{quote} AS b"


def _check(cursor: Any, dialect: str, sql: str, *, exact: bool = True) -> bool:
    """Run ``sql`` if verify accepts it; assert the database saw those values.

    With ``exact=False`` (a server setting under which backslashes read differently)
    only the shape is checked: one row of the same two columns, so no value escaped
    its literal.
    """
    t = template(TEMPLATE, dialect=dialect)
    try:
        values = t.verify(sql)
    except UnsafeQueryError:
        return False
    cursor.execute(sql)
    rows = [tuple(row) for row in cursor.fetchall()]
    assert [d[0].lower() for d in cursor.description] == ["a", "b"]
    assert len(rows) == 1
    if exact or "\\" not in sql:
        assert rows == [(values["a"], values["b"])]
    return True


@pytest.fixture(scope="module")
def sqlite_cursor() -> Iterator[sqlite3.Cursor]:
    conn = sqlite3.connect(":memory:")
    yield conn.cursor()
    conn.close()


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(a=_payloads, b=_payloads)
def test_what_verify_accepts_sqlite_runs_as_those_values(
    sqlite_cursor: sqlite3.Cursor, a: str, b: str
) -> None:
    _check(sqlite_cursor, "sqlite", _spliced("'", a, b))


@pytest.fixture(scope="module")
def pg_cursor(postgres_dsn: str) -> Iterator[Any]:
    import psycopg

    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("SET escape_string_warning = off")
        yield conn.cursor()


@pytest.mark.postgres
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(a=_payloads, b=_payloads, off=st.booleans())
def test_what_verify_accepts_postgres_runs_as_those_values(
    pg_cursor: Any, a: str, b: str, off: bool
) -> None:
    pg_cursor.execute(f"SET standard_conforming_strings = {'off' if off else 'on'}")
    try:
        _check(pg_cursor, "postgres", _spliced("'", a, b), exact=not off)
    finally:
        pg_cursor.execute("SET standard_conforming_strings = on")


@pytest.fixture(scope="module")
def mysql_cursor(mysql_url: str) -> Iterator[Any]:
    from tests.safety.test_template_corpus import _mysql_connect

    conn = _mysql_connect(mysql_url)
    try:
        yield conn.cursor()
    finally:
        conn.close()


@pytest.mark.mysql
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(a=_payloads, b=_payloads, quote=st.sampled_from(["'", '"']), nbe=st.booleans())
def test_what_verify_accepts_mariadb_runs_as_those_values(
    mysql_cursor: Any, a: str, b: str, quote: str, nbe: bool
) -> None:
    mysql_cursor.execute("SET SESSION sql_mode = DEFAULT")
    if nbe:
        mysql_cursor.execute("SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')")
    try:
        _check(mysql_cursor, "mysql", _spliced(quote, a, b), exact=not nbe)
    finally:
        mysql_cursor.execute("SET SESSION sql_mode = DEFAULT")


def test_sqlite_soundness_examples() -> None:
    """Fixed cases, so the property above is known to hit both branches."""
    conn = sqlite3.connect(":memory:")
    try:
        cur = conn.cursor()
        assert _check(cur, "sqlite", _spliced("'", "O''Brien", "a\\b")) is True
        assert _check(cur, "sqlite", _spliced("'", "x' OR '1'='1", "y")) is False
        assert _check(cur, "sqlite", _spliced("'", "x", "y' -- ")) is False
        # SQLite has no backslash escapes: '\''' is the two-character string \'
        assert _check(cur, "sqlite", _spliced("'", "\\''", "y")) is True
        assert _check(cur, "sqlite", _spliced("'", "a'", "b")) is False
    finally:
        conn.close()


# ---------------------------------------------------------------- render -> real database

_text = st.text(max_size=40)
_numbers = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
)


def _echo(cursor: Any, dialect: str, value: object) -> list[tuple[Any, ...]]:
    cursor.execute(template("SELECT :v AS v", dialect=dialect).render(v=value))
    return [tuple(row) for row in cursor.fetchall()]


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(value=_text)
def test_any_text_renders_and_reads_back_from_sqlite(
    sqlite_cursor: sqlite3.Cursor, value: str
) -> None:
    value = value.replace("\x00", "")
    assert _echo(sqlite_cursor, "sqlite", value) == [(value,)]


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(value=_numbers)
def test_any_number_renders_and_reads_back_from_sqlite(
    sqlite_cursor: sqlite3.Cursor, value: float
) -> None:
    [(got,)] = _echo(sqlite_cursor, "sqlite", value)
    assert type(got) is type(value)
    if isinstance(value, int):
        assert got == value
    else:
        # SQLite's own text-to-double conversion (3.40) can miss the nearest double
        # by one unit in the last place for some values (mostly below 1e-290).
        assert got == value or math.isclose(got, value, rel_tol=4e-16)


@pytest.mark.postgres
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(value=_text, off=st.booleans())
def test_any_text_renders_and_reads_back_from_postgres(
    pg_cursor: Any, value: str, off: bool
) -> None:
    value = value.replace("\x00", "")
    pg_cursor.execute(f"SET standard_conforming_strings = {'off' if off else 'on'}")
    try:
        assert _echo(pg_cursor, "postgres", value) == [(value,)]
    finally:
        pg_cursor.execute("SET standard_conforming_strings = on")


@pytest.mark.mysql
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(value=_text)
def test_any_text_renders_and_reads_back_from_mariadb(mysql_cursor: Any, value: str) -> None:
    assert _echo(mysql_cursor, "mysql", value) == [(value,)]
