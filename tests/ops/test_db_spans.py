"""Database calls are client spans (system, operation, rows; SQL text only when asked)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from avl.assistant import Database
from avl.errors import QueryError
from avl.metrics import start_span
from tests.conftest import need_module

need_module("opentelemetry.sdk.trace")
from opentelemetry.trace import SpanKind, StatusCode  # noqa: E402


@pytest.fixture
def db(tmp_path: Path) -> Any:
    path = tmp_path / "shop.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT)")
    con.executemany("INSERT INTO customers VALUES (?, ?)", [(1, "a@x.io"), (2, "b@x.io")])
    con.commit()
    con.close()
    d = Database(f"sqlite:///{path}")
    yield d
    d.close()


def test_a_query_is_a_client_span_under_the_stage(
    span_exporter: Any, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AVL_OTEL_RECORD_SQL", raising=False)
    with start_span("avl.execute"):
        db.execute("SELECT email FROM customers WHERE email = 'a@x.io'")
    query, stage = span_exporter.get_finished_spans()
    assert query.name == "SELECT"
    assert query.kind is SpanKind.CLIENT
    assert query.instrumentation_scope.name == "avl.db"
    assert query.parent.span_id == stage.context.span_id
    assert dict(query.attributes) == {
        "db.system.name": "sqlite",
        "db.operation.name": "SELECT",
        "db.response.returned_rows": 1,
    }


def test_sql_text_only_when_configured_and_without_values(
    span_exporter: Any, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AVL_OTEL_RECORD_SQL", "1")
    db.execute("SELECT email FROM customers WHERE email = 'a@x.io'")
    (query,) = span_exporter.get_finished_spans()
    assert query.attributes["db.query.text"] == "SELECT email FROM customers WHERE email = ?"


def test_a_failed_query_marks_its_span(span_exporter: Any, db: Any) -> None:
    with pytest.raises(QueryError):
        db.execute("SELECT nope FROM customers")
    (query,) = span_exporter.get_finished_spans()
    assert query.status.status_code is StatusCode.ERROR
    assert query.attributes["error.type"] == "QueryError"


def test_pool_stats(db: Any) -> None:
    assert db.pool_stats() == {"size": db.pool_size, "in_use": 0}


def test_no_span_without_a_provider(db: Any) -> None:
    assert db.execute("SELECT count(*) FROM customers").rows == ((2,),)
