"""History and AsyncHistory: record, search, verify and prune the question log."""

from __future__ import annotations

import csv
import datetime as _dt
import json
import logging
import math
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Literal, Union

import attrs
import numpy as np

from avl._args import check_clock, describe, expect_number, type_error
from avl._clock import Clock, SystemClock
from avl._lazy import lazy_module
from avl._registry import Registry
from avl.errors import (
    AvlError,
    BackendError,
    ConfigError,
    CorruptionError,
    InvalidInputError,
    NotFoundError,
)
from avl.history._anchor import Anchor, AnchorSink, as_sink
from avl.history._chain import (
    Sealer,
    decode_cursor,
    encode_cursor,
    escape_text,
    new_id,
    percentile,
    record_of,
    same_digest,
    search_tokens,
)
from avl.history._entry import (
    Entry,
    GroupStats,
    Outcome,
    Page,
    ProblemKind,
    Stats,
    VerifyReport,
)
from avl.history._types import HistoryBackend, Query, SimilarityStore
from avl.typing import Embedder

if TYPE_CHECKING:
    import asyncio
else:  # imported when the async twin first runs
    asyncio = lazy_module("asyncio")

__all__ = ["BACKENDS", "AsyncHistory", "History"]

log = logging.getLogger("avl.history")

#: What ``anchor_to=`` accepts: a sink, a callable, a file path, or several of them.
SinkLike = Union[AnchorSink, Callable[[Anchor], object], str, "os.PathLike[str]"]
#: How often retention runs ``prune`` (clock seconds) while entries are recorded.
PRUNE_EVERY_S = 3600.0
_CONFIG_KEYS = frozenset(
    {
        "url",
        "table_prefix",
        "hmac_key_env",
        "retain_days",
        "anchor_file",
        "anchor_every",
        "anchor_every_s",
    }
)

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
        try:
            return value.timestamp()
        except (OverflowError, ValueError, OSError) as exc:
            raise InvalidInputError(f"{name} is out of range: {exc}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        type_error(name, "epoch seconds or an aware datetime", value)
    return expect_number(name, value, finite=False)


def _age_s(name: str, value: object) -> float:
    if isinstance(value, _dt.timedelta):
        age = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            age = float(value)
        except OverflowError:
            age = math.inf
    else:
        raise InvalidInputError(f"{name} must be seconds or a timedelta, got {describe(value)}")
    if not math.isfinite(age) or age < 0:
        raise InvalidInputError(f"{name} must be a finite, non-negative age, got {describe(value)}")
    return age


def _positive(name: str, value: object, kind: type) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
        raise ConfigError(f"{name} must be a positive {kind.__name__}, got {describe(value)}")
    if not math.isfinite(float(value)) or value <= 0:
        raise ConfigError(f"{name} must be positive, got {describe(value)}")
    return float(value)


def _outcomes(value: Outcome | str | Iterable[Outcome | str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, (str, Outcome)):
        items: Iterable[Outcome | str] = (value,)
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = value
    else:
        raise InvalidInputError(
            f"outcome must be an outcome, a string or a list of them, got {type(value).__name__}"
        )
    out = []
    for item in items:
        if not isinstance(item, (str, Outcome)):
            raise InvalidInputError(f"outcome values must be strings, got {describe(item)}")
        out.append(Entry(outcome=item).outcome.value)
    return tuple(out)


def _tag_filter(value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, (str, list, tuple, set, frozenset)):
        raise InvalidInputError(
            f"tags must be a string or a list of strings, got {type(value).__name__}"
        )
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
    inserted, deleted or reordered entry. A chain alone cannot tell a rolled-back
    tail from a short history: take :meth:`anchor` s and keep them elsewhere
    (``anchor_to=``), then ``verify(anchor=...)`` proves every entry up to the anchor
    is still there. Safe to share between threads; several processes may write to
    the same SQLite file or PostgreSQL tables at once.

    Text fields may hold anything a caller typed (NUL bytes, lone surrogates): it is
    stored escaped and read back exactly, so recording never fails on it.

    Args:
        url: ``"memory://"`` (default), ``"sqlite:///relative.db"`` or
            ``"sqlite:////absolute/path.db"`` (``?table=prefix``), or
            ``"postgresql://user@host/db"`` (``?table=prefix``). A
            :class:`~avl.history.HistoryBackend` object is also accepted.
        hmac_key: key for HMAC-SHA256 hashes; the same key must be used to verify.
            It also signs the head row, pruning checkpoints and anchors.
        clock: the clock for default entry times, ``older_than`` and anchors.
        embedder: embeds questions for ``similar_to`` searches.
        vector_store: stores the question vectors (an ``avl.vectors`` store or
            anything with ``add(ids, vectors, metadata)`` and ``search(query, k)``).
        table_prefix: table-name prefix for SQL backends (default ``avl_history``);
            letters, digits and ``_`` only.
        create: create the database file and tables when missing (default). With
            ``False`` nothing is created: a missing history raises
            :class:`~avl.errors.NotFoundError` (for reading a user's database).
        anchor_to: where periodic anchors go: an :class:`AnchorSink`, a callable
            taking an :class:`Anchor`, a file path (appended as JSON lines), or a
            list of them. An anchor is taken after every ``anchor_every`` entries
            and when ``anchor_every_s`` seconds have passed since the last one (at
            the next record), and once more on :meth:`close`. A sink that fails is
            logged (``avl.history``, ERROR) and retried at the next entry; the
            recorded entry stays recorded.
        anchor_every: entries between periodic anchors (default 1000 when
            ``anchor_to`` is set and neither interval is).
        anchor_every_s: clock seconds between periodic anchors.
        retain: keep entries this long (seconds or a timedelta): older ones are
            pruned on open and about hourly while recording (:meth:`prune`).

    Raises:
        ConfigError: unknown URL scheme, bad option, or only one of ``embedder`` and
            ``vector_store`` given.
        NotFoundError: ``create=False`` and there is no history at ``url``.
        MissingDependencyError: the backend's driver is not installed.
        BackendUnavailableError: the database cannot be reached or opened.
        CorruptionError: the database file is damaged.

    Example:
        >>> from avl.history import History, Entry
        >>> with History("memory://") as history:
        ...     stored = history.record(Entry(user="ann", question="how many orders?",
        ...                                   sql="SELECT count(*) FROM orders", outcome="ok"))
        ...     [e.user for e in history.search(text="orders", limit=10)]
        ...     history.verify(anchor=history.anchor()).ok
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
        create: bool = True,
        anchor_to: SinkLike | Sequence[SinkLike] | None = None,
        anchor_every: int | None = None,
        anchor_every_s: float | None = None,
        retain: float | _dt.timedelta | None = None,
    ) -> None:
        if clock is not None:
            check_clock("clock", clock)
        self._clock: Clock = clock if clock is not None else SystemClock()
        if hmac_key is not None and not isinstance(hmac_key, (bytes, str)):
            raise ConfigError(f"hmac_key must be bytes or str, got {type(hmac_key).__name__}")
        try:
            self._sealer = Sealer(hmac_key)
        except InvalidInputError as exc:
            raise ConfigError(str(exc)) from exc
        if (embedder is None) != (vector_store is None):
            raise ConfigError("similarity search needs both embedder= and vector_store=")
        if embedder is not None and not callable(getattr(type(embedder), "embed", None)):
            raise ConfigError(f"embedder must have embed(texts), got {type(embedder).__name__}")
        if vector_store is not None and not all(
            callable(getattr(type(vector_store), m, None)) for m in ("add", "search")
        ):
            raise ConfigError(
                f"vector_store must have add() and search(), got {type(vector_store).__name__}"
            )
        if table_prefix is not None and not isinstance(table_prefix, str):
            raise ConfigError(f"table_prefix must be a string, got {type(table_prefix).__name__}")
        if not isinstance(create, bool):
            raise ConfigError(f"create must be True or False, got {describe(create)}")
        self._embedder = embedder
        self._vectors = vector_store
        # periodic anchors and retention (validated before anything is opened)
        self._sinks = self._sinks_of(anchor_to)
        every = _positive("anchor_every", anchor_every, int)
        every_s = _positive("anchor_every_s", anchor_every_s, float)
        if (every is not None or every_s is not None) and not self._sinks:
            raise ConfigError("anchor_every/anchor_every_s need anchor_to= (where anchors go)")
        if self._sinks and every is None and every_s is None:
            every = 1000.0
        self._anchor_every = None if every is None else int(every)
        self._anchor_every_s = every_s
        self._retain_s = None if retain is None else _age_s("retain", retain)
        if self._retain_s is not None and not create:
            raise ConfigError("retain= prunes, which a History opened with create=False must not")
        self._maint = threading.Lock()
        self._since_anchor = 0
        self._last_anchor_t = float(self._clock.now())
        self._next_prune = -math.inf
        if isinstance(url, str):
            kwargs: dict[str, Any] = {}
            if table_prefix is not None:
                kwargs["table_prefix"] = table_prefix
            if not create:
                kwargs["create"] = False
            self._backend: HistoryBackend = BACKENDS.create(url, **kwargs)
        elif all(
            callable(getattr(type(url), m, None))
            for m in ("append", "get", "search", "scan", "verify", "head", "ping", "prune", "close")
        ):
            self._backend = url
        else:
            raise ConfigError(f"expected a history URL or backend, got {type(url).__name__}")
        self._closed = False
        if self._retain_s is not None:
            self._retention(float(self._clock.now()))

    @staticmethod
    def _sinks_of(value: object) -> tuple[AnchorSink, ...]:
        if value is None:
            return ()
        items = list(value) if isinstance(value, (list, tuple)) else [value]
        try:
            return tuple(as_sink(v) for v in items)
        except InvalidInputError as exc:
            raise ConfigError(f"anchor_to: {exc}") from exc

    @classmethod
    def from_config(
        cls,
        spec: str | Mapping[str, Any],
        *,
        environ: Mapping[str, str] | None = None,
        clock: Clock | None = None,
    ) -> History:
        """A History from a config value (the Console's ``history`` key).

        ``spec`` is a URL, or a table::

            [history]
            url = "sqlite:///history.db"
            hmac_key_env = "AVL_HISTORY_KEY"   # the key is read from this variable
            retain_days = 90                   # prune older entries (checkpointed)
            anchor_file = "/mnt/audit/anchors.jsonl"   # periodic anchors go here
            anchor_every = 1000                # entries between anchors
            anchor_every_s = 3600              # seconds between anchors

        Args:
            spec: the URL or the table.
            environ: where ``hmac_key_env`` is looked up (default ``os.environ``).
            clock: the History's clock.

        Returns:
            The History.

        Raises:
            ConfigError: an unknown key, a bad value, or ``hmac_key_env`` naming an
                unset variable.
        """
        if isinstance(spec, str):
            return cls(spec, clock=clock)
        if not isinstance(spec, Mapping):
            raise ConfigError(f"history: expected a URL or a table, got {type(spec).__name__}")
        unknown = set(spec) - _CONFIG_KEYS
        if unknown:
            raise ConfigError(
                f"history: unknown key(s) {', '.join(sorted(map(str, unknown)))} "
                f"(known: {', '.join(sorted(_CONFIG_KEYS))})"
            )
        url = spec.get("url", "memory://")
        if not isinstance(url, str) or not url:
            raise ConfigError(f"history.url must be a non-empty URL string, got {describe(url)}")
        key: str | None = None
        key_env = spec.get("hmac_key_env")
        if key_env is not None:
            env = os.environ if environ is None else environ
            if not isinstance(key_env, str) or not env.get(key_env):
                raise ConfigError(
                    f"history.hmac_key_env names {describe(key_env)}, which is not set (or empty)"
                )
            key = env[key_env]
        retain = spec.get("retain_days")
        retain_s = None
        if retain is not None:
            days = _positive("history.retain_days", retain, float)
            retain_s = None if days is None else days * 86_400.0
        anchor_file = spec.get("anchor_file")
        if anchor_file is not None and (not isinstance(anchor_file, str) or not anchor_file):
            raise ConfigError(
                f"history.anchor_file must be a path string, got {describe(anchor_file)}"
            )
        return cls(
            url,
            hmac_key=key,
            clock=clock,
            table_prefix=spec.get("table_prefix"),
            anchor_to=anchor_file,
            anchor_every=spec.get("anchor_every"),
            anchor_every_s=spec.get("anchor_every_s"),
            retain=retain_s,
        )

    @property
    def backend(self) -> HistoryBackend:
        """The storage backend."""
        return self._backend

    def _check_open(self) -> None:
        if self._closed:
            raise InvalidInputError("this History is closed")

    def _prepare(self, entry: Entry) -> tuple[Entry, dict[str, Any]]:
        if not isinstance(entry, Entry):
            type_error("entry", "an Entry", entry)
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
        if isinstance(entries, Entry):
            type_error("entries", "an iterable of Entry (use record() for one)", entries)
        if isinstance(entries, (str, bytes, Mapping)) or not isinstance(entries, Iterable):
            type_error("entries", "an iterable of Entry", entries)
        try:
            items = list(entries)
        except Exception as exc:  # the caller's own iterator failed: say so, as ours
            raise InvalidInputError(f"entries could not be iterated: {describe(exc)}") from exc
        prepared = [self._prepare(e) for e in items]
        if not prepared:
            return []
        ids = [r["id"] for _, r in prepared]
        if len(set(ids)) != len(ids):
            raise InvalidInputError("duplicate entry ids in one record_many call")
        stored = self._backend.append(prepared, self._sealer)
        if self._embedder is not None and self._vectors is not None:
            self._index(stored)
        if self._sinks or self._retain_s is not None:
            self._after_record(stored)
        return stored

    def _after_record(self, stored: Sequence[Entry]) -> None:
        """Periodic anchors and retention; never fails the write that already happened."""
        now = float(self._clock.now())
        if self._sinks:
            with self._maint:
                self._since_anchor += len(stored)
                due = (
                    self._anchor_every is not None and self._since_anchor >= self._anchor_every
                ) or (
                    self._anchor_every_s is not None
                    and now - self._last_anchor_t >= self._anchor_every_s
                )
            if due and stored:
                last = stored[-1]
                self._emit(self._make_anchor(int(last.seq or 0), str(last.hash), now), now)
        if self._retain_s is not None and now >= self._next_prune:
            self._retention(now)

    def _retention(self, now: float) -> None:
        with self._maint:
            if now < self._next_prune:
                return
            self._next_prune = now + min(PRUNE_EVERY_S, max(1.0, (self._retain_s or 0) / 10))
        try:
            removed = self._backend.prune(now - (self._retain_s or 0.0), self._sealer)
        except Exception:  # the entry is stored: report loudly, retry at the next interval
            log.exception("history retention: pruning failed; retrying in an hour")
            return
        if removed:
            log.info(
                "history retention: pruned %d entries older than %.0f s", removed, self._retain_s
            )

    def _emit(self, anchor: Anchor, now: float) -> bool:
        ok = True
        for sink in self._sinks:
            try:
                sink.write(anchor)
            except Exception:  # the entry is stored: report loudly, retry at the next one
                ok = False
                log.exception(
                    "history anchor seq %d could not be written to %r; retrying at the next entry",
                    anchor.seq,
                    sink,
                )
        if ok:
            with self._maint:
                self._since_anchor = 0
                self._last_anchor_t = now
        return ok

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
        # a user id may hold what no vector store keeps (a NUL, a lone surrogate):
        # stored in the history's own lossless escaped form
        meta = [{"user": escape_text(e.user), "outcome": e.outcome.value} for e in with_text]
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
            raise NotFoundError(f"no history entry with id {describe(id)}")
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
        session: str | None = None,
        role: str | None = None,
    ) -> Query | None:
        tokens: tuple[str, ...] | None = None
        if text is not None:
            if not isinstance(text, str):
                raise InvalidInputError(f"text must be a string, got {type(text).__name__}")
            if text.strip():
                tokens = tuple(search_tokens(text))
                if not tokens:
                    return None  # no searchable word: nothing can match
        for name, value in (("user", user), ("session", session), ("role", role)):
            if value is not None and not isinstance(value, str):
                raise InvalidInputError(f"{name} must be a string, got {type(value).__name__}")
        return Query(
            tokens=tokens,
            user=user,
            session=session,
            role=role,
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
        session: str | None = None,
        role: str | None = None,
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
            session: only this session's entries (the conversation id given to
                :meth:`Assistant.ask <avl.assistant.Assistant.ask>`).
            role: only entries of this role (``""``: entries without a role).

        Returns:
            A :class:`Page` (a list of entries with ``next_cursor``).

        Raises:
            InvalidInputError: a bad filter value, limit or cursor.
            ConfigError: ``similar_to`` without an embedder and a vector store.
            BackendError: the query failed.
        """
        self._check_open()
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise InvalidInputError(
                f"limit must be an integer in 1..{MAX_LIMIT}, got {describe(limit)}"
            )
        query = self._query(
            text=text,
            user=user,
            since=since,
            until=until,
            outcome=outcome,
            tags=tags,
            session=session,
            role=role,
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
        if not isinstance(format, str) or format not in ("jsonl", "csv"):
            raise InvalidInputError(f"format must be 'jsonl' or 'csv', got {describe(format)}")
        if not isinstance(path_or_file, (str, os.PathLike)) and not callable(
            getattr(path_or_file, "write", None)
        ):
            type_error("path_or_file", "a path or an open text file", path_or_file)
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
        not old enough); a checkpoint of the last removed entry (its ``seq``, which is
        also how many entries were ever pruned, and its hash; HMAC-signed when a key
        is set) lets :meth:`verify` prove the rest continuous from there. An anchor
        taken before the prune still verifies against a keyed History (the signed
        checkpoint vouches for the pruned range); without a key, verify with an
        anchor taken after the last prune.

        Args:
            older_than: age in seconds or a timedelta, relative to the clock's ``now()``.

        Returns:
            How many entries were removed.

        Raises:
            InvalidInputError: a negative or non-numeric age.
            BackendError: the write failed (nothing was removed).
        """
        self._check_open()
        age = _age_s("older_than", older_than)
        return self._backend.prune(self._clock.now() - age, self._sealer)

    def _make_anchor(self, seq: int, head_hash: str, now: float) -> Anchor:
        try:
            mac = self._sealer.sign_anchor(seq, head_hash, now) or None
            return Anchor(seq=seq, head_hash=head_hash, time=now, mac=mac)
        except InvalidInputError as exc:
            raise CorruptionError(f"the history head is damaged: {exc}") from exc

    def anchor(self, *, to: SinkLike | Sequence[SinkLike] | None = None) -> Anchor:
        """The chain head now, to keep where the database's writers cannot reach.

        Args:
            to: also write it to these sinks (see ``anchor_to``); their errors raise.

        Returns:
            An :class:`Anchor` (HMAC-signed when the History has a key).

        Raises:
            CorruptionError: the head row is damaged.
            BackendError: the read, or a sink, failed.
            InvalidInputError: ``to`` is not a sink.

        Example:
            >>> h = History()
            >>> _ = h.record(Entry(question="q"))
            >>> h.anchor().seq
            1
        """
        self._check_open()
        sinks: tuple[AnchorSink, ...] = ()
        if to is not None:
            items = list(to) if isinstance(to, (list, tuple)) else [to]
            sinks = tuple(as_sink(v) for v in items)
        seq, head_hash = self._backend.head()
        anchor = self._make_anchor(seq, head_hash, float(self._clock.now()))
        for sink in sinks:
            try:
                sink.write(anchor)
            except AvlError:
                raise
            except Exception as exc:  # the caller's sink (a webhook, a callback) failed
                raise BackendError(
                    f"anchor sink {describe(sink)} failed: {describe(exc, 200)}"
                ) from exc
        return anchor

    def verify(self, anchor: Anchor | None = None) -> VerifyReport:
        """Check the whole hash chain, and that it still reaches ``anchor``.

        Args:
            anchor: an :class:`Anchor` taken earlier (and kept elsewhere): the report
                is not ok when any entry up to it is missing, changed or rolled back
                (a restored backup, a deleted tail with the head row moved back, a
                replaced table). With a key, the anchor's MAC must match.

        Returns:
            A :class:`VerifyReport`; ``report.ok`` is ``True`` when every entry
            verifies, else ``problem`` names the first altered, inserted, deleted,
            reordered or rolled-back entry.

        Raises:
            InvalidInputError: ``anchor`` is not an Anchor, or is signed when this
                History has no key (or unsigned when it has one).
            BackendError: the read failed.
        """
        self._check_open()
        if anchor is None:
            return self._backend.verify(self._sealer)
        if not isinstance(anchor, Anchor):
            raise InvalidInputError(f"anchor must be an Anchor, got {type(anchor).__name__}")
        if self._sealer.keyed and anchor.mac is None:
            raise InvalidInputError(
                "this History has an hmac_key but the anchor is not signed: it was not "
                "taken by a History with the key"
            )
        if not self._sealer.keyed and anchor.mac is not None:
            raise InvalidInputError(
                "the anchor is signed: open the History with its hmac_key to verify it"
            )
        if anchor.mac is not None and not same_digest(
            self._sealer.sign_anchor(anchor.seq, anchor.head_hash, anchor.time), anchor.mac
        ):
            return VerifyReport(
                ok=False,
                checked=0,
                problem=ProblemKind.ALTERED,
                seq=anchor.seq,
                anchor_seq=anchor.seq,
                message="the anchor's MAC does not match: it was altered or made with another key",
            )
        report = self._backend.verify(self._sealer, (anchor.seq, anchor.head_hash))
        return attrs.evolve(report, anchor_seq=anchor.seq)

    def ping(self) -> None:
        """Check that the store answers (one cheap read), e.g. before a request that
        must be audited.

        Raises:
            InvalidInputError: this History is closed.
            BackendUnavailableError: the store cannot be reached.
            BackendError: the store failed otherwise (``LockedError``,
                ``CorruptionError``...).
        """
        self._check_open()
        self._backend.ping()

    def close(self) -> None:
        """Write a final anchor when anchors are configured and entries were recorded
        since the last one, then release the backend's connections (idempotent)."""
        if not self._closed:
            try:
                if self._sinks and self._since_anchor:
                    try:
                        seq, head_hash = self._backend.head()
                        now = float(self._clock.now())
                        self._emit(self._make_anchor(seq, head_hash, now), now)
                    except Exception:  # closing must release the connections regardless
                        log.exception("history: the final anchor could not be taken")
            finally:
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
        create: bool = True,
        anchor_to: SinkLike | Sequence[SinkLike] | None = None,
        anchor_every: int | None = None,
        anchor_every_s: float | None = None,
        retain: float | _dt.timedelta | None = None,
    ) -> None:
        self._sync = History(
            url,
            hmac_key=hmac_key,
            clock=clock,
            embedder=embedder,
            vector_store=vector_store,
            table_prefix=table_prefix,
            create=create,
            anchor_to=anchor_to,
            anchor_every=anchor_every,
            anchor_every_s=anchor_every_s,
            retain=retain,
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
        session: str | None = None,
        role: str | None = None,
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
                session=session,
                role=role,
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

    async def verify(self, anchor: Anchor | None = None) -> VerifyReport:
        """See :meth:`History.verify`."""
        return await asyncio.to_thread(self._sync.verify, anchor)

    async def anchor(self, *, to: SinkLike | Sequence[SinkLike] | None = None) -> Anchor:
        """See :meth:`History.anchor`."""
        return await asyncio.to_thread(lambda: self._sync.anchor(to=to))

    async def ping(self) -> None:
        """See :meth:`History.ping`."""
        await asyncio.to_thread(self._sync.ping)

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
