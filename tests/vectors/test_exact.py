"""Exactness: the memory backend equals a brute-force float64 reference."""

from __future__ import annotations

import numpy as np
import pytest

from avl.vectors import VectorStore
from avl.vectors._exact import top_k_rows


def _reference(x: np.ndarray, q: np.ndarray, metric: str, k: int) -> tuple[np.ndarray, np.ndarray]:
    x64 = x.astype(np.float64)
    q64 = q.astype(np.float64)
    if metric == "cosine":
        s = (q64 / np.linalg.norm(q64, axis=1, keepdims=True)) @ (
            x64 / np.linalg.norm(x64, axis=1, keepdims=True)
        ).T
        order = np.argsort(-s, axis=1)[:, :k]
    elif metric == "ip":
        s = q64 @ x64.T
        order = np.argsort(-s, axis=1)[:, :k]
    else:
        s = np.sqrt(((q64[:, None, :] - x64[None, :, :]) ** 2).sum(axis=2))
        order = np.argsort(s, axis=1)[:, :k]
    return order, np.take_along_axis(s, order, axis=1)


@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
@pytest.mark.parametrize(("n", "m"), [(3000, 1), (3000, 7), (12000, 40)])
def test_memory_equals_brute_force(metric: str, n: int, m: int) -> None:
    rng = np.random.default_rng(n + m)
    dim = 16
    x = rng.standard_normal((n, dim)).astype(np.float32)
    q = rng.standard_normal((m, dim)).astype(np.float32)
    store = VectorStore(dim=dim, metric=metric)
    store.add(list(range(n)), x)
    k = 10
    want_idx, want_score = _reference(x, q, metric, k)
    got = store.search_many(q, k=k) if m > 1 else [store.search(q[0], k=k)]
    assert [[int(h.id) for h in hits] for hits in got] == want_idx.tolist()
    np.testing.assert_allclose([[h.score for h in hits] for hits in got], want_score, atol=2e-4)


def test_exact_with_filter_and_deletes() -> None:
    rng = np.random.default_rng(5)
    n, dim = 10000, 12
    x = rng.standard_normal((n, dim)).astype(np.float32)
    store = VectorStore(dim=dim, metric="ip")
    store.add(list(range(n)), x, metadata=[{"g": i % 7} for i in range(n)])
    store.delete(list(range(0, n, 3)))
    keep = np.array([i for i in range(n) if i % 3 != 0 and i % 7 in (2, 5)])
    q = rng.standard_normal((20, dim)).astype(np.float32)
    want, _ = _reference(x[keep], q, "ip", 15)
    got = store.search_many(q, k=15, where={"g": {"$in": [2, 5]}})
    assert [[int(h.id) for h in hits] for hits in got] == keep[want].tolist()


def test_top_k_rows_running_sample_path_matches_argsort() -> None:
    rng = np.random.default_rng(9)
    s = rng.standard_normal((30, 50000)).astype(np.float32)
    idx, vals = top_k_rows(s, 12)
    want = np.argsort(-s, axis=1)[:, :12]
    assert idx.tolist() == want.tolist()
    np.testing.assert_array_equal(vals, np.take_along_axis(s, want, axis=1))


def test_growth_keeps_vectors() -> None:
    store = VectorStore(dim=4, metric="l2", backend="memory://?capacity=2")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((100, 4)).astype(np.float32)
    for i in range(100):
        store.add(i, x[i])
    for i in (0, 50, 99):
        np.testing.assert_array_equal(store.get(i)[0].vector, x[i])
        assert store.search(x[i], k=1)[0].id == str(i)


@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
@pytest.mark.parametrize("clustered", [True, False])
def test_single_query_pruning_equals_brute_force(metric: str, clustered: bool) -> None:
    # dim 384 and 20,000 rows take the pruned single-query path (head dimensions plus
    # a Cauchy-Schwarz bound); clustered data prunes, isotropic data falls back.
    rng = np.random.default_rng(7 if clustered else 8)
    n, dim = 20_000, 384
    if clustered:
        centres = rng.standard_normal((64, dim))
        x = centres[rng.integers(0, 64, n)] + 0.4 * rng.standard_normal((n, dim))
        q = centres[rng.integers(0, 64, 12)] + 0.4 * rng.standard_normal((12, dim))
    else:
        x = rng.standard_normal((n, dim))
        q = rng.standard_normal((12, dim))
    x = (x * rng.uniform(0.5, 2.0, (n, 1))).astype(np.float32)
    q = q.astype(np.float32)
    store = VectorStore(dim=dim, metric=metric)
    store.add(list(range(n)), x)
    store.delete([5, 17])  # rows move: the per-row bounds must move with them
    store.upsert([3], x[4:5] * 1.5)
    ref = x.copy()
    ref[3] = x[4] * 1.5
    keep = np.array([i for i in range(n) if i not in (5, 17)])
    want, want_score = _reference(ref[keep], q, metric, 10)
    got = [store.search(qi, k=10) for qi in q]
    assert [[int(h.id) for h in hits] for hits in got] == keep[want].tolist()
    np.testing.assert_allclose(
        [[h.score for h in hits] for hits in got], want_score, rtol=1e-4, atol=2e-4
    )
