"""A bounded pool of DB-API connections (SQLite, MySQL/MariaDB, DuckDB cursors), and
the one-connection "pool" of a borrowed connection.

At most ``max_size`` connections exist at once; a caller waits up to
``acquire_timeout_s`` for one. A connection that broke, or that its user asked to
discard (a statement cut mid-result), is closed instead of being put back. Idle
connections are reused newest first, so a quiet pool keeps few warm.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

from avl.errors import BackendUnavailableError, ConfigError

__all__ = ["BoundedPool", "Lease", "SingleConnection"]


class Lease:
    """One checked-out connection; ``discard()`` closes it instead of returning it."""

    __slots__ = ("conn", "discarded")

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.discarded = False

    def discard(self) -> None:
        """Do not put the connection back (it is closed on release)."""
        self.discarded = True


class BoundedPool:
    """At most ``max_size`` connections made by ``factory``, shared by threads.

    Args:
        factory: opens a new connection.
        max_size: the most connections open at once.
        acquire_timeout_s: how long a caller waits for a free connection.
        alive: whether a returned connection is still usable.
        close: closes a connection.
        name: what the pool connects to (for messages).

    Raises:
        ConfigError: ``max_size`` is not a positive integer.
    """

    def __init__(
        self,
        factory: Callable[[], Any],
        *,
        max_size: int,
        acquire_timeout_s: float = 30.0,
        alive: Callable[[Any], bool] = lambda conn: True,
        close: Callable[[Any], None] = lambda conn: conn.close(),
        name: str = "the database",
    ) -> None:
        if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1:
            raise ConfigError(f"pool_size must be a positive integer, got {max_size!r}")
        self.max_size = max_size
        self._factory = factory
        self._alive = alive
        self._close = close
        self._timeout = float(acquire_timeout_s)
        self._name = name
        self._slots = threading.BoundedSemaphore(max_size)
        self._lock = threading.Lock()
        self._idle: list[Any] = []
        self._all: list[Any] = []
        self._closed = False

    @contextlib.contextmanager
    def lease(self) -> Iterator[Lease]:
        """Check a connection out for the ``with`` block.

        Raises:
            BackendUnavailableError: the pool is closed, or no connection was free
                within ``acquire_timeout_s``.
        """
        if self._closed:
            raise BackendUnavailableError(f"the connection pool of {self._name} is closed")
        if not self._slots.acquire(timeout=self._timeout):
            raise BackendUnavailableError(
                f"no free connection to {self._name} within {self._timeout:g} s "
                f"(pool_size={self.max_size})"
            )
        lease: Lease | None = None
        try:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                conn = self._factory()
                with self._lock:
                    self._all.append(conn)
            lease = Lease(conn)
            yield lease
        finally:
            if lease is not None:
                self._release(lease)
            self._slots.release()

    def _release(self, lease: Lease) -> None:
        conn = lease.conn
        keep = not lease.discarded and not self._closed
        if keep:
            try:
                keep = self._alive(conn)
            except Exception:  # a probe that fails means the connection is gone
                keep = False
        if keep:
            with self._lock:
                self._idle.append(conn)
            return
        with self._lock:
            if conn in self._all:
                self._all.remove(conn)
        with contextlib.suppress(Exception):
            self._close(conn)

    def connections(self) -> list[Any]:
        """Every open connection (idle or checked out)."""
        with self._lock:
            return list(self._all)

    def close(self) -> None:
        """Close the idle connections now and the others when they are returned."""
        self._closed = True
        with self._lock:
            idle, self._idle = self._idle, []
            for conn in idle:
                if conn in self._all:
                    self._all.remove(conn)
        for conn in idle:
            with contextlib.suppress(Exception):
                self._close(conn)


class SingleConnection:
    """A borrowed connection behind a lock: threads take turns; never closed by avl."""

    max_size = 1

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self._lock = threading.RLock()

    @contextlib.contextmanager
    def lease(self) -> Iterator[Lease]:
        """The connection, for the ``with`` block (discard has no effect)."""
        with self._lock:
            yield Lease(self.conn)

    def connections(self) -> list[Any]:
        """The one connection."""
        return [self.conn]

    def close(self) -> None:
        """Nothing: the caller owns the connection."""
