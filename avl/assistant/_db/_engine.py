"""The engine interface every database kind implements, and helpers they share."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from typing import Any

from avl.assistant._db._types import ForeignKeySpec, Limits, QueryResult, TableSpec

__all__ = ["Engine", "Watchdog", "canonical"]


class Engine:
    """One kind of database behind :class:`~avl.assistant.Database`.

    An engine runs one statement read-only under :class:`Limits`, reads the
    catalogue, and says whether any of its connections holds a transaction open.
    Subclasses set ``dialect`` (a sqlglot name) and ``owned`` (whether avl opened
    the connections, and so may close them).
    """

    dialect: str = ""
    owned: bool = True
    explain_prefix: str = "EXPLAIN "
    pool_size: int = 1

    def run(
        self,
        sql: str,
        params: Any,
        *,
        max_rows: int,
        limits: Limits,
        cancel: threading.Event | None,
    ) -> QueryResult:
        """Run one statement read-only and collect its capped result."""
        raise NotImplementedError

    def meta(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a catalogue query written by avl (not the model) and return every row."""
        raise NotImplementedError

    def introspect(
        self, want: set[str] | None, schemas: Sequence[str] | None
    ) -> tuple[list[TableSpec], list[ForeignKeySpec]]:
        """Tables, columns, keys and comments."""
        raise NotImplementedError

    def indexed_columns(self) -> set[tuple[str, str]]:
        """``(table, first column)`` of every index (lower-cased)."""
        return set()

    def in_transaction(self) -> bool:
        """Whether any of the engine's connections has a transaction open."""
        raise NotImplementedError

    def quote(self, name: str) -> str:
        """Quote one identifier."""
        return '"' + name.replace('"', '""') + '"'

    def close(self) -> None:
        """Close what the engine opened."""


class Watchdog:
    """Calls ``stop()`` once, from a helper thread, when the deadline passes or
    ``cancel`` is set, until the ``with`` block ends.

    ``fired`` tells afterwards whether it stopped the statement (and why:
    ``"timeout"`` or ``"cancel"``).
    """

    def __init__(
        self,
        stop: Callable[[], None],
        *,
        timeout_s: float | None,
        cancel: threading.Event | None,
        poll_s: float = 0.02,
    ) -> None:
        self._stop = stop
        self._timeout = timeout_s
        self._cancel = cancel
        self._poll = poll_s
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self.fired = ""

    def __enter__(self) -> Watchdog:
        if self._timeout is None and self._cancel is None:
            return self
        self._thread = threading.Thread(target=self._watch, daemon=True, name="avl-db-watchdog")
        self._thread.start()
        return self

    def _watch(self) -> None:
        import time

        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        while True:
            wait = self._poll
            if deadline is not None:
                wait = min(wait, max(0.0, deadline - time.monotonic()))
            if self._done.wait(wait):
                return
            if self._cancel is not None and self._cancel.is_set():
                self.fired = "cancel"
            elif deadline is not None and time.monotonic() >= deadline:
                self.fired = "timeout"
            if self.fired:
                with contextlib.suppress(Exception):  # the statement may have just ended
                    self._stop()
                return

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()


def canonical(name: str, names: Sequence[str]) -> str:
    """``name`` spelled as in ``names`` (case-insensitive), else as given."""
    for n in names:
        if n.lower() == name.lower():
            return n
    return name
