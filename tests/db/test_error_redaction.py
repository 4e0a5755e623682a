"""A database's error text reaches a caller without the stored values it quotes.

PostgreSQL's ``invalid input syntax for type integer: "hunter2"`` and DuckDB's
``Could not convert string 'hunter2' to INT32`` quote a stored value; ``DETAIL`` and
``CONTEXT`` lines quote more. ``Database`` makes every error safe in one place
(``avl/assistant/_db/_redact.py``, called by ``Database._translate``), so the
Assistant's answer and events, the history, the web problem details, MCP tool errors
and the CLI carry the same text. The names the caller wrote stay (a model repairs
from them), and the error's code is kept on ``QueryError.code``.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from avl.assistant import Assistant
from avl.assistant._db._redact import safe_message
from avl.errors import QueryError
from avl.history import History
from avl.safety import Policy
from avl.testing import FakeChatModel
from tests.conftest import need_module

SECRET = "hunter2secret"


@pytest.mark.parametrize(
    ("text", "sql", "expected"),
    [
        (
            'invalid input syntax for type integer: "hunter2"\nLINE 1: SELECT CAST(notes AS int)',
            "SELECT CAST(notes AS int) FROM t",
            'invalid input syntax for type integer: "<value>"',
        ),
        (
            "Conversion Error: Could not convert string 'hunter2' to INT32",
            "SELECT CAST(notes AS INT) FROM t",
            "Conversion Error: Could not convert string '<value>' to INT32",
        ),
        (
            'invalid input syntax for type json\nDETAIL:  Token "hunter2" is invalid.\n'
            "CONTEXT:  JSON data, line 1: hunter2",
            "SELECT notes::json FROM t",
            "invalid input syntax for type json",
        ),
        ('column "nme" does not exist', "SELECT nme FROM t", 'column "nme" does not exist'),
        (
            "Unknown column 'nme' in 'field list'",
            "SELECT nme FROM t",
            "Unknown column 'nme' in 'field list'",
        ),
        (
            "Table 'test.nope' doesn't exist",
            "SELECT 1 FROM nope",
            "Table 'test.nope' doesn't exist",
        ),
        (
            'relation "public.x" does not exist',
            "SELECT 1 FROM public.x",
            'relation "public.x" does not exist',
        ),
        (
            'value "99999999999" is out of range for type integer',
            "SELECT CAST('99999999999' AS int)",
            'value "99999999999" is out of range for type integer',
        ),
        ("malformed JSON", "SELECT json(notes) FROM t", "malformed JSON"),
        ("no such column: nme", "SELECT nme FROM t", "no such column: nme"),
        # a quote the driver cut hides the rest
        ("bad value: 'hunter2 and more", "SELECT 1", "bad value: '<value>"),
        # a value that merely contains a word of the SQL is still a value
        (
            'invalid input syntax: "notes hunter2"',
            "SELECT notes FROM t",
            'invalid input syntax: "<value>"',
        ),
    ],
)
def test_safe_message(text: str, sql: str, expected: str) -> None:
    assert safe_message(text, sql) == expected


def _database_error(db: object, sql: str) -> QueryError:
    with pytest.raises(QueryError) as info:
        db.execute(sql)  # type: ignore[attr-defined]
    return info.value


def test_postgres_cast_error_is_redacted(postgres_dsn: str) -> None:
    need_module("psycopg")
    import psycopg

    from avl.assistant._db import Database

    table = f"er_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as con:
        con.execute(f"CREATE TABLE {table} (id INT, notes TEXT)")
        con.execute(f"INSERT INTO {table} VALUES (1, '{SECRET}')")
        try:
            with Database(postgres_dsn) as db:
                for sql in (
                    f"SELECT CAST(notes AS int) FROM {table}",
                    f"SELECT notes::json FROM {table}",
                    f"SELECT notes::date FROM {table}",
                    f"SELECT 1 / (length(notes) - {len(SECRET)}) FROM {table}",
                ):
                    error = _database_error(db, sql)
                    assert SECRET not in str(error), str(error)
                    assert len(error.code) == 5  # SQLSTATE
                    assert error.__cause__ is not None  # the driver's own error, for logs
                    assert SECRET in str(error.__cause__) or "division" in str(error)
                missing = _database_error(db, f"SELECT nme FROM {table}")
                assert 'column "nme" does not exist' in str(missing)
                assert missing.code == "42703"
        finally:
            con.execute(f"DROP TABLE IF EXISTS {table}")


def test_duckdb_conversion_error_is_redacted(tmp_path: Path) -> None:
    duckdb = need_module("duckdb")
    from avl.assistant._db import Database

    path = tmp_path / "e.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE t (id INT, notes VARCHAR)")
    con.execute(f"INSERT INTO t VALUES (1, '{SECRET}')")
    con.close()
    with Database(f"duckdb:///{path}") as db:
        error = _database_error(db, "SELECT CAST(notes AS INT) FROM t")
        assert SECRET not in str(error)
        assert "Conversion Error" in str(error)
        assert error.code.endswith("Exception")


def test_mariadb_errors_keep_the_callers_names(mysql_url: str) -> None:
    need_module("pymysql")
    from avl.assistant._db import Database

    with Database(mysql_url) as db:
        error = _database_error(db, "SELECT nme FROM dual")
        assert "Unknown column 'nme' in '" in str(error)  # 'field list' or 'SELECT'
        assert "<value>" not in str(error)
        assert not str(error).split(": ", 1)[1].startswith("(")  # not the driver's tuple
        assert error.code in ("1054", "42S22")  # errno, or the SQLSTATE the driver gives


def test_assistant_answer_history_and_events_carry_the_redacted_text(
    postgres_dsn: str,
) -> None:
    need_module("psycopg")
    import psycopg

    table = f"er_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as con:
        con.execute(f"CREATE TABLE {table} (id INT, notes TEXT)")
        con.execute(f"INSERT INTO {table} VALUES (1, '{SECRET}')")
        try:
            bad = f"SELECT CAST(notes AS int) FROM {table}"
            model = FakeChatModel([bad] * 4)
            history = History("memory://")
            a = Assistant(
                db=postgres_dsn,
                model=model,
                policy=Policy(dialect="postgres", allowed_tables=[table]),
                history=history,
                cache_threshold=None,
                max_attempts=2,
            )
            answer = a.ask("notes as numbers?", user="ann")
            assert answer.error
            assert "<value>" in answer.error
            events = list(a.stream("notes as numbers again?", user="ann"))
            seen = repr(answer.to_dict()) + repr([e.data for e in events])
            seen += repr([e.error for e in history.search().entries])
            # the repair prompt the model got after the first failure
            seen += repr([m.content for call in model.calls for m in call.messages])
            assert SECRET not in seen
        finally:
            con.execute(f"DROP TABLE IF EXISTS {table}")
