"""History and AsyncHistory: record, search, verify and prune the question log."""

from __future__ import annotations

import asyncio
import csv
import datetime as _dt
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal

import attrs
import numpy as np

from avl._clock import Clock, SystemClock
from avl._registry import Registry
from avl.embeddings._base import Embedder
from avl.errors import ConfigError, InvalidInputError, NotFoundError
from avl.history._chain import (
    Sealer,
    decode_cursor,
    encode_cursor,
    new_id,
    percentile,
    record_of,
    search_tokens,
)
from avl.history._entry import (
    Entry,
    GroupStats,
    Outcome,
    Page,
    Stats,
    VerifyReport,
)
from avl.history._types import HistoryBackend, Query, SimilarityStore

__all__ = ["BACKENDS", "AsyncHistory", "History"]

#: URL scheme -> backend class.
BACKENDS = Registry(
    kind="history backend",
    entries={
        "memory": "avl.history.backends.memory:MemoryBackend",
        "sqlite": "avl.history.backends.sqlite:SQLiteBackend",
        "postgresql": "avl.history.backends.postgres:PostgresBackend",
    },
    extras={"postgresql": "postgres"},
)

TimeLike = float | int | _dt.datetime
MAX_LIMIT = 10_000
EXPORT_FIELDS = (
    "id",
    "seq",
    "time",
    "user",
    "role",
    "session",
    "question",
    "sql",
    "allowed",
    "violations",
    "outcome",
    "error",
    "row_count",
    "timings",
    "model",
    "tokens_in",
    "tokens_out",
    "cost_usd",
    "tags",
    "prev_hash",
    "hash",
)


def _epoch(name: str, value: TimeLike | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            raise InvalidInputError(f"{name} must be timezone-aware, got a naive datetime")
        return value.timestamp()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInputError(f"{name} must be epoch seconds or a datetime, got {value!r}")
    return float(value)


def _outcomes(value: Outcome | str | Iterable[Outcome | str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    items: Iterable[Outcome | str] = (value,) if isinstance(value, (str, Outcome)) else value
    out = []
    for item in items:
        out.append(Entry(outcome=item).outcome.value)
    return tuple(out)


def _tag_filter(value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return Entry(tags=value).tags


class _Acc:
    """Running totals of one group (latencies kept as floats only)."""

    __slots__ = ("cost", "count", "lat", "tin", "tout")

    def __init__(self) -> None:
        self.count = 0
        self.tin = 0
        self.tout = 0
        self.cost = 0.0
        self.lat: list[float] = []

    def add(self, e: Entry, latency: float | None) -> None:
        self.count += 1
        self.tin += e.tokens_in
        self.tout += e.tokens_out
        if e.cost_usd is not None:
            self.cost += e.cost_usd
        if latency is not None:
            self.lat.append(latency)

    def freeze(self) -> GroupStats:
        lat = sorted(self.lat)
        p50 = p95 = p99 = None
        if lat:
            p50, p95, p99 = (percentile(lat, q) for q in (50, 95, 99))
        return GroupStats(
            count=self.count,
            p50=p50,
            p95=p95,
            p99=p99,
            tokens_in=self.tin,
            tokens_out=self.tout,
            cost_usd=self.cost,
        )


class History:
    """A searchable, tamper-evident record of every question.

    Each recorded entry carries a SHA-256 hash (HMAC-SHA256 when ``hmac_key`` is set)
    chained to the previous entry's; :meth:`verify` names the first altered,
    inserted, deleted or reordered entry. Safe to share between threads; several
    processes may write to the same SQLite file or PostgreSQL tables at once.

    Args:
        url: ``"memory://"`` (default), ``"sqlite:///relative.db"`` or
            ``"sqlite:////absolute/path.db"`` (``?table=prefix``), or
            ``"postgresql://user@host/db"`` (``?table=prefix``). A
            :class:`~avl.history.HistoryBackend` object is also accepted.
        hmac_key: key for HMAC-SHA256 hashes; the same key must be used to verify.
        clock: the clock for default entry times and ``older_than``.
        embedder: embeds questions for ``similar_to`` searches.
        vector_store: stores the question vectors (an ``avl.vectors`` store or
            anything with ``add(ids, vectors, metadata)`` and ``search(query, k)``).
        table_prefix: table-name prefix for SQL backends (default ``avl_history``);
            letters, digits and ``_`` only.

    Raises:
        ConfigError: unknown URL scheme, bad option, or only one of ``embedder`` and
            ``vector_store`` given.
        MissingDependencyError: the backend's driver is not installed.
        BackendUnavailableError: the database cannot be reached or opened.

    Example:
        >>> from avl.history import History, Entry
        >>> with History("memory://") as history:
        ...     stored = history.record(Entry(user="ann", question="how many orders?",
        ...                                   sql="SELECT count(*) FROM orders", outcome="ok"))
        ...     [e.user for e in history.search(text="orders", limit=10)]
        ...     history.verify().ok
        ['ann']
        True
    """

    def __init__(
        self,
        url: str | HistoryBackend = "memory://",
        *,
        hmac_key: bytes | str | None = None,
        clock: Clock | None = None,
        embedder: Embedder | None = None,
        vector_store: SimilarityStore | None = None,
        table_prefix: str | None = None,
    ) -> None:
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._sealer = Sealer(hmac_key)
        if (embedder is None) != (vector_store is None):
            raise ConfigError("similarity search needs both embedder= and vector_store=")
        self._embedder = embedder
        self._vectors = vector_store
        if isinstance(url, str):
            kwargs: dict[str, Any] = {}
            if table_prefix is not None:
                kwargs["table_prefix"] = table_prefix
            self._backend: HistoryBackend = BACKENDS.create(url, **kwargs)
        elif isinstance(url, HistoryBackend):
            self._backend = url
        else:
            raise ConfigError(f"expected a history URL or backend, got {type(url).__name__}")
        self._closed = False

    @property
    def backend(self) -> HistoryBackend:
        """The storage backend."""
        return self._backend

    def _check_open(self) -> None:
        if self._closed:
            raise InvalidInputError("this History is closed")

    def _prepare(self, entry: Entry) -> tuple[Entry, dict[str, Any]]:
        if not isinstance(entry, Entry):
            raise InvalidInputError(f"expected an Entry, got {type(entry).__name__}")
        record = record_of(entry)
        if entry.id is None or entry.time is None:
            now = float(self._clock.now())
            if entry.id is None:
                record["id"] = new_id(now)
            if entry.time is None:
                record["time"] = now
        return entry, record

    def record(self, entry: Entry) -> Entry:
        """Append one entry to the chain.

        Args:
            entry: the entry; ``id`` and ``time`` are filled when ``None``; ``seq``,
                ``prev_hash`` and ``hash`` are always set by the store.

        Returns:
            The stored entry, with ``id``, ``seq``, ``time``, ``prev_hash`` and ``hash``.

        Raises:
            InvalidInputError: not an Entry, or a duplicate id.
            BackendError: the write failed (nothing was stored).
        """
        return self.record_many([entry])[0]

    def record_many(self, entries: Iterable[Entry]) -> list[Entry]:
        """Append several entries in one transaction (all or nothing).

        Args:
            entries: the entries, in order.

        Returns:
            The stored entries, in order.

        Raises:
            InvalidInputError: an item is not an Entry, or a duplicate id.
            BackendError: the write failed (nothing was stored).
        """
        self._check_open()
        prepared = [self._prepare(e) for e in entries]
        if not prepared:
            return []
        ids = [r["id"] for _, r in prepared]
        if len(set(ids)) != len(ids):
            raise InvalidInputError("duplicate entry ids in one record_many call")
        stored = self._backend.append(prepared, self._sealer)
        if self._embedder is not None and self._vectors is not None:
            self._index(stored)
        return stored

    def _index(self, stored: Sequence[Entry]) -> None:
        if self._embedder is None or self._vectors is None:
            return
        with_text = [e for e in stored if e.question]
        if not with_text:
            return
        vectors = np.ascontiguousarray(
            self._embedder.embed([e.question for e in with_text]), dtype=np.float32
        )
        ids = [str(e.id) for e in with_text]
        meta = [{"user": e.user, "outcome": e.outcome.value} for e in with_text]
        self._vectors.add(ids, vectors, meta)

    def get(self, id: str) -> Entry:
        """The entry with ``id``.

        Raises:
            NotFoundError: no such entry.
            BackendError: the read failed.
        """
        self._check_open()
        if not isinstance(id, str):
            raise InvalidInputError(f"entry id must be a string, got {type(id).__name__}")
        found = self._backend.get(id)
        if found is None:
            raise NotFoundError(f"no history entry with id {id!r}")
        return found

    def _query(
        self,
        *,
        text: str | None,
        user: str | None,
        since: TimeLike | None,
        until: TimeLike | None,
        outcome: Outcome | str | Iterable[Outcome | str] | None,
        tags: str | Iterable[str] | None,
    ) -> Query | None:
        tokens: tuple[str, ...] | None = None
        if text is not None:
            if not isinstance(text, str):
                raise InvalidInputError(f"text must be a string, got {type(text).__name__}")
            if text.strip():
                tokens = tuple(search_tokens(text))
                if not tokens:
                    return None  # no searchable word: nothing can match
        if user is not None and not isinstance(user, str):
            raise InvalidInputError(f"user must be a string, got {type(user).__name__}")
        return Query(
            tokens=tokens,
            user=user,
            since=_epoch("since", since),
            until=_epoch("until", until),
            outcomes=_outcomes(outcome),
            tags=_tag_filter(tags),
        )

    def search(
        self,
        *,
        text: str | None = None,
        user: str | None = None,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
        outcome: Outcome | str | Iterable[Outcome | str] | None = None,
        tags: str | Iterable[str] | None = None,
        similar_to: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """Find entries, newest first (keyset pagination on ``seq``).

        Args:
            text: words that must all occur in the question or the SQL (case-insensitive;
                punctuation and FTS operators are treated as separators, never as syntax).
                ``None`` or blank text: no text filter; text without any letter or
                digit matches nothing.
            user: only this user's entries.
            since: only entries at or after this time (epoch seconds or aware datetime).
            until: only entries before this time.
            outcome: one outcome or several.
            tags: entries having all these tags.
            similar_to: rank by similarity of the question to this text instead of by
                recency (needs ``embedder`` and ``vector_store``); no cursor.
            limit: page size, 1..10000.
            cursor: ``next_cursor`` of the previous page.

        Returns:
            A :class:`Page` (a list of entries with ``next_cursor``).

        Raises:
            InvalidInputError: a bad filter value, limit or cursor.
            ConfigError: ``similar_to`` without an embedder and a vector store.
            BackendError: the query failed.
        """
        self._check_open()
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise InvalidInputError(f"limit must be an integer in 1..{MAX_LIMIT}, got {limit!r}")
        query = self._query(
            text=text, user=user, since=since, until=until, outcome=outcome, tags=tags
        )
        if similar_to is not None:
            if cursor is not None:
                raise InvalidInputError("cursor cannot be combined with similar_to")
            return self._similar(similar_to, query, limit)
        if query is None:
            return Page()
        before = None if cursor is None else decode_cursor(cursor)
        rows = self._backend.search(attrs.evolve(query, before_seq=before, limit=limit + 1))
        more = len(rows) > limit
        rows = rows[:limit]
        nxt = encode_cursor(int(rows[-1].seq or 0)) if more and rows else None
        return Page(rows, next_cursor=nxt)

    def _similar(self, text: str, query: Query | None, limit: int) -> Page:
        if self._embedder is None or self._vectors is None:
            raise ConfigError(
                "similar_to needs History(embedder=..., vector_store=...); none is configured"
            )
        if not isinstance(text, str) or not text.strip():
            raise InvalidInputError("similar_to must be a non-empty string")
        if query is None:
            return Page()
        vector = np.ascontiguousarray(self._embedder.embed([text]), dtype=np.float32)[0]
        hits = list(self._vectors.search(vector, k=min(MAX_LIMIT, limit * 4)))
        order = [str(h.id) for h in hits]
        if not order:
            return Page()
        found = {e.id: e for e in self._backend.search(attrs.evolve(query, ids=tuple(order)))}
        return Page([found[i] for i in order if i in found][:limit])

    def iter_entries(
        self,
        *,
        user: str | None = None,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
        outcome: Outcome | str | Iterable[Outcome | str] | None = None,
    ) -> list[Entry]:
        """Every matching entry, oldest first (for small histories and tests).

        Raises:
            InvalidInputError: a bad filter value.
            BackendError: the read failed.
        """
        self._check_open()
        query = self._query(
            text=None, user=user, since=since, until=until, outcome=outcome, tags=None
        )
        assert query is not None
        return list(self._backend.scan(query))

    def stats(
        self,
        *,
        user: str | None = None,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
        outcome: Outcome | str | Iterable[Outcome | str] | None = None,
    ) -> Stats:
        """Counts, tokens, cost and latency percentiles, overall and by user, outcome, model.

        An entry's latency is ``timings["total"]`` if present, else the sum of its
        stage timings. Percentiles use linear interpolation (NumPy's default). The
        figures are computed in this process over the selected entries (narrow large
        histories with ``since``/``until``).

        Returns:
            A :class:`Stats`.

        Raises:
            InvalidInputError: a bad filter value.
            BackendError: the read failed.
        """
        self._check_open()
        query = self._query(
            text=None, user=user, since=since, until=until, outcome=outcome, tags=None
        )
        assert query is not None
        total = _Acc()
        by_user: dict[str, _Acc] = {}
        by_outcome: dict[str, _Acc] = {}
        by_model: dict[str, _Acc] = {}
        for e in self._backend.scan(query):  # streamed: only floats are kept
            lat = e.latency_s
            total.add(e, lat)
            for groups, key in (
                (by_user, e.user),
                (by_outcome, e.outcome.value),
                (by_model, e.model),
            ):
                acc = groups.get(key)
                if acc is None:
                    acc = groups[key] = _Acc()
                acc.add(e, lat)
        return Stats(
            total=total.freeze(),
            by_user={k: v.freeze() for k, v in sorted(by_user.items())},
            by_outcome={k: v.freeze() for k, v in sorted(by_outcome.items())},
            by_model={k: v.freeze() for k, v in sorted(by_model.items())},
        )

    def export(
        self,
        path_or_file: str | os.PathLike[str] | IO[str],
        format: Literal["jsonl", "csv"] = "jsonl",
    ) -> int:
        """Write every entry, oldest first, as JSON lines or CSV.

        In CSV, list and mapping fields (``violations``, ``timings``, ``tags``) are
        JSON strings.

        Args:
            path_or_file: a path (written atomically: a temporary file then a rename)
                or an open text file.
            format: ``"jsonl"`` or ``"csv"``.

        Returns:
            The number of entries written.

        Raises:
            InvalidInputError: unknown format.
            BackendError: the read failed.
        """
        self._check_open()
        if format not in ("jsonl", "csv"):
            raise InvalidInputError(f"format must be 'jsonl' or 'csv', got {format!r}")
        if isinstance(path_or_file, (str, os.PathLike)):
            path = Path(path_or_file)
            tmp = path.with_name(path.name + ".tmp")
            try:
                with tmp.open("w", encoding="utf-8", newline="") as fh:
                    count = self._write(fh, format)
                    fh.flush()
                    os.fsync(fh.fileno())
                tmp.replace(path)
            except OSError as exc:
                raise InvalidInputError(f"cannot write export to {path}: {exc}") from exc
            finally:
                if tmp.exists():
                    tmp.unlink()
            return count
        return self._write(path_or_file, format)

    def _write(self, fh: IO[str], format: str) -> int:
        count = 0
        writer = None
        if format == "csv":
            writer = csv.DictWriter(fh, fieldnames=EXPORT_FIELDS, lineterminator="\n")
            writer.writeheader()
        for entry in self._backend.scan(Query()):
            row = entry.to_dict()
            if writer is None:
                fh.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
            else:
                for key in ("violations", "timings", "tags"):
                    row[key] = json.dumps(row[key], ensure_ascii=False, sort_keys=True)
                writer.writerow(row)
            count += 1
        return count

    def prune(self, older_than: float | _dt.timedelta) -> int:
        """Remove entries older than an age, keeping the chain verifiable.

        Only a prefix of the chain is removed (entries up to the first one that is
        not old enough); a checkpoint of the last removed entry (HMAC-signed when a
        key is set) lets :meth:`verify` start from there.

        Args:
            older_than: age in seconds or a timedelta, relative to the clock's ``now()``.

        Returns:
            How many entries were removed.

        Raises:
            InvalidInputError: a negative or non-numeric age.
            BackendError: the write failed (nothing was removed).
        """
        self._check_open()
        if isinstance(older_than, _dt.timedelta):
            age = older_than.total_seconds()
        elif isinstance(older_than, (int, float)) and not isinstance(older_than, bool):
            age = float(older_than)
        else:
            raise InvalidInputError(
                f"older_than must be seconds or a timedelta, got {older_than!r}"
            )
        if age < 0:
            raise InvalidInputError(f"older_than must not be negative, got {older_than!r}")
        return self._backend.prune(self._clock.now() - age, self._sealer)

    def verify(self) -> VerifyReport:
        """Check the whole hash chain.

        Returns:
            A :class:`VerifyReport`; ``report.ok`` is ``True`` when every entry
            verifies, else ``problem`` names the first altered, inserted, deleted or
            reordered entry.

        Raises:
            BackendError: the read failed.
        """
        self._check_open()
        return self._backend.verify(self._sealer)

    def close(self) -> None:
        """Release the backend's connections (idempotent)."""
        if not self._closed:
            self._closed = True
            self._backend.close()

    def __enter__(self) -> History:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"History(backend={type(self._backend).__name__})"


class AsyncHistory:
    """The asyncio twin of :class:`History` (same arguments, same method names).

    Every call runs the synchronous backend in a worker thread with
    :func:`asyncio.to_thread` (SQLite and PostgreSQL alike), so the event loop never
    blocks; the backends are thread-safe.

    Example:
        >>> import asyncio
        >>> from avl.history import AsyncHistory, Entry
        >>> async def main() -> bool:
        ...     async with AsyncHistory("memory://") as h:
        ...         await h.record(Entry(user="ann", question="q", sql="SELECT 1"))
        ...         return (await h.verify()).ok
        >>> asyncio.run(main())
        True
    """

    def __init__(
        self,
        url: str | HistoryBackend = "memory://",
        *,
        hmac_key: bytes | str | None = None,
        clock: Clock | None = None,
        embedder: Embedder | None = None,
        vector_store: SimilarityStore | None = None,
        table_prefix: str | None = None,
    ) -> None:
        self._sync = History(
            url,
            hmac_key=hmac_key,
            clock=clock,
            embedder=embedder,
            vector_store=vector_store,
            table_prefix=table_prefix,
        )

    @property
    def sync(self) -> History:
        """The underlying :class:`History`."""
        return self._sync

    async def record(self, entry: Entry) -> Entry:
        """See :meth:`History.record`."""
        return await asyncio.to_thread(self._sync.record, entry)

    async def record_many(self, entries: Iterable[Entry]) -> list[Entry]:
        """See :meth:`History.record_many`."""
        items = list(entries)
        return await asyncio.to_thread(self._sync.record_many, items)

    async def get(self, id: str) -> Entry:
        """See :meth:`History.get`."""
        return await asyncio.to_thread(self._sync.get, id)

    async def search(
        self,
        *,
        text: str | None = None,
        user: str | None = None,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
        outcome: Outcome | str | Iterable[Outcome | str] | None = None,
        tags: str | Iterable[str] | None = None,
        similar_to: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """See :meth:`History.search`."""
        return await asyncio.to_thread(
            lambda: self._sync.search(
                text=text,
                user=user,
                since=since,
                until=until,
                outcome=outcome,
                tags=tags,
                similar_to=similar_to,
                limit=limit,
                cursor=cursor,
            )
        )

    async def stats(
        self,
        *,
        user: str | None = None,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
        outcome: Outcome | str | Iterable[Outcome | str] | None = None,
    ) -> Stats:
        """See :meth:`History.stats`."""
        return await asyncio.to_thread(
            lambda: self._sync.stats(user=user, since=since, until=until, outcome=outcome)
        )

    async def export(
        self,
        path_or_file: str | os.PathLike[str] | IO[str],
        format: Literal["jsonl", "csv"] = "jsonl",
    ) -> int:
        """See :meth:`History.export`."""
        return await asyncio.to_thread(self._sync.export, path_or_file, format)

    async def prune(self, older_than: float | _dt.timedelta) -> int:
        """See :meth:`History.prune`."""
        return await asyncio.to_thread(self._sync.prune, older_than)

    async def verify(self) -> VerifyReport:
        """See :meth:`History.verify`."""
        return await asyncio.to_thread(self._sync.verify)

    async def close(self) -> None:
        """See :meth:`History.close`."""
        await asyncio.to_thread(self._sync.close)

    async def __aenter__(self) -> AsyncHistory:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"Async{self._sync!r}"
