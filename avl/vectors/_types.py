"""Values and the backend Protocol of the vector store (pure, no I/O)."""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

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


@attrs.frozen(kw_only=True)
class Hit:
    """One search result.

    Attributes:
        id: the id of the stored vector.
        score: cosine similarity (``cosine``), inner product (``ip``), both higher
            is better; or Euclidean distance (``l2``), lower is better.
        metadata: the metadata stored with the vector (read-only mapping).
    """

    id: str
    score: float
    metadata: Mapping[str, Any] = attrs.field(factory=dict, converter=_freeze_meta)


_new = object.__new__
# the slots' own descriptors: setting through them skips the frozen __setattr__ and
# the attribute lookup object.__setattr__ does (a third cheaper per hit)
_set_id = Hit.__dict__["id"].__set__
_set_score = Hit.__dict__["score"].__set__
_set_metadata = Hit.__dict__["metadata"].__set__
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
    snapshot. Skipping ``__init__`` (its converter copies the dict) makes a hit
    several times cheaper, which matters when a whole search takes tens of
    microseconds. Backends can keep one view per stored dict and reuse it.
    """
    hit: Hit = _new(Hit)
    _set_id(hit, id_)
    _set_score(hit, score)
    _set_metadata(hit, metadata)
    return hit


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
