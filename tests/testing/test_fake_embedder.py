from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from avl.embeddings import Embedder
from avl.errors import ConfigError, InvalidInputError
from avl.testing import FakeEmbedder


def test_fake_embedder_is_an_embedder_and_deterministic() -> None:
    emb: Embedder = FakeEmbedder(dim=6, seed=3)
    assert isinstance(emb, Embedder)
    assert emb.name == "fake:dim=6,seed=3"
    assert emb.dim == 6
    a = emb.embed(["alpha", "beta", "alpha"])
    assert a.shape == (3, 6)
    assert a.dtype == np.float32
    assert a.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(a[0], a[2])
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), [1.0, 1.0, 1.0], rtol=1e-6)
    assert not np.allclose(a[0], a[1])
    assert not np.allclose(FakeEmbedder(dim=6, seed=4).embed(["alpha"])[0], a[0])
    assert FakeEmbedder(dim=6).embed([]).shape == (0, 6)


def test_fake_embedder_is_stable_across_processes() -> None:
    code = (
        "from avl.testing import FakeEmbedder; print(FakeEmbedder(dim=3).embed(['q'])[0].tolist())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(FakeEmbedder(dim=3).embed(["q"])[0].tolist())


def test_fake_embedder_records_calls_and_validates() -> None:
    emb = FakeEmbedder(dim=2)
    emb.embed(["a"])
    emb.embed(["b", "c"])
    assert emb.calls == [["a"], ["b", "c"]]
    with pytest.raises(InvalidInputError, match="not one string"):
        emb.embed("abc")
    with pytest.raises(InvalidInputError, match=r"texts\[1\] must be a str"):
        emb.embed(["a", 1])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="positive int"):
        FakeEmbedder(dim=0)
