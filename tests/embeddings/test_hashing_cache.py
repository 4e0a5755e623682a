"""HashingEmbedder, CachedEmbedder, create_embedder and progress."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
from collections.abc import Sequence

import numpy as np
import pytest

from avl.embeddings import (
    AsyncCachedEmbedder,
    CachedEmbedder,
    Embedder,
    HashingEmbedder,
    TtyProgress,
    create_embedder,
)
from avl.errors import ConfigError, InvalidInputError
from avl.testing import FakeEmbedder


def test_hashing_shape_norm_and_determinism() -> None:
    emb = HashingEmbedder(dim=64)
    assert isinstance(emb, Embedder)
    out = emb.embed(["orders per month", "", "orders per month"])
    assert out.shape == (3, 64)
    assert out.dtype == np.float32
    assert out.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), [1.0, 1.0, 1.0], rtol=1e-6)
    np.testing.assert_array_equal(out[0], out[2])
    assert emb.name == "hash-v1:dim=64,char=3-5,bigram=0.5,charw=1.0,seed=0"
    code = (
        "from avl.embeddings import HashingEmbedder;"
        "print(HashingEmbedder(dim=8).embed(['abc def'])[0].tolist())"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert other.stdout.strip() == str(HashingEmbedder(dim=8).embed(["abc def"])[0].tolist())


def test_hashing_vectors_are_pinned(monkeypatch: pytest.MonkeyPatch) -> None:
    # hash-v1 vectors are stored (vector stores, caches): a faster embedder must give
    # exactly these, with its feature memo cold, warm or full.
    pinned = [
        [-0.08837807178497314, 0.10949496179819107, -0.9150649905204773, 0.3300490975379944,
         -0.021898992359638214, -0.06647907942533493, -0.014860030263662338, -0.1697171926498413],
        [0.15404313802719116, 0.41473153233528137, 0.7702156901359558, 0.41473153233528137,
         -0.1658926159143448, -0.011849472299218178, -0.10664524883031845, 0.0],
    ]  # fmt: skip
    texts = ["customer_id total", "Orders per month"]
    emb = HashingEmbedder(dim=8)
    assert emb.embed(texts).tolist() == pinned  # cold
    assert emb.embed(texts).tolist() == pinned  # warm
    monkeypatch.setattr("avl.embeddings._hashing._HASHED_MAX", 3)
    small = HashingEmbedder(dim=8)
    assert small.embed(texts).tolist() == pinned
    assert len(small._hashed) == 3  # the memo stays bounded


def test_hashing_retrieves_the_related_schema() -> None:
    emb = HashingEmbedder()
    docs = [
        "CREATE TABLE customers (customer_id int, full_name text, signup_date date)",
        "CREATE TABLE products (product_id int, title text, unit_price numeric)",
        "CREATE TABLE shipments (shipment_id int, carrier text, shipped_at timestamp)",
    ]
    questions = [
        "which customers signed up this year?",
        "what is the unit price of each product?",
        "how many shipments did each carrier ship?",
    ]
    sims = emb.embed(questions) @ emb.embed(docs).T
    assert sims.argmax(axis=1).tolist() == [0, 1, 2]


def test_hashing_identifier_splitting_and_seed() -> None:
    emb = HashingEmbedder(dim=256)
    a, b, c = emb.embed(["customerId", "customer id", "warehouse"])
    assert float(a @ b) > 0.5
    assert float(a @ c) < 0.2
    assert not np.allclose(
        HashingEmbedder(dim=256, seed=1).embed(["customer"]), emb.embed(["customer"])
    )


def test_hashing_validation() -> None:
    with pytest.raises(ConfigError, match="positive int"):
        HashingEmbedder(dim=0)
    with pytest.raises(ConfigError, match="char_ngrams"):
        HashingEmbedder(char_ngrams=(4, 2))
    with pytest.raises(InvalidInputError, match="wrap a single text"):
        HashingEmbedder().embed("text")
    with pytest.raises(InvalidInputError, match=r"texts\[0\] must be a str"):
        HashingEmbedder().embed([None])  # type: ignore[list-item]
    for emb in (HashingEmbedder(), CachedEmbedder(FakeEmbedder(dim=4))):
        # each was a bare TypeError from list(), or a silent result in no usable order
        with pytest.raises(InvalidInputError, match="takes a sequence of texts, got None"):
            emb.embed(None)  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError, match="got a frozenset, whose order is arbitrary"):
            emb.embed(frozenset({"a", "b"}))
        # a lone surrogate is read as U+FFFD (no tokenizer or JSON API takes one)
        np.testing.assert_array_equal(emb.embed(["a\udc80"]), emb.embed(["a\ufffd"]))


def test_cached_embedder_calls_inner_only_for_new_texts() -> None:
    inner = FakeEmbedder(dim=4)
    emb = CachedEmbedder(inner, maxsize=2)
    assert isinstance(emb, Embedder)
    assert emb.name == inner.name
    first = emb.embed(["a", "b", "a"])
    assert inner.calls == [["a", "b"]]
    np.testing.assert_array_equal(first[0], first[2])
    again = emb.embed(["b", "a"])
    assert inner.calls == [["a", "b"]]
    np.testing.assert_array_equal(again, first[[1, 0]])
    assert (emb.hits, emb.misses) == (2, 3)
    emb.embed(["c"])  # evicts the least recently used ("b")
    assert len(emb) == 2
    emb.embed(["b"])
    assert inner.calls == [["a", "b"], ["c"], ["b"]]
    with pytest.raises(ConfigError, match="maxsize"):
        CachedEmbedder(inner, maxsize=0)


def test_cache_keys_include_the_embedder_name() -> None:
    a = CachedEmbedder(FakeEmbedder(dim=4, seed=1))
    b = CachedEmbedder(FakeEmbedder(dim=4, seed=2))
    assert not np.allclose(a.embed(["x"]), b.embed(["x"]))


class _AsyncFake:
    def __init__(self) -> None:
        self.sync = FakeEmbedder(dim=3)

    @property
    def name(self) -> str:
        return self.sync.name

    @property
    def dim(self) -> int:
        return 3

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self.sync.embed(texts)


def test_async_cached_embedder() -> None:
    inner = _AsyncFake()
    emb = AsyncCachedEmbedder(inner)

    async def run() -> tuple[np.ndarray, np.ndarray]:
        return await emb.embed(["p", "q"]), await emb.embed(["q", "p"])

    one, two = asyncio.run(run())
    np.testing.assert_array_equal(one[[1, 0]], two)
    assert inner.sync.calls == [["p", "q"]]


def test_create_embedder_urls() -> None:
    emb = create_embedder("hash://?dim=32&seed=7&char=2-3")
    assert isinstance(emb, HashingEmbedder)
    assert emb.name == "hash-v1:dim=32,char=2-3,bigram=0.5,charw=1.0,seed=7"
    assert create_embedder().dim == 384
    with pytest.raises(ConfigError, match="did you mean 'hash'"):
        create_embedder("hsh://")
    with pytest.raises(ConfigError, match="unknown option 'dims'"):
        create_embedder("hash://?dims=3")
    with pytest.raises(ConfigError, match="must be int"):
        create_embedder("hash://?dim=x")
    with pytest.raises(ConfigError, match="neither a packaged model"):
        create_embedder("local:///no/such/model")


def test_progress_callbacks_and_tty_bar() -> None:
    calls: list[tuple[int, int]] = []
    HashingEmbedder(dim=8, batch_size=2, progress=lambda d, t: calls.append((d, t))).embed(
        ["a", "b", "c"]
    )
    assert calls == [(2, 3), (3, 3)]
    out = io.StringIO()
    TtyProgress("indexing", stream=out, width=4)(1, 2)
    assert out.getvalue() == ""  # not a terminal: silent unless forced
    bar = TtyProgress("indexing", stream=out, width=4, force=True)
    bar(1, 2)
    bar(2, 2)
    assert out.getvalue() == "\rindexing [##  ] 1/2\rindexing [####] 2/2\n"
