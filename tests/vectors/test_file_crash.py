"""Crash safety of the file backend: SIGKILL a writer at random points, reopen."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from avl.errors import ConfigError, CorruptionError, LockedError
from avl.vectors import VectorStore
from tests.vectors._crash_writer import vector

ROOT = Path(__file__).resolve().parents[2]


def _op(line: str) -> tuple[str, str]:
    kind, _, ident = line.strip().partition(" ")
    return kind, ident


def writer_ops(start: int, count: int) -> list[tuple[str, str]]:
    """The ops the writer performs first, in order (it is deterministic)."""
    ops: list[tuple[str, str]] = []
    for i in range(start, start + count):
        ops.append(("d", str(i - 3)) if i % 5 == 4 else ("a", str(i)))
    return ops


def test_sigkill_loses_at_most_the_write_in_flight(tmp_path: Path) -> None:
    rng = random.Random(1234)
    url = f"file://{tmp_path}/store?snapshot_bytes=3000"
    live: set[str] = set()
    next_id = 0
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    for _round in range(24):
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.vectors._crash_writer", url, str(next_id)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""
        want = rng.randint(1, 40)
        first = [proc.stdout.readline() for _ in range(want)]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # The child may have run ahead of our reading: everything it printed before
        # dying was acknowledged. An unterminated last line is treated as in flight.
        rest = proc.stdout.read()
        proc.stdout.close()
        assert proc.stderr is not None
        proc.stderr.close()
        acked = [_op(x) for x in first + rest.split("\n")[:-1]]
        assert acked == writer_ops(next_id, len(acked))
        for kind, ident in acked:
            if kind == "a":
                live.add(ident)
            else:
                live.discard(ident)
        last_i = next_id + len(acked) - 1
        inflight_i = last_i + 1
        with VectorStore(dim=16, metric="ip", backend=f"file://{tmp_path}/store") as store:
            got = {
                r.id for r in store.get([str(j) for j in range(inflight_i + 1) if str(j) in store])
            }
            if inflight_i % 5 == 4:
                victim = str(inflight_i - 3)
                assert got in (live, live - {victim})
                live = got
            else:
                assert got in (live, live | {str(inflight_i)})
                live = got
            assert len(store) == len(live)
            for ident in list(live)[:5]:
                np.testing.assert_array_equal(store.get(ident)[0].vector, vector(int(ident)))
        next_id = inflight_i + 1
    assert len(live) > 50


def test_second_opener_is_locked_out(tmp_path: Path) -> None:
    with VectorStore(dim=2, backend=f"file://{tmp_path}/s") as store:
        store.add("a", [1.0, 0.0])
        with pytest.raises(LockedError, match="open in another process"):
            VectorStore(dim=2, backend=f"file://{tmp_path}/s")
    with VectorStore(dim=2, backend=f"file://{tmp_path}/s") as again:
        assert len(again) == 1


def test_reopen_with_other_shape_is_refused(tmp_path: Path) -> None:
    with VectorStore(dim=2, backend=f"file://{tmp_path}/s") as store:
        store.add("a", [1.0, 0.0])
        store.backend.compact()  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="dim=2"):
        VectorStore(dim=3, backend=f"file://{tmp_path}/s")


def _fresh(tmp_path: Path) -> Path:
    with VectorStore(dim=2, metric="ip", backend=f"file://{tmp_path}/s") as store:
        store.add(["a", "b"], [[1.0, 0.0], [0.0, 1.0]])
        store.backend.compact()  # type: ignore[attr-defined]
        store.add("c", [1.0, 1.0])
        store.add("d", [2.0, 1.0])
    return tmp_path / "s"


def test_corrupted_snapshot_is_detected(tmp_path: Path) -> None:
    d = _fresh(tmp_path)
    data = bytearray((d / "snapshot").read_bytes())
    data[-3] ^= 0xFF
    (d / "snapshot").write_bytes(bytes(data))
    with pytest.raises(CorruptionError, match="checksum"):
        VectorStore(dim=2, metric="ip", backend=f"file://{d}")


def test_corrupted_committed_log_record_is_detected(tmp_path: Path) -> None:
    d = _fresh(tmp_path)
    (log,) = d.glob("log.*")
    data = bytearray(log.read_bytes())
    data[36 + 20 + 5] ^= 0xFF  # inside the first record (after the 36-byte log header)
    log.write_bytes(bytes(data))
    with pytest.raises(CorruptionError, match="byte 36: a record failed its checksum"):
        VectorStore(dim=2, metric="ip", backend=f"file://{d}")


def test_truncated_log_of_a_cleanly_closed_store_is_detected(tmp_path: Path) -> None:
    d = _fresh(tmp_path)
    (log,) = d.glob("log.*")
    log.write_bytes(log.read_bytes()[:-5])
    with pytest.raises(CorruptionError, match="1 acknowledged record"):
        VectorStore(dim=2, metric="ip", backend=f"file://{d}")


def test_torn_last_record_is_discarded(tmp_path: Path) -> None:
    # A crash leaves the log marked "not closed cleanly": a copy taken while the store
    # is open stands for the directory a killed process leaves behind.
    import shutil

    src = tmp_path / "live"
    store = VectorStore(dim=2, metric="ip", backend=f"file://{src}")
    store.add(["a", "b"], [[1.0, 0.0], [0.0, 1.0]])
    store.add("c", [1.0, 1.0])
    store.add("d", [2.0, 1.0])
    d = tmp_path / "s"
    shutil.copytree(src, d)
    store.close()
    (log,) = d.glob("log.*")
    data = log.read_bytes()
    log.write_bytes(data[:-5])
    with VectorStore(dim=2, metric="ip", backend=f"file://{d}") as store:
        assert sorted(r.id for r in store.get(["a", "b", "c"])) == ["a", "b", "c"]
        assert "d" not in store
        store.add("e", [0.5, 0.5])
    with VectorStore(dim=2, metric="ip", backend=f"file://{d}") as store:
        assert len(store) == 4
        assert "e" in store


def test_missing_snapshot_is_not_silently_ignored(tmp_path: Path) -> None:
    d = _fresh(tmp_path)
    (d / "snapshot").unlink()
    with pytest.raises(CorruptionError, match="newer than the snapshot"):
        VectorStore(dim=2, metric="ip", backend=f"file://{d}")
