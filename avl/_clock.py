"""Clocks, injected wherever time matters (no direct ``time.time()`` in logic)."""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """A source of time.

    ``now()`` is wall-clock seconds since the Unix epoch (for timestamps that are
    stored or shown); ``monotonic()`` never goes backwards (for durations, timeouts
    and rate limits).
    """

    def now(self) -> float:
        """Seconds since the Unix epoch."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""
        ...


class SystemClock:
    """The real clock: :func:`time.time` and :func:`time.monotonic`."""

    __slots__ = ()

    def now(self) -> float:
        """Seconds since the Unix epoch."""
        return time.time()

    def monotonic(self) -> float:
        """Seconds on the process's monotonic clock."""
        return time.monotonic()

    def __repr__(self) -> str:
        return "SystemClock()"
