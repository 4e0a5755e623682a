"""One suite for every vector-store backend (memory, file, annoy, postgresql)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from avl.errors import InvalidInputError, NotFoundError
from avl.vectors import Hit, VectorStore
from tests.vectors.conftest import MakeStore


def _data(n: int = 40, dim: int = 8, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, dim)).astype(np.float32)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _fill(store: VectorStore, n: int = 40) -> np.ndarray:
    x = _data(n, store.dim)
    store.add(
        [f"v{i}" for i in range(n)],
        x,
        metadata=[
            {"i": i, "parity": "even" if i % 2 == 0 else "odd", "tag": f"t{i % 5}"}
            for i in range(n)
        ],
    )
    return x


def _expected(
    x: np.ndarray, q: np.ndarray, metric: str, keep: list[int] | None = None
) -> list[str]:
    rows = list(range(len(x))) if keep is None else keep
    if metric == "cosine":
        s = _unit(x[rows]).astype(np.float64) @ _unit(q).astype(np.float64)
        order = np.argsort(-s)
    elif metric == "ip":
        order = np.argsort(-(x[rows].astype(np.float64) @ q.astype(np.float64)))
    else:
        order = np.argsort(np.linalg.norm(x[rows].astype(np.float64) - q, axis=1))
    return [f"v{rows[i]}" for i in order]


def test_add_and_search_finds_itself_first(make_store: MakeStore) -> None:
    store = make_store()
    x = _fill(store)
    assert len(store) == 40
    hits = store.search(x[7], k=3)
    assert [h.id for h in hits] == _expected(x, x[7], "cosine")[:3]
    assert hits[0].id == "v7"
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert dict(hits[0].metadata) == {"i": 7, "parity": "odd", "tag": "t2"}
    assert all(isinstance(h, Hit) for h in hits)
    assert hits[0].score >= hits[1].score >= hits[2].score


@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
def test_scores_per_metric(make_store: MakeStore, metric: str) -> None:
    store = make_store(dim=2, metric=metric)
    store.add(["a", "b", "c"], [[3.0, 4.0], [1.0, 0.0], [0.0, 2.0]])
    hits = store.search([1.0, 0.0], k=3)
    if metric == "cosine":
        assert [h.id for h in hits] == ["b", "a", "c"]
        assert [h.score for h in hits] == pytest.approx([1.0, 0.6, 0.0], abs=1e-5)
    elif metric == "ip":
        assert [h.id for h in hits] == ["a", "b", "c"]
        assert [h.score for h in hits] == pytest.approx([3.0, 1.0, 0.0], abs=1e-5)
    else:
        assert [h.id for h in hits] == ["b", "c", "a"]
        assert [h.score for h in hits] == pytest.approx(
            [0.0, math.sqrt(5.0), math.sqrt(20.0)], abs=1e-4
        )


def test_int_ids_become_strings(make_store: MakeStore) -> None:
    store = make_store(dim=2)
    store.add([1, 2], [[1.0, 0.0], [0.0, 1.0]])
    store.add(3, [1.0, 1.0], metadata={"single": True})
    assert [h.id for h in store.search([1.0, 0.0], k=1)] == ["1"]
    assert 3 in store
    assert "3" in store
    assert dict(store.get(3)[0].metadata) == {"single": True}


def test_get_returns_records_and_missing_raises(make_store: MakeStore) -> None:
    store = make_store(dim=2)
    store.add(["a", "b"], [[3.0, 4.0], [0.0, 2.0]], metadata=[{"x": 1}, None])
    a, b = store.get(["a", "b"])
    assert a.id == "a"
    np.testing.assert_allclose(a.vector, [0.6, 0.8], atol=1e-6)
    assert dict(a.metadata) == {"x": 1}
    assert dict(b.metadata) == {}
    with pytest.raises(NotFoundError, match="nope"):
        store.get(["a", "nope"])


def test_duplicate_ids_are_refused(make_store: MakeStore) -> None:
    store = make_store(dim=2)
    store.add(["a"], [[1.0, 0.0]])
    with pytest.raises(InvalidInputError, match="duplicate ids"):
        store.add(["b", "b"], [[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(InvalidInputError, match=r"already exist: \['a'\]"):
        store.add(["c", "a"], [[1.0, 0.0], [0.0, 1.0]])
    assert len(store) == 1
    assert "c" not in store


def test_upsert_replaces_vector_and_metadata(make_store: MakeStore) -> None:
    store = make_store(dim=2)
    store.add(["a", "b"], [[1.0, 0.0], [0.0, 1.0]], metadata=[{"v": 1}, {"v": 1}])
    store.upsert(["a", "c"], [[0.0, 1.0], [1.0, 1.0]], metadata=[{"v": 2}, {"v": 3}])
    assert len(store) == 3
    rec = store.get("a")[0]
    np.testing.assert_allclose(rec.vector, [0.0, 1.0], atol=1e-6)
    assert dict(rec.metadata) == {"v": 2}
    assert [h.id for h in store.search([1.0, 0.0], k=1)] == ["c"]
    assert {h.id for h in store.search([0.0, 1.0], k=2)} == {"a", "b"}


def test_delete(make_store: MakeStore) -> None:
    store = make_store()
    x = _fill(store)
    assert store.delete(["v7", "v8", "missing"]) == 2
    assert store.delete("v7") == 0
    assert len(store) == 38
    assert "v7" not in store
    hits = store.search(x[7], k=40)
    assert len(hits) == 38
    assert "v7" not in {h.id for h in hits}
    store.add("v7", x[7])
    assert store.search(x[7], k=1)[0].id == "v7"


def test_empty_store_and_large_k(make_store: MakeStore) -> None:
    store = make_store(dim=3)
    assert len(store) == 0
    assert store.search([1.0, 0.0, 0.0], k=5) == []
    assert store.search_many([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], k=5) == [[], []]
    store.add(["a", "b"], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    assert [h.id for h in store.search([1.0, 0.0, 0.0], k=100)] == ["a", "b"]
    with pytest.raises(InvalidInputError, match="k must be a positive int"):
        store.search([1.0, 0.0, 0.0], k=0)


def test_bad_vectors_are_refused(make_store: MakeStore) -> None:
    store = make_store(dim=3)
    with pytest.raises(InvalidInputError, match="dimension 3"):
        store.add(["a"], [[1.0, 2.0]])
    with pytest.raises(InvalidInputError, match="NaN or infinity"):
        store.add(["a"], [[1.0, float("nan"), 0.0]])
    with pytest.raises(InvalidInputError, match="NaN or infinity"):
        store.add(["a", "b"], [[1.0, 0.0, 0.0], [float("inf"), 0.0, 0.0]])
    with pytest.raises(InvalidInputError, match="zero vector"):
        store.add(["a"], [[0.0, 0.0, 0.0]])
    with pytest.raises(InvalidInputError, match="2 ids but 1 vectors"):
        store.add(["a", "b"], [[1.0, 0.0, 0.0]])
    with pytest.raises(InvalidInputError, match="numeric"):
        store.add(["a"], [["x", "y", "z"]])
    with pytest.raises(InvalidInputError, match="ids must be str or int"):
        store.add([1.5], [[1.0, 0.0, 0.0]])
    with pytest.raises(InvalidInputError, match="JSON"):
        store.add(["a"], [[1.0, 0.0, 0.0]], metadata=[{"x": object()}])
    assert len(store) == 0
    store.add(["a"], [[1.0, 0.0, 0.0]])
    with pytest.raises(InvalidInputError, match="dimension 3"):
        store.search([1.0, 0.0], k=1)
    with pytest.raises(InvalidInputError, match="NaN"):
        store.search([float("nan"), 0.0, 0.0], k=1)


def test_ids_and_metadata_that_some_store_cannot_hold_are_refused_everywhere(
    make_store: MakeStore,
) -> None:
    """A lone surrogate or a NUL character in an id or in metadata: PostgreSQL
    failed with a bare ``UnicodeEncodeError`` or a ``BackendError`` from inside
    its COPY, while the file backends stored them. Every backend now refuses them
    alike before anything is written."""
    store = make_store(dim=3)
    v = [[1.0, 0.0, 0.0]]
    cases: list[tuple[dict[str, object], str]] = [
        ({"ids": ["a\x00b"]}, r"^id 'a\\x00b' must not contain NUL characters$"),
        ({"ids": ["ok\ud800"]}, r"^id 'ok\\ud800' is not valid Unicode: .* at position 2$"),
        (
            {"ids": ["m"], "metadata": [{"note": "x\udcff"}]},
            r"^metadata\[0\] holds a string that is not valid Unicode",
        ),
        ({"ids": ["m"], "metadata": [{"k\x00": 1}]}, r"^metadata\[0\] holds a NUL character"),
        ({"ids": ["m"], "metadata": [{"k": ["a", {"b": "\x00"}]}]}, "NUL character"),
    ]
    for kwargs, error in cases:
        ids = kwargs.pop("ids")
        with pytest.raises(InvalidInputError, match=error):
            store.add(ids, v, **kwargs)  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError, match=error):
            store.upsert(ids, v, **kwargs)  # type: ignore[arg-type]
    assert len(store) == 0
    with pytest.raises(InvalidInputError, match="NUL"):
        store.get(["a\x00b"])
    for where in ({"k": "a\x00"}, {"k": {"$in": ["x", "\ud800"]}}, {"k": {"$gt": "\udcff"}}):
        with pytest.raises(InvalidInputError, match="must be valid Unicode without NUL"):
            store.search(v[0], k=1, where=where)
    # a literal backslash before "u0000" is text, not a NUL; newlines and tabs are fine
    store.add(["a\nb", "c"], v * 2, metadata=[{"path": "C:\\u0000"}, {"t": "x\ty\u00e9"}])
    assert {h.id: dict(h.metadata) for h in store.search(v[0], k=5)} == {
        "a\nb": {"path": "C:\\u0000"},
        "c": {"t": "x\ty\u00e9"},
    }


def test_filters_are_applied_before_ranking(make_store: MakeStore) -> None:
    store = make_store()
    x = _fill(store)
    q = x[0]
    # The query's nearest neighbours are mostly "even"/t0; ask for the others.
    hits = store.search(q, k=10, where={"parity": "odd"})
    odd = [i for i in range(40) if i % 2 == 1]
    assert [h.id for h in hits] == _expected(x, q, "cosine", odd)[:10]
    hits = store.search(q, k=10, where={"tag": {"$in": ["t1", "t3"]}})
    keep = [i for i in range(40) if i % 5 in (1, 3)]
    assert [h.id for h in hits] == _expected(x, q, "cosine", keep)[:10]
    hits = store.search(q, k=50, where={"i": {"$gte": 10, "$lt": 14}})
    assert sorted(h.id for h in hits) == ["v10", "v11", "v12", "v13"]
    hits = store.search(q, k=50, where={"i": {"$gt": 35}, "parity": {"$ne": "odd"}})
    assert sorted(h.id for h in hits) == ["v36", "v38"]
    hits = store.search(q, k=50, where={"i": {"$lte": 2}, "tag": {"$nin": ["t1"]}})
    assert sorted(h.id for h in hits) == ["v0", "v2"]
    assert store.search(q, k=5, where={"parity": "none"}) == []
    assert store.search(q, k=5, where={"missing": 1}) == []
    assert store.search(q, k=5, where={"i": "3"}) == []


def test_filter_far_matches_still_fill_k(make_store: MakeStore) -> None:
    store = make_store(dim=2)
    n = 60
    ids = [f"p{i}" for i in range(n)]
    vecs = [[1.0, 0.001 * i] for i in range(n)]
    meta = [{"group": "near"} for _ in range(n)]
    store.add(ids, vecs, metadata=meta)
    store.add(
        ["far1", "far2", "far3"],
        [[-1.0, 0.1], [-1.0, 0.2], [-1.0, 0.3]],
        metadata=[{"group": "far"}] * 3,
    )
    hits = store.search([1.0, 0.0], k=3, where={"group": "far"})
    assert [h.id for h in hits] == ["far3", "far2", "far1"]


def test_injectable_filter_keys_are_refused(make_store: MakeStore) -> None:
    store = make_store(dim=2)
    store.add(["a"], [[1.0, 0.0]], metadata=[{"a": 1}])
    for key in ["a') OR 1=1 --", "a'; DROP TABLE x; --", "a b", "", "1a", "a->>b"]:
        with pytest.raises(InvalidInputError, match="invalid metadata filter key"):
            store.search([1.0, 0.0], k=1, where={key: 1})
    with pytest.raises(InvalidInputError, match="unknown operator"):
        store.search([1.0, 0.0], k=1, where={"a": {"$regex": ".*"}})
    # Values are data, never syntax.
    assert store.search([1.0, 0.0], k=1, where={"a": "1' OR '1'='1"}) == []
    assert len(store) == 1


def test_search_many_matches_search(make_store: MakeStore) -> None:
    store = make_store()
    x = _fill(store)
    many = store.search_many(x[:5], k=4, where={"parity": "even"})
    assert [hits[0].id for hits in many][0::2] == ["v0", "v2", "v4"]
    assert [[h.id for h in hits] for hits in many] == [
        [h.id for h in store.search(q, k=4, where={"parity": "even"})] for q in x[:5]
    ]


def test_context_manager_closes(make_store: MakeStore) -> None:
    store = make_store(dim=2)
    with store as s:
        s.add("a", [1.0, 0.0])
    with pytest.raises(InvalidInputError, match="closed"):
        store.search([1.0, 0.0])
