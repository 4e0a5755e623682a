"""Clocks, injected wherever time matters (no direct ``time.time()`` in logic)."""

from __future__ import annotations

import time

from avl.typing import Clock

__all__ = ["Clock", "SystemClock"]


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
