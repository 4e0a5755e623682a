"""Garbage into VectorStore: only avl errors, no hang, no change after a failure.

Each test draws arguments from :mod:`tests.fuzz._harness` (wrong types, huge and
non-finite numbers, NUL and lone surrogates, ragged and deep containers, NumPy arrays
of every shape, objects whose dunders raise) and calls one public method through
:func:`~tests.fuzz._harness.call`, which fails on any exception that is not an
:class:`~avl.errors.AvlError` and on any call running past its alarm. When a call
fails, the stored data it could have touched is compared with a snapshot taken
before it.

Bounded for CI (derandomised, a few hundred examples per test); set
``AVL_FUZZ_EXAMPLES`` (and ``AVL_FUZZ_RANDOM=1``) for a longer, random run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from avl.vectors import VectorStore
from tests.fuzz._harness import atom, call, fuzz, garbage, text, vectors

# ---------------------------------------------------------------------- VectorStore
DIM = 4


@fuzz
@given(dim=garbage, metric=st.sampled_from(["cosine", "ip", "l2"]) | garbage, backend=atom)
def test_vector_store_constructor(dim: Any, metric: Any, backend: Any) -> None:
    if isinstance(backend, str) and backend.startswith(("file", "annoy", "postgresql", "sqlite")):
        backend = "memory://"
    ok, store = call("VectorStore", VectorStore, dim, metric, backend)
    if ok:
        store.close()


@pytest.fixture(scope="module", params=["memory", "file"])
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[VectorStore]:
    url = "memory://" if request.param == "memory" else f"file://{tmp_path_factory.mktemp('fz')}/s"
    s = VectorStore(dim=DIM, metric="cosine", backend=url)
    s.add(["a", "b", "c"], np.eye(DIM, dtype=np.float32)[:3], metadata=[{"k": 1}, {"k": 2}, None])
    yield s
    s.close()


def _store_state(s: VectorStore) -> dict[str, tuple[bytes, Any]]:
    ids = list(s.backend.index.ids) if hasattr(s.backend, "index") else []  # type: ignore[attr-defined]
    return {r.id: (r.vector.tobytes(), dict(r.metadata)) for r in s.get(ids)} if ids else {}


ids_strategy = st.sampled_from(["a", "new", ["x", "y"], [1, 2], ["a", "a"]]) | text | garbage
where_strategy = (
    st.none()
    | st.sampled_from([{"k": 1}, {"k": {"$in": [1, 2]}}, {"$or": [{"k": 1}, {"k": 2}]}])
    | garbage
)


@fuzz
@given(
    op=st.sampled_from(["add", "upsert", "search", "search_many", "delete", "get"]),
    ids=ids_strategy,
    vecs=vectors(DIM),
    metadata=st.none() | st.sampled_from([{"k": 3}, [{"k": 3}, None]]) | garbage,
    k=st.integers(-2, 20) | garbage,
    where=where_strategy,
)
def test_vector_store_calls(
    store: VectorStore, op: str, ids: Any, vecs: Any, metadata: Any, k: Any, where: Any
) -> None:
    before = _store_state(store)
    if op in ("add", "upsert"):
        ok, _ = call(f"VectorStore.{op}", getattr(store, op), ids, vecs, metadata)
        if ok:  # undo, so every example starts from the same three vectors
            store.delete([i for i in _store_state(store) if i not in before])
            if op == "upsert":
                for i, (vec, md) in before.items():
                    store.upsert(i, np.frombuffer(vec, dtype=np.float32), md)
    elif op == "search":
        ok, _ = call("VectorStore.search", store.search, vecs, k=k, where=where)
    elif op == "search_many":
        ok, _ = call("VectorStore.search_many", store.search_many, vecs, k=k, where=where)
    elif op == "get":
        ok, _ = call("VectorStore.get", store.get, ids)
    else:
        ok, _ = call("VectorStore.delete", store.delete, ids)
        if ok:
            for i, (vec, md) in before.items():
                if i not in store:
                    store.add(i, np.frombuffer(vec, dtype=np.float32), md)
    if not ok:
        assert _store_state(store) == before, f"a failed {op} changed the store"
