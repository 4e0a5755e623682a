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

from avl.llm import (
    AsyncFakeChatModel,
    FakeCall,
    FakeChatModel,
    RecordedTransport,
    Recording,
    load_recording,
    recorded_transport,
)

__all__ = [
    "AsyncFakeChatModel",
    "FakeCall",
    "FakeChatModel",
    "FakeClock",
    "FakeEmbedder",
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

# -- FakeEmbedder --------------------------------------------------------------
import hashlib as _hashlib  # noqa: E402
from collections.abc import Sequence as _Sequence  # noqa: E402

import numpy as _np  # noqa: E402

from avl.typing import FloatMatrix as _FloatMatrix  # noqa: E402


class FakeEmbedder:
    """Deterministic vectors from text; satisfies :class:`avl.embeddings.Embedder`.

    Each text maps to a unit vector drawn from a generator seeded by the SHA-256 of
    ``seed`` and the text: the same text always gives the same vector (across
    processes), different texts give unrelated ones. Records every call in
    ``calls``.

    Args:
        dim: the vector dimension.
        seed: changes every vector (and the ``name``).

    Raises:
        avl.errors.ConfigError: ``dim`` is not a positive int.

    Example:
        >>> emb = FakeEmbedder(dim=4)
        >>> a, b = emb.embed(["x", "x"])
        >>> bool((a == b).all()), emb.calls
        (True, [['x', 'x']])
    """

    def __init__(self, dim: int = 8, *, seed: int = 0) -> None:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim <= 0:
            from avl.errors import ConfigError

            raise ConfigError(f"dim must be a positive int, got {dim!r}")
        self._dim = dim
        self._seed = seed
        self.calls: list[list[str]] = []

    @property
    def name(self) -> str:
        """``fake:dim=<dim>,seed=<seed>``."""
        return f"fake:dim={self._dim},seed={self._seed}"

    @property
    def dim(self) -> int:
        """The vector dimension."""
        return self._dim

    def vector(self, text: str) -> _FloatMatrix:
        """The unit vector of one text."""
        digest = _hashlib.sha256(f"{self._seed}\x00{text}".encode()).digest()
        rng = _np.random.default_rng(int.from_bytes(digest[:8], "little"))
        v = rng.standard_normal(self._dim)
        unit: _FloatMatrix = _np.asarray(v / _np.linalg.norm(v), dtype=_np.float32)
        return unit

    def embed(self, texts: _Sequence[str]) -> _FloatMatrix:
        """Embed ``texts``: one deterministic unit vector per text.

        Raises:
            avl.errors.InvalidInputError: ``texts`` is a string or holds a non-string.
        """
        from avl.errors import InvalidInputError

        if isinstance(texts, (str, bytes)):
            raise InvalidInputError("embed() takes a sequence of texts, not one string")
        items = list(texts)
        for i, t in enumerate(items):
            if not isinstance(t, str):
                raise InvalidInputError(f"texts[{i}] must be a str, got {type(t).__name__}")
        self.calls.append(items)
        out = _np.empty((len(items), self._dim), dtype=_np.float32)
        for i, t in enumerate(items):
            out[i] = self.vector(t)
        return out
