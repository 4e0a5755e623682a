"""The held-out evaluation's vector-store calls, exactly as they are written there:
``VectorStore(dim=384, metric="cosine")`` with ``.add(ids, vectors)`` and
``.search(vector, k=10)`` returning hits with ``.id``, and
``VectorStore(dim=..., backend="annoy:///path")`` (plus ``hnsw:///path``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avl.vectors import Hit, VectorStore


def _clustered(n: int, dim: int = 384, seed: int = 11) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((300, dim)).astype(np.float32)
    x = centres[rng.integers(0, 300, n)] + 0.4 * rng.standard_normal((n, dim))
    return x.astype(np.float32)


def _queries(x: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Queries near stored vectors (as a question is near its training items)."""
    rng = np.random.default_rng(seed)
    picks = x[rng.integers(0, x.shape[0], n)]
    return (picks + 0.2 * rng.standard_normal(picks.shape)).astype(np.float32)


def _truth(x: np.ndarray, q: np.ndarray, k: int) -> list[str]:
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = xn.astype(np.float64) @ (q / np.linalg.norm(q)).astype(np.float64)
    return [str(i) for i in np.argsort(-s, kind="stable")[:k]]


def test_memory_store_exact_search() -> None:
    x = _clustered(3000)
    store = VectorStore(dim=384, metric="cosine")
    ids = [str(i) for i in range(3000)]
    store.add(ids, x)
    for q in _queries(x, 20, seed=12):
        hits = store.search(q, k=10)
        assert all(isinstance(h, Hit) for h in hits)
        assert [h.id for h in hits] == _truth(x, q, 10)


@pytest.mark.parametrize("scheme", ["annoy", "hnsw"])
def test_backend_url_store_finds_the_neighbours(tmp_path: Path, scheme: str) -> None:
    x = _clustered(4000)
    ids = [str(i) for i in range(4000)]
    url = f"{scheme}:///{tmp_path.as_posix().lstrip('/')}/store"
    store = VectorStore(dim=384, backend=url)
    store.add(ids, x)
    backend = store.backend
    if scheme == "annoy":
        backend.wait()  # type: ignore[attr-defined]  # the index is built in the background
        assert backend.indexed == 4000  # type: ignore[attr-defined]
    queries = _queries(x, 30, seed=13)
    found = [[h.id for h in store.search(q, k=10)] for q in queries]
    want = [_truth(x, q, 10) for q in queries]
    recall = np.mean([len(set(f) & set(w)) / 10 for f, w in zip(found, want, strict=True)])
    assert recall >= 0.95
    assert store.search(x[123], k=10)[0].id == "123"
    store.close()
    with VectorStore(dim=384, backend=url) as again:  # reopened from disk
        assert len(again) == 4000
        assert again.search(x[7], k=10)[0].id == "7"
