"""Anchors: values, sinks, periodic anchoring, and rollbacks that only an anchor catches."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from avl.errors import BackendError, ConfigError, CorruptionError, InvalidInputError, NotFoundError
from avl.history import (
    Anchor,
    CallbackAnchorSink,
    Entry,
    FileAnchorSink,
    History,
    HistoryAnchorSink,
    LogAnchorSink,
    ProblemKind,
    read_anchors,
)
from avl.history._chain import CONTENT_FIELDS
from avl.testing import FakeClock
from tests.history.conftest import Target, make_target

H = "ab" * 32
PG_COLS = "seq, " + ", ".join(f'"{c}"' for c in CONTENT_FIELDS) + ", prev_hash, hash"


# ------------------------------------------------------------------ the value
def test_anchor_json_round_trip_and_format() -> None:
    a = Anchor(seq=7, head_hash=H, time=1_700_000_000.25, mac="cd" * 32)
    data = json.loads(a.to_json())
    assert data == {
        "format": "avl.history.anchor/1",
        "seq": 7,
        "head_hash": H,
        "time": 1_700_000_000.25,
        "mac": "cd" * 32,
    }
    assert Anchor.from_json(a.to_json()) == a
    assert Anchor.from_json(a.to_json().encode()) == a
    assert Anchor.from_dict(a.to_dict()) == a


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"seq": -1}, "seq"),
        ({"seq": True}, "seq"),
        ({"seq": 1.0}, "seq"),
        ({"head_hash": "AB" * 32}, "head_hash"),
        ({"head_hash": "ab"}, "head_hash"),
        ({"head_hash": b"ab" * 32}, "head_hash"),
        ({"time": float("nan")}, "time"),
        ({"time": "now"}, "time"),
        ({"mac": "zz"}, "mac"),
    ],
)
def test_anchor_validates(kwargs: dict[str, object], match: str) -> None:
    values: dict[str, object] = {"seq": 1, "head_hash": H, "time": 1.0, **kwargs}
    with pytest.raises(InvalidInputError, match=match):
        Anchor(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "[]",
        "{}",
        '{"format": "other"}',
        "not json",
        '{"format":"avl.history.anchor/1"}',
        "[" * 100_000,
    ],
)
def test_from_json_refuses_what_is_not_an_anchor(text: str) -> None:
    with pytest.raises(InvalidInputError):
        Anchor.from_json(text)


# ------------------------------------------------------------------ sinks
def test_file_sink_appends_and_reads_back(tmp_path: Path) -> None:
    sink = FileAnchorSink(tmp_path / "anchors.jsonl")
    with pytest.raises(NotFoundError):
        sink.latest()
    anchors = [Anchor(seq=i, head_hash=H, time=float(i)) for i in range(3)]
    for a in anchors:
        sink.write(a)
    assert read_anchors(tmp_path / "anchors.jsonl") == anchors
    assert sink.latest() == anchors[-1]


def test_file_sink_damage_is_named(tmp_path: Path) -> None:
    path = tmp_path / "anchors.jsonl"
    sink = FileAnchorSink(path)
    for i in range(4):
        sink.write(Anchor(seq=i, head_hash=H, time=float(i)))
    lines = path.read_bytes().split(b"\n")
    offset = len(lines[0]) + 1
    lines[1] = lines[1].replace(b'"seq":1', b'"seq":X')
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(CorruptionError) as info:
        read_anchors(path)
    err = info.value
    assert (err.path, err.offset, err.records_affected) == (str(path), offset, 3)
    assert "line 2" in str(err)
    # a torn last line (no newline) is damage too, never skipped
    path.write_bytes(b"\n".join(path.read_bytes().split(b"\n")[:1]) + b"\n" + b'{"format":')
    with pytest.raises(CorruptionError, match="line 2"):
        read_anchors(path)


def test_single_anchor_file_as_the_cli_prints_it(tmp_path: Path) -> None:
    a = Anchor(seq=3, head_hash=H, time=3.0)
    (tmp_path / "a.json").write_text(a.to_json())
    assert read_anchors(tmp_path / "a.json") == [a]


def test_callback_log_and_history_sinks(caplog: pytest.LogCaptureFixture) -> None:
    a = Anchor(seq=2, head_hash=H, time=2.0)
    got: list[Anchor] = []
    CallbackAnchorSink(got.append).write(a)
    assert got == [a]
    with caplog.at_level(logging.INFO, logger="avl.history.anchor"):
        LogAnchorSink().write(a)
    assert [Anchor.from_json(r.getMessage()) for r in caplog.records] == [a]
    other = History("memory://")
    sink = HistoryAnchorSink(other, source="orders-db")
    with pytest.raises(NotFoundError):
        sink.latest()
    sink.write(a)
    sink.write(Anchor(seq=5, head_hash=H, time=5.0))
    assert sink.latest().seq == 5
    assert other.verify().ok
    with pytest.raises(InvalidInputError):
        CallbackAnchorSink(42)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        HistoryAnchorSink(object())


# ------------------------------------------------------------------ History.anchor / verify
def test_anchor_of_an_empty_history_verifies(make_history: Callable[..., History]) -> None:
    h = make_history()
    a = h.anchor()
    assert (a.seq, a.head_hash, a.mac) == (0, "0" * 64, None)
    assert h.verify(anchor=a).ok


def test_anchor_is_signed_with_the_key(
    make_history: Callable[..., History], clock: FakeClock
) -> None:
    h = make_history(hmac_key=b"secret")
    h.record(Entry(question="q"))
    a = h.anchor()
    assert a.mac is not None
    assert a.time == clock.now()
    assert h.verify(anchor=a).ok
    forged = Anchor(seq=a.seq, head_hash=a.head_hash, time=a.time + 1, mac=a.mac)
    report = h.verify(anchor=forged)
    assert (report.ok, report.problem) == (False, ProblemKind.ALTERED)
    assert "MAC" in report.message
    with pytest.raises(InvalidInputError, match="not signed"):
        h.verify(anchor=Anchor(seq=a.seq, head_hash=a.head_hash, time=a.time))
    plain = make_history()
    with pytest.raises(InvalidInputError, match="hmac_key"):
        plain.verify(anchor=a)
    with pytest.raises(InvalidInputError, match="Anchor"):
        h.verify(anchor=a.to_json())  # type: ignore[arg-type]


def test_anchor_still_verifies_after_more_entries(make_history: Callable[..., History]) -> None:
    h = make_history()
    h.record_many(Entry(question=f"q{i}") for i in range(3))
    a = h.anchor()
    h.record_many(Entry(question=f"r{i}") for i in range(3))
    report = h.verify(anchor=a)
    assert (report.ok, report.checked, report.head_seq, report.anchor_seq) == (True, 6, 6, 3)


def test_anchor_to_sinks_explicitly(tmp_path: Path, make_history: Callable[..., History]) -> None:
    h = make_history()
    h.record(Entry(question="q"))
    got: list[Anchor] = []
    a = h.anchor(to=[got.append, tmp_path / "a.jsonl"])
    assert got == [a]
    assert read_anchors(tmp_path / "a.jsonl") == [a]
    with pytest.raises(InvalidInputError):
        h.anchor(to=42)  # type: ignore[arg-type]


# ------------------------------------------------------------------ periodic anchors
def test_periodic_anchor_every_n_entries_and_on_close(
    tmp_path: Path, make_history: Callable[..., History]
) -> None:
    path = tmp_path / "anchors.jsonl"
    h = make_history(anchor_to=path, anchor_every=3)
    for i in range(7):
        h.record(Entry(question=f"q{i}"))
    assert [a.seq for a in read_anchors(path)] == [3, 6]
    h.close()
    anchors = read_anchors(path)
    assert [a.seq for a in anchors] == [3, 6, 7]
    assert all(a.mac is None for a in anchors)


def test_periodic_anchor_every_t_seconds(
    make_history: Callable[..., History], clock: FakeClock
) -> None:
    got: list[Anchor] = []
    h = make_history(anchor_to=got.append, anchor_every_s=60)
    h.record(Entry(question="a"))
    clock.advance(30)
    h.record(Entry(question="b"))
    assert got == []
    clock.advance(31)
    h.record(Entry(question="c"))
    assert [(a.seq, a.time) for a in got] == [(3, clock.now())]
    assert h.verify(anchor=got[-1]).ok


def test_a_failing_sink_is_logged_and_retried(
    make_history: Callable[..., History], caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[int] = []

    def flaky(anchor: Anchor) -> None:
        calls.append(anchor.seq)
        if len(calls) == 1:
            raise ConnectionError("webhook down")

    h = make_history(anchor_to=flaky, anchor_every=2)
    with caplog.at_level(logging.ERROR, logger="avl.history"):
        h.record_many([Entry(question="a"), Entry(question="b")])
    assert calls == [2]
    assert "could not be written" in caplog.text
    h.record(Entry(question="c"))  # still due: retried with the new head
    assert calls == [2, 3]
    assert len(list(h.iter_entries())) == 3


def test_periodic_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="anchor_to"):
        History(anchor_every=10)
    with pytest.raises(ConfigError, match="anchor_every"):
        History(anchor_to=lambda a: None, anchor_every=0)
    with pytest.raises(ConfigError, match="anchor_every_s"):
        History(anchor_to=lambda a: None, anchor_every_s=float("inf"))
    with pytest.raises(ConfigError, match="anchor_to"):
        History(anchor_to=42)  # type: ignore[arg-type]


# ------------------------------------------------------------------ rollbacks
@pytest.fixture(params=["sqlite", "postgresql"])
def sql_target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    with make_target(request.param, request, tmp_path) as t:
        yield t


def _grow(h: History, n: int, tag: str) -> list[Entry]:
    return h.record_many(Entry(user="u", question=f"{tag}{i}", sql=f"SELECT {i}") for i in range(n))


def _backup(t: Target, tmp_path: Path) -> Callable[[], None]:
    """Take a backup now; the returned function restores it over the live store."""
    if t.kind == "sqlite":
        assert t.path is not None
        copy = tmp_path / "backup.db"
        src = __import__("sqlite3").connect(t.path)
        dst = __import__("sqlite3").connect(copy)
        src.backup(dst)
        src.close()
        dst.close()

        def restore() -> None:
            assert t.path is not None
            for suffix in ("-wal", "-shm"):
                Path(str(t.path) + suffix).unlink(missing_ok=True)
            shutil.copyfile(copy, t.path)

        return restore
    dump = tmp_path / "backup.pgdump"
    tables = [f"--table={t.prefix}_entries", f"--table={t.prefix}_meta"]
    if shutil.which("pg_dump") and shutil.which("pg_restore"):
        # a real backup and restore with PostgreSQL's own tools
        subprocess.run(
            ["pg_dump", f"--dbname={t.dsn}", "--format=custom", f"--file={dump}", *tables],
            check=True,
        )

        def restore_dump() -> None:
            t.sql("DROP TABLE {p}_entries")
            t.sql("DROP TABLE {p}_meta")
            subprocess.run(["pg_restore", f"--dbname={t.dsn}", str(dump)], check=True)

        return restore_dump
    t.sql(f"CREATE TABLE {{p}}_bk_entries AS SELECT {PG_COLS} FROM {{p}}_entries")
    t.sql("CREATE TABLE {p}_bk_meta AS SELECT * FROM {p}_meta")

    def restore_pg() -> None:
        t.sql("DELETE FROM {p}_entries")
        t.sql(f"INSERT INTO {{p}}_entries({PG_COLS}) SELECT * FROM {{p}}_bk_entries")
        t.sql("DELETE FROM {p}_meta")
        t.sql("INSERT INTO {p}_meta SELECT * FROM {p}_bk_meta")
        t.sql("DROP TABLE {p}_bk_entries")
        t.sql("DROP TABLE {p}_bk_meta")

    return restore_pg


@pytest.mark.parametrize("key", [None, b"k" * 32])
def test_restored_backup_is_caught_by_the_anchor(
    sql_target: Target, tmp_path: Path, key: bytes | None
) -> None:
    h = History(sql_target.url, clock=FakeClock(), hmac_key=key)
    _grow(h, 5, "old")
    h.close()
    restore = _backup(sql_target, tmp_path)
    h = History(sql_target.url, clock=FakeClock(), hmac_key=key)
    _grow(h, 4, "new")
    anchor = h.anchor()
    assert h.verify(anchor=anchor).ok
    h.close()
    restore()
    h = History(sql_target.url, clock=FakeClock(), hmac_key=key)
    assert h.verify().ok is True  # the backup is a consistent, properly signed chain
    report = h.verify(anchor=anchor)
    assert (report.ok, report.problem, report.seq) == (False, ProblemKind.ROLLED_BACK, 5)
    assert "entries 6..9 are missing" in report.message
    # entries recorded after the restore do not hide it: seq 9 is now another entry
    _grow(h, 6, "after")
    report = h.verify(anchor=anchor)
    assert (report.ok, report.problem, report.seq) == (False, ProblemKind.ROLLED_BACK, 9)
    h.close()


@pytest.mark.parametrize("key", [None, b"k" * 32])
def test_deleted_tail_with_head_moved_back(sql_target: Target, key: bytes | None) -> None:
    h = History(sql_target.url, clock=FakeClock(), hmac_key=key)
    stored = _grow(h, 8, "q")
    anchor = h.anchor()
    sql_target.sql("DELETE FROM {p}_entries WHERE seq > 5")
    sql_target.sql(
        "UPDATE {p}_meta SET seq = 5, hash = ? WHERE name = 'head'", (str(stored[4].hash),)
    )
    plain = h.verify()
    if key is None:
        assert plain.ok is True  # the chain alone cannot tell
    else:
        # the head row is signed: moving it back without the key shows
        assert (plain.ok, plain.problem) == (False, ProblemKind.ALTERED)
        assert "head row" in plain.message
    report = h.verify(anchor=anchor)
    assert report.ok is False
    if key is None:
        assert (report.problem, report.seq) == (ProblemKind.ROLLED_BACK, 5)
    h.close()


@pytest.mark.parametrize("key", [None, b"k" * 32])
def test_whole_table_replaced(sql_target: Target, key: bytes | None) -> None:
    h = History(sql_target.url, clock=FakeClock(), hmac_key=key)
    _grow(h, 6, "real")
    anchor = h.anchor()
    # a fresh, valid chain of other entries, longer than the real one
    forger = History(
        f"{sql_target.url.split('?')[0]}?table={sql_target.prefix}_forged"
        if sql_target.kind == "postgresql"
        else f"sqlite:///{sql_target.path}?table={sql_target.prefix}_forged",
        clock=FakeClock(),
        hmac_key=key,
    )
    _grow(forger, 9, "forged")
    forger.close()
    cols = "*" if sql_target.kind == "sqlite" else PG_COLS
    sql_target.sql("DELETE FROM {p}_entries")
    sql_target.sql(
        f"INSERT INTO {{p}}_entries({cols.replace('*', PG_COLS)}) "
        f"SELECT {cols} FROM {{p}}_forged_entries"
    )
    sql_target.sql("DELETE FROM {p}_meta")
    sql_target.sql("INSERT INTO {p}_meta SELECT * FROM {p}_forged_meta")
    if sql_target.kind == "sqlite":
        sql_target.sql("INSERT INTO {p}_fts({p}_fts) VALUES ('rebuild')")
    else:
        sql_target.sql("DROP TABLE {p}_forged_entries")
        sql_target.sql("DROP TABLE {p}_forged_meta")
    assert h.verify().ok is True  # a valid chain (with a key too: the forger held it)
    report = h.verify(anchor=anchor)
    assert (report.ok, report.problem, report.seq) == (False, ProblemKind.ROLLED_BACK, 6)
    assert "does not match the anchor" in report.message
    h.close()


def test_memory_rollback_is_caught() -> None:
    h = History("memory://")
    stored = h.record_many(Entry(question=f"q{i}") for i in range(5))
    anchor = h.anchor()
    backend = h.backend
    del backend._rows[3:]  # type: ignore[attr-defined]
    backend._head[:2] = [3, stored[2].hash]  # type: ignore[attr-defined]
    assert h.verify().ok is True
    assert h.verify(anchor=anchor).problem is ProblemKind.ROLLED_BACK


# ------------------------------------------------------------------ anchors and pruning
def test_anchor_older_than_a_keyed_checkpoint(
    make_history: Callable[..., History], clock: FakeClock
) -> None:
    h = make_history(hmac_key="k")
    for i in range(6):
        h.record(Entry(question=f"q{i}"))
        clock.advance(10)
    early = h.anchor()
    h.record(Entry(question="late"))
    assert h.prune(older_than=25) == 4
    assert h.verify(anchor=early).ok  # the signed checkpoint vouches for seq 1..4
    assert h.verify(anchor=h.anchor()).ok


def test_anchor_in_the_pruned_range_without_a_key(
    make_history: Callable[..., History], clock: FakeClock
) -> None:
    h = make_history()
    for i in range(6):
        h.record(Entry(question=f"q{i}"))
        clock.advance(10)
    early = Anchor(seq=2, head_hash=h.iter_entries()[1].hash or "", time=0.0)
    at_checkpoint = h.anchor()
    assert h.prune(older_than=15) == 5
    report = h.verify(anchor=early)
    assert (report.ok, report.problem) == (False, ProblemKind.DELETED)
    assert "pruned range" in report.message
    h.prune(older_than=0)
    assert h.verify(anchor=at_checkpoint).ok  # exactly at the checkpoint: its hash matches
    assert h.verify().ok


def test_sink_write_errors_surface_from_anchor(tmp_path: Path) -> None:
    h = History()
    h.record(Entry(question="q"))
    with pytest.raises(BackendError, match="cannot append"):
        h.anchor(to=FileAnchorSink(tmp_path / "missing-dir" / "a.jsonl"))
