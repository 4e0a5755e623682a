"""No silent loss in the ``file://`` vector store: damage is reported, repair is loud.

Hundreds of trials flip bytes, zero ranges, truncate and append garbage at random
offsets of a store's snapshot and log. Every reopen must either give back exactly
what was acknowledged, or raise :class:`~avl.errors.CorruptionError` naming the file,
the offset and the acknowledged records affected; a repair then keeps only values
that were really written and reports the loss.
"""

from __future__ import annotations

import io
import json
import logging
import random
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from avl.cli import main
from avl.errors import CorruptionError, LockedError
from avl.vectors import VectorStore
from avl.vectors.backends.file import RepairReport, check, repair

DIM = 8
URL_OPTS = "?snapshot_bytes=20000"

State = dict[str, tuple[bytes, str]]


def _key(vector: Any, meta: Any) -> tuple[bytes, str]:
    return np.asarray(vector, dtype=np.float32).tobytes(), json.dumps(meta, sort_keys=True)


def build(path: Path, *, ops: int = 300, close: bool = True) -> tuple[State, dict[str, set[Any]]]:
    """A store with a snapshot and a log; returns its state and every value ever written."""
    rng = np.random.default_rng(7)
    store = VectorStore(dim=DIM, metric="ip", backend=f"file://{path}{URL_OPTS}")
    state: State = {}
    versions: dict[str, set[Any]] = {}
    next_id = 0
    for step in range(ops):
        kind = step % 7
        if kind in (0, 1, 2, 3) or len(state) < 5:
            n = int(rng.integers(1, 4))
            ids = [f"v{next_id + i}" for i in range(n)]
            next_id += n
            vecs = rng.standard_normal((n, DIM)).astype(np.float32)
            metas = [{"step": step, "i": i, "s": "é\u2028" * (i % 3)} for i in range(n)]
            store.add(ids, vecs, metadata=metas)
        elif kind in (4, 5):
            ids = sorted(state)[:: max(1, len(state) // 2)][:2]
            vecs = rng.standard_normal((len(ids), DIM)).astype(np.float32)
            metas = [{"step": step, "upsert": True} for _ in ids]
            store.upsert(ids, vecs, metadata=metas)
        else:
            victim = sorted(state)[int(rng.integers(0, len(state)))]
            store.delete(victim)
            del state[victim]
            continue
        for i, v, m in zip(ids, vecs, metas, strict=True):
            state[i] = _key(v, m)
            versions.setdefault(i, set()).add(state[i])
    if close:
        store.close()
    else:
        build.open_store = store  # type: ignore[attr-defined]
    return state, versions


def read_state(path: Path) -> State:
    with VectorStore(dim=DIM, metric="ip", backend=f"file://{path}") as store:
        ids = [r.id for r in store.get(list(store.backend.index.ids))]  # type: ignore[attr-defined]
        return {r.id: _key(r.vector, dict(r.metadata)) for r in store.get(ids)}


def damage(rng: random.Random, store: Path) -> str:
    files = [p for p in store.iterdir() if p.name == "snapshot" or p.name.startswith("log.")]
    target = rng.choices(files, weights=[max(1, p.stat().st_size) for p in files])[0]
    data = bytearray(target.read_bytes())
    kind = rng.choice(["flip", "flip", "flips", "zero", "truncate", "truncate", "append"])
    at = rng.randrange(len(data)) if data else 0
    if kind == "flip":
        data[at] ^= rng.randrange(1, 256)
    elif kind == "flips":
        for _ in range(rng.randint(2, 8)):
            data[rng.randrange(len(data))] ^= rng.randrange(1, 256)
    elif kind == "zero":
        n = rng.randint(1, 64)
        data[at : at + n] = bytes(len(data[at : at + n]))
    elif kind == "truncate":
        del data[at:]
    else:
        data += bytes(rng.randrange(256) for _ in range(rng.randint(1, 40)))
    target.write_bytes(bytes(data))
    return f"{kind} {target.name}@{at}"


@pytest.fixture
def fast_tmp(tmp_path: Path) -> Iterator[Path]:
    """A scratch directory in memory when the machine has one (fsync is then free)."""
    shm = Path("/dev/shm")
    if not shm.is_dir():
        yield tmp_path
        return
    path = Path(tempfile.mkdtemp(prefix="avl-corrupt-", dir=shm))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def base(fast_tmp: Path) -> tuple[Path, State, dict[str, set[Any]]]:
    path = fast_tmp / "base" / "store"
    state, versions = build(path)
    names = sorted(p.name for p in path.iterdir())
    assert "snapshot" in names
    assert any(n.startswith("log.") for n in names)
    assert read_state(path) == state
    return path, state, versions


TRIALS = 400


def test_random_damage_is_intact_or_reported(
    base: tuple[Path, State, dict[str, set[Any]]], fast_tmp: Path
) -> None:
    path, expected, versions = base
    rng = random.Random(20261205)
    outcomes: Counter[str] = Counter()
    lost_total = 0
    for trial in range(TRIALS):
        work = fast_tmp / f"t{trial}"
        shutil.copytree(path, work)
        what = damage(rng, work)
        error: CorruptionError | None = None
        try:
            got = read_state(work)
        except CorruptionError as exc:
            error = exc
        if error is not None:
            outcomes["corruption"] += 1
            assert error.path is not None, what
            assert Path(error.path).parent == work, what
            assert error.offset is not None, what
            assert f"byte {error.offset}" in str(error), what
            report = repair(work)
            assert not report.intact, what
            assert report.kept_aside, what
            lost_total += report.records_lost
            after = read_state(work)  # a repaired store opens strictly
            assert len(after) == report.vectors, what
            for i, value in after.items():  # nothing that was never written
                assert value in versions.get(i, set()), (what, i)
        else:
            outcomes["intact"] += 1
            assert got == expected, f"silent loss after {what}"
        shutil.rmtree(work)
    assert outcomes["intact"] + outcomes["corruption"] == TRIALS
    assert outcomes["corruption"] > TRIALS // 2
    print(f"\nfile store damage trials: {dict(outcomes)}, records lost on repair: {lost_total}")


def test_random_damage_to_a_crashed_store(fast_tmp: Path) -> None:
    """Not closed cleanly: damage is reported, except that the last write alone (which
    may have been in flight) can be dropped, with a warning."""
    live = fast_tmp / "live"
    state, versions = build(live, ops=200, close=False)
    store = build.open_store  # type: ignore[attr-defined]
    crashed = fast_tmp / "crashed"
    shutil.copytree(live, crashed)
    store.close()
    log_name = next(p.name for p in crashed.glob("log.*"))
    rng = random.Random(7)
    outcomes: Counter[str] = Counter()
    for trial in range(200):
        work = fast_tmp / f"c{trial}"
        shutil.copytree(crashed, work)
        what = damage(rng, work)
        error: CorruptionError | None = None
        handler = _Capture()
        logging.getLogger("avl.vectors").addHandler(handler)
        try:
            got = read_state(work)
        except CorruptionError as exc:
            error = exc
        finally:
            logging.getLogger("avl.vectors").removeHandler(handler)
        if error is not None:
            outcomes["corruption"] += 1
            assert error.path is not None, what
        elif got == state:
            outcomes["intact"] += 1
        else:
            # only the last record of the log may be gone, and it was said out loud
            outcomes["last write dropped"] += 1
            assert log_name in what, what
            assert any("not closed cleanly" in m for m in handler.messages), what
            missing = set(state) - set(got)
            changed = {i for i in got if i in state and got[i] != state[i]}
            assert len(missing) + len(changed) <= 3, what  # one record: at most 3 ids
            for i, value in got.items():
                assert value in versions[i], what
        shutil.rmtree(work)
    print(f"\ncrashed-store damage trials: {dict(outcomes)}")
    assert outcomes["corruption"] > 100


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_damage_names_the_record_and_counts_what_follows(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with VectorStore(dim=2, metric="ip", backend=f"file://{path}") as store:
        for i in range(10):
            store.add(f"id{i}", [float(i), 1.0])
    log = path / "log.0"
    data = bytearray(log.read_bytes())
    # the records: after the 36-byte header, each is a 20-byte frame + payload
    offsets = []
    pos = 36
    while pos < len(data):
        offsets.append(pos)
        length = int.from_bytes(data[pos + 4 : pos + 8], "little")
        pos += 20 + length
    assert len(offsets) == 10
    data[offsets[6] + 25] ^= 0x40  # inside record 6's payload
    log.write_bytes(bytes(data))
    with pytest.raises(CorruptionError) as info:
        VectorStore(dim=2, metric="ip", backend=f"file://{path}")
    err = info.value
    assert (err.path, err.offset, err.records_affected) == (str(log), offsets[6], 4)
    assert f"byte {offsets[6]}: a record failed its checksum; 4 acknowledged" in str(err)
    with pytest.raises(CorruptionError):  # check() is strict too
        check(path)
    report = repair(path)
    assert (report.records_lost, report.vectors) == (4, 6)
    assert report.ids_lost == ("id7", "id8", "id9")  # record 6's own ids are unreadable
    assert report.kept_aside == ("log.0.damaged-1",)
    assert (path / "log.0.damaged-1").read_bytes() == bytes(data)
    with VectorStore(dim=2, metric="ip", backend=f"file://{path}") as store:
        assert sorted(store.backend.index.ids) == [f"id{i}" for i in range(6)]  # type: ignore[attr-defined]
        store.add("new", [1.0, 1.0])
    assert check(path) == 7
    assert repair(path).intact


def test_truncation_at_a_record_boundary_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with VectorStore(dim=2, metric="ip", backend=f"file://{path}") as store:
        for i in range(5):
            store.add(f"id{i}", [1.0, float(i)])
    log = path / "log.0"
    data = log.read_bytes()
    # drop the last two records exactly: no torn bytes are left
    cut = 36
    sizes = []
    while cut < len(data):
        sizes.append(cut)
        cut += 20 + int.from_bytes(data[cut + 4 : cut + 8], "little")
    log.write_bytes(data[: sizes[3]])
    with pytest.raises(CorruptionError, match="2 acknowledged record") as info:
        VectorStore(dim=2, metric="ip", backend=f"file://{path}")
    assert info.value.records_affected == 2


def test_damaged_snapshot_reports_the_entries_it_held(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with VectorStore(dim=4, metric="l2", backend=f"file://{path}") as store:
        store.add([f"id{i}" for i in range(10000)], np.ones((10000, 4), dtype=np.float32))
        store.backend.compact()  # type: ignore[attr-defined]
        store.add("after", [0.0, 0.0, 0.0, 1.0])
    snap = path / "snapshot"
    data = snap.read_bytes()
    snap.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptionError) as info:
        VectorStore(dim=4, metric="l2", backend=f"file://{path}")
    assert info.value.path == str(snap)
    affected = info.value.records_affected
    assert affected is not None
    assert 3000 < affected < 10000  # the chunks before the cut are intact
    report = repair(path)
    assert report.records_lost == affected
    assert report.vectors == 10000 - affected + 1  # the log's record is kept
    with VectorStore(dim=4, metric="l2", backend=f"file://{path}") as store:
        assert "after" in store


def test_crashed_store_loses_at_most_the_write_in_flight(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A copy taken while the store is open is what a killed process leaves."""
    live = tmp_path / "live"
    store = VectorStore(dim=2, metric="ip", backend=f"file://{live}")
    for i in range(8):
        store.add(f"id{i}", [1.0, float(i)])
    crashed = tmp_path / "crashed"
    shutil.copytree(live, crashed)
    store.close()
    log = crashed / "log.0"
    data = dirty = log.read_bytes()
    assert dirty[8] == ord("D")  # the copy says "not closed cleanly"
    # the last record torn: discarded (it may never have been acknowledged), loudly
    log.write_bytes(data[:-3])
    with caplog.at_level(logging.WARNING, logger="avl.vectors"):
        assert check(crashed) == 7
    assert "not closed cleanly" in caplog.text
    # more than the last record gone: reported, however cleanly cut
    data = dirty
    cut = 36
    starts = []
    while cut < len(data):
        starts.append(cut)
        cut += 20 + int.from_bytes(data[cut + 4 : cut + 8], "little")
    (crashed / "log.0").write_bytes(data[: starts[5]])
    with pytest.raises(CorruptionError, match="3 acknowledged record"):
        check(crashed)


def test_repair_url_option_and_cli(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "s"
    with VectorStore(dim=2, metric="cosine", backend=f"file://{path}") as store:
        store.add(["a", "b", "c"], [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    log = path / "log.0"
    log.write_bytes(log.read_bytes()[:-4])

    def run(*argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        return main(list(argv), out=out, err=err), out.getvalue(), err.getvalue()

    code, _, err = run("vectors", "check", str(path))
    assert code == 2
    assert "acknowledged record" in err
    with caplog.at_level(logging.WARNING, logger="avl.vectors"):
        store = VectorStore(dim=2, metric="cosine", backend=f"file://{path}?repair=1")
    report = store.backend.repair_report  # type: ignore[attr-defined]
    assert isinstance(report, RepairReport)
    assert (report.records_lost, report.vectors, len(store)) == (1, 0, 0)
    assert "repaired" in caplog.text
    store.add("d", [1.0, 0.0])
    store.close()
    code, out, _ = run("vectors", "check", f"file://{path}")
    assert (code, out) == (0, f"file://{path}: intact (1 vectors)\n")
    code, out, _ = run("vectors", "repair", str(path), "--json")
    assert code == 0
    assert json.loads(out)["damage"] == []
    with VectorStore(dim=2, metric="cosine", backend=f"file://{path}"):
        code, _, err = run("vectors", "repair", str(path))
        assert code == 2
        assert "open in another process" in err
    with pytest.raises(LockedError), VectorStore(dim=2, metric="cosine", backend=f"file://{path}"):
        repair(path)


def test_first_format_is_read_and_rewritten(tmp_path: Path) -> None:
    """A store written by the first format (AVLVLOG1/AVLVSNP1) opens and is migrated."""
    import struct
    import zlib

    path = tmp_path / "old"
    path.mkdir()
    ids, vecs = ["x", "y"], np.array([[1, 0], [0, 1]], dtype="<f4")
    header = json.dumps({"dim": 2, "metric": "ip", "gen": 1, "ids": ids, "meta": [{}, {}]}).encode()
    payload = struct.pack("<I", len(header)) + header + vecs.tobytes()
    (path / "snapshot").write_bytes(
        struct.pack("<8sQI", b"AVLVSNP1", len(payload), zlib.crc32(payload)) + payload
    )
    op = json.dumps({"ids": ["z"], "meta": [{"k": 1}]}).encode()
    rec = b"A" + struct.pack("<I", len(op)) + op + np.array([[1, 1]], dtype="<f4").tobytes()
    frame = struct.pack("<III", len(rec), zlib.crc32(rec), zlib.crc32(struct.pack("<I", len(rec))))
    (path / "log.1").write_bytes(b"AVLVLOG1" + frame + rec)
    with VectorStore(dim=2, metric="ip", backend=f"file://{path}") as store:
        assert sorted(r.id for r in store.get(["x", "y", "z"])) == ["x", "y", "z"]
    assert (path / "snapshot").read_bytes()[:8] == b"AVLVSNP2"
    assert check(path) == 3
