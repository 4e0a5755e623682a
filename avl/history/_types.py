"""The storage Protocol behind :class:`~avl.history.History`, and the search query value."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

import attrs
import numpy as np
import numpy.typing as npt

from avl.history._chain import Sealer
from avl.history._entry import Entry, VerifyReport

__all__ = ["HistoryBackend", "Query", "SimilarityStore", "VectorHit"]


@attrs.frozen(kw_only=True)
class Query:
    """Search filters, already validated (internal to backends).

    Attributes:
        tokens: full-text words that must all occur in the question or SQL (``None``
            for no text filter).
        user: exact user.
        since: inclusive lower bound on ``time``.
        until: exclusive upper bound on ``time``.
        outcomes: allowed outcome values (empty for any).
        tags: tags that must all be present.
        before_seq: only entries with ``seq`` below this (keyset pagination).
        ids: only these ids (similarity search).
        limit: at most this many entries (``None`` for all).
    """

    tokens: tuple[str, ...] | None = None
    user: str | None = None
    since: float | None = None
    until: float | None = None
    outcomes: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    before_seq: int | None = None
    ids: tuple[str, ...] | None = None
    limit: int | None = None


@runtime_checkable
class HistoryBackend(Protocol):
    """Where entries are stored. Implementations: memory, SQLite, PostgreSQL.

    ``append`` runs in one transaction that serialises the chain head, so concurrent
    writers (threads or processes) keep one chain.
    """

    def append(self, items: Sequence[tuple[Entry, dict[str, Any]]], sealer: Sealer) -> list[Entry]:
        """Store entries at the head of the chain, atomically.

        Each item is ``(entry, record)``: ``record`` is the entry's content as plain JSON
        values (:func:`avl.history._chain.record_of`) with ``id`` and ``time`` set;
        they win over the entry's own (possibly ``None``) ``id`` and ``time``.
        """
        ...

    def get(self, id: str) -> Entry | None:
        """The entry with ``id``, or ``None``."""
        ...

    def search(self, query: Query) -> list[Entry]:
        """Entries matching ``query``, newest (highest ``seq``) first."""
        ...

    def scan(self, query: Query) -> Iterator[Entry]:
        """Every entry matching ``query`` (``limit`` ignored), oldest first."""
        ...

    def verify(self, sealer: Sealer, anchor: tuple[int, str] | None = None) -> VerifyReport:
        """Check the chain in one consistent snapshot (against ``(seq, hash)`` of an
        anchor when given)."""
        ...

    def head(self) -> tuple[int, str]:
        """The chain head ``(seq, hash)`` as the store records it."""
        ...

    def ping(self) -> None:
        """Raise :class:`~avl.errors.BackendUnavailableError` when the store is down."""
        ...

    def prune(self, before_time: float, sealer: Sealer) -> int:
        """Remove the oldest entries with ``time < before_time`` (a prefix of the chain).

        Stores a signed checkpoint of the last removed entry; returns how many went.
        """
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class VectorHit(Protocol):
    """What a similarity store returns per match."""

    @property
    def id(self) -> str:
        """The id given to ``add``."""
        ...

    @property
    def score(self) -> float:
        """Similarity (higher is closer)."""
        ...


@runtime_checkable
class SimilarityStore(Protocol):
    """The part of :class:`avl.vectors.VectorStore` that history uses."""

    def add(
        self,
        ids: Sequence[str],
        vectors: npt.NDArray[np.float32],
        metadata: Sequence[dict[str, Any]],
    ) -> None:
        """Add vectors under ``ids``."""
        ...

    def search(self, query: npt.NDArray[np.float32], k: int) -> Sequence[Any]:
        """The ``k`` closest entries as hits with ``.id`` and ``.score``."""
        ...
