"""hnsw backend specifics: saves, reconciliation on reopen, crashes, label reuse, filters."""

from __future__ import annotations

import json
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
from avl.vectors.backends.hnsw import HnswBackend
from tests.vectors._crash_writer import vector

ROOT = Path(__file__).resolve().parents[2]


def _clustered(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((20, dim)).astype(np.float32)
    return (centers[rng.integers(0, 20, n)] + 0.4 * rng.standard_normal((n, dim))).astype(
        np.float32
    )


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _truth(x: np.ndarray, q: np.ndarray, k: int, keep: np.ndarray | None = None) -> list[list[int]]:
    s = _unit(q).astype(np.float64) @ _unit(x).astype(np.float64).T
    if keep is not None:
        s[:, ~keep] = -np.inf
    return np.argsort(-s, axis=1)[:, :k].tolist()


def _recall(got: list[list[str]], want: list[list[int]]) -> float:
    hits = sum(len({int(i) for i in g} & set(w)) for g, w in zip(got, want, strict=True))
    return hits / sum(len(w) for w in want)


def _backend(store: VectorStore) -> HnswBackend:
    backend = store.backend
    assert isinstance(backend, HnswBackend)
    return backend


def test_recall_and_scores(tmp_path: Path) -> None:
    x = _clustered(3000)
    q = _clustered(50, seed=1)
    with VectorStore(dim=16, backend=f"hnsw://{tmp_path}/h?fsync=0") as store:
        store.add(list(range(3000)), x)
        hits = store.search_many(q, k=10)
        assert _recall([[h.id for h in row] for row in hits], _truth(x, q, 10)) >= 0.97
        exact = _unit(q[0]) @ _unit(x[int(hits[0][0].id)])
        assert hits[0][0].score == pytest.approx(float(exact), abs=1e-5)
        assert [h.score for h in hits[0]] == sorted((h.score for h in hits[0]), reverse=True)


@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_other_metrics_report_the_exact_scores(tmp_path: Path, metric: str) -> None:
    x = _clustered(500, dim=8, seed=4)
    with VectorStore(dim=8, metric=metric, backend=f"hnsw://{tmp_path}/h?fsync=0") as store:
        store.add(list(range(500)), x)
        hits = store.search(x[3], k=5)
        if metric == "ip":
            want = np.argsort(-(x.astype(np.float64) @ x[3]))[:5]
            scores = x[want].astype(np.float64) @ x[3]
        else:
            d = np.linalg.norm(x.astype(np.float64) - x[3], axis=1)
            want = np.argsort(d)[:5]
            scores = d[want]
        assert [int(h.id) for h in hits] == want.tolist()
        assert [h.score for h in hits] == pytest.approx(scores.tolist(), abs=1e-4)


def test_reopen_loads_the_save_and_reconciles_writes_made_after_it(tmp_path: Path) -> None:
    x = _clustered(1200, seed=2)
    url = f"hnsw://{tmp_path}/h?save_every=100000"
    store = VectorStore(dim=16, backend=url)
    store.add(list(range(1000)), x[:1000], metadata=[{"i": i} for i in range(1000)])
    _backend(store).save()
    # writes after the save, then a "crash": the data files are closed, the index is not saved
    store.add(list(range(1000, 1200)), x[1000:1200], metadata=[{"i": i} for i in range(1000, 1200)])
    store.delete([str(i) for i in range(0, 100)])
    store.upsert("500", x[1100] * -1.0, metadata={"i": "moved"})
    _backend(store)._data.close()

    with VectorStore(dim=16, backend=url) as again:
        backend = _backend(again)
        assert backend.opened_from == "saved"
        assert len(again) == backend.indexed == 1100
        everything = {h.id for h in again.search(x[150], k=5000)}
        assert everything == {str(i) for i in range(100, 1200)}
        top = again.search(x[1100] * -1.0, k=1)[0]
        assert (top.id, dict(top.metadata)) == ("500", {"i": "moved"})
        assert again.search(x[1150], k=1)[0].id == "1150"
        assert dict(again.search(x[1150], k=1)[0].metadata) == {"i": 1150}
    # close() saved the reconciled index: the next open needs nothing
    with VectorStore(dim=16, backend=url) as third:
        assert _backend(third).opened_from == "saved"
        assert _backend(third)._unsaved == 0
        assert {h.id for h in third.search(x[150], k=5000)} == everything


@pytest.mark.parametrize("damage", ["flip_a_byte", "truncate", "manifest", "other_m"])
def test_a_damaged_or_mismatched_save_is_rebuilt_from_the_data(tmp_path: Path, damage: str) -> None:
    x = _clustered(800, seed=3)
    with VectorStore(dim=16, backend=f"hnsw://{tmp_path}/h") as store:
        store.add(list(range(800)), x)
    (saved,) = (tmp_path / "h").glob("hnsw-*.bin")
    manifest = tmp_path / "h" / "hnsw.json"
    url = f"hnsw://{tmp_path}/h"
    if damage == "flip_a_byte":
        data = bytearray(saved.read_bytes())
        data[len(data) // 2] ^= 0x01
        saved.write_bytes(bytes(data))
    elif damage == "truncate":
        saved.write_bytes(saved.read_bytes()[:1000])
    elif damage == "manifest":
        manifest.write_text(manifest.read_text()[:-10])
    else:
        url += "?m=8"
    with VectorStore(dim=16, backend=url) as again:
        assert _backend(again).opened_from == "rebuilt"
        assert {h.id for h in again.search(x[0], k=1000)} == {str(i) for i in range(800)}
        assert again.search(x[42], k=1)[0].id == "42"


def test_deleted_labels_are_reused(tmp_path: Path) -> None:
    x = _clustered(600, seed=5)
    with VectorStore(dim=16, backend=f"hnsw://{tmp_path}/h?fsync=0") as store:
        store.add(list(range(300)), x[:300])
        graph = _backend(store)._index
        assert graph.get_current_count() == 300
        for round_ in range(3):
            store.delete([str(i) for i in range(100)])
            store.add(list(range(100)), x[300 + 100 * round_ : 400 + 100 * round_])
            store.upsert(list(range(100, 150)), x[:50])
        assert graph.get_current_count() == 300
        assert store.search(x[550], k=1)[0].id == "50"
        assert store.search(x[10], k=1)[0].id == "110"
        assert len({h.id for h in store.search(x[0], k=1000)}) == 300
    manifest = json.loads((tmp_path / "h" / "hnsw.json").read_text())
    assert len(manifest["labels"]) == 300


def test_filters_walk_the_graph_or_go_exact(tmp_path: Path) -> None:
    x = _clustered(4000, seed=6)
    meta = [{"g": i % 10, "rare": i == 1234} for i in range(4000)]
    with VectorStore(dim=16, backend=f"hnsw://{tmp_path}/h?fsync=0&exact_below=50") as store:
        store.add(list(range(4000)), x, metadata=meta)
        q = x[:20]
        keep = np.array([m["g"] in (3, 7) for m in meta])
        got = [[h.id for h in store.search(v, k=10, where={"g": {"$in": [3, 7]}})] for v in q]
        assert all(meta[int(i)]["g"] in (3, 7) for hits in got for i in hits)
        assert all(len(hits) == 10 for hits in got)
        assert _recall(got, _truth(x, q, 10, keep)) >= 0.95
        assert [h.id for h in store.search(x[0], k=3, where={"rare": True})] == ["1234"]
        assert store.search(x[0], k=3, where={"g": 99}) == []


def test_options_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown option 'ef'"):
        VectorStore(dim=4, backend=f"hnsw://{tmp_path}/h?ef=3")
    with pytest.raises(ConfigError, match="m must be between 1 and 10,000, got 0"):
        VectorStore(dim=4, backend=f"hnsw://{tmp_path}/h?m=0")
    with VectorStore(dim=4, backend=f"hnsw://{tmp_path}/h") as store:
        store.add("a", [1.0, 0.0, 0.0, 0.0])
        with pytest.raises(LockedError):
            VectorStore(dim=4, backend=f"hnsw://{tmp_path}/h")
        _backend(store)._data.compact()  # the dimension is checked against the snapshot
    with pytest.raises(ConfigError, match="dim=4"):
        VectorStore(dim=5, backend=f"hnsw://{tmp_path}/h")


def _op(line: str) -> tuple[str, str]:
    kind, _, ident = line.strip().partition(" ")
    return kind, ident


@pytest.mark.slow
def test_sigkill_during_writes_and_saves_keeps_index_and_data_equal(tmp_path: Path) -> None:
    """A writer is killed at random points (saves happen every 7 writes, so some
    kills land inside a save); every reopen must search exactly the acknowledged
    live vectors."""
    rng = random.Random(99)
    url = f"hnsw://{tmp_path}/h?save_every=7&threads=1"
    live: set[str] = set()
    next_id = 0
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    for _round in range(10):
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
        first = [proc.stdout.readline() for _ in range(rng.randint(1, 40))]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        rest = proc.stdout.read()
        proc.stdout.close()
        assert proc.stderr is not None
        proc.stderr.close()
        acked = [_op(x) for x in first + rest.split("\n")[:-1]]
        for kind, ident in acked:
            if kind == "a":
                live.add(ident)
            else:
                live.discard(ident)
        inflight_i = next_id + len(acked)
        with VectorStore(dim=16, metric="ip", backend=url) as store:
            stored = {
                r.id for r in store.get([str(j) for j in range(inflight_i + 1) if str(j) in store])
            }
            # the write in flight may or may not have landed
            extra = {str(inflight_i)} if inflight_i % 5 != 4 else set()
            gone = {str(inflight_i - 3)} if inflight_i % 5 == 4 else set()
            assert stored in (live, (live | extra) - gone)
            live = stored
            searched = {h.id for h in store.search(vector(0), k=10_000)}
            assert searched == live
            for ident in list(live)[:5]:
                np.testing.assert_array_equal(store.get(ident)[0].vector, vector(int(ident)))
        next_id = inflight_i + 1
    assert len(live) > 30


@pytest.mark.parametrize("scheme", ["annoy", "hnsw"])
def test_repair_option_reaches_the_data_files(tmp_path: Path, scheme: str) -> None:
    url = f"{scheme}://{tmp_path}/s"
    with VectorStore(dim=4, backend=url) as store:
        store.add(["a", "b"], [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
    (log,) = (tmp_path / "s").glob("log.*")
    data = bytearray(log.read_bytes())
    data[len(data) // 2] ^= 0xFF
    log.write_bytes(bytes(data))
    with pytest.raises(CorruptionError):
        VectorStore(dim=4, backend=url)
    with VectorStore(dim=4, backend=url + "?repair=1") as repaired:
        assert repaired.backend._data.repair_report is not None  # type: ignore[attr-defined]
        assert len(repaired) == len(repaired.search(np.ones(4, dtype=np.float32), k=10))


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("m=100000", "m must be between 1 and 10,000"),  # hnswlib would cap it, printing
        ("ef_construction=0", "ef_construction must be between 1 and"),
        ("ef_search=99999999999999999999", "ef_search must be between 1 and 2,147,483,647"),
        ("seed=-1", "seed must be between 0 and"),  # hnswlib: a TypeError of its own
        ("save_every=0", "save_every must be at least 1"),
        ("exact_below=-1", "exact_below must be at least 0"),
        ("threads=-2", "threads must be between 0 and"),
    ],
)
def test_out_of_range_options_are_refused_by_avl(tmp_path: Path, query: str, message: str) -> None:
    """Every option is checked before hnswlib sees it: an avl ConfigError naming the
    option and its range, and nothing is created on disk."""
    with pytest.raises(ConfigError, match=f"^hnsw option {message}"):
        VectorStore(dim=4, backend=f"hnsw://{tmp_path}/h?{query}")
    assert not (tmp_path / "h").exists()
