"""Annoy backend specifics: delta, tombstones, rebuilds, filters, recall."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avl.errors import ConfigError
from avl.vectors import VectorStore
from avl.vectors.backends.annoy import AnnoyBackend


def _clustered(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((20, dim)).astype(np.float32)
    return (centers[rng.integers(0, 20, n)] + 0.4 * rng.standard_normal((n, dim))).astype(
        np.float32
    )


def _truth(x: np.ndarray, q: np.ndarray, k: int, keep: np.ndarray | None = None) -> list[list[int]]:
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = q @ xn.T
    if keep is not None:
        s[:, ~keep] = -np.inf
    return np.argsort(-s, axis=1)[:, :k].tolist()


def _recall(got: list[list[str]], want: list[list[int]]) -> float:
    hits = sum(len({int(i) for i in g} & set(w)) for g, w in zip(got, want, strict=True))
    return hits / sum(len(w) for w in want)


def _store(tmp_path: Path, **opts: int) -> VectorStore:
    query = "&".join(f"{k}={v}" for k, v in {"min_index": 500, "background": 0, **opts}.items())
    return VectorStore(dim=16, backend=f"annoy://{tmp_path}/a?{query}")


def test_delta_tombstones_and_rebuild(tmp_path: Path) -> None:
    x = _clustered(3000)
    q = _clustered(50, seed=1)
    with _store(tmp_path, rebuild_delta=1500) as store:
        backend = store.backend
        assert isinstance(backend, AnnoyBackend)
        store.add(list(range(400)), x[:400])
        assert (backend.indexed, backend.delta) == (0, 400)  # below min_index: exact only
        store.add(list(range(400, 2000)), x[400:2000])
        assert (backend.indexed, backend.delta) == (2000, 0)
        store.add(list(range(2000, 2300)), x[2000:2300])
        assert (backend.indexed, backend.delta) == (2000, 300)
        got = [[h.id for h in hits] for hits in store.search_many(q, k=10)]
        assert _recall(got, _truth(x[:2300], q, 10)) >= 0.95
        # deletes and replacements of indexed vectors are tombstoned
        store.delete([str(i) for i in range(0, 2000, 2)])
        store.upsert("1", x[2999])
        assert (backend.indexed, backend.delta) == (2000, 301)  # not rebuilt yet
        alive = np.zeros(3000, dtype=bool)
        alive[1:2300:2] = True
        alive[2000:2300] = True
        got = [[h.id for h in hits] for hits in store.search_many(q, k=10)]
        assert all(int(i) % 2 == 1 or int(i) >= 2000 for hits in got for i in hits)
        assert store.search(x[2999], k=1)[0].id == "1"
        assert store.search(x[1], k=1)[0].id != "1"
        # the next writes push the delta past the threshold: rebuilt, delta emptied
        store.add(list(range(2300, 2800)), x[2300:2800])
        assert backend.delta == 0
        assert backend.indexed == len(store) == 1000 + 800


def test_filters_fall_back_to_exact_when_few_survive(tmp_path: Path) -> None:
    x = _clustered(3000, seed=3)
    meta = [{"g": i % 10, "rare": i == 1234} for i in range(3000)]
    with _store(tmp_path, exact_below=50) as store:
        store.add(list(range(3000)), x, metadata=meta)
        assert store.backend.indexed == 3000  # type: ignore[attr-defined]
        q = x[:20]
        keep = np.array([m["g"] in (3, 7) for m in meta])
        got = [
            [h.id for h in hits]
            for hits in store.search_many(q, k=10, where={"g": {"$in": [3, 7]}})
        ]
        assert all(meta[int(i)]["g"] in (3, 7) for hits in got for i in hits)
        assert all(len(hits) == 10 for hits in got)
        assert _recall(got, _truth(x, q, 10, keep)) >= 0.9
        assert [h.id for h in store.search(x[0], k=3, where={"rare": True})] == ["1234"]


def test_background_build_then_reopen(tmp_path: Path) -> None:
    x = _clustered(2500, seed=5)
    url = f"annoy://{tmp_path}/b?min_index=1000"
    with VectorStore(dim=16, backend=url) as store:
        store.add(list(range(2500)), x)
        store.backend.wait()  # type: ignore[attr-defined]
        assert store.backend.indexed == 2500  # type: ignore[attr-defined]
        assert store.search(x[42], k=1)[0].id == "42"
    with VectorStore(dim=16, backend=url) as again:
        again.backend.wait()  # type: ignore[attr-defined]
        assert len(again) == 2500
        assert again.backend.indexed == 2500  # type: ignore[attr-defined]
        assert again.search(x[7], k=1)[0].id == "7"


def test_build_reports_progress(tmp_path: Path) -> None:
    import io

    from avl.embeddings import TtyProgress

    x = _clustered(3000)
    calls: list[tuple[int, int]] = []
    backend = AnnoyBackend(
        tmp_path / "p",
        16,
        min_index=500,
        background=False,
        progress=lambda d, t: calls.append((d, t)),
    )
    store = VectorStore(dim=16, backend=backend)
    with store:
        store.add([str(i) for i in range(3000)], x)
        assert backend.indexed == 3000
    assert calls == [(1024, 3001), (2048, 3001), (3001, 3001)]
    bar = io.StringIO()
    with VectorStore(
        dim=16,
        backend=AnnoyBackend(
            tmp_path / "p",
            16,
            min_index=500,
            background=False,
            progress=TtyProgress("index", stream=bar, force=True),
        ),
    ) as reopened:
        assert len(reopened) == 3000  # rebuilt on open, with a bar
    assert "index" in bar.getvalue()
    assert bar.getvalue().endswith("3001/3001\n")


def test_searches_during_writes_and_background_builds_see_every_finished_write(
    tmp_path: Path,
) -> None:
    # the fast path reads the built index without the lock: a write that returned
    # must be visible to the next search, while other threads search and
    # background builds swap the index
    import threading

    x = _clustered(3000, seed=8)
    store = VectorStore(
        dim=16, backend=f"annoy://{tmp_path}/c?min_index=500&rebuild_delta=40&fsync=0"
    )
    store.add([str(i) for i in range(3000)], x)
    stop = threading.Event()
    errors: list[BaseException] = []

    def reader(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            while not stop.is_set():
                hits = store.search(x[int(rng.integers(0, 3000))], k=5)
                assert len(hits) == 5
                assert all(isinstance(h.id, str) for h in hits)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(s,)) for s in range(3)]
    for t in threads:
        t.start()
    try:
        rng = np.random.default_rng(9)
        fast_before_write = 0
        for step in range(150):
            if step % 5 == 0:  # a build with nothing written since: the fast path is on
                store.backend.rebuild()  # type: ignore[attr-defined]
            fast_before_write += store.backend._fast is not None  # type: ignore[attr-defined]
            v = rng.standard_normal(16).astype(np.float32) * 10.0
            store.add(f"new{step}", v)
            assert store.search(v, k=1)[0].id == f"new{step}"
            old = str(int(rng.integers(0, 3000)))
            if old in store:
                store.delete(old)
                assert old not in {h.id for h in store.search(x[int(old)], k=10)}
            if step % 3 == 0:
                store.delete(f"new{step}")
                assert store.search(v, k=1)[0].id != f"new{step}"
    finally:
        stop.set()
        for t in threads:
            t.join()
        store.close()
    assert not errors, errors[:3]
    assert fast_before_write >= 30  # the race this test is about was run


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("n_trees=0", "n_trees must be between 1 and"),  # Annoy: no trees, no results
        ("search_k=-5", "search_k must be between 1 and"),
        ("seed=2147483648", "seed must be between 0 and 2,147,483,647"),  # Annoy: OverflowError
        ("rebuild_delta=-1", "rebuild_delta must be at least 0"),
        ("rebuild_fraction_pct=-1", r"rebuild_fraction \(URL: rebuild_fraction_pct / 100\)"),
        ("exact_below=-3", "exact_below must be at least 0"),
        ("min_index=-3", "min_index must be at least 0"),
    ],
)
def test_out_of_range_options_are_refused_by_avl(tmp_path: Path, query: str, message: str) -> None:
    """Checked before Annoy sees them; ``n_trees=0`` used to give an index that found
    nothing at all."""
    with pytest.raises(ConfigError, match=f"^annoy option {message}"):
        VectorStore(dim=4, backend=f"annoy://{tmp_path}/a?{query}")
    assert not (tmp_path / "a").exists()
