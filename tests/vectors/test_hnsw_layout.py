"""The hnsw graph's memory layout (avl.vectors.backends._hnsw_layout): renumbering the
nodes by similarity changes no answer, keeps deleted marks, labels and every later
operation (insert, delete, label reuse, growth, save and reopen) working, and a
state it does not know is left alone."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from avl.vectors import Metric, VectorStore
from avl.vectors._order import MIN_ORDERED, locality_order
from avl.vectors.backends import _hnsw_layout
from avl.vectors.backends._hnsw_layout import RowLayout, relaid, row_layout
from tests.conftest import need_module

hnswlib = need_module("hnswlib")

N = MIN_ORDERED + 1000
DIM = 24  # rows keep hnswlib's own packing
PADDED = 128  # rows padded to align each vector to the cache lines (row_layout)
DIMS = pytest.mark.parametrize("dim", [DIM, PADDED])


def _data(n: int = N, seed: int = 0, dim: int = DIM) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((30, dim)).astype(np.float32) * 2.0
    x = centres[rng.integers(0, 30, n)] + 0.5 * rng.standard_normal((n, dim))
    x = x.astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _graph(x: np.ndarray, space: str = "ip", m: int = 8) -> Any:
    index = hnswlib.Index(space=space, dim=x.shape[1])
    index.init_index(max_elements=x.shape[0] + 500, M=m, ef_construction=60, random_seed=3)
    # labels are not internal ids: every third label, in a shuffled order
    order = np.random.default_rng(1).permutation(x.shape[0])
    index.add_items(x[order], order * 3, num_threads=1)
    index.set_num_threads(1)
    return index


def _answers(index: Any, queries: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    index.set_ef(40)
    labels, dists = index.knn_query(queries, k=k, num_threads=1)
    return labels, dists


def _internal_labels(index: Any) -> np.ndarray:
    """The label of every node, in the index's memory (internal id) order."""
    state = index.__getstate__()[0]
    size, n = state["size_data_per_element"], state["cur_element_count"]
    rows = state["data_level0"].view(np.uint8).reshape(-1, size)[:n]
    off = state["label_offset"]
    return np.ascontiguousarray(rows[:, off : off + 8]).view(np.uint64)[:, 0]


def _layout(index: Any) -> RowLayout:
    state = index.__getstate__()[0]
    assert state["offset_level0"] == 0
    return RowLayout(
        size=state["size_data_per_element"], data=state["offset_data"], label=state["label_offset"]
    )


@pytest.mark.parametrize("dim", [1, 24, 100, 127, 128, 129, 384, 768, 1536, 3072])
@pytest.mark.parametrize("max_m0", [8, 32, 64, 200])
def test_rows_are_padded_to_align_vectors_from_128_dimensions(dim: int, max_m0: int) -> None:
    links, packed = 4 + 4 * max_m0, 4 + 4 * max_m0 + 4 * dim + 8
    layout = row_layout(max_m0, dim)
    if dim < 128:  # hnswlib's own packing
        assert layout == RowLayout(size=packed, data=links, label=links + 4 * dim)
        return
    assert layout.size % 64 == 0  # every row starts at the same offset in a line
    assert (16 + layout.data) % 64 == 0  # the vector on a line, 16 bytes into a mapping
    assert links <= layout.data
    assert layout.data + 4 * dim <= layout.label
    assert layout.label == layout.size - 8  # the label last (the huge-pages probe reads it there)
    assert layout.size - packed < 128  # the least padding: under a line on each side
    assert layout.size <= 1.08 * packed


@DIMS
@pytest.mark.parametrize("space", ["ip", "l2"])
def test_the_relaid_graph_answers_exactly_as_before(space: str, dim: int, tmp_path: Path) -> None:
    x = _data(dim=dim)
    index = _graph(x, space)
    for label in range(0, 3 * N, 3 * 17):  # deleted nodes stay deleted
        index.mark_deleted(label)
    queries = _data(200, seed=9, dim=dim)
    before = _answers(index, queries)
    new = relaid(index, Metric.COSINE if space == "ip" else Metric.L2, tmp_path)
    assert new is not None
    assert _layout(new) == row_layout(16, dim)  # (M=8: 16 links in a bottom row)
    after = _answers(new, queries)
    assert np.array_equal(before[0], after[0])
    assert np.array_equal(before[1], after[1])
    assert sorted(new.get_ids_list()) == sorted(index.get_ids_list())
    assert not set(range(0, 3 * N, 3 * 17)) & set(after[0].ravel().tolist())
    # the nodes really moved: memory now follows the locality order of the vectors
    old_labels = _internal_labels(index)
    state = index.__getstate__()[0]
    rows = state["data_level0"].view(np.uint8).reshape(-1, state["size_data_per_element"])
    off = state["offset_data"]
    vectors = np.ascontiguousarray(rows[:N, off : off + 4 * dim]).view(np.float32)
    order = locality_order(vectors, Metric.COSINE if space == "ip" else Metric.L2)
    assert order is not None
    assert np.array_equal(_internal_labels(new), old_labels[order])
    assert not np.array_equal(_internal_labels(new), old_labels)
    assert list(tmp_path.iterdir()) == []  # the scratch file is gone
    # each label still holds its own vector (deleted ones are not readable)
    some = [lab for lab in range(0, 3 * N, 3 * 101) if lab % (3 * 17)]
    assert np.array_equal(new.get_items(some), index.get_items(some))
    # a graph laid out once is laid out again alike (its padded rows are read back)
    again = relaid(new, Metric.COSINE if space == "ip" else Metric.L2, tmp_path)
    assert again is not None
    assert _layout(again) == _layout(new)
    for got, want in zip(_answers(again, queries), after, strict=True):
        assert np.array_equal(got, want)


@DIMS
def test_the_relaid_graph_takes_every_later_operation(dim: int, tmp_path: Path) -> None:
    x = _data(dim=dim)
    new = relaid(_graph(x), Metric.COSINE, tmp_path)
    assert new is not None
    extra = _data(900, seed=4, dim=dim)  # past max_elements: the graph must grow
    new.resize_index(N + 1000)
    new.add_items(extra, np.arange(3 * N, 3 * N + 900))
    new.mark_deleted(0)
    new.add_items(extra[:1], np.array([0]))  # a deleted label reused in place
    new.set_ef(1000)  # (a near-exhaustive walk: M=8 misses a few at 128 dimensions)
    labels, _ = new.knn_query(extra[:50], k=1)
    assert labels[:, 0].tolist()[1:] == list(range(3 * N + 1, 3 * N + 50))
    assert labels[0, 0] in {0, 3 * N}
    assert np.array_equal(new.get_items([3 * N + 7]), extra[7:8])
    clone = hnswlib.Index(space="ip", dim=dim)
    path = tmp_path / "g.bin"
    new.save_index(str(path))
    clone.load_index(str(path))
    clone.set_ef(1000)
    assert _layout(clone) == _layout(new) == row_layout(16, dim)  # saves keep the layout
    assert np.array_equal(clone.knn_query(extra[:50], k=5)[0], new.knn_query(extra[:50], k=5)[0])


def test_small_graphs_and_unknown_states_are_left_alone(tmp_path: Path) -> None:
    small = _data(MIN_ORDERED - 1)
    assert relaid(_graph(small), Metric.COSINE, tmp_path) is None

    class Unknown:
        def __init__(self, real: Any, **change: Any) -> None:
            self.state = dict(real.__getstate__()[0], **change)

        def __getstate__(self) -> tuple[dict[str, Any]]:
            return (self.state,)

    real = _graph(_data())
    assert relaid(real, Metric.COSINE, tmp_path) is not None
    assert relaid(Unknown(real, ser_version=2), Metric.COSINE, tmp_path) is None
    assert relaid(Unknown(real, offset_data=0), Metric.COSINE, tmp_path) is None
    assert relaid(Unknown(real, offset_level0=8), Metric.COSINE, tmp_path) is None
    row = real.__getstate__()[0]["size_data_per_element"]
    assert relaid(Unknown(real, label_offset=row - 4), Metric.COSINE, tmp_path) is None
    missing = Unknown(real)
    del missing.state["link_lists"]
    assert relaid(missing, Metric.COSINE, tmp_path) is None
    assert relaid(real, Metric.COSINE, tmp_path / "no-such-dir") is None
    assert list(tmp_path.iterdir()) == []


def test_a_graph_that_does_not_answer_alike_is_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # bottom-layer links left unrenumbered: hnswlib loads the file, but the graph
    # is scrambled; the sample searches must catch it and keep the old graph.
    # (Upper-layer links stay right: a stale one can point at a node without that
    # layer, which hnswlib does not check.)
    index = _graph(_data())  # M=8: bottom rows hold 16 links, upper rows 8
    assert relaid(index, Metric.COSINE, tmp_path) is not None
    renumber = _hnsw_layout._renumber_links

    def upper_only(rows: np.ndarray, width: int, new_id: np.ndarray) -> None:
        if width != 16:
            renumber(rows, width, new_id)

    monkeypatch.setattr(_hnsw_layout, "_renumber_links", upper_only)
    assert relaid(index, Metric.COSINE, tmp_path) is None
    assert list(tmp_path.iterdir()) == []


@DIMS
def test_the_backend_lays_out_large_batches_and_keeps_answering(dim: int, tmp_path: Path) -> None:
    x = _data(dim=dim)
    url = f"hnsw://{tmp_path}/s?fsync=0&m=8&ef_construction=60&ef_search=40"
    store = VectorStore(dim=dim, backend=url)
    ids = [f"v{i}" for i in range(N)]
    store.add(ids, x, metadata=[{"row": i} for i in range(N)])
    backend: Any = store.backend
    # the batch went into memory in locality order: consecutive nodes are similar
    by_node = _internal_labels(backend._index)
    vec = x[[int(backend._by_label[int(lab)][1:]) for lab in by_node]]
    near = float(np.mean(np.einsum("ij,ij->i", vec[1:], vec[:-1])))
    shuffled = float(np.mean(np.einsum("ij,ij->i", x[1:], x[:-1])))
    assert near > shuffled + 0.2
    queries = x[::211]
    truth = np.argsort(-(x @ queries.T), axis=0)[:10].T
    recall = np.mean(
        [
            len({int(h.id[1:]) for h in store.search(q, k=10)} & set(t.tolist())) / 10
            for q, t in zip(queries, truth, strict=True)
        ]
    )
    assert recall >= 0.9
    for q in queries[:5]:
        for h in store.search(q, k=5):
            assert dict(h.metadata) == {"row": int(h.id[1:])}
    # a filter matching many vectors walks the graph with hnswlib's callback, which
    # reads each node's label from its row
    wide = {"row": {"$gte": 2500}}
    for q, t in zip(queries[:10], truth[:10], strict=True):
        hits = store.search(q, k=5, where=wide)
        assert len(hits) == 5
        assert all(h.metadata["row"] >= 2500 for h in hits)
        if t[0] >= 2500:
            assert hits[0].id == f"v{t[0]}"
    store.delete(ids[:100])
    store.close()
    again = VectorStore(dim=dim, backend=url)
    try:
        assert again.backend.opened_from == "saved"  # type: ignore[attr-defined]
        assert _layout(again.backend._index) == row_layout(16, dim)  # type: ignore[attr-defined]
        assert len(again) == N - 100
        hits = again.search(x[5], k=3)
        assert all(int(h.id[1:]) >= 100 for h in hits)
        assert again.search(x[500], k=1)[0].id == "v500"
    finally:
        again.close()


def test_a_scratch_file_left_by_a_crash_is_removed_on_open(tmp_path: Path) -> None:
    url = f"hnsw://{tmp_path}/s?fsync=0"
    store = VectorStore(dim=DIM, backend=url)
    store.add(["a"], _data(1))
    store.close()
    stale = tmp_path / "s" / ".layout-123-456.tmp"
    stale.write_bytes(b"half a graph")
    again = VectorStore(dim=DIM, backend=url)
    try:
        assert not stale.exists()
        assert again.search(_data(1)[0], k=1)[0].id == "a"
    finally:
        again.close()


@pytest.mark.parametrize(("threads", "want"), [(0, os.cpu_count() or 1), (1, 1), (3, 3)])
def test_threads_zero_means_every_core_before_and_after_a_layout(
    tmp_path: Path, threads: int, want: int
) -> None:
    # hnswlib's own -1, set as the index's default, ran inserts on one thread
    store = VectorStore(dim=DIM, backend=f"hnsw://{tmp_path}/s?fsync=0&threads={threads}")
    try:
        backend: Any = store.backend
        assert backend._index.num_threads == want
        store.add([str(i) for i in range(N)], _data())  # laid out: a new index object
        assert backend._unlaid == 0
        assert backend._index.num_threads == want
    finally:
        store.close()
