"""The small Protocols the Assistant needs from the primitives it wires.

The Assistant never imports another primitive's internals: it talks to these
shapes, which :mod:`avl.safety`, :mod:`avl.ratelimit`, :mod:`avl.vectors`,
:mod:`avl.history` and :mod:`avl.metrics` satisfy. Any object with the same methods
works (a test double, your own store).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "DecisionLike",
    "GuardLike",
    "HistoryLike",
    "HitLike",
    "LimiterLike",
    "MetricsLike",
    "StoreLike",
    "VerdictLike",
]


@runtime_checkable
class VerdictLike(Protocol):
    """What SafeQuery returns: allowed or not, why, and the SQL to run."""

    @property
    def allowed(self) -> bool:
        """Whether the statement may run."""
        ...

    @property
    def violations(self) -> Sequence[Any]:
        """Objects with ``code``, ``message`` and ``position``."""
        ...

    @property
    def sql(self) -> str | None:
        """The (possibly rewritten) SQL to run when allowed."""
        ...


@runtime_checkable
class GuardLike(Protocol):
    """A SafeQuery: ``check(sql, params=...) -> verdict``."""

    def check(self, sql: str, params: Mapping[str, Any] | None = None) -> Any:
        """Check one statement; the result satisfies :class:`VerdictLike`."""
        ...


@runtime_checkable
class DecisionLike(Protocol):
    """A rate-limit decision."""

    @property
    def allowed(self) -> bool:
        """Whether the request may go ahead."""
        ...


@runtime_checkable
class LimiterLike(Protocol):
    """A rate limiter: ``hit(key, cost=1) -> decision``."""

    def hit(self, key: str, cost: int = 1) -> Any:
        """Take ``cost`` from ``key``'s allowance; the result has ``allowed``."""
        ...


@runtime_checkable
class HitLike(Protocol):
    """One search result of a vector store."""

    @property
    def id(self) -> str:
        """The stored id."""
        ...

    @property
    def score(self) -> float:
        """Similarity, higher is closer."""
        ...


@runtime_checkable
class StoreLike(Protocol):
    """A vector store: ids + vectors + metadata, filtered search."""

    def add(self, ids: Any, vectors: Any, metadata: Any = None) -> None:
        """Add vectors with their ids and metadata."""
        ...

    def delete(self, ids: Any) -> int:
        """Delete ids; return how many existed."""
        ...

    def search(self, query: Any, k: int = 10, where: Any = None) -> Sequence[Any]:
        """The ``k`` closest vectors matching ``where``."""
        ...


@runtime_checkable
class HistoryLike(Protocol):
    """A history store: ``record(entry) -> stored entry`` (with an ``id``)."""

    def record(self, entry: Any) -> Any:
        """Store one entry and return it with its id."""
        ...


@runtime_checkable
class MetricsLike(Protocol):
    """The metrics sink the Assistant reports to (any subset of these is used)."""

    def observe_stage(self, stage: str, seconds: float, **labels: str) -> None:
        """Record how long a pipeline stage took."""
        ...
