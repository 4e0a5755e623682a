"""What the web adapter needs from a console, as small Protocols.

The adapter is written against these, not against the concrete classes, so any
object with the same shape works (the real :class:`avl.console.Console`, or a
hand-built one in tests). Values the adapter only serialises (verdicts, answers,
entries) are read by attribute name in :mod:`avl.web._schemas` and typed loosely.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from avl.typing import Guard

__all__ = [
    "AssistantLike",
    "ConsoleLike",
    "DatabaseLike",
    "DecisionLike",
    "GuardLike",
    "HistoryLike",
    "LimiterLike",
    "MetricsLike",
    "PageLike",
    "QueryResultLike",
    "RequestMetrics",
    "RequestSink",
    "VerifyReportLike",
]


#: A SafeQuery: ``check(sql, params=...) -> Verdict`` (the shared Protocol).
GuardLike = Guard


class DecisionLike(Protocol):
    """A rate-limit decision."""

    @property
    def allowed(self) -> bool:
        """Whether the request may go ahead."""
        ...

    @property
    def remaining(self) -> int:
        """Requests left."""
        ...

    @property
    def limit(self) -> int:
        """The limit of the tightest rate."""
        ...

    @property
    def reset_after(self) -> float:
        """Seconds until the limit is whole again."""
        ...

    @property
    def retry_after(self) -> float:
        """Seconds until a refused request could be allowed."""
        ...

    def headers(self) -> Mapping[str, str]:
        """The ``RateLimit-*`` / ``Retry-After`` headers."""
        ...


class LimiterLike(Protocol):
    """A rate limiter: ``hit(key, cost)`` spends, ``peek(key)`` only looks."""

    def hit(self, key: str, cost: int = ...) -> DecisionLike:
        """Spend ``cost`` for ``key``."""
        ...

    def peek(self, key: str) -> DecisionLike:
        """The decision a hit would get, without spending."""
        ...


class PageLike(Protocol):
    """A page of history entries."""

    @property
    def next_cursor(self) -> str | None:
        """The cursor of the next page."""
        ...

    def __iter__(self) -> Iterator[Any]:
        """The entries."""
        ...


class VerifyReportLike(Protocol):
    """The result of checking the history's chain."""

    @property
    def ok(self) -> bool:
        """Whether every entry verified."""
        ...

    @property
    def checked(self) -> int:
        """How many entries were checked."""
        ...

    @property
    def problem(self) -> object:
        """The first problem found, or ``None``."""
        ...

    @property
    def entry_id(self) -> str | None:
        """Where the problem shows."""
        ...

    @property
    def message(self) -> str:
        """A sentence about the problem."""
        ...


class HistoryLike(Protocol):
    """The query history: record, search, get, verify."""

    def record(self, entry: Any) -> Any:
        """Append one entry."""
        ...

    def search(
        self,
        *,
        text: str | None = ...,
        user: str | None = ...,
        outcome: Any = ...,
        since: float | None = ...,
        until: float | None = ...,
        limit: int = ...,
        cursor: str | None = ...,
    ) -> PageLike:
        """Search entries, newest first."""
        ...

    def get(self, entry_id: str) -> Any:
        """One entry by id."""
        ...

    def verify(self) -> VerifyReportLike:
        """Check the hash chain."""
        ...


class QueryResultLike(Protocol):
    """Rows from the database."""

    @property
    def columns(self) -> Sequence[str]:
        """Column names."""
        ...

    @property
    def rows(self) -> Sequence[Sequence[Any]]:
        """The rows."""
        ...


class DatabaseLike(Protocol):
    """The Assistant's database: ``execute`` runs checked SQL read-only."""

    def execute(self, sql: str) -> QueryResultLike:
        """Run one statement."""
        ...


class AssistantLike(Protocol):
    """The Assistant: ``ask``, ``stream`` and ``train``, and its database."""

    @property
    def db(self) -> DatabaseLike:
        """The database questions are answered from."""
        ...

    def ask(
        self,
        question: str,
        *,
        user: str = ...,
        role: str | None = ...,
        context: Mapping[str, Any] | None = ...,
    ) -> Any:
        """Answer a question."""
        ...

    def stream(
        self,
        question: str,
        *,
        user: str = ...,
        role: str | None = ...,
        context: Mapping[str, Any] | None = ...,
        cancel: threading.Event | None = ...,
    ) -> Iterable[Any]:
        """Answer a question as a stream of events (``cancel`` stops it)."""
        ...

    def train(
        self,
        *,
        question: str | None = ...,
        sql: str | None = ...,
        ddl: str | None = ...,
        documentation: str | None = ...,
    ) -> Any:
        """Store training material; returns the new item ids."""
        ...


class MetricsLike(Protocol):
    """Metrics the app exposes at ``/metrics``."""

    def prometheus_text(self) -> bytes | str:
        """The Prometheus text exposition."""
        ...


@runtime_checkable
class RequestMetrics(Protocol):
    """Metrics that count requests per route (:class:`avl.metrics.Metrics` does)."""

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Record one request."""
        ...


@runtime_checkable
class RequestSink(Protocol):
    """Request metrics with a cheaper recorder for the request path
    (:meth:`avl.metrics.Metrics.request_sink`)."""

    def request_sink(self) -> Callable[[str, str, int, float], None]:
        """``sink(route, method, status, seconds)``, its values checked later."""
        ...


class ConsoleLike(Protocol):
    """A console: the wired primitives.

    ``limiter``, ``history`` and ``metrics`` may be ``None`` (their routes then
    answer 404 "not configured", and nothing is counted). ``config`` is the
    effective configuration (only ``"ratelimit" in config`` is read).
    ``guard_for`` raises :class:`~avl.errors.PermissionDeniedError` (403) for a
    role that is not configured.
    """

    @property
    def assistant(self) -> AssistantLike:
        """The Assistant."""
        ...

    @property
    def limiter(self) -> LimiterLike | None:
        """The RateLimiter, or ``None``."""
        ...

    @property
    def history(self) -> HistoryLike | None:
        """The History, or ``None``."""
        ...

    @property
    def metrics(self) -> MetricsLike | None:
        """The Metrics, or ``None``."""
        ...

    @property
    def config(self) -> Mapping[str, Any]:
        """The effective configuration."""
        ...

    def guard_for(self, role: str) -> GuardLike:
        """The SafeQuery for a role."""
        ...
