"""Test doubles for avl's own tests and for users' tests.

Everything here is a real implementation of an avl Protocol, deterministic and
without I/O, so tests run the real code paths:

- :class:`FakeClock` (alias :class:`ManualClock`): time that moves only when told.
- :class:`FakeChatModel`: a chat model that returns scripted replies.
- :class:`FakeEmbedder`: deterministic vectors from text.
- :func:`recorded_transport`: an ``httpx.MockTransport`` that replays recorded
  provider responses.

Example:
    >>> from avl.testing import FakeClock
    >>> clock = FakeClock(start=100.0)
    >>> clock.advance(1.5)
    >>> clock.now()
    101.5
"""

from __future__ import annotations

import threading

from avl.llm._fake import AsyncFakeChatModel, FakeCall, FakeChatModel
from avl.llm._replay import RecordedTransport, Recording, load_recording, recorded_transport

__all__ = [
    "AsyncFakeChatModel",
    "FakeCall",
    "FakeChatModel",
    "FakeClock",
    "ManualClock",
    "RecordedTransport",
    "Recording",
    "load_recording",
    "recorded_transport",
]


class FakeClock:
    """A clock that moves only when told; satisfies :class:`avl.Clock`.

    ``now()`` and ``monotonic()`` move together. Thread-safe.

    Args:
        start: the initial time in seconds since the epoch.
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._t = float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        """The current fake wall-clock time."""
        return self._t

    def monotonic(self) -> float:
        """The current fake monotonic time (same value as :meth:`now`)."""
        return self._t

    def advance(self, seconds: float) -> None:
        """Move time forward.

        Raises:
            avl.errors.InvalidInputError: ``seconds`` is negative.
        """
        if seconds < 0:
            from avl.errors import InvalidInputError

            raise InvalidInputError(f"a clock cannot go backwards (advance({seconds!r}))")
        with self._lock:
            self._t += float(seconds)

    def set(self, t: float) -> None:
        """Jump to ``t`` (may not go backwards).

        Raises:
            avl.errors.InvalidInputError: ``t`` is before the current time.
        """
        self.advance(t - self._t)

    def __repr__(self) -> str:
        return f"FakeClock(now={self._t!r})"


ManualClock = FakeClock
