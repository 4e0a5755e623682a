"""Exactness: the memory backend equals a brute-force float64 reference."""

from __future__ import annotations

import numpy as np
import pytest

from avl.vectors import Hit, VectorStore
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
    # dim 384 and 20,000 rows take the pruned single-query path (a principal-direction
    # sketch plus a Cauchy-Schwarz bound); clustered data prunes, isotropic data
    # falls back.
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
    index = store.backend.index  # type: ignore[attr-defined]
    index.path_stats(reset=True)
    got = [store.search(qi, k=10) for qi in q]
    assert [[int(h.id) for h in hits] for hits in got] == keep[want].tolist()
    np.testing.assert_allclose(
        [[h.score for h in hits] for hits in got], want_score, rtol=1e-4, atol=2e-4
    )
    paths = index.path_stats()
    if clustered:  # the sketch prunes every query
        assert paths["pruned"] == 12
    else:  # isotropic noise: each query's estimate goes straight to the full product
        assert paths["full (estimate)"] == 12


def _stable_reference(x: np.ndarray, q: np.ndarray, metric: str, k: int) -> np.ndarray:
    """Best first, lower row first on ties (exact for integer-valued data)."""
    x64 = x.astype(np.float64)
    q64 = q.astype(np.float64)
    s = 2.0 * (q64 @ x64.T) - (x64 * x64).sum(axis=1) if metric == "l2" else q64 @ x64.T
    return np.argsort(-s, axis=1, kind="stable")[:, :k]


@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
@pytest.mark.parametrize("clustered", [True, False])
@pytest.mark.parametrize("k", [1, 10, 100])
def test_batch_candidate_pool_equals_brute_force(metric: str, clustered: bool, k: int) -> None:
    # 20,000 rows and a batch take the blocked path: scores per 4,096 rows, a per-query
    # lower bound of the k-th best, and a pool of the entries above it.
    rng = np.random.default_rng(100 * k + 2 * clustered + len(metric))
    n, dim, m = 20_000, 24, 30
    if clustered:
        centres = rng.standard_normal((16, dim))
        x = centres[rng.integers(0, 16, n)] + 0.3 * rng.standard_normal((n, dim))
        q = centres[rng.integers(0, 16, m)] + 0.3 * rng.standard_normal((m, dim))
    else:
        x = rng.standard_normal((n, dim))
        q = rng.standard_normal((m, dim))
    x = (x * rng.uniform(0.5, 2.0, (n, 1))).astype(np.float32)
    q = q.astype(np.float32)
    store = VectorStore(dim=dim, metric=metric)
    store.add(list(range(n)), x, metadata=[{"g": i % 3} for i in range(n)])
    _assert_top_k(store.search_many(q, k=k), x, q, metric, k, np.arange(n))
    keep = np.flatnonzero(np.arange(n) % 3 != 1)
    _assert_top_k(store.search_many(q, k=k, where={"g": {"$ne": 1}}), x, q, metric, k, keep)


def _assert_top_k(
    got: list[list[Hit]], x: np.ndarray, q: np.ndarray, metric: str, k: int, rows: np.ndarray
) -> None:
    """Each hit list is a float64 top-k of ``rows`` (positions may swap only where
    float64 scores tie to 1e-6, below float32 resolution)."""
    want, want_score = _reference(x[rows], q, metric, k)
    x64 = x.astype(np.float64)
    for i, hits in enumerate(got):
        ids = [int(h.id) for h in hits]
        assert len(set(ids)) == len(ids) == k
        assert set(ids) <= set(rows.tolist())
        if metric == "l2":
            exact = np.sqrt(((x64[ids] - q[i].astype(np.float64)) ** 2).sum(axis=1))
        else:
            qi = q[i].astype(np.float64)
            xi = x64[ids]
            if metric == "cosine":
                qi = qi / np.linalg.norm(qi)
                xi = xi / np.linalg.norm(xi, axis=1, keepdims=True)
            exact = xi @ qi
        np.testing.assert_allclose(exact, want_score[i], rtol=0, atol=1e-6)
        np.testing.assert_allclose([h.score for h in hits], want_score[i], rtol=1e-4, atol=2e-4)
        differ = np.flatnonzero(np.array(ids) != rows[want[i]])
        assert np.all(np.abs(exact[differ] - want_score[i][differ]) < 1e-6)


@pytest.mark.parametrize("metric", ["ip", "l2"])
@pytest.mark.parametrize("k", [1, 10, 100, 1024])
def test_batch_ties_break_to_the_lower_row(metric: str, k: int) -> None:
    # integer-valued vectors: every score is exact in float32, and many tie
    rng = np.random.default_rng(k)
    n, dim = 30_000, 6
    x = rng.integers(-1, 2, (n, dim)).astype(np.float32)
    q = rng.integers(-2, 3, (9, dim)).astype(np.float32)
    store = VectorStore(dim=dim, metric=metric)
    store.add(list(range(n)), x, metadata=[{"odd": i % 2 == 1} for i in range(n)])
    got = store.search_many(q, k=k)
    assert [[int(h.id) for h in hits] for hits in got] == _stable_reference(
        x, q, metric, k
    ).tolist()
    odd = np.arange(1, n, 2)
    got_f = store.search_many(q, k=k, where={"odd": True})
    assert [[int(h.id) for h in hits] for hits in got_f] == odd[
        _stable_reference(x[odd], q, metric, k)
    ].tolist()


def test_batch_scores_rising_with_the_row() -> None:
    # adversarial for a running bound: every new block beats every earlier one
    n, dim = 40_000, 4
    x = np.zeros((n, dim), dtype=np.float32)
    x[:, 0] = np.arange(1, n + 1, dtype=np.float32) / n
    x[:, 1] = np.linspace(-1.0, 1.0, n, dtype=np.float32)
    q = np.array([[1, 0, 0, 0], [1, 0.5, 0, 0], [1, -0.25, 0, 0], [1, -2, 0, 0]], dtype=np.float32)
    store = VectorStore(dim=dim, metric="ip")
    store.add(list(range(n)), x)
    got = store.search_many(q, k=10)
    assert [[int(h.id) for h in hits] for hits in got] == _stable_reference(x, q, "ip", 10).tolist()


@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
def test_batch_k_above_rows(metric: str) -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((50, 8)).astype(np.float32)
    q = rng.standard_normal((5, 8)).astype(np.float32)
    store = VectorStore(dim=8, metric=metric)
    store.add(list(range(50)), x, metadata=[{"g": i % 2} for i in range(50)])
    want, _ = _reference(x, q, metric, 50)
    got = store.search_many(q, k=80)
    assert [[int(h.id) for h in hits] for hits in got] == want.tolist()
    even = np.arange(0, 50, 2)
    want_f, _ = _reference(x[even], q, metric, 25)
    got_f = store.search_many(q, k=80, where={"g": 0})
    assert [[int(h.id) for h in hits] for hits in got_f] == even[want_f].tolist()


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_pruning_is_exact_when_the_bound_is_loose(metric: str) -> None:
    """Data whose energy is spread over many directions: the estimate lets the
    sketch run, the bound prunes too little or only a little; either way the
    answer is the brute-force one."""
    rng = np.random.default_rng(21)
    n, dim = 17_000, 256
    basis = rng.standard_normal((160, dim))
    x = (rng.standard_normal((n, 160)) * np.linspace(3.0, 0.3, 160)) @ basis
    x = (x + 0.05 * rng.standard_normal((n, dim))).astype(np.float32)
    q = x[rng.integers(0, n, 16)] + 0.3 * rng.standard_normal((16, dim)).astype(np.float32)
    store = VectorStore(dim=dim, metric=metric)
    store.add(list(range(n)), x)
    want, want_score = _reference(x, q, metric, 10)
    got = [store.search(qi, k=10) for qi in q]
    assert [[int(h.id) for h in hits] for hits in got] == want.tolist()
    np.testing.assert_allclose(
        [[h.score for h in hits] for hits in got], want_score, rtol=1e-4, atol=2e-4
    )
    paths = store.backend.index.path_stats()  # type: ignore[attr-defined]
    assert sum(paths.values()) == 16


def test_sketch_follows_writes() -> None:
    """Rows added, replaced and deleted after the sketch was fitted keep exact
    answers (their sketch and residual are computed on write)."""
    rng = np.random.default_rng(3)
    n, dim = 17_000, 384
    centres = rng.standard_normal((40, dim))
    x = (
        centres[rng.integers(0, 40, n + 3000)] + 0.3 * rng.standard_normal((n + 3000, dim))
    ).astype(np.float32)
    store = VectorStore(dim=dim, metric="ip")
    store.add(list(range(n)), x[:n])
    store.add(list(range(n, n + 3000)), x[n:])
    flipped = -x[100:200]
    store.upsert(list(range(100, 200)), flipped)
    store.delete(list(range(200, 400)))
    ref = x.copy()
    ref[100:200] = flipped
    keep = np.array([i for i in range(n + 3000) if not 200 <= i < 400])
    q = x[rng.integers(0, n + 3000, 10)] + 0.1 * rng.standard_normal((10, dim)).astype(np.float32)
    q = np.concatenate([q, -x[150:152]])
    want, _ = _reference(ref[keep], q, "ip", 10)
    got = [[int(h.id) for h in store.search(qi, k=10)] for qi in q]
    assert got == keep[want].tolist()
    assert store.backend.index.path_stats()["pruned"] >= 10  # type: ignore[attr-defined]
