"""Values and the backend Protocol of the vector store (pure, no I/O)."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

import attrs
import numpy as np
import numpy.typing as npt

from avl.vectors._filters import Filter

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
_set = object.__setattr__
_EMPTY: MappingProxyType[str, Any] = MappingProxyType({})


def metadata_view(metadata: dict[str, Any]) -> MappingProxyType[str, Any]:
    """A read-only view of a stored metadata dict for :func:`stored_hit` (one shared
    view for every empty dict: no object per vector, and it stays in cache)."""
    return MappingProxyType(metadata) if metadata else _EMPTY


def stored_hit(id_: str, score: float, metadata: MappingProxyType[str, Any]) -> Hit:
    """A :class:`Hit` over a read-only view of a backend's stored metadata.

    For backends only: ``metadata`` must view a dict that the backend never
    mutates after storing it (a write replaces the dict), so the view is a stable
    snapshot. Skipping ``__init__`` (its converter copies the dict) makes a hit
    several times cheaper, which matters when a whole search takes tens of
    microseconds. Backends can keep one view per stored dict and reuse it.
    """
    hit: Hit = _new(Hit)
    _set(hit, "id", id_)
    _set(hit, "score", score)
    _set(hit, "metadata", metadata)
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


@runtime_checkable
class VectorBackend(Protocol):
    """What a vector-store backend implements.

    :class:`~avl.vectors.VectorStore` validates every argument before calling a
    backend: ids are unique strings, ``vectors`` is a finite, C-contiguous float32
    matrix of shape ``(len(ids), dim)`` (already L2-normalised for ``cosine``),
    ``metadata`` has one dict per id, and ``where`` is a parsed filter.

    Optional fast path: a backend may also define ``search_one(query, k)``, which
    :meth:`VectorStore.search` tries first for an unfiltered search with a NumPy
    ``query``. It receives the caller's array *unvalidated* and returns the hits,
    or ``None`` when the query is not a finite, non-zero, C-contiguous float32
    vector of dimension ``dim`` (or the backend has no fast answer right now); the
    store then validates as usual (raising the precise error) and calls
    :meth:`search_many`. For ``cosine`` the query is not normalised: the backend
    must rank and score it as if it were. This saves the wrapper's NumPy calls
    where a search takes only tens of microseconds (the graph backends).
    """

    @property
    def dim(self) -> int:
        """The vector dimension."""
        ...

    @property
    def metric(self) -> Metric:
        """The metric."""
        ...

    def add(
        self, ids: Sequence[str], vectors: FloatMatrix, metadata: Sequence[dict[str, Any]]
    ) -> None:
        """Insert new ids; raise ``InvalidInputError`` if any id already exists."""
        ...

    def upsert(
        self, ids: Sequence[str], vectors: FloatMatrix, metadata: Sequence[dict[str, Any]]
    ) -> None:
        """Insert or replace."""
        ...

    def delete(self, ids: Sequence[str]) -> int:
        """Remove ids (missing ones are ignored); return how many were removed."""
        ...

    def get(self, ids: Sequence[str]) -> list[Record | None]:
        """The records for ``ids`` in order, ``None`` where an id is unknown."""
        ...

    def count(self) -> int:
        """How many vectors are stored."""
        ...

    def search_many(self, queries: FloatMatrix, k: int, where: Filter) -> list[list[Hit]]:
        """The best ``k`` hits per query among the vectors matching ``where``."""
        ...

    def close(self) -> None:
        """Release resources (files, locks, connections, threads)."""
        ...
