"""Values and the backend Protocol of the vector store (pure, no I/O)."""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping
from itertools import repeat
from types import MappingProxyType
from typing import Any, NamedTuple

import attrs
import numpy as np
import numpy.typing as npt

from avl.typing import VectorBackend

__all__ = ["Hit", "Metric", "Record", "VectorBackend", "Where"]

FloatMatrix = npt.NDArray[np.float32]

Where = Mapping[str, Any]
"""A metadata filter: ``{"key": value, "other": {"$in": [...]}, "n": {"$gte": 1}}``."""


class Metric(str, enum.Enum):
    """How vectors are compared.

    ``COSINE`` and ``IP`` give similarities (higher is better); ``L2`` gives the
    Euclidean distance (lower is better). Hits are always sorted best first.
    """

    COSINE = "cosine"
    IP = "ip"
    L2 = "l2"


def _freeze_meta(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


class _HitFields(NamedTuple):
    id: str
    score: float
    metadata: Mapping[str, Any]


class Hit(_HitFields):
    """One search result: a named tuple ``(id, score, metadata)``.

    Build one with keywords, ``Hit(id="a", score=0.9, metadata={"k": 1})``; the
    metadata is copied into a read-only mapping. A hit compares, unpacks and
    indexes like the tuple it is (``doc_id, score, meta = hit``); it pickles with
    its metadata as a plain dict.

    It is a tuple because a search builds ``k`` of them in tens of microseconds:
    a tuple is made in one C call and its fields are read without a Python call.

    Attributes:
        id: the id of the stored vector.
        score: cosine similarity (``cosine``), inner product (``ip``), both higher
            is better; or Euclidean distance (``l2``), lower is better.
        metadata: the metadata stored with the vector (read-only mapping).
    """

    __slots__ = ()

    def __new__(
        cls,
        *,
        id: str,
        score: float,
        metadata: Mapping[str, Any] | None = None,
    ) -> Hit:
        return _tuple_new(cls, (id, score, _freeze_meta(metadata)))

    def __reduce__(self) -> tuple[Any, tuple[str, float, dict[str, Any]]]:
        # a mappingproxy does not pickle: rebuild from a dict copy
        return (_hit_from_pickle, (self[0], self[1], dict(self[2])))

    @classmethod
    def _make(cls, iterable: Iterable[Any]) -> Hit:  # type: ignore[override]  # (builds Hit only)
        """A hit from ``(id, score, metadata)`` (the metadata frozen, as by the
        constructor; ``_replace`` goes through here too)."""
        id_, score, metadata = iterable
        return cls(id=id_, score=score, metadata=metadata)


def _hit_from_pickle(id_: str, score: float, metadata: dict[str, Any]) -> Hit:
    return Hit(id=id_, score=score, metadata=metadata)


_tuple_new = tuple.__new__
EMPTY_METADATA: MappingProxyType[str, Any] = MappingProxyType({})
"""The one read-only view :func:`metadata_view` returns for every empty dict."""


_F32 = np.dtype(np.float32)


def plain_sq_norm(query: npt.NDArray[Any], shape: tuple[int]) -> float | None:
    """The squared norm of ``query`` when it is the common search query: a float32
    vector of ``shape``, finite and not zero; ``None`` for anything else (the store's
    full checks then convert it or give the precise error). The fast paths of the
    store and of the graph backends share this check.

    ``np.vdot`` sums in float32 without an overflow warning: NaN and infinity stay
    so, and a vector whose squared norm overflows float32 (where a float32 index's
    own dot product would) gives infinity.
    """
    if query.dtype is not _F32 or query.shape != shape:
        return None
    sq = float(np.vdot(query, query))
    return sq if 0.0 < sq < math.inf else None  # NaN fails both comparisons


def metadata_view(metadata: dict[str, Any]) -> MappingProxyType[str, Any]:
    """A read-only view of a stored metadata dict for :func:`stored_hit` (one shared
    view for every empty dict: no object per vector, and it stays in cache)."""
    return MappingProxyType(metadata) if metadata else EMPTY_METADATA


def stored_hit(id_: str, score: float, metadata: MappingProxyType[str, Any]) -> Hit:
    """A :class:`Hit` over a read-only view of a backend's stored metadata.

    For backends only: ``metadata`` must view a dict that the backend never
    mutates after storing it (a write replaces the dict), so the view is a stable
    snapshot. Skipping ``__new__`` (it copies the dict) makes a hit several times
    cheaper, which matters when a whole search takes tens of microseconds.
    Backends can keep one view per stored dict and reuse it.
    """
    hit: Hit = _tuple_new(Hit, (id_, score, metadata))
    return hit


def stored_hits(
    ids: Iterable[str], scores: Iterable[float], metadata: Iterable[MappingProxyType[str, Any]]
) -> list[Hit]:
    """:func:`stored_hit` over parallel sequences, in one C loop (no Python call
    per hit): what a backend returns for one query."""
    hits: list[Hit] = list(map(_tuple_new, repeat(Hit), zip(ids, scores, metadata)))  # noqa: B905
    return hits


@attrs.frozen(kw_only=True, eq=False)
class Record:
    """A stored vector with its id and metadata (what :meth:`VectorStore.get` returns).

    For the ``cosine`` metric the vector is stored (and returned) L2-normalised.

    Attributes:
        id: the id.
        vector: the stored float32 vector (a read-only copy).
        metadata: the metadata (read-only mapping).
    """

    id: str
    vector: FloatMatrix
    metadata: Mapping[str, Any] = attrs.field(factory=dict, converter=_freeze_meta)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record):
            return NotImplemented
        return (
            self.id == other.id
            and dict(self.metadata) == dict(other.metadata)
            and np.array_equal(self.vector, other.vector)
        )

    __hash__ = None  # type: ignore[assignment]  # mutable-looking array field: unhashable
