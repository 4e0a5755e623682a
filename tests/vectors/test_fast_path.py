"""``VectorStore.search``'s fast path (a plain NumPy query, no filter) on every
backend: the same hits as the fully validated path, and the same errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avl.errors import InvalidInputError
from avl.vectors import VectorStore
from tests.vectors.conftest import MakeStore


def _data(n: int, dim: int, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
def test_numpy_queries_match_the_validated_path(make_store: MakeStore, metric: str) -> None:
    store = make_store(dim=8, metric=metric)
    x = _data(60, 8)
    store.add([f"v{i}" for i in range(60)], x, metadata=[{"i": i} for i in range(60)])
    for q in _data(12, 8, seed=4):
        fast = store.search(q, k=5)  # float32 ndarray: the fast path
        slow = store.search(q.tolist(), k=5)  # a list: the validated path
        assert [h.id for h in fast] == [h.id for h in slow]
        assert [h.score for h in fast] == pytest.approx([h.score for h in slow], abs=1e-5)
        assert [dict(h.metadata) for h in fast] == [dict(h.metadata) for h in slow]
        # other NumPy forms go through the validated path and agree too
        assert [h.id for h in store.search(q.astype(np.float64), k=5)] == [h.id for h in slow]
        strided = np.repeat(q, 2)[::2]
        assert not strided.flags.c_contiguous
        assert [h.id for h in store.search(strided, k=5)] == [h.id for h in slow]
        scaled = store.search(q * np.float32(7.5), k=5)
        if metric == "cosine":  # cosine ignores the query's length
            assert [h.id for h in scaled] == [h.id for h in slow]
            assert [h.score for h in scaled] == pytest.approx([h.score for h in slow], abs=1e-5)


def _unit(x: np.ndarray) -> np.ndarray:
    return np.asarray(x / np.linalg.norm(x, axis=1, keepdims=True))


def test_bad_numpy_queries_get_the_precise_errors(make_store: MakeStore) -> None:
    store = make_store(dim=4)
    store.add(["a", "b"], [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
    f32 = np.float32
    with pytest.raises(InvalidInputError, match="NaN or infinity"):
        store.search(np.array([1.0, np.nan, 0.0, 0.0], dtype=f32), k=1)
    with pytest.raises(InvalidInputError, match="NaN or infinity"):
        store.search(np.array([np.inf, 0.0, 0.0, 0.0], dtype=f32), k=1)
    with pytest.raises(InvalidInputError, match="zero vector"):
        store.search(np.zeros(4, dtype=f32), k=1)
    # cosine ignores a query's length, even one whose squared length overflows
    assert [h.id for h in store.search(np.array([3e38, 1e37, 0.0, 0.0], dtype=f32), k=1)] == ["a"]
    with pytest.raises(InvalidInputError, match="dimension 4"):
        store.search(np.ones(3, dtype=f32), k=1)
    with pytest.raises(InvalidInputError, match="numeric"):
        store.search(np.array(["a", "b", "c", "d"]), k=1)
    with pytest.raises(InvalidInputError, match="k must be a positive int"):
        store.search(np.ones(4, dtype=f32), k=0)
    assert [h.id for h in store.search(np.array([0.0, 2.0, 0.0, 0.0], dtype=f32), k=1)] == ["b"]


def test_a_single_query_error_names_the_query_not_a_matrix_row(make_store: MakeStore) -> None:
    """One query is not "row 0" of a (1, dim) matrix: the messages say what the
    caller passed; a batch still names the row."""
    store = make_store(dim=4)
    store.add(["a"], [[1.0, 0.0, 0.0, 0.0]])
    for query in (np.zeros(4, dtype=np.float32), [0.0, 0.0, 0.0, 0.0]):
        with pytest.raises(InvalidInputError, match=r"^query is a zero vector"):
            store.search(query, k=1)
    with pytest.raises(InvalidInputError, match=r"^query contains NaN or infinity"):
        store.search([1.0, float("nan"), 0.0, 0.0], k=1)
    with pytest.raises(InvalidInputError, match=r"^query must have dimension 4, got 3$"):
        store.search([1.0, 2.0, 3.0], k=1)
    with pytest.raises(InvalidInputError, match=r"dimension 4, got None$"):
        store.search(None, k=1)
    with pytest.raises(InvalidInputError, match=r"^query row 1 is a zero vector"):
        store.search_many([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]], k=1)
    with pytest.raises(InvalidInputError, match=r"^vectors row 1 contains NaN"):
        store.add(["b", "c"], [[1.0, 0.0, 0.0, 0.0], [float("inf"), 0.0, 0.0, 0.0]])


def test_cosine_takes_vectors_whose_squared_length_under_or_overflows(
    make_store: MakeStore,
) -> None:
    """Cosine does not depend on a vector's length, but values near 1e-20 (squared
    length 0 in float32) were refused as "a zero vector" and values near 1e19 as
    "too large for float32 arithmetic": such vectors are stored and searched like any
    other. A vector of zeros is still refused, and for ``l2`` and ``ip``, whose
    scores do depend on the length, too large values still are."""
    store = make_store(dim=4)
    tiny = np.array([[1e-30, 1e-31, 0.0, 0.0]], dtype=np.float32)
    huge = np.array([[0.0, 0.0, 3e38, -3e38]], dtype=np.float32)
    store.add(["tiny", "huge", "plain"], np.concatenate([tiny, huge, [[0.0, 1.0, 0.0, 0.0]]]))
    unit_tiny = _unit(tiny.astype(np.float64))[0]
    np.testing.assert_allclose(store.get(["tiny"])[0].vector, unit_tiny, rtol=1e-6)
    np.testing.assert_allclose(
        store.get(["huge"])[0].vector, [0.0, 0.0, 0.5**0.5, -(0.5**0.5)], rtol=1e-6
    )
    for query, best in ((tiny[0] * 1e5, "tiny"), (huge[0] / 7, "huge"), (tiny[0], "tiny")):
        hits = store.search(query, k=3)
        assert hits[0].id == best
        assert hits[0].score == pytest.approx(1.0, abs=1e-5)
        assert [h.id for h in store.search(query.tolist(), k=3)] == [h.id for h in hits]
    hits = store.search(np.array([1e-25, 1e-25, 0.0, 0.0], dtype=np.float32), k=3)
    assert {h.id: h.score for h in hits} == {
        "tiny": pytest.approx(float(unit_tiny @ _unit(np.array([[1.0, 1.0, 0, 0]]))[0]), abs=1e-5),
        "plain": pytest.approx(0.5**0.5, abs=1e-5),
        "huge": pytest.approx(0.0, abs=1e-5),
    }
    assert [
        [h.id for h in row] for row in store.search_many(np.concatenate([tiny, huge]), k=1)
    ] == [
        ["tiny"],
        ["huge"],
    ]
    with pytest.raises(InvalidInputError, match=r"^vectors row 1 is a zero vector"):
        store.add(["x", "y"], [[1e-30, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    assert len(store) == 3
    l2 = make_store(dim=2, metric="l2")
    with pytest.raises(InvalidInputError, match=r"^vectors row 1 has values too large for float32"):
        l2.add(["a", "b"], [[1.0, 0.0], [3e38, 3e38]])
    with pytest.raises(InvalidInputError, match=r"^query has values too large for float32"):
        l2.search([3e38, 3e38], k=1)
    l2.add(["t"], [[1e-30, 0.0]])  # tiny is fine where the length counts
    assert [h.id for h in l2.search([0.0, 0.0], k=1)] == ["t"]


def test_a_huge_k_returns_every_vector(make_store: MakeStore) -> None:
    """k beyond a C int reached Annoy as is and failed with its OverflowError."""
    store = make_store(dim=4)
    x = _data(40, 4)
    store.add([f"v{i}" for i in range(40)], x)
    for k in (10**9, 2**70, np.int64(2**62)):
        assert len(store.search(x[0], k=k)) == 40
        assert len(store.search(x[0].tolist(), k=k)) == 40
        assert [len(h) for h in store.search_many(x[:2], k=k)] == [40, 40]


def test_zero_query_is_fine_for_ip_and_l2(make_store: MakeStore) -> None:
    store = make_store(dim=2, metric="l2")
    store.add(["a", "b"], [[1.0, 0.0], [3.0, 0.0]])
    hits = store.search(np.zeros(2, dtype=np.float32), k=2)
    assert [(h.id, h.score) for h in hits] == [("a", pytest.approx(1.0)), ("b", pytest.approx(3.0))]


def test_writes_after_a_build_are_seen_by_the_fast_path(make_store: MakeStore) -> None:
    store = make_store(dim=8)
    x = _data(40, 8, seed=5)
    store.add([f"v{i}" for i in range(40)], x)
    store.delete("v3")
    assert "v3" not in {h.id for h in store.search(x[3], k=40)}
    store.upsert("v4", -x[4])
    assert store.search(-x[4], k=1)[0].id == "v4"
    store.add("new", x[3] * 2.0)
    assert store.search(x[3], k=1)[0].id == "new"


def test_a_closed_store_refuses_the_fast_path(make_store: MakeStore) -> None:
    store = make_store(dim=2)
    store.add("a", [1.0, 0.0])
    store.close()
    with pytest.raises(InvalidInputError, match="closed"):
        store.search(np.array([1.0, 0.0], dtype=np.float32))


def test_metadata_written_later_reaches_the_fast_path(make_store: MakeStore) -> None:
    # a store without metadata answers with one shared empty view; once any vector
    # gets metadata (an upsert, an add, a rebuild of the index) its hits carry it,
    # and once the last such vector goes, hits are plain again
    store = make_store(dim=8)
    x = _data(40, 8, seed=6)
    store.add([f"v{i}" for i in range(40)], x)
    assert all(dict(h.metadata) == {} for h in store.search(x[0], k=10))
    store.upsert("v1", x[1], metadata={"team": "a"})
    store.add("w", x[2] * 3.0, metadata={"team": "b"})
    for r in range(3):  # rebuilds of the approximate index happen between writes
        hits = {h.id: dict(h.metadata) for h in store.search(x[1], k=40)}
        assert hits["v1"] == {"team": "a"}
        assert hits["w"] == {"team": "b"}
        assert all(meta == {} for ident, meta in hits.items() if ident not in {"v1", "w"})
        store.add([f"pad{r}-{j}" for j in range(5)], _data(5, 8, seed=10 + r))
    store.upsert("v1", x[1])  # metadata back to none
    store.delete("w")
    hits = {h.id: dict(h.metadata) for h in store.search(x[1], k=60)}
    assert hits["v1"] == {}
    assert "w" not in hits
    with pytest.raises(TypeError):
        store.search(x[1], k=1)[0].metadata["team"] = "c"  # type: ignore[index]


def test_deleting_what_was_only_written_since_the_build_keeps_the_fast_path(
    tmp_path: Path,
) -> None:
    store = VectorStore(dim=8, backend=f"annoy://{tmp_path}/a?min_index=8&background=0")
    x = _data(40, 8, seed=7)
    store.add([f"v{i}" for i in range(40)], x)
    backend = store.backend
    assert backend._fast is not None  # type: ignore[attr-defined]
    extra = _data(1, 8, seed=8)[0]
    store.add("extra", extra)
    assert backend._fast is None  # type: ignore[attr-defined]
    assert store.search(extra, k=1)[0].id == "extra"  # found through the delta
    store.delete("extra")
    assert backend._fast is not None  # type: ignore[attr-defined]
    assert store.search(x[0], k=1)[0].id == "v0"
    store.delete("v1")  # in the index: a tombstone, so the slow path until a rebuild
    assert backend._fast is None  # type: ignore[attr-defined]
    assert "v1" not in {h.id for h in store.search(x[1], k=40)}
    store.close()
