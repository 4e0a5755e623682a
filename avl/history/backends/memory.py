"""In-process history backend (``memory://``): for tests and notebooks."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

from avl._args import describe
from avl.errors import InvalidInputError
from avl.history._chain import GENESIS, Sealer, check_chain, search_tokens
from avl.history._entry import Entry, VerifyReport
from avl.history._types import Query
from avl.history.backends._common import entry_of_row

__all__ = ["MemoryBackend"]


class MemoryBackend:
    """Entries in a list, guarded by a lock. Lost when the process ends.

    Args:
        url: ``"memory://"``.
        table_prefix: accepted and ignored (for symmetry with SQL backends).
        create: accepted and ignored (there is nothing to create).
    """

    def __init__(
        self, url: str = "memory://", *, table_prefix: str | None = None, create: bool = True
    ) -> None:
        self._lock = threading.RLock()
        # Each row: [seq, record, prev_hash, hash]; lists so tests can tamper.
        self._rows: list[list[Any]] = []
        self._by_id: dict[str, int] = {}
        # (seq, hash, signature): a list so tests can move the head back.
        self._head: list[Any] = [0, GENESIS, ""]
        self._checkpoint: tuple[int, str, str] | None = None

    def append(self, items: Sequence[tuple[Entry, dict[str, Any]]], sealer: Sealer) -> list[Entry]:
        """Store entries at the head of the chain (see the Protocol)."""
        with self._lock:
            for _, rec in items:
                if rec["id"] in self._by_id:
                    raise InvalidInputError(
                        f"a history entry with id {describe(rec['id'])} already exists"
                    )
            seq, prev = self._head[0], self._head[1]
            staged: list[list[Any]] = []
            for _, record in items:
                seq += 1
                record = dict(record)
                digest = sealer.seal(record, seq=seq, prev_hash=prev)
                staged.append([seq, record, prev, digest])
                prev = digest
            for row in staged:
                self._by_id[row[1]["id"]] = len(self._rows)
                self._rows.append(row)
            self._head = [seq, prev, sealer.sign_head(seq, prev)]
            return [entry_of_row(r[1], r[0], r[2], r[3]) for r in staged]

    def _entry(self, row: list[Any]) -> Entry:
        return entry_of_row(row[1], row[0], row[2], row[3])

    def get(self, id: str) -> Entry | None:
        """The entry with ``id``, or ``None``."""
        with self._lock:
            for row in self._rows:
                if row[1]["id"] == id:
                    return self._entry(row)
            return None

    def _matches(self, row: list[Any], q: Query) -> bool:
        rec = row[1]
        if q.before_seq is not None and row[0] >= q.before_seq:
            return False
        if q.user is not None and rec["user"] != q.user:
            return False
        if q.session is not None and rec["session"] != q.session:
            return False
        if q.role is not None and rec["role"] != q.role:
            return False
        if q.since is not None and rec["time"] < q.since:
            return False
        if q.until is not None and rec["time"] >= q.until:
            return False
        if q.outcomes and rec["outcome"] not in q.outcomes:
            return False
        if q.tags and not set(q.tags) <= set(rec["tags"]):
            return False
        if q.ids is not None and rec["id"] not in q.ids:
            return False
        if q.tokens is not None:
            words = set(search_tokens(f"{rec['question']} {rec['sql']}"))
            if not set(q.tokens) <= words:
                return False
        return True

    def search(self, query: Query) -> list[Entry]:
        """Entries matching ``query``, newest first."""
        with self._lock:
            rows = sorted(self._rows, key=lambda r: r[0], reverse=True)
            out = []
            for row in rows:
                if self._matches(row, query):
                    out.append(self._entry(row))
                    if query.limit is not None and len(out) >= query.limit:
                        break
            return out

    def scan(self, query: Query) -> Iterator[Entry]:
        """Every entry matching ``query``, oldest first."""
        with self._lock:
            rows = sorted(self._rows, key=lambda r: r[0])
            matched = [self._entry(r) for r in rows if self._matches(r, query)]
        return iter(matched)

    def head(self) -> tuple[int, str]:
        """The chain head ``(seq, hash)``."""
        with self._lock:
            return int(self._head[0]), str(self._head[1])

    def ping(self) -> None:
        """Always reachable."""

    def verify(self, sealer: Sealer, anchor: tuple[int, str] | None = None) -> VerifyReport:
        """Check the chain."""
        with self._lock:
            rows = sorted(self._rows, key=lambda r: r[0])
            by_hash = {r[3]: r[0] for r in rows}
            return check_chain(
                ((r[0], r[1], r[2], r[3]) for r in rows),
                sealer=sealer,
                checkpoint=self._checkpoint,
                head=(self._head[0], self._head[1], self._head[2]),
                locate_hash=by_hash.get,
                anchor=anchor,
            )

    def prune(self, before_time: float, sealer: Sealer) -> int:
        """Drop the oldest entries older than ``before_time`` and store a checkpoint."""
        with self._lock:
            rows = sorted(self._rows, key=lambda r: r[0])
            n = 0
            while n < len(rows) and rows[n][1]["time"] < before_time:
                n += 1
            if n == 0:
                return 0
            last = rows[n - 1]
            self._checkpoint = (last[0], last[3], sealer.sign_checkpoint(last[0], last[3]))
            self._rows = rows[n:]
            self._by_id = {r[1]["id"]: i for i, r in enumerate(self._rows)}
            return n

    def close(self) -> None:
        """Nothing to release."""
