"""``memory://``: the exact NumPy index, in process."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

from avl.errors import ConfigError, InvalidInputError
from avl.vectors._exact import ExactIndex
from avl.vectors._filters import Filter
from avl.vectors._types import FloatMatrix, Hit, Metric, Record

__all__ = ["MemoryBackend", "open_backend"]


def check_new(index: ExactIndex, ids: Sequence[str]) -> None:
    """Raise ``InvalidInputError`` if any of ``ids`` is already in ``index``."""
    existing = [i for i in ids if i in index]
    if existing:
        raise InvalidInputError(
            f"ids already exist: {existing[:10]} (use upsert() to replace them)"
        )


class MemoryBackend:
    """Exact search over a float32 NumPy matrix (the default backend).

    Args:
        dim: the vector dimension.
        metric: the metric.
        capacity: rows to reserve up front (the matrix doubles when full).
    """

    def __init__(
        self, dim: int, metric: Metric | str = Metric.COSINE, *, capacity: int = 1024
    ) -> None:
        self._index = ExactIndex(dim, Metric(metric), capacity=capacity)

    @property
    def dim(self) -> int:
        """The vector dimension."""
        return self._index.dim

    @property
    def metric(self) -> Metric:
        """The metric."""
        return self._index.metric

    @property
    def index(self) -> ExactIndex:
        """The underlying exact index."""
        return self._index

    def add(
        self, ids: Sequence[str], vectors: FloatMatrix, metadata: Sequence[dict[str, Any]]
    ) -> None:
        """Insert new ids."""
        check_new(self._index, ids)
        self._index.add(ids, vectors, metadata)

    def upsert(
        self, ids: Sequence[str], vectors: FloatMatrix, metadata: Sequence[dict[str, Any]]
    ) -> None:
        """Insert or replace."""
        self._index.upsert(ids, vectors, metadata)

    def delete(self, ids: Sequence[str]) -> int:
        """Remove ids; return how many were removed."""
        return self._index.delete(ids)

    def get(self, ids: Sequence[str]) -> list[Record | None]:
        """Records for ``ids`` (``None`` where unknown)."""
        return [self._index.get(i) for i in ids]

    def count(self) -> int:
        """How many vectors are stored."""
        return len(self._index)

    def search_many(self, queries: FloatMatrix, k: int, where: Filter) -> list[list[Hit]]:
        """Exact top-``k`` per query."""
        return self._index.search_many(queries, k, where)

    def close(self) -> None:
        """Nothing to release."""


def open_backend(url: str, *, dim: int, metric: Metric) -> MemoryBackend:
    """Open ``memory://[?capacity=N]``.

    Raises:
        ConfigError: unknown or bad option.
    """
    query = parse_qs(urlsplit(url).query)
    capacity = 1024
    for key, values in query.items():
        if key != "capacity":
            raise ConfigError(f"unknown memory:// option {key!r} (known: capacity)")
        try:
            capacity = int(values[-1])
        except ValueError:
            raise ConfigError(f"memory:// capacity must be an int, got {values[-1]!r}") from None
    return MemoryBackend(dim, metric, capacity=capacity)
