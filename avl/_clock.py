"""Clocks, injected wherever time matters (no direct ``time.time()`` in logic)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from avl.typing import Clock

__all__ = ["Clock", "SystemClock"]


def __getattr__(name: str) -> Any:
    # ``Clock`` is the protocol of avl.typing, imported when first asked for: a module
    # that needs only SystemClock does not pay for every protocol of avl.typing
    if name == "Clock":
        from avl.typing import Clock

        return Clock
    raise AttributeError(f"module 'avl._clock' has no attribute {name!r}")


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
