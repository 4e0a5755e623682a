"""What the web adapter needs from a console, as small Protocols.

The adapter is written against these, not against the concrete classes, so any
object with the same shape works (the real :class:`avl.console.Console`, or a
hand-built one in tests). Attribute types are deliberately loose (``object``)
where the adapter only serialises what it gets back.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol

__all__ = [
    "AssistantLike",
    "ConsoleLike",
    "DecisionLike",
    "GuardLike",
    "HistoryLike",
    "LimiterLike",
]


class GuardLike(Protocol):
    """A SafeQuery: ``check(sql, params=...) -> Verdict``."""

    def check(self, sql: str, *, params: Mapping[str, Any] | None = ...) -> Any:
        """Check one SQL text."""
        ...


class DecisionLike(Protocol):
    """A rate-limit decision."""

    @property
    def allowed(self) -> bool:
        """Whether the request may go ahead."""
        ...

    def headers(self) -> Mapping[str, str]:
        """The ``RateLimit-*`` / ``Retry-After`` headers."""
        ...


class LimiterLike(Protocol):
    """A rate limiter: ``hit(key, cost) -> Decision``."""

    def hit(self, key: str, cost: int = ...) -> Any:
        """Spend ``cost`` for ``key``."""
        ...


class HistoryLike(Protocol):
    """The query history: search, get, verify."""

    def get(self, entry_id: str) -> Any:
        """One entry by id."""
        ...

    def verify(self) -> Any:
        """Check the hash chain."""
        ...


class AssistantLike(Protocol):
    """The Assistant: ``ask`` and ``stream``."""

    def ask(self, question: str, *, user: str = ..., role: str = ...) -> Any:
        """Answer a question."""
        ...

    def stream(self, question: str, *, user: str = ..., role: str = ...) -> Iterator[Any]:
        """Answer a question as a stream of events."""
        ...


class ConsoleLike(Protocol):
    """A console: the wired primitives.

    Only ``assistant`` and ``guard_for`` are required for the core routes; the
    others may be ``None`` (their routes then answer 404 "not configured").
    """

    @property
    def assistant(self) -> Any:
        """The Assistant."""
        ...

    @property
    def limiter(self) -> Any:
        """The RateLimiter, or ``None``."""
        ...

    @property
    def history(self) -> Any:
        """The History, or ``None``."""
        ...

    @property
    def metrics(self) -> Any:
        """The Metrics, or ``None``."""
        ...

    def guard_for(self, role: str) -> Any:
        """The SafeQuery for a role."""
        ...
