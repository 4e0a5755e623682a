"""Large batches are stored grouped by similarity (avl.vectors._order): Annoy inserts
them in that order, hnsw inserts them shuffled and then lays its graph out in it.
The order is a real permutation that groups similar vectors, and every hit still
carries its own id, score and metadata, before and after a reopen."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avl.vectors import Metric, VectorStore
from avl.vectors._order import MIN_ORDERED, locality_order

N = MIN_ORDERED + 904  # large enough to be reordered


def _clustered(n: int, dim: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((40, dim)).astype(np.float32) * 3.0
    which = rng.integers(0, 40, n)
    x = centres[which] + 0.3 * rng.standard_normal((n, dim)).astype(np.float32)
    return x.astype(np.float32), which


@pytest.mark.parametrize("metric", list(Metric))
def test_the_order_is_a_permutation_that_groups_similar_rows(metric: Metric) -> None:
    x, which = _clustered(N)
    if metric is Metric.COSINE:
        x /= np.linalg.norm(x, axis=1, keepdims=True)
    order = locality_order(x, metric)
    assert order is not None
    assert sorted(order.tolist()) == list(range(N))
    assert np.array_equal(order, locality_order(x, metric))  # deterministic
    # neighbours in the new order mostly come from the same cluster; in the
    # caller's (random) order about one pair in forty does
    same_after = float(np.mean(which[order][1:] == which[order][:-1]))
    same_before = float(np.mean(which[1:] == which[:-1]))
    assert same_before < 0.1
    assert same_after > 0.8


def test_small_batches_keep_their_order() -> None:
    x, _ = _clustered(MIN_ORDERED - 1)
    assert locality_order(x, Metric.COSINE) is None


def _url(tmp_path: Path, kind: str) -> str:
    """A graph store that builds in the calling thread (Annoy) so tests see the index."""
    return f"{kind}://{tmp_path}/s?fsync=0" + ("&background=0" if kind == "annoy" else "")


def _check_hits(store: VectorStore, x: np.ndarray, metric: str) -> None:
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    queries = x[::397] + np.float32(0.01)
    found = 0
    for q in queries:
        hits = store.search(q, k=10)
        assert len(hits) == 10
        for h in hits:
            row = int(h.id)
            assert dict(h.metadata) == {"row": row}  # metadata followed its vector
            # the score is this id's own similarity or distance
            if metric == "cosine":
                want = float(xn[row] @ (q / np.linalg.norm(q)))
            elif metric == "ip":
                want = float(x[row] @ q)
            else:
                want = float(np.linalg.norm(x[row] - q))
            assert h.score == pytest.approx(want, rel=1e-4, abs=1e-3)
        if metric == "cosine":
            truth = np.argsort(-(xn @ (q / np.linalg.norm(q))))[:10]
        elif metric == "ip":
            truth = np.argsort(-(x @ q))[:10]
        else:
            truth = np.argsort(np.linalg.norm(x - q, axis=1))[:10]
        found += len({int(h.id) for h in hits} & set(truth.tolist()))
    assert found / (10 * len(queries)) >= 0.9


@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
@pytest.mark.parametrize("kind", ["annoy", "hnsw"])
def test_reordered_indexes_answer_with_the_right_ids(
    tmp_path: Path, kind: str, metric: str
) -> None:
    x, _ = _clustered(N, seed=3)
    url = _url(tmp_path, kind)
    store = VectorStore(dim=16, metric=metric, backend=url)
    store.add([str(i) for i in range(N)], x, metadata=[{"row": i} for i in range(N)])
    _check_hits(store, x, metric)
    store.close()
    again = VectorStore(dim=16, metric=metric, backend=url)
    try:
        _check_hits(again, x, metric)
        # writes after a reordered build: a moved vector is found under its id
        again.upsert("7", x[4000], metadata={"row": 4000})
        if metric != "ip":  # (an inner product's best match is not the vector itself)
            top = again.search(x[4000], k=2)
            assert {h.id for h in top} == {"7", "4000"}
            assert all(dict(h.metadata) == {"row": 4000} for h in top)
    finally:
        again.close()


@pytest.mark.parametrize("kind", ["annoy", "hnsw"])
def test_a_large_upsert_after_deletes_keeps_every_mapping(tmp_path: Path, kind: str) -> None:
    # deletes free hnswlib labels; a large upsert then reuses them in a reordered
    # batch (and rebuilds Annoy): every id must still answer with its own vector
    x, _ = _clustered(N, seed=5)
    store = VectorStore(dim=16, backend=_url(tmp_path, kind))
    try:
        store.add([str(i) for i in range(N)], x, metadata=[{"row": i} for i in range(N)])
        store.delete([str(i) for i in range(0, N, 3)])
        y, _ = _clustered(N, seed=6)  # new vectors for every id, deleted ones back
        store.upsert([str(i) for i in range(N)], y, metadata=[{"row": i} for i in range(N)])
        _check_hits(store, y, "cosine")
        assert len(store) == N
    finally:
        store.close()


@pytest.mark.parametrize("kind", ["annoy", "hnsw"])
def test_filters_tombstones_and_the_delta_on_a_reordered_index(tmp_path: Path, kind: str) -> None:
    x, which = _clustered(N, seed=11)
    store = VectorStore(dim=16, backend=_url(tmp_path, kind))
    try:
        meta = [{"row": i, "cluster": int(which[i])} for i in range(N)]
        store.add([str(i) for i in range(N)], x, metadata=meta)
        store.delete([str(i) for i in range(1, N, 7)])  # tombstones
        store.add("late", x[10] * 1.5, metadata={"row": -1, "cluster": int(which[10])})
        for q in x[::501]:
            cluster = int(which[int(np.argmax(x @ q))])
            hits = store.search(q, k=10, where={"cluster": cluster})
            assert hits
            for h in hits:
                assert h.metadata["cluster"] == cluster
                assert h.id == "late" or int(h.id) % 7 != 1
                assert h.id == "late" or h.metadata["row"] == int(h.id)
        assert store.search(x[10], k=2, where={"cluster": int(which[10])})[0].id in {"10", "late"}
    finally:
        store.close()
