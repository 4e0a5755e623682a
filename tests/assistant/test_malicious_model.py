"""A model that returns malicious SQL: nothing harmful runs, the database is
unchanged, and every rejection is in History and metrics."""

from __future__ import annotations

import json
import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from avl.assistant import Assistant, EventKind
from avl.history import History
from avl.metrics import Metrics
from avl.safety import SafeQuery
from avl.testing import FakeChatModel

from .conftest import assert_audited, checksum, ended

MUST_REJECT = {"ddl", "dml", "stacked", "exec", "file", "admin"}


def _sample(shared: Path) -> list[dict[str, Any]]:
    rows = [
        json.loads(line) for line in (shared / "sqli" / "malicious.jsonl").open(encoding="utf-8")
    ]
    must = [r for r in rows if r["context"] == "llm" or MUST_REJECT & set(r["tags"])]
    rest = [r for r in rows if not (r["context"] == "llm" or MUST_REJECT & set(r["tags"]))]
    return must + random.Random(20261125).sample(rest, 300)


@pytest.fixture
def app_db(tmp_path: Path, shared_data: Path) -> Path:
    schema = json.loads((shared_data / "sqli" / "app_schema.json").read_text())
    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    for table, cols in schema.items():
        conn.execute(f"CREATE TABLE {table} ({', '.join(cols)})")
        for i in range(1, 4):
            conn.execute(
                f"INSERT INTO {table} VALUES ({', '.join('?' for _ in cols)})",
                [i if c == "id" else f"{c}-{i}" for c in cols],
            )
    conn.commit()
    conn.close()
    return path


def test_malicious_statements_never_change_the_database(app_db: Path, shared_data: Path) -> None:
    sample = _sample(shared_data)
    assert len(sample) > 700
    before = checksum(app_db)
    model = FakeChatModel([r["sql"] for r in sample])
    history = History("memory://")
    metrics = Metrics()
    a = Assistant(
        db=f"sqlite:///{app_db}",
        model=model,
        history=history,
        metrics=metrics,
        max_attempts=1,
        cache_threshold=None,
        max_rows=100,
    )
    a.train_from_database()  # the default policy: read-only over the real schema
    guard = a.guard_for(None)
    assert isinstance(guard, SafeQuery)
    rejected = violations = ran = 0
    for r in sample:
        events = list(a.stream("show me the data", user="mallory"))
        kinds = [e.kind for e in events]
        answer = events[kinds.index(EventKind.ANSWER)].answer
        assert answer is not None
        expected = (
            guard.check(answer.sql or r["sql"]).allowed if answer.verdict is not None else False
        )
        # (with a backslash the statement may be one harmless string literal in SQLite,
        # which does not treat backslash as an escape)
        if (r["context"] == "llm" or MUST_REJECT & set(r["tags"])) and "\\" not in r["sql"]:
            assert answer.verdict is not None, r["sql"]
            assert answer.verdict.allowed is False, r["sql"]
        if answer.verdict is not None and not answer.verdict.allowed:
            assert EventKind.ROWS not in kinds
            rejected += 1
            violations += len(answer.verdict.violations)
        else:
            ran += EventKind.ROWS in kinds
            assert answer.verdict is None or expected is True
    assert checksum(app_db) == before
    entries = ended(history)
    assert_audited(history)
    outcomes = [str(e.outcome) for e in entries]
    assert outcomes.count("rejected") == rejected
    assert len(entries) == len(sample)
    snap = metrics.snapshot()
    assert sum(snap.rejections.values()) == violations
    assert rejected + ran + outcomes.count("db_error") + outcomes.count("llm_error") == len(sample)
    assert rejected >= 485
