"""Tamper tests: edit, delete, insert and reorder rows directly in the database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from avl.history import Entry, History, ProblemKind, Sealer
from avl.testing import FakeClock
from tests.history.conftest import Target, make_target


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    with make_target(request.param, request, tmp_path) as t:
        yield t


@pytest.fixture
def chain(target: Target) -> Iterator[tuple[History, list[Entry]]]:
    h = History(target.url, clock=FakeClock())
    stored = h.record_many(Entry(user="u", question=f"q{i}", sql=f"SELECT {i}") for i in range(6))
    assert h.verify().ok is True
    yield h, stored
    h.close()


def test_edited_sql_is_altered(target: Target, chain: tuple[History, list[Entry]]) -> None:
    h, stored = chain
    target.sql("UPDATE {p}_entries SET sql = 'DROP TABLE users' WHERE seq = 3")
    report = h.verify()
    assert report.ok is False
    assert report.problem is ProblemKind.ALTERED
    assert (report.seq, report.entry_id, report.checked) == (3, stored[2].id, 2)
    assert "altered" in report.message


def test_edited_time_is_altered(target: Target, chain: tuple[History, list[Entry]]) -> None:
    h, stored = chain
    target.sql("UPDATE {p}_entries SET time = time + 1 WHERE seq = 5")
    report = h.verify()
    assert (report.problem, report.entry_id) == (ProblemKind.ALTERED, stored[4].id)


def test_deleted_row(target: Target, chain: tuple[History, list[Entry]]) -> None:
    h, stored = chain
    target.sql("DELETE FROM {p}_entries WHERE seq = 3")
    report = h.verify()
    assert report.problem is ProblemKind.DELETED
    assert (report.seq, report.entry_id) == (4, stored[3].id)
    assert "1 entry deleted" in report.message


def test_deleted_tail(target: Target, chain: tuple[History, list[Entry]]) -> None:
    h, _ = chain
    target.sql("DELETE FROM {p}_entries WHERE seq >= 5")
    report = h.verify()
    assert (report.problem, report.seq, report.checked) == (ProblemKind.DELETED, 5, 4)


def test_inserted_forged_row(target: Target, chain: tuple[History, list[Entry]]) -> None:
    h, stored = chain
    # Make room at seq 3 (two steps to keep the primary key unique), then forge a row.
    target.sql("UPDATE {p}_entries SET seq = seq + 1000 WHERE seq >= 3")
    target.sql("UPDATE {p}_entries SET seq = seq - 999 WHERE seq >= 1000")
    cols = 'seq, id, time, "user", role, session, question, sql, violations, outcome, error, timings, model, tokens_in, tokens_out, tags, prev_hash, hash'
    tags = "'[]'" if target.kind == "sqlite" else "'{}'"
    target.sql(
        f"INSERT INTO {{p}}_entries({cols}) VALUES (3, 'forged', 1.0, 'mallory', '', '', "
        f"'innocent', 'SELECT 1', '[]', 'ok', '', '{{}}', '', 0, 0, {tags}, ?, ?)",
        (stored[1].hash, "f" * 64),
    )
    report = h.verify()
    assert (report.problem, report.seq, report.entry_id) == (ProblemKind.INSERTED, 3, "forged")


def test_appended_row_beyond_head(target: Target, chain: tuple[History, list[Entry]]) -> None:
    h, stored = chain
    # A well-formed SHA-256 row appended without moving the head is still caught.
    rec = {
        "id": "late",
        "time": 1.0,
        "user": "m",
        "role": "",
        "session": "",
        "question": "q",
        "sql": "s",
        "allowed": None,
        "violations": [],
        "outcome": "ok",
        "error": "",
        "row_count": None,
        "timings": {},
        "model": "",
        "tokens_in": 0,
        "tokens_out": 0,
        "cost_usd": None,
        "tags": [],
    }
    digest = Sealer().seal(rec, seq=7, prev_hash=str(stored[-1].hash))
    tags = "'[]'" if target.kind == "sqlite" else "'{}'"
    target.sql(
        'INSERT INTO {p}_entries(seq, id, time, "user", role, session, question, sql, '
        "violations, outcome, error, timings, model, tokens_in, tokens_out, tags, prev_hash, "
        f"hash) VALUES (7, 'late', 1.0, 'm', '', '', 'q', 's', '[]', 'ok', '', '{{}}', '', 0, 0, "
        f"{tags}, ?, ?)",
        (stored[-1].hash, digest),
    )
    report = h.verify()
    assert (report.problem, report.seq, report.entry_id) == (ProblemKind.INSERTED, 7, "late")


def test_reordered_rows(target: Target, chain: tuple[History, list[Entry]]) -> None:
    h, stored = chain
    target.sql("UPDATE {p}_entries SET seq = -1 WHERE seq = 3")
    target.sql("UPDATE {p}_entries SET seq = 3 WHERE seq = 4")
    target.sql("UPDATE {p}_entries SET seq = 4 WHERE seq = -1")
    report = h.verify()
    assert (report.problem, report.seq, report.entry_id) == (
        ProblemKind.REORDERED,
        3,
        stored[3].id,
    )


def test_reordered_far_apart(target: Target, chain: tuple[History, list[Entry]]) -> None:
    h, stored = chain
    target.sql("UPDATE {p}_entries SET seq = -1 WHERE seq = 2")
    target.sql("UPDATE {p}_entries SET seq = 2 WHERE seq = 5")
    target.sql("UPDATE {p}_entries SET seq = 5 WHERE seq = -1")
    report = h.verify()
    assert (report.problem, report.seq, report.entry_id) == (
        ProblemKind.REORDERED,
        2,
        stored[4].id,
    )


def test_rehashed_edit_is_caught_only_with_hmac(target: Target) -> None:
    """An attacker who recomputes plain SHA-256 hashes defeats a keyless chain, not HMAC."""
    h = History(target.url, clock=FakeClock(), hmac_key=b"k" * 32)
    stored = h.record_many(Entry(question=f"q{i}", sql=f"SELECT {i}") for i in range(3))
    rows = list(stored)
    # Rewrite entry 2's SQL and recompute the whole chain with plain SHA-256.
    forged = Sealer()
    prev = "0" * 64
    for e in rows:
        rec = e.to_dict()
        if e.seq == 2:
            rec["sql"] = "DROP TABLE users"
        content = {k: rec[k] for k in rec if k not in ("seq", "prev_hash", "hash")}
        digest = forged.seal(content, seq=int(e.seq or 0), prev_hash=prev)
        target.sql(
            "UPDATE {p}_entries SET sql = ?, prev_hash = ?, hash = ? WHERE seq = ?",
            (rec["sql"], prev, digest, e.seq),
        )
        prev = digest
    target.sql("UPDATE {p}_meta SET hash = ? WHERE name = 'head'", (prev,))
    assert History(h.backend).verify().ok is True  # keyless verification is fooled
    report = h.verify()
    assert (report.problem, report.seq) == (ProblemKind.ALTERED, 1)
    h.close()


def test_forged_checkpoint_is_caught(target: Target) -> None:
    clock = FakeClock()
    h = History(target.url, clock=clock, hmac_key="key")
    for i in range(4):
        h.record(Entry(question=f"q{i}"))
        clock.advance(10)
    assert h.prune(older_than=15) == 3
    assert h.verify().ok is True
    target.sql("UPDATE {p}_meta SET seq = 2 WHERE name = 'checkpoint'")
    report = h.verify()
    assert report.problem is ProblemKind.ALTERED
    assert "checkpoint" in report.message
    h.close()
