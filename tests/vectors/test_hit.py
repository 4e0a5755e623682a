"""Hit is a named tuple: built with keywords, read-only, picklable, and what the
backends build in one C loop equals what a caller builds by hand."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pytest

from avl.vectors import Hit, VectorStore
from avl.vectors._types import EMPTY_METADATA, stored_hit, stored_hits
from tests.conftest import need_module


def test_built_with_keywords_and_metadata_copied_read_only() -> None:
    source = {"k": [1, 2]}
    hit = Hit(id="a", score=0.5, metadata=source)
    source["other"] = 1
    assert (hit.id, hit.score, dict(hit.metadata)) == ("a", 0.5, {"k": [1, 2]})
    assert isinstance(hit.metadata, MappingProxyType)
    with pytest.raises(TypeError):
        hit.metadata["k"] = 3  # type: ignore[index]
    assert Hit(id="b", score=1.0).metadata == {}


def test_positional_arguments_are_refused() -> None:
    with pytest.raises(TypeError):
        Hit("a", 0.5)  # type: ignore[misc]


def test_fields_cannot_be_set() -> None:
    hit = Hit(id="a", score=0.5)
    with pytest.raises(AttributeError):
        hit.id = "b"  # type: ignore[misc]
    with pytest.raises(TypeError):
        hit[0] = "b"  # type: ignore[index]


def test_unpacks_indexes_and_prints_like_a_named_tuple() -> None:
    hit = Hit(id="a", score=0.25, metadata={"x": 1})
    doc_id, score, meta = hit
    assert (doc_id, score, dict(meta)) == ("a", 0.25, {"x": 1})
    assert hit[0] == "a"
    assert len(hit) == 3
    assert repr(hit) == "Hit(id='a', score=0.25, metadata=mappingproxy({'x': 1}))"
    assert hit == Hit(id="a", score=0.25, metadata={"x": 1})
    assert hit != Hit(id="a", score=0.25, metadata={"x": 2})


@pytest.mark.parametrize(
    "clone", [copy.copy, copy.deepcopy, lambda h: pickle.loads(pickle.dumps(h))]
)
def test_copies_and_pickles_with_its_metadata(clone: object) -> None:
    hit = Hit(id="a", score=0.5, metadata={"k": {"nested": [1]}})
    again = clone(hit)  # type: ignore[operator]
    assert type(again) is Hit
    assert again == hit
    assert isinstance(again.metadata, MappingProxyType)


def test_replace_and_make_freeze_the_metadata() -> None:
    hit = Hit(id="a", score=0.5)._replace(metadata={"k": 1}, score=0.75)
    assert hit == Hit(id="a", score=0.75, metadata={"k": 1})
    assert isinstance(hit.metadata, MappingProxyType)
    assert isinstance(Hit._make(["a", 0.5, {"k": 1}]).metadata, MappingProxyType)
    with pytest.raises(ValueError, match="colour"):
        Hit(id="a", score=0.5)._replace(colour="red")


def test_stored_hits_equal_hand_built_hits() -> None:
    views = [MappingProxyType({"n": i}) for i in range(3)]
    built = stored_hits(iter(["a", "b", "c"]), iter([0.3, 0.2, 0.1]), iter(views))
    assert built == [
        Hit(id=x, score=s, metadata={"n": i})
        for i, (x, s) in enumerate(zip("abc", [0.3, 0.2, 0.1], strict=True))
    ]
    assert all(type(h) is Hit for h in built)
    assert built[1].metadata is views[1]  # the backend's view, not a copy
    assert stored_hit("z", 1.0, EMPTY_METADATA) == Hit(id="z", score=1.0)
    assert stored_hits([], [], []) == []


@pytest.mark.parametrize(
    "url",
    [
        "memory://",
        # min_index=1, background=0: Annoy's own index answers, not the exact delta
        "annoy://{dir}/a?fsync=0&min_index=1&background=0",
        "hnsw://{dir}/h?fsync=0",
    ],
)
def test_every_backend_returns_hits(url: str, tmp_path: Path) -> None:
    if url.startswith("annoy"):
        need_module("annoy")
    if url.startswith("hnsw"):
        need_module("hnswlib")
    url = url.format(dir=tmp_path)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((40, 8)).astype(np.float32)
    with VectorStore(dim=8, backend=url) as store:
        store.add([f"d{i}" for i in range(40)], x, metadata=[{"i": i} for i in range(40)])
        if url.startswith("annoy"):
            assert store.backend._built is not None  # type: ignore[attr-defined]
        hits = store.search(x[3], k=5)
        assert type(hits) is list
        assert all(type(h) is Hit for h in hits)
        assert hits[0].id == "d3"
        assert hits[0].metadata == {"i": 3}
        assert pickle.loads(pickle.dumps(hits)) == hits
        ids, scores, metas = zip(*hits, strict=True)
        assert ids == tuple(h.id for h in hits)
        assert scores == tuple(h.score for h in hits)
        assert metas == tuple(h.metadata for h in hits)
