"""The storage Protocol behind :class:`~avl.history.History`, and the search query value."""

from __future__ import annotations

from typing import Protocol

import attrs

from avl.typing import HistoryBackend, SimilarityStore

__all__ = ["HistoryBackend", "Query", "SimilarityStore", "VectorHit"]


@attrs.frozen(kw_only=True)
class Query:
    """Search filters, already validated (internal to backends).

    Attributes:
        tokens: full-text words that must all occur in the question or SQL (``None``
            for no text filter).
        user: exact user.
        session: exact session id.
        role: exact role.
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
    session: str | None = None
    role: str | None = None
    since: float | None = None
    until: float | None = None
    outcomes: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    before_seq: int | None = None
    ids: tuple[str, ...] | None = None
    limit: int | None = None


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
