"""The execution-side limits are in force on each engine (the figures of what they
hold against are in ``benches/bench_db_resources.py``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from avl.assistant import Database
from avl.assistant._db._sqlite import _ctypes_limit, printf_widths, set_length_limit
from avl.errors import QueryError
from tests.db.conftest import Backend, make_backend

NATIVE = ["sqlite", "postgres", "postgres-conn", "mariadb", "mariadb-conn", "duckdb", "sa-postgres"]


@pytest.fixture(params=NATIVE)
def native(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return make_backend(request.param, request, tmp_path)


def test_session_limits_are_set_for_each_statement(native: Backend) -> None:
    db = native.open(timeout_s=7, memory_mb=128, max_value_bytes=1 << 20)
    if native.dialect == "postgres":
        got = db.execute(
            "SELECT current_setting('statement_timeout'), current_setting('work_mem'), "
            "current_setting('max_parallel_workers_per_gather'), "
            "current_setting('transaction_read_only'), current_setting('temp_file_limit')"
        ).rows
        # the test role is a superuser here, so temp_file_limit is set too
        assert got == (("7s", "32MB", "0", "on", "1GB"),)
    elif native.dialect == "mysql":
        got = db.execute(
            "SELECT @@max_statement_time, @@tmp_table_size, @@max_heap_table_size, "
            "@@group_concat_max_len, @@tx_read_only"
        ).rows
        assert [tuple(float(x) for x in r) for r in got] == [
            (7.0, 32 * 2**20, 32 * 2**20, 2**20, 1.0)
        ]
    elif native.dialect == "duckdb":
        got = db.execute(
            "SELECT current_setting('memory_limit'), current_setting('enable_external_access'), "
            "current_setting('lock_configuration'), current_setting('access_mode')"
        ).rows
        assert got == (("61.0 MiB", False, True, "read_only"),)
    # one value longer than max_value_bytes is refused before it is built
    big = {
        "sqlite": "SELECT length(zeroblob(2000000))",
        "postgres": None,  # PostgreSQL has no such setting: SafeQuery's layer
        "mysql": "SELECT length(group_concat(repeat('x', 1000))) FROM seq_1_to_5000",
        "duckdb": "SELECT length(repeat('x', 2000000))",
    }[native.dialect]
    if native.dialect == "mysql":
        assert db.execute(big).rows == ((1 << 20,),)  # cut at group_concat_max_len
    elif big is not None:
        with pytest.raises(QueryError, match=r"too big|value limit"):
            db.execute(big)
    db.close()


def test_sqlite_printf_widths_are_bounded(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    sqlite3.connect(path).close()
    db = Database(f"sqlite:///{path}", max_value_bytes=1000)
    assert db.execute("SELECT printf('%5.1f|%-4s|%03d', 2.5, 'ab', 7)").rows == (
        ("  2.5|ab  |007",),
    )
    assert db.execute("SELECT format('%q', 'it''s')").rows == (("it''s",),)
    for sql in (
        "SELECT printf('%.*c', 1000000000, 'x')",
        "SELECT printf('%2000d', 1)",
        "SELECT format('%*s', 5000, 'x')",
    ):
        with pytest.raises(QueryError):
            db.execute(sql)
    db.close()


def test_printf_widths_reads_stars_and_literals() -> None:
    assert printf_widths("%.*c", [10**9, "x"]) == [10**9]
    assert printf_widths("%5d %-10.3f %%", [1, 2.0]) == [5, 10, 3]
    assert printf_widths("%*.*s|%d", [3, 400, "a", 1]) == [3, 400]
    assert printf_widths("no conversions", []) == []


def test_the_ctypes_fallback_sets_the_same_limit() -> None:
    """Python 3.10 has no Connection.setlimit: sqlite3_limit through ctypes does it."""
    conn = sqlite3.connect(":memory:")
    before = set_length_limit(conn, 5000)
    assert _ctypes_limit(conn, 0, -1) == 5000  # -1 reads the limit
    assert _ctypes_limit(conn, 0, 100) == 5000
    with pytest.raises(sqlite3.DataError):
        conn.execute("SELECT zeroblob(101)").fetchone()
    set_length_limit(conn, before)
    conn.close()


def test_duckdb_guards_cannot_be_stepped_around(tmp_path: Path) -> None:
    import duckdb

    path = tmp_path / "g.duckdb"
    duckdb.connect(str(path)).close()
    db = Database(f"duckdb:///{path}", pool_size=1)
    for sql in (
        # EXPLAIN ANALYZE runs what it explains: it could replace the guard macro
        "EXPLAIN ANALYZE CREATE OR REPLACE TEMP MACRO repeat(s, k) AS s",
        "/* c */ EXPLAIN ANALYZE CREATE TEMP TABLE x AS SELECT 1",
        # a qualified name reaches the built-in past the macro
        "SELECT length(system.main.repeat('x', 100000000))",
        "SELECT len(main.range(1000000000))",
        "SELECT length(repeat('x', 100000000))",
        "SELECT length(lpad('x', 100000000, 'y'))",
    ):
        with pytest.raises(QueryError):
            db.execute(sql)
    assert db.execute("EXPLAIN ANALYZE SELECT repeat('ab', 2)").rows[0][0] == "analyzed_plan"
    assert db.execute("SELECT repeat('ab', 2), range(3)").rows == (("abab", [0, 1, 2]),)
    db.close()
