"""hnsw:/// hands hnswlib every query on a 64-byte cache line, whatever the caller's
array looks like, and the copy it makes for that changes no answer, also with
threads searching at once."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from avl.vectors import VectorStore
from avl.vectors.backends.hnsw import HnswBackend
from tests.conftest import need_module

hnswlib = need_module("hnswlib", "avl[hnsw] not installed")

DIM = 64  # a row of 256 bytes: four whole lines


def _data(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _at(vectors: np.ndarray, offset: int) -> np.ndarray:
    """A copy of ``vectors`` (rows of whole lines) whose data starts ``offset``
    bytes past a cache line."""
    flat = np.empty(vectors.size + 32, dtype=np.float32)
    skip = ((offset - flat.ctypes.data) % 64) // 4
    out = flat[skip : skip + vectors.size].reshape(vectors.shape)
    out[...] = vectors
    assert out.ctypes.data % 64 == offset
    return out


class _Recorder:
    """Stands between the backend and its real hnswlib index: records where each
    query hnswlib gets starts, relative to a cache line."""

    def __init__(self, index: Any) -> None:
        self.index = index
        self.offsets: list[int] = []

    def knn_query(self, data: np.ndarray, *args: Any, **kwargs: Any) -> Any:
        self.offsets.append(np.asarray(data).ctypes.data % 64)
        return self.index.knn_query(data, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.index, name)


@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
def test_every_query_reaches_hnswlib_on_a_line_with_the_same_answers(
    metric: str, tmp_path: Path
) -> None:
    x = _data(600)
    ids = [f"v{i}" for i in range(600)]
    queries = _data(12, seed=1) * 3.0  # not unit length: cosine scales them first
    url = f"hnsw://{tmp_path}/s?fsync=0&exact_below=100"  # (filters walk the graph)
    with VectorStore(dim=DIM, metric=metric, backend=url) as store:
        store.add(ids, x)
        backend = store.backend
        assert isinstance(backend, HnswBackend)
        want = [[(h.id, h.score) for h in store.search(q, k=5)] for q in queries]
        # (a batch, and a query that is not float32, are normalised by the store:
        # their cosine scores may differ from the single query's in the last bit)
        want_many = [[(h.id, h.score) for h in hits] for hits in store.search_many(queries, k=5)]
        recorder = _Recorder(backend._index)
        backend._index = recorder
        for offset in (0, 4, 16, 32, 60):
            moved = _at(queries, offset)
            got = [[(h.id, h.score) for h in store.search(q, k=5)] for q in moved]
            assert got == want
            assert [
                [(h.id, h.score) for h in hits] for hits in store.search_many(moved, k=5)
            ] == want_many
            # a strided row (its norm summed in another order: the last bit of a
            # cosine score may differ) and a float64 query (the checked path)
            strided = np.repeat(moved[0], 2)[::2]
            hits = store.search(strided, k=5)
            assert [h.id for h in hits] == [i for i, _ in want[0]]
            assert [h.score for h in hits] == pytest.approx([sc for _, sc in want[0]], rel=1e-6)
            assert [
                (h.id, h.score) for h in store.search(queries[0].astype(np.float64), k=5)
            ] == want_many[0]
        assert recorder.offsets
        assert set(recorder.offsets) == {0}
        # filtered searches walk the graph with the query on a line too
        recorder.offsets.clear()
        store.upsert(ids[:3], x[:3], metadata=[{"keep": True}] * 3)
        wide = {"keep": {"$ne": True}}
        for q in _at(queries, 16)[:3]:
            assert all(h.id not in ids[:3] for h in store.search(q, k=5, where=wide))
        assert set(recorder.offsets) <= {0}


def test_rows_that_cannot_all_sit_on_lines_are_searched_as_given(tmp_path: Path) -> None:
    """With 20 dimensions a row is 80 bytes: no copy puts every row on a line, so
    the batch goes to hnswlib as it is (the single-query path still copies)."""
    x = _data(300, dim=20)
    with VectorStore(dim=20, backend=f"hnsw://{tmp_path}/s?fsync=0") as store:
        store.add([str(i) for i in range(300)], x)
        backend = store.backend
        assert isinstance(backend, HnswBackend)
        recorder = _Recorder(backend._index)
        backend._index = recorder
        assert [h.id for h in store.search(_at(x[:2], 16)[1], k=1)] == ["1"]
        assert recorder.offsets == [0]
        hits = store.search_many(_at(x[:4], 16), k=1)
        assert [h[0].id for h in hits] == ["0", "1", "2", "3"]


def test_threads_searching_at_once_each_get_their_own_answers(tmp_path: Path) -> None:
    """The line the query is copied to is shared by the store's searches; they take
    turns with it (hnswlib lets go of the GIL while it searches)."""
    x = _data(2000, seed=3)
    with VectorStore(dim=DIM, backend=f"hnsw://{tmp_path}/s?fsync=0&ef_search=200") as store:
        store.add([str(i) for i in range(2000)], x)
        want = {i: store.search(x[i], k=3)[0].id for i in range(0, 2000, 7)}
        assert all(want[i] == str(i) for i in want)
        wrong: list[tuple[int, str]] = []

        def reader(start: int) -> None:
            for _ in range(20):
                for i in range(start, 2000, 7 * 4):
                    got = store.search(x[i], k=3)[0].id
                    if got != want[i]:
                        wrong.append((i, got))

        threads = [threading.Thread(target=reader, args=(7 * t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert wrong == []
