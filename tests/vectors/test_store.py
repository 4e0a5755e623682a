"""VectorStore input handling (backend-independent) and configuration errors."""

from __future__ import annotations

import gc
import subprocess
import sys
import weakref
from pathlib import Path

import numpy as np
import pytest

from avl.errors import ConfigError, InvalidInputError, InvalidTypeError, LockedError
from avl.vectors import Hit, Metric, VectorStore
from avl.vectors.backends.memory import MemoryBackend
from tests.conftest import need_module

ROOT = Path(__file__).resolve().parents[2]


def test_held_out_call_shape() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((50, 384)).astype(np.float32)
    store = VectorStore(dim=384, metric="cosine")
    store.add([f"doc-{i}" for i in range(50)], vectors, metadata=[{"n": i} for i in range(50)])
    hits = store.search(vectors[17], k=10)
    assert len(hits) == 10
    assert hits[0].id == "doc-17"
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert all(isinstance(h, Hit) for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_lenient_shapes_and_numpy_types() -> None:
    store = VectorStore(dim=2, metric="ip")
    store.add(
        np.array([10, 11]),
        np.array([[1.0, 0.0], [0.0, 1.0]]),
        metadata=[{"g": np.int64(3)}, {"v": np.array([1, 2])}],
    )
    store.add(range(12, 14), [[1.0, 1.0], [2.0, 2.0]])
    assert len(store) == 4
    assert dict(store.get(10)[0].metadata) == {"g": 3}
    assert type(store.get(10)[0].metadata["g"]) is int
    assert dict(store.get("11")[0].metadata) == {"v": [1, 2]}
    assert [h.id for h in store.search(np.array([[1.0, 0.0]]), k=1)] == ["13"]
    assert [h.id for h in store.search([1.0, 0.0], k=1, where={"g": 3})] == ["10"]
    with pytest.raises(InvalidInputError, match="not JSON-serialisable"):
        store.add(["x"], [[1.0, 0.0]], metadata=[{"f": float("nan")}])
    with pytest.raises(InvalidInputError, match="2 ids but 1 metadata"):
        store.add(["x", "y"], [[1.0, 0.0], [0.0, 1.0]], metadata=[{}])
    with pytest.raises(InvalidInputError, match="one id given with several vectors"):
        store.add("x", [[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(InvalidInputError, match="ids must be str or int"):
        store.add([True], [[1.0, 0.0]])
    with pytest.raises(InvalidInputError, match="matrix"):
        store.search_many([1.0, 0.0])


def test_configuration_errors() -> None:
    with pytest.raises(ConfigError, match="dim must be a positive int"):
        VectorStore(dim=0)
    with pytest.raises(ConfigError, match="unknown metric 'dot'"):
        VectorStore(dim=2, metric="dot")
    with pytest.raises(ConfigError, match="did you mean 'memory'"):
        VectorStore(dim=2, backend="memroy://")
    with pytest.raises(ConfigError, match="unknown memory:// option"):
        VectorStore(dim=2, backend="memory://?cap=3")
    with pytest.raises(ConfigError, match="three slashes"):
        VectorStore(dim=2, backend="file://relative/path")
    with pytest.raises(ConfigError, match="backend has dim=3"):
        VectorStore(dim=2, backend=MemoryBackend(3, Metric.COSINE))
    store = VectorStore(dim=3, metric="l2", backend=MemoryBackend(3, "l2"))
    assert store.metric is Metric.L2


def test_another_process_is_locked_out(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/s"
    code = (
        "import sys\n"
        "from avl.vectors import VectorStore\n"
        f"s = VectorStore(dim=2, backend={url!r})\n"
        "s.add('a', [1.0, 0.0])\n"
        "print('ready', flush=True)\n"
        "sys.stdin.readline()\n"
        "s.close()\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert child.stdout is not None
    assert child.stdin is not None
    try:
        assert child.stdout.readline().strip() == "ready"
        with pytest.raises(LockedError, match="open in another process"):
            VectorStore(dim=2, backend=url)
    finally:
        child.stdin.write("\n")
        child.stdin.close()
        child.wait()
        child.stdout.close()
    with VectorStore(dim=2, backend=url) as store:
        assert [r.id for r in store.get(["a"])] == ["a"]


@pytest.mark.parametrize("scheme", ["file", "annoy", "hnsw"])
def test_a_store_dropped_without_close_releases_its_lock(tmp_path: Path, scheme: str) -> None:
    """A store that is dropped without ``close()`` (a notebook cell run again, a
    temporary) kept its lock file open for the life of the process: every later
    open of the path, in any process, was refused with a ``LockedError``."""
    if scheme == "hnsw":
        need_module("hnswlib")
    url = f"{scheme}://{tmp_path}/s"
    store = VectorStore(dim=2, backend=url)
    store.add(["a", "b"], [[1.0, 0.0], [0.0, 1.0]])
    probe = weakref.ref(store)
    del store
    gc.collect()
    assert probe() is None
    with VectorStore(dim=2, backend=url) as again:  # the log was left dirty: it is checked
        assert [h.id for h in again.search([1.0, 0.1], k=2)] == ["a", "b"]
    len(VectorStore(dim=2, backend=url))  # a temporary, never closed
    with VectorStore(dim=2, backend=url) as again:
        assert len(again) == 2


def test_ids_in_a_set_are_refused_where_their_order_matters() -> None:
    """A set's order is arbitrary (for strings it changes between runs): paired with
    vectors it would shuffle which id gets which vector, silently. ``delete`` takes
    one; a dict's keys keep their order and are accepted."""
    store = VectorStore(dim=2)
    with pytest.raises(InvalidTypeError, match="must be in order"):
        store.add({"p", "q"}, [[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(InvalidTypeError, match="must be in order"):
        store.upsert(frozenset({"p"}), [[1.0, 0.0]])
    assert len(store) == 0
    store.add({"p": 0, "q": 1}.keys(), [[1.0, 0.0], [0.0, 1.0]])
    assert [r.id for r in store.get(["p", "q"])] == ["p", "q"]
    with pytest.raises(InvalidTypeError, match="must be in order"):
        store.get({"p", "q"})
    assert store.delete({"p", "nope"}) == 1
    assert [h.id for h in store.search([1.0, 0.0], k=5)] == ["q"]


def test_adding_nothing_is_a_no_op() -> None:
    store = VectorStore(dim=2)
    store.add([], [])
    store.upsert([], [])
    store.add([], np.zeros((0, 2), dtype=np.float32))
    assert len(store) == 0
    with pytest.raises(InvalidInputError, match="got 0 ids but 1 vectors"):
        store.add([], [[1.0, 0.0]])


def test_metric_names_are_forgiving_about_case_and_name_other_libraries_words() -> None:
    assert VectorStore(dim=2, metric=" COSINE ").metric is Metric.COSINE
    assert VectorStore(dim=2, metric="L2").metric is Metric.L2
    for word, ours in (
        ("euclidean", "l2"),
        ("dot", "ip"),
        ("inner-product", "ip"),
        ("angular", "cosine"),
    ):
        with pytest.raises(ConfigError, match=f"did you mean '{ours}'"):
            VectorStore(dim=2, metric=word)
    with pytest.raises(ConfigError, match=r"^unknown metric 'manhattan' \(known"):
        VectorStore(dim=2, metric="manhattan")


def test_search_many_of_no_queries_is_empty() -> None:
    store = VectorStore(dim=2)
    store.add(["a"], [[1.0, 0.0]])
    assert store.search_many([], k=3) == []
    assert store.search_many(np.zeros((0, 2), dtype=np.float32), k=3) == []


@pytest.mark.parametrize("scheme", ["file", "annoy", "hnsw"])
def test_a_path_that_is_a_file_is_refused_clearly(tmp_path: Path, scheme: str) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    with pytest.raises(ConfigError, match="is a file; a store is a directory"):
        VectorStore(dim=2, backend=f"{scheme}://{target}")
    assert target.read_text() == "keep me"
