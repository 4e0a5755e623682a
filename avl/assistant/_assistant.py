"""The Assistant: question -> retrieve -> prompt -> model -> SQL -> SafeQuery ->
read-only execution -> repair -> answer, with events, history and metrics."""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import threading
from collections.abc import AsyncIterator, Callable, Generator, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import attrs
import numpy as np

from avl._clock import Clock, SystemClock
from avl.assistant._answer import Answer, Event, EventKind, Explanation, TrainingItem
from avl.assistant._db import Database, SchemaSnapshot
from avl.assistant._prompt import build_messages
from avl.assistant._writer import ChatSqlWriter, as_streaming_writer
from avl.errors import (
    AvlError,
    CancelledError,
    ConfigError,
    InvalidInputError,
    NotFoundError,
    ProviderError,
    QueryError,
    RateLimitedError,
    UnsafeQueryError,
)
from avl.llm import Usage, estimate_tokens
from avl.schema import (
    ExamplePair,
    FailedAttempt,
    ForeignKeySpec,
    SqlDraft,
    TableSpec,
    WriteContext,
    build_value_index,
    parse_ddl,
)
from avl.text import STOPWORDS, ident_words, similarity, stem, words

__all__ = ["Assistant", "AsyncAssistant"]

_KINDS = ("ddl", "documentation", "sql", "schema")
#: Text columns with at most this many distinct values are indexed for the offline model.
_VALUE_CAP = 1000


def _item_id(kind: str, source: str, *parts: str) -> str:
    h = hashlib.sha256("\x1f".join((kind, source, *parts)).encode()).hexdigest()[:20]
    return f"{kind}:{h}"


def _content_stems(text: str) -> frozenset[str]:
    return frozenset(stem(w) for w in words(text) if w.lower() not in STOPWORDS)


def _chunks(text: str, max_chars: int = 800) -> list[str]:
    """Split documentation into chunks of whole paragraphs (or sentences) <= max_chars."""
    out: list[str] = []
    current = ""
    pieces: list[str] = []
    for para in re.split(r"\n\s*\n", text):
        para = " ".join(para.split())
        if len(para) <= max_chars:
            pieces.append(para)
        else:
            pieces.extend(re.split(r"(?<=[.!?])\s+", para))
    for piece in pieces:
        if not piece:
            continue
        if current and len(current) + 1 + len(piece) > max_chars:
            out.append(current)
            current = piece
        else:
            current = f"{current} {piece}".strip() if current else piece
    if current:
        out.append(current)
    return out


def _literal_words(text: str) -> tuple[frozenset[str], tuple[str, ...]]:
    """Content words and numbers: two questions differing here never share a cache entry."""
    ws = [w.lower() for w in words(text)]
    return frozenset(w for w in ws if w not in STOPWORDS), tuple(w for w in ws if w[:1].isdigit())


@attrs.frozen
class _Drafted:
    draft: SqlDraft
    usage: Usage

    @property
    def model(self) -> str:
        return self.draft.model

    @property
    def cost_usd(self) -> float | None:
        return self.draft.cost_usd


@attrs.frozen
class _CacheEntry:
    question: str
    sql: str
    key: tuple[str, ...]
    vector: Any


class Assistant:
    """Ask a database questions in plain language, safely.

    Every SQL the model writes runs only after SafeQuery allows it, on a read-only
    connection with a statement timeout and a row cap. A rejected or failing query
    is fed back to the model and retried (at most ``max_attempts`` times).

    Args:
        db: a database URL (``sqlite:///path.db``, ``postgresql://...``,
            ``mysql://...``), a DB-API connection, or a :class:`Database`.
        model: a :class:`~avl.llm.ChatModel`, or a model URL (``offline://``,
            default; other schemes need :func:`avl.llm.create_chat_model`).
        embedder: an :class:`~avl.embeddings.Embedder` for retrieval and the
            semantic cache (default: the hashing embedder when available; without
            one, retrieval is lexical).
        store: a vector store for the training items (default: an in-memory
            :class:`~avl.vectors.VectorStore` when an embedder is used). Items carry
            their ``source`` in metadata, so several assistants may share a store.
        policy: the SafeQuery :class:`~avl.safety.Policy` for everyone, a mapping
            ``role -> Policy``, or a ``PolicySet``. Default: read-only over the
            introspected schema with ``max_rows``.
        history: a History to record every ask in (including rejections).
        metrics: a Metrics sink.
        limiter: a rate limiter for requests, keyed by user.
        token_limiter: a rate limiter whose cost is the prompt's tokens, keyed by user.
        name: the data source's name (keys training data and the cache).
        max_attempts: SQL attempts per question (repair loop bound).
        max_rows: the row cap.
        timeout_s: the statement timeout.
        context_tokens: the token budget of the retrieved context.
        cache_threshold: similarity (0..1) above which the semantic cache answers;
            ``None`` disables the cache.
        learn: store successfully answered questions as pairs (off by default).
        sample_values: send a few stored values per column to the model (opt-in).
        clock: the clock for timings.

    Raises:
        ConfigError: a bad argument, or a default primitive is unavailable.
        BackendUnavailableError: the database cannot be opened.

    Example:
        >>> assistant = Assistant(db="sqlite:///shop.db")  # doctest: +SKIP
        >>> assistant.train_from_database()  # doctest: +SKIP
        >>> assistant.ask("how many orders are there?").rows  # doctest: +SKIP
        ((42,),)
    """

    def __init__(
        self,
        db: str | object,
        *,
        model: Any = "offline://",
        embedder: Any = "default",
        store: Any = None,
        policy: Any = None,
        history: Any = None,
        metrics: Any = None,
        limiter: Any = None,
        token_limiter: Any = None,
        name: str | None = None,
        max_attempts: int = 3,
        max_rows: int = 1000,
        timeout_s: float = 10.0,
        context_tokens: int = 2000,
        cache_threshold: float | None = 0.95,
        learn: bool = False,
        sample_values: bool = False,
        clock: Clock | None = None,
    ) -> None:
        if not isinstance(max_attempts, int) or max_attempts < 1:
            raise ConfigError(f"max_attempts must be a positive int, got {max_attempts!r}")
        if not isinstance(max_rows, int) or max_rows < 1:
            raise ConfigError(f"max_rows must be a positive int, got {max_rows!r}")
        if cache_threshold is not None and not 0.0 < cache_threshold <= 1.0:
            raise ConfigError(f"cache_threshold must be in (0, 1], got {cache_threshold!r}")
        self._clock: Clock = clock or SystemClock()
        self.db = (
            db if isinstance(db, Database) else Database(db, timeout_s=timeout_s, clock=self._clock)
        )
        self.name = name or "default"
        self.model = _make_model(model)
        # adapted once, here: the pipeline only ever sees a streaming SqlWriter
        self.writer = as_streaming_writer(self.model)
        # a writer that runs in this process may link words to stored values
        self._link_values = not isinstance(self.writer, ChatSqlWriter)
        self.embedder = _make_embedder(embedder)
        self.store = store
        if self.store is None and self.embedder is not None:
            self.store = _make_store(self.embedder)
        self._policy = policy
        self.history = history
        self.metrics = metrics
        self.limiter = limiter
        self.token_limiter = token_limiter
        self.max_attempts = max_attempts
        self.max_rows = max_rows
        self.context_tokens = int(context_tokens)
        self.cache_threshold = cache_threshold
        self.learn = learn
        self.sample_values = sample_values
        self._lock = threading.RLock()
        self._items: dict[str, TrainingItem] = {}
        self._tables: dict[str, TableSpec] = {}
        self._fks: list[ForeignKeySpec] = []
        self._values: dict[tuple[str, str], tuple[str, ...]] = {}
        self._value_index: Mapping[str, tuple[tuple[str, str, str], ...]] = MappingProxyType({})
        self._guards: dict[Any, Any] = {}
        self._derived: dict[tuple[str, str], Any] = {}
        self._cache: list[_CacheEntry] = []
        self._idf: dict[str, float] = {}

    # ------------------------------------------------------------ properties
    @property
    def dialect(self) -> str:
        """The database's SQL dialect (sqlglot name)."""
        return self.db.dialect

    @property
    def schema_version(self) -> str:
        """A hash of the known tables and columns (keys the semantic cache)."""
        got = self._derived.get(("version", ""))
        if got is None:
            text = json.dumps(
                sorted(
                    (t.name, [(c.name, c.type) for c in t.columns]) for t in self._tables.values()
                )
            )
            got = hashlib.sha256(text.encode()).hexdigest()[:16]
            self._derived[("version", "")] = got
        version: str = got
        return version

    # -------------------------------------------------------------- training
    def train(
        self,
        *,
        ddl: str | None = None,
        documentation: str | None = None,
        question: str | None = None,
        sql: str | None = None,
        added_by: str = "",
    ) -> list[str]:
        """Teach the Assistant DDL, documentation, or a question->SQL pair.

        A pair is checked by SafeQuery before it is stored (a pair that would be
        refused is never stored). Documentation is split into chunks of whole
        paragraphs (about 800 characters). Each item is embedded once.

        Args:
            ddl: ``CREATE TABLE`` statements (they become known tables).
            documentation: free text about the data.
            question: a question, with ``sql``.
            sql: the SQL that answers ``question``.
            added_by: who added it (kept as provenance).

        Returns:
            The ids of the stored items.

        Raises:
            InvalidInputError: nothing given, or ``question`` without ``sql``.
            UnsafeQueryError: the pair's SQL is refused by SafeQuery.
        """
        items: list[TrainingItem] = []
        if ddl is not None:
            if not isinstance(ddl, str) or not ddl.strip():
                raise InvalidInputError("ddl must be a non-empty string")
            ddl_tables, ddl_fks = parse_ddl(ddl, dialect=self.dialect)
            if not ddl_tables:
                raise InvalidInputError("ddl holds no CREATE TABLE statement that could be parsed")
            for t in ddl_tables:
                self._add_table(t)
                items.append(
                    TrainingItem(
                        id=_item_id("ddl", self.name, t.name),
                        kind="ddl",
                        text=t.ddl(foreign_keys=tuple(ddl_fks)),
                        table=t.name,
                        added_by=added_by,
                        source=self.name,
                    )
                )
            self._add_fks(ddl_fks)
        if documentation is not None:
            if not isinstance(documentation, str) or not documentation.strip():
                raise InvalidInputError("documentation must be a non-empty string")
            for chunk in _chunks(documentation.strip()):
                items.append(
                    TrainingItem(
                        id=_item_id("documentation", self.name, chunk),
                        kind="documentation",
                        text=chunk,
                        added_by=added_by,
                        source=self.name,
                    )
                )
        if question is not None or sql is not None:
            if not isinstance(question, str) or not question.strip():
                raise InvalidInputError("a trained pair needs a non-empty question= with sql=")
            if not isinstance(sql, str) or not sql.strip():
                raise InvalidInputError("a trained pair needs a non-empty sql= with question=")
            verdict = self._guard(None).check(sql)
            if not verdict.allowed:
                codes = ", ".join(str(getattr(v.code, "value", v.code)) for v in verdict.violations)
                raise UnsafeQueryError(
                    f"refusing to train on SQL that SafeQuery rejects ({codes})",
                    violations=verdict.violations,
                    sql=sql,
                )
            items.append(
                TrainingItem(
                    id=_item_id("sql", self.name, question.strip(), sql.strip()),
                    kind="sql",
                    text=question.strip(),
                    question=question.strip(),
                    sql=sql.strip(),
                    added_by=added_by,
                    source=self.name,
                )
            )
        if not items:
            raise InvalidInputError("train() needs ddl=, documentation=, or question= with sql=")
        self._store_items(items)
        return [i.id for i in items]

    def train_from_database(
        self,
        *,
        tables: Sequence[str] | None = None,
        sample_values: int = 0,
        added_by: str = "introspection",
    ) -> list[str]:
        """Read the database's tables, columns, types, keys and comments.

        With the offline model, distinct stored values of short text columns are
        also indexed locally for linking words to values (they never leave the
        process). Values are sent to a remote model only when ``sample_values`` is
        set here or on the Assistant.

        Args:
            tables: only these tables (all when ``None``).
            sample_values: how many sample values per text column to include in the
                items shown to the model (opt-in; default 0).
            added_by: provenance of the items.

        Returns:
            The ids of the stored items (one per table).

        Raises:
            QueryError: the catalogue could not be read.
        """
        n = sample_values or (3 if self.sample_values else 0)
        snap: SchemaSnapshot = self.db.introspect(tables=tables, sample_values=n)
        items = []
        for t in snap.tables:
            self._add_table(t)
            items.append(
                TrainingItem(
                    id=_item_id("schema", self.name, t.name),
                    kind="schema",
                    text=t.ddl(foreign_keys=tuple(snap.foreign_keys), samples=n > 0),
                    table=t.name,
                    added_by=added_by,
                    source=self.name,
                )
            )
        self._add_fks(snap.foreign_keys)
        if self._link_values:
            for t in snap.tables:
                for c in t.columns:
                    if c.is_numeric and not c.type.lower().startswith(("year",)):
                        continue
                    vals = self.db.distinct_values(t.name, c.name, _VALUE_CAP + 1)
                    if vals and len(vals) <= _VALUE_CAP:
                        self._values[(t.name, c.name)] = vals
            self._value_index = MappingProxyType(build_value_index(self._values))
        self._store_items(items)
        return [i.id for i in items]

    def remove(self, id: str) -> None:
        """Forget one training item.

        Raises:
            NotFoundError: no item has this id.
        """
        with self._lock:
            item = self._items.pop(id, None)
            if item is None:
                raise NotFoundError(f"no training item with id {id!r}")
            if item.kind in ("schema", "ddl") and not any(
                i.table == item.table and i.kind in ("schema", "ddl") for i in self._items.values()
            ):
                self._tables.pop(item.table.lower(), None)
                self._derived.clear()
                self._guards.clear()
            if self.store is not None:
                self.store.delete([self._store_id(id)])
            self._refresh_idf()

    def training_data(self, kind: str | None = None) -> list[TrainingItem]:
        """The stored training items, optionally of one ``kind``.

        Raises:
            InvalidInputError: unknown kind.
        """
        if kind is not None and kind not in _KINDS:
            raise InvalidInputError(f"unknown training kind {kind!r} (known: {', '.join(_KINDS)})")
        with self._lock:
            return [i for i in self._items.values() if kind is None or i.kind == kind]

    def _add_table(self, t: TableSpec) -> None:
        with self._lock:
            self._tables[t.name.lower()] = t
            self._guards.clear()
            self._derived.clear()

    def _add_fks(self, fks: Sequence[ForeignKeySpec]) -> None:
        with self._lock:
            for fk in fks:
                if fk not in self._fks:
                    self._fks.append(fk)
            self._derived.clear()

    def _words_of(self, t: TableSpec) -> tuple[frozenset[str], frozenset[str]]:
        key = ("words", t.name)
        got = self._derived.get(key)
        if got is None:
            got = (
                frozenset(ident_words(t.name)),
                frozenset(w for c in t.columns for w in ident_words(c.name)),
            )
            self._derived[key] = got
        words_: tuple[frozenset[str], frozenset[str]] = got
        return words_

    def _ddl_tokens(self, t: TableSpec) -> int:
        key = ("tokens", t.name)
        got = self._derived.get(key)
        if got is None:
            got = estimate_tokens(t.ddl(foreign_keys=tuple(self._fks)))
            self._derived[key] = got
        n: int = got
        return n

    def _store_id(self, item_id: str) -> str:
        return f"{self.name}/{item_id}"

    def _store_items(self, items: list[TrainingItem]) -> None:
        with self._lock:
            for i in items:
                self._items[i.id] = i
            if self.embedder is not None and self.store is not None:
                vecs = self.embedder.embed([i.text for i in items])
                ids = [self._store_id(i.id) for i in items]
                self.store.delete(ids)
                self.store.add(
                    ids,
                    np.ascontiguousarray(vecs, dtype=np.float32),
                    [{"source": self.name, "kind": i.kind, "item": i.id} for i in items],
                )
            self._refresh_idf()

    def _refresh_idf(self) -> None:
        df: dict[str, int] = {}
        pairs = [i for i in self._items.values() if i.kind == "sql"]
        for p in pairs:
            for s in _content_stems(p.question):
                df[s] = df.get(s, 0) + 1
        n = len(pairs)
        self._idf = {t: math.log((n + 1) / (c + 0.5)) + 1.0 for t, c in df.items()}

    # ------------------------------------------------------------- retrieval
    def _retrieve(
        self, question: str, qvec: Any
    ) -> tuple[list[TableSpec], list[ExamplePair], list[str], list[TrainingItem]]:
        """Tables first, then pairs and docs, within ``context_tokens``."""
        with self._lock:
            items = list(self._items.values())
            tables = dict(self._tables)
        dense: dict[str, float] = {}
        if qvec is not None and self.store is not None:
            for hit in self.store.search(qvec, k=64, where={"source": self.name}):
                item_id = str(hit.id).split("/", 1)[-1]
                dense[item_id] = float(hit.score)
        qstems = _content_stems(question)
        qlow = " " + " ".join(w.lower() for w in words(question)) + " "
        # ---- tables
        value_tables: dict[str, set[str]] = {}
        qwords = [w.lower() for w in words(question)]
        for first in set(qwords):
            for vt, vc, v in self._value_index.get(first, ()):
                if len(v) > 2 and f" {' '.join(x.lower() for x in words(v))} " in qlow:
                    value_tables.setdefault(vt, set()).add(vc)
        tscore: dict[str, float] = {}
        for key, t in tables.items():
            tw, cw = self._words_of(t)
            s = 3.0 * len(tw & qstems) + 1.0 * len(cw & qstems)
            s += 2.0 * len(value_tables.get(t.name, ()))
            item = _item_id("schema", self.name, t.name)
            s += 2.0 * dense.get(item, dense.get(_item_id("ddl", self.name, t.name), 0.0))
            tscore[key] = s
        ranked = sorted(tables, key=lambda k: -tscore[k])
        chosen: list[str] = []
        budget = self.context_tokens
        used = 0

        def cost(key: str) -> int:
            return self._ddl_tokens(tables[key])

        def neighbours(key: str) -> list[str]:
            out = []
            for fk in self._fks:
                if fk.table.lower() == key:
                    out.append(fk.ref_table.lower())
                elif fk.ref_table.lower() == key:
                    out.append(fk.table.lower())
            return [o for o in out if o in tables]

        queue: list[str] = []
        for key in ranked:
            queue.append(key)
            if tscore[key] > 0:
                queue.extend(neighbours(key))
        for key in queue:
            if key in chosen:
                continue
            c = cost(key)
            if used + c > budget * 0.7 and chosen:
                continue
            chosen.append(key)
            used += c
        specs = [tables[k] for k in chosen]
        # ---- pairs
        pairs = [i for i in items if i.kind == "sql"]
        scored = []
        for p in pairs:
            s = similarity(question, p.question, self._idf) + 0.3 * dense.get(p.id, 0.0)
            scored.append((s, p))
        scored.sort(key=lambda x: -x[0])
        examples: list[ExamplePair] = []
        shown: list[TrainingItem] = []
        for s, p in scored[:12]:
            if s <= 0:
                break
            c = estimate_tokens(p.question + p.sql) + 4
            if used + c > budget:
                break
            examples.append(ExamplePair(question=p.question, sql=p.sql))
            shown.append(p)
            used += c
        # ---- documentation
        docs = [i for i in items if i.kind == "documentation"]
        dscored = sorted(
            docs,
            key=lambda d: -(len(_content_stems(d.text) & qstems) + dense.get(d.id, 0.0)),
        )
        doc_texts = []
        for d in dscored[:5]:
            c = estimate_tokens(d.text)
            if used + c > budget:
                break
            doc_texts.append(d.text)
            shown.append(d)
            used += c
        shown = [
            i for i in items if i.kind in ("schema", "ddl") and i.table.lower() in chosen
        ] + shown
        return specs, examples, doc_texts, shown

    def retrieval_tables(self, question: str) -> list[str]:
        """The tables the retrieval step would put in the context for ``question``."""
        qvec = self._embed_question(question)
        return [t.name for t in self._retrieve(question, qvec)[0]]

    def _embed_question(self, question: str) -> Any:
        if self.embedder is None:
            return None
        return np.ascontiguousarray(self.embedder.embed([question])[0], dtype=np.float32)

    # ---------------------------------------------------------------- safety
    def policy_for(self, role: str | None) -> Any:
        """The SafeQuery policy for ``role`` (the default policy when ``None``).

        Args:
            role: a role name, or ``None`` for the default.

        Returns:
            The :class:`~avl.safety.Policy`.

        Raises:
            PermissionDeniedError: the role has no policy.
        """
        return self._guard(role).policy

    def _default_policy(self) -> Any:
        from avl.safety import Policy

        schema = {t.name: [c.name for c in t.columns] for t in self._tables.values()} or None
        return Policy(dialect=self.dialect, schema=schema, max_rows=self.max_rows)

    def _guard(self, role: str | None) -> Any:
        from avl.errors import PermissionDeniedError
        from avl.safety import Policy, PolicySet, SafeQuery

        key = (role, self.schema_version)
        with self._lock:
            g = self._guards.get(key)
            if g is not None:
                return g
            p = self._policy
            if p is None:
                g = SafeQuery(self._default_policy())
            elif isinstance(p, Policy):
                g = SafeQuery(p)
            elif isinstance(p, PolicySet):
                name = role if role is not None else "default"
                if name not in p.roles:
                    raise PermissionDeniedError(f"no SafeQuery policy for role {role!r}")
                g = p.guard(name)
            elif isinstance(p, Mapping):
                name = role if role is not None else "default"
                if name not in p:
                    name = "default"
                if name not in p:
                    raise PermissionDeniedError(f"no SafeQuery policy for role {role!r}")
                g = SafeQuery(p[name])
            elif hasattr(p, "check"):
                g = p  # a guard object (anything with check(sql, params=...))
            else:
                raise ConfigError(
                    f"policy must be a Policy, a PolicySet or a role -> Policy mapping, got {type(p).__name__}"
                )
            self._guards[key] = g
            return g

    def guard_for(self, role: str | None = None) -> Any:
        """The SafeQuery checking SQL for ``role``."""
        return self._guard(role)

    # ------------------------------------------------------------------- ask
    def ask(
        self,
        question: str,
        *,
        user: str = "anonymous",
        role: str | None = None,
        context: Mapping[str, Any] | None = None,
        session: str = "",
    ) -> Answer:
        """Answer ``question``: retrieve, prompt, model, SafeQuery, run, repair.

        A rejected or failing SQL is not an exception: the returned answer then has
        ``error`` set and no rows (``verdict.allowed`` tells rejections apart).

        Args:
            question: the question in plain language.
            user: who asks (rate limits, history, cache key).
            role: the role whose policy applies.
            context: the user's context: row-filter parameters (``{"tenant_id": 7}``).
            session: a session id for the history.

        Returns:
            The answer.

        Raises:
            InvalidInputError: empty question.
            RateLimitedError: the user is over a rate limit or token budget.
            ProviderError: the model failed.
            CancelledError: never here (only when a stream is closed early).
        """
        answer: Answer | None = None
        for ev in self.stream(
            question, user=user, role=role, context=context, session=session, _raise=True
        ):
            if ev.kind is EventKind.ANSWER:
                answer = ev.answer
        assert answer is not None
        return answer

    def stream(
        self,
        question: str,
        *,
        user: str = "anonymous",
        role: str | None = None,
        context: Mapping[str, Any] | None = None,
        session: str = "",
        cancel: threading.Event | None = None,
        _raise: bool = False,
    ) -> Generator[Event, None, None]:
        """Answer ``question`` as a stream of :class:`Event` s.

        Events come in this order: ``retrieved``, ``prompt``, ``token`` (zero or
        more), ``sql``, ``verdict``, then ``rows`` if it ran; after a failure the
        ``prompt``...``verdict`` steps repeat for the next attempt. Then ``answer``
        and ``done``. Problems that end the request (rate limit, model failure)
        give ``error`` then ``done``. Closing the iterator early cancels the request:
        no query is left running or in a transaction, and History records the
        outcome ``cancelled``.

        Args:
            question: the question.
            user: who asks.
            role: the role whose policy applies.
            context: row-filter parameters.
            session: a session id for the history.
            cancel: an event another thread may set to cancel the request; it is
                checked between steps (same effect as closing the iterator).

        Returns:
            An iterator of events.

        Raises:
            InvalidInputError: empty question.
        """
        if not isinstance(question, str) or not question.strip():
            raise InvalidInputError("the question must be a non-empty string")
        pipeline = self._pipeline(
            question.strip(), user, role, dict(context or {}), session, _raise, cancel
        )
        if cancel is None:
            return pipeline
        return _cancellable(pipeline, cancel)

    def _pipeline(
        self,
        question: str,
        user: str,
        role: str | None,
        ctx: dict[str, Any],
        session: str,
        _raise: bool,
        cancel: threading.Event | None = None,
    ) -> Generator[Event, None, None]:
        clock = self._clock
        t0 = clock.monotonic()
        timings: dict[str, float] = {}
        usage = Usage()
        cost: float | None = None
        attempts = 0
        sql = ""
        verdict: Any = None
        outcome = "ok"
        error = ""
        finished = False

        def lap(stage: str, start: float) -> None:
            timings[stage] = timings.get(stage, 0.0) + (clock.monotonic() - start)
            self._metric("observe_stage", stage, clock.monotonic() - start)

        def finish(answer_kw: dict[str, Any]) -> Answer:
            timings["total"] = clock.monotonic() - t0
            hid = self._record(
                question=question,
                user=user,
                role=role,
                session=session,
                sql=sql,
                verdict=verdict,
                outcome=outcome,
                error=error,
                row_count=len(answer_kw.get("rows", ())),
                timings=timings,
                usage=usage,
                cost=cost,
            )
            return Answer(
                question=question,
                sql=sql,
                verdict=verdict,
                attempts=attempts,
                usage=usage,
                cost_usd=cost,
                timings=dict(timings),
                history_id=hid,
                error=error,
                source=self.name,
                **answer_kw,
            )

        try:
            # ---- rate limit (requests)
            if self.limiter is not None:
                d = self.limiter.hit(f"{self.name}:{user}:requests", 1)
                if not d.allowed:
                    ra = float(getattr(d, "retry_after", 0.0) or 0.0)
                    outcome, error = "rate_limited", f"user {user!r} is over the request rate limit"
                    raise RateLimitedError(
                        error + f"; retry after {ra:.3f}s", retry_after_s=ra, decision=d
                    )
            guard = self._guard(role)
            # ---- retrieve
            ts = clock.monotonic()
            qvec = self._embed_question(question)
            tables, examples, docs, shown = self._retrieve(question, qvec)
            lap("retrieve", ts)
            yield Event(
                kind=EventKind.RETRIEVED,
                data={
                    "items": [
                        {"id": i.id, "kind": i.kind, "table": i.table, "question": i.question}
                        for i in shown
                    ]
                },
            )
            # ---- semantic cache
            cache_key = (
                self.name,
                self.schema_version,
                str(role),
                user,
                json.dumps(ctx, sort_keys=True, default=str),
            )
            cached_sql = self._cache_lookup(question, qvec, cache_key)
            if self.cache_threshold is not None:
                self._metric("record_cache", cached_sql is not None)
            feedback: list[tuple[str, str]] = []
            result = None
            if cached_sql is not None:
                sql = cached_sql
                ts = clock.monotonic()
                verdict = guard.check(sql, params=ctx or None)
                lap("check", ts)
                yield Event(kind=EventKind.SQL, data={"sql": sql, "attempt": 0, "cached": True})
                yield self._verdict_event(verdict)
                if verdict.allowed:
                    try:
                        ts = clock.monotonic()
                        result = self.db.execute(
                            verdict.sql or sql, max_rows=self.max_rows, cancel=cancel
                        )
                        lap("execute", ts)
                    except QueryError:
                        result = None
                if result is not None:
                    sql = verdict.sql or sql
                    yield Event(
                        kind=EventKind.ROWS,
                        data={
                            "columns": list(result.columns),
                            "rows": [list(r) for r in result.rows],
                            "truncated": result.truncated,
                        },
                    )
                    answer = finish(
                        {
                            "columns": result.columns,
                            "rows": result.rows,
                            "cached": True,
                            "truncated": result.truncated,
                        }
                    )
                    finished = True
                    yield Event(kind=EventKind.ANSWER, data=answer.to_dict(), answer=answer)
                    yield Event(kind=EventKind.DONE, data={"outcome": outcome})
                    return
            # ---- attempts
            while attempts < self.max_attempts:
                attempts += 1
                wctx = WriteContext(
                    question=question,
                    dialect=self.dialect,
                    tables=tables,
                    foreign_keys=self._fks_among(tables),
                    examples=examples,
                    documentation=docs,
                    values=self._values if self._link_values else {},
                    value_index=self._value_index if self._link_values else {},
                    failed=[FailedAttempt(sql=s_, error=e_) for s_, e_ in feedback],
                )
                messages = build_messages(
                    question,
                    dialect=self.dialect,
                    tables=tables,
                    foreign_keys=self._fks_among(tables),
                    examples=examples,
                    documentation=docs,
                    samples=self.sample_values,
                    feedback=feedback,
                )
                prompt_tokens = estimate_tokens("\n".join(m.content for m in messages))
                yield Event(
                    kind=EventKind.PROMPT,
                    data={"attempt": attempts, "tokens": prompt_tokens, "messages": len(messages)},
                )
                if self.token_limiter is not None:
                    d = self.token_limiter.hit(f"{self.name}:{user}:tokens", max(1, prompt_tokens))
                    if not d.allowed:
                        ra = float(getattr(d, "retry_after", 0.0) or 0.0)
                        outcome, error = "rate_limited", f"user {user!r} is over the token budget"
                        raise RateLimitedError(
                            error + f"; retry after {ra:.3f}s", retry_after_s=ra, decision=d
                        )
                ts = clock.monotonic()
                draft: SqlDraft = yield from self._write(wctx)
                lap("model", ts)
                completion_usage = Usage(
                    input_tokens=draft.input_tokens
                    if draft.input_tokens is not None
                    else prompt_tokens,
                    output_tokens=draft.output_tokens
                    if draft.output_tokens is not None
                    else estimate_tokens(draft.sql or draft.text),
                    cached_tokens=draft.cached_tokens,
                )
                completion = _Drafted(draft, completion_usage)
                usage = usage + completion.usage
                if completion.cost_usd is not None:
                    cost = (cost or 0.0) + completion.cost_usd
                self._metric_tokens(completion)
                sql = draft.sql
                yield Event(kind=EventKind.SQL, data={"sql": sql, "attempt": attempts})
                if not sql:
                    feedback.append((draft.text[:200], "the reply held no SQL query"))
                    verdict = None
                    error = "the model's reply held no SQL"
                    outcome = "llm_error"
                    continue
                ts = clock.monotonic()
                verdict = guard.check(sql, params=ctx or None)
                lap("check", ts)
                yield self._verdict_event(verdict)
                if not verdict.allowed:
                    msgs = "; ".join(
                        f"{getattr(v.code, 'value', v.code)}: {v.message}"
                        for v in verdict.violations
                    )
                    feedback.append((sql, f"SafeQuery rejected it: {msgs}"))
                    outcome, error = "rejected", f"SafeQuery rejected the SQL: {msgs}"
                    self._metric(
                        "record_rejection",
                        [str(getattr(v.code, "value", v.code)) for v in verdict.violations],
                    )
                    self._record(
                        question=question,
                        user=user,
                        role=role,
                        session=session,
                        sql=sql,
                        verdict=verdict,
                        outcome="rejected",
                        error=error,
                        row_count=None,
                        timings=dict(timings),
                        usage=completion.usage,
                        cost=completion.cost_usd,
                    ) if attempts < self.max_attempts else None
                    continue
                run_sql = verdict.sql or sql
                try:
                    ts = clock.monotonic()
                    result = self.db.execute(run_sql, max_rows=self.max_rows, cancel=cancel)
                    lap("execute", ts)
                except QueryError as exc:
                    lap("execute", ts)
                    feedback.append((run_sql, str(exc)))
                    outcome = "timeout" if isinstance(exc, TimeoutError) else "db_error"
                    error = str(exc)
                    yield Event(
                        kind=EventKind.ERROR,
                        data={
                            "type": type(exc).__name__,
                            "message": str(exc),
                            "retryable": attempts < self.max_attempts,
                        },
                    )
                    continue
                sql = run_sql
                outcome, error = "ok", ""
                break
            if result is None:
                answer = finish({})
                finished = True
                yield Event(kind=EventKind.ANSWER, data=answer.to_dict(), answer=answer)
                yield Event(kind=EventKind.DONE, data={"outcome": outcome})
                return
            yield Event(
                kind=EventKind.ROWS,
                data={
                    "columns": list(result.columns),
                    "rows": [list(r) for r in result.rows],
                    "truncated": result.truncated,
                },
            )
            self._cache_store(question, qvec, cache_key, sql)
            if self.learn:
                self._learn(question, sql, user)
            answer = finish(
                {"columns": result.columns, "rows": result.rows, "truncated": result.truncated}
            )
            finished = True
            yield Event(kind=EventKind.ANSWER, data=answer.to_dict(), answer=answer)
            yield Event(kind=EventKind.DONE, data={"outcome": outcome})
        except GeneratorExit:
            if not finished:
                outcome, error = "cancelled", "the caller closed the stream"
                self._record(
                    question=question,
                    user=user,
                    role=role,
                    session=session,
                    sql=sql,
                    verdict=verdict,
                    outcome=outcome,
                    error=error,
                    row_count=None,
                    timings=timings,
                    usage=usage,
                    cost=cost,
                )
            raise
        except AvlError as exc:
            if not finished:
                if isinstance(exc, CancelledError):
                    outcome, error = "cancelled", "the caller cancelled the request"
                elif outcome == "ok":
                    outcome = "llm_error" if isinstance(exc, ProviderError) else "error"
                error = error or str(exc)
                self._record(
                    question=question,
                    user=user,
                    role=role,
                    session=session,
                    sql=sql,
                    verdict=verdict,
                    outcome=outcome,
                    error=error,
                    row_count=None,
                    timings=timings,
                    usage=usage,
                    cost=cost,
                )
            if _raise:
                raise
            yield Event(
                kind=EventKind.ERROR,
                data={
                    "type": type(exc).__name__,
                    "message": str(exc),
                    "retryable": isinstance(exc, RateLimitedError),
                },
            )
            yield Event(kind=EventKind.DONE, data={"outcome": outcome})

    def _write(self, wctx: WriteContext) -> Generator[Event, None, SqlDraft]:
        pieces = self.writer.write_stream(wctx)
        while True:
            try:
                piece = next(pieces)
            except StopIteration as stop:
                draft: SqlDraft = stop.value
                return draft
            yield Event(kind=EventKind.TOKEN, data={"text": piece})

    def _fks_among(self, tables: Sequence[TableSpec]) -> tuple[ForeignKeySpec, ...]:
        names = {t.name.lower() for t in tables}
        return tuple(
            fk for fk in self._fks if fk.table.lower() in names and fk.ref_table.lower() in names
        )

    @staticmethod
    def _verdict_event(verdict: Any) -> Event:
        return Event(
            kind=EventKind.VERDICT,
            data={
                "allowed": bool(verdict.allowed),
                "violations": [
                    {"code": str(getattr(v.code, "value", v.code)), "message": str(v.message)}
                    for v in verdict.violations
                ],
                "sql": verdict.sql,
            },
        )

    # ----------------------------------------------------------- cache/learn
    def _cache_lookup(self, question: str, qvec: Any, key: tuple[str, ...]) -> str | None:
        if self.cache_threshold is None:
            return None
        best, best_s = None, 0.0
        with self._lock:
            entries = [e for e in self._cache if e.key == key]
        for e in entries:
            if qvec is not None and e.vector is not None:
                s = float(
                    np.dot(qvec, e.vector)
                    / ((np.linalg.norm(qvec) * np.linalg.norm(e.vector)) or 1.0)
                )
            else:
                s = similarity(question, e.question)
            if question.lower() == e.question.lower():
                s = 1.0
            elif _literal_words(question) != _literal_words(e.question):
                continue  # another value or number: never reuse
            if s > best_s:
                best, best_s = e, s
        if best is not None and best_s >= self.cache_threshold:
            return best.sql
        return None

    def _cache_store(self, question: str, qvec: Any, key: tuple[str, ...], sql: str) -> None:
        if self.cache_threshold is None:
            return
        with self._lock:
            self._cache.append(_CacheEntry(question, sql, key, qvec))
            if len(self._cache) > 1000:
                del self._cache[0]

    def clear_cache(self) -> None:
        """Forget every cached question."""
        with self._lock:
            self._cache.clear()

    def _learn(self, question: str, sql: str, user: str) -> None:
        try:
            self.train(question=question, sql=sql, added_by=f"learned:{user}")
        except UnsafeQueryError:
            return

    # -------------------------------------------------------- history/metrics
    def _record(
        self,
        *,
        question: str,
        user: str,
        role: str | None,
        session: str,
        sql: str,
        verdict: Any,
        outcome: str,
        error: str,
        row_count: int | None,
        timings: Mapping[str, float],
        usage: Usage,
        cost: float | None,
    ) -> str | None:
        self._metric("record_outcome", outcome)
        if outcome == "rate_limited":
            self._metric("record_rate_limited", user)
        if self.history is None:
            return None
        from avl.history import Entry

        entry = Entry(
            user=user,
            role=role or "",
            session=session,
            question=question,
            sql=sql,
            allowed=None if verdict is None else bool(verdict.allowed),
            violations=()
            if verdict is None
            else tuple(str(getattr(v.code, "value", v.code)) for v in verdict.violations),
            outcome=outcome,
            error=error,
            row_count=row_count,
            timings=dict(timings),
            model=str(getattr(self.model, "name", "")),
            tokens_in=usage.input_tokens,
            tokens_out=usage.output_tokens,
            cost_usd=cost,
            tags=(f"source:{self.name}",),
        )
        stored = self.history.record(entry)
        return str(getattr(stored, "id", "") or "") or None

    def _metric(self, method: str, *args: Any) -> None:
        if self.metrics is None:
            return
        fn: Callable[..., Any] | None = getattr(self.metrics, method, None)
        if fn is None:
            return
        model = str(getattr(self.model, "name", ""))
        if method == "observe_stage":
            fn(args[0], args[1], model=model)
        elif method == "record_rejection":
            for code in args[0]:
                fn(code)
        elif method == "record_outcome":
            count = getattr(self.metrics, "count", None)
            if count is not None:
                count("asks", outcome=str(args[0]), model=model)
        else:
            fn(*args)

    def _metric_tokens(self, completion: _Drafted) -> None:
        if self.metrics is None:
            return
        fn = getattr(self.metrics, "record_tokens", None)
        if fn is not None:
            fn(
                model=completion.model or str(getattr(self.model, "name", "")),
                input_tokens=completion.usage.input_tokens,
                output_tokens=completion.usage.output_tokens,
                cost_usd=completion.cost_usd,
            )

    # ----------------------------------------------------------------- review
    def explain(
        self, sql: str, *, role: str | None = None, large_table_rows: int = 1000
    ) -> Explanation:
        """Review a query: run ``EXPLAIN`` and suggest indexes.

        The statement is checked by SafeQuery first.

        Args:
            sql: the query.
            role: the role whose policy applies.
            large_table_rows: a full scan is flagged when the table has at least
                this many rows (tables of unknown size are always flagged).

        Returns:
            The plan, the full scans and ``CREATE INDEX`` suggestions.

        Raises:
            UnsafeQueryError: SafeQuery refuses the statement.
            QueryError: the database cannot explain it.
        """
        import sqlglot
        from sqlglot import expressions as exp

        verdict = self._guard(role).check(sql)
        if not verdict.allowed:
            raise UnsafeQueryError(
                "SafeQuery refuses the statement", violations=verdict.violations, sql=sql
            )
        run = verdict.sql or sql
        res = self.db.explain(run)
        plan = [" ".join(str(x) for x in r if x is not None) for r in res.rows]
        scanned: list[str] = []
        lowtables = {t.lower(): t for t in (tt.name for tt in self._tables.values())}
        for r in res.rows:
            line = " ".join(str(x) for x in r if x is not None)
            m = (
                re.search(r"\bSCAN (?:TABLE )?([\w\"]+)", line)
                if self.dialect == "sqlite"
                else None
            )
            if (
                m
                and "USING" not in line[m.end() : m.end() + 20].upper()
                and "COVERING INDEX" not in line.upper()
            ):
                scanned.append(m.group(1).strip('"'))
            m = re.search(r"Seq Scan on ([\w\"]+)", line)
            if m:
                scanned.append(m.group(1).strip('"'))
        if self.dialect == "mysql":
            cols = [c.lower() for c in res.columns]
            if "type" in cols and "table" in cols:
                for r in res.rows:
                    if str(r[cols.index("type")]).upper() == "ALL":
                        scanned.append(str(r[cols.index("table")]))
        try:
            tree = sqlglot.parse_one(run, read=self.dialect)
        except sqlglot.errors.SqlglotError as exc:
            raise QueryError(f"cannot parse the statement for review: {exc}", sql=sql) from exc
        alias_to_table: dict[str, str] = {}
        for t in tree.find_all(exp.Table):
            alias_to_table[(t.alias_or_name).lower()] = t.name
        wanted: list[tuple[str, str]] = []
        for node in list(tree.find_all(exp.Where)) + list(tree.find_all(exp.Join)):
            for col in node.find_all(exp.Column):
                tname = alias_to_table.get(col.table.lower()) if col.table else None
                if tname is None and len(alias_to_table) == 1:
                    tname = next(iter(alias_to_table.values()))
                if tname is None:
                    tname = next(
                        (
                            t.name
                            for t in self._tables.values()
                            if t.column(col.name) and t.name in alias_to_table.values()
                        ),
                        None,
                    )
                if tname is not None and (tname, col.name) not in wanted:
                    wanted.append((tname, col.name))
        indexed = self.db.indexed_columns()
        full: list[str] = []
        for scanned_name in dict.fromkeys(scanned):
            real = lowtables.get(scanned_name.lower(), scanned_name)
            spec = self._tables.get(real.lower())
            rows = spec.row_count if spec is not None else None
            if rows is None or rows >= large_table_rows:
                full.append(real)
        suggestions = []
        for tname, cname in wanted:
            if tname.lower() not in {x.lower() for x in scanned}:
                continue  # the table is read through an index already
            if (tname.lower(), cname.lower()) in indexed:
                continue
            suggestions.append(
                f"CREATE INDEX {('ix_' + tname + '_' + cname).lower()} ON {self.db.quote(tname)} ({self.db.quote(cname)})"
            )
        return Explanation(sql=run, plan=plan, full_scans=full, suggestions=suggestions)

    def close(self) -> None:
        """Close the database connection (if the Assistant opened it)."""
        self.db.close()

    def __repr__(self) -> str:
        return (
            f"Assistant(db={self.db.url!r}, model={getattr(self.model, 'name', '?')!r}, "
            f"source={self.name!r}, items={len(self._items)})"
        )


def _cancellable(
    pipeline: Generator[Event, None, None], cancel: threading.Event
) -> Generator[Event, None, None]:
    try:
        for event in pipeline:
            if cancel.is_set():
                break
            yield event
            if cancel.is_set():
                break
    finally:
        pipeline.close()  # records "cancelled" when it did not finish


class AsyncAssistant:
    """The asyncio twin of :class:`Assistant` (same method names).

    It wraps an :class:`Assistant` and runs each blocking step in a worker thread
    (``asyncio.to_thread``), so the event loop never blocks. ``stream`` is an async
    iterator of the same events; cancelling the consuming task closes the stream.

    Args:
        assistant: the synchronous Assistant to drive.

    Example:
        >>> aa = AsyncAssistant(Assistant(db="sqlite:///shop.db"))  # doctest: +SKIP
        >>> answer = await aa.ask("how many orders?")  # doctest: +SKIP
    """

    def __init__(self, assistant: Assistant) -> None:
        self.sync = assistant

    async def train(self, **kwargs: Any) -> list[str]:
        """See :meth:`Assistant.train`."""
        return await asyncio.to_thread(lambda: self.sync.train(**kwargs))

    async def train_from_database(self, **kwargs: Any) -> list[str]:
        """See :meth:`Assistant.train_from_database`."""
        return await asyncio.to_thread(lambda: self.sync.train_from_database(**kwargs))

    async def ask(self, question: str, **kwargs: Any) -> Answer:
        """See :meth:`Assistant.ask`."""
        return await asyncio.to_thread(lambda: self.sync.ask(question, **kwargs))

    async def stream(self, question: str, **kwargs: Any) -> AsyncIterator[Event]:
        """See :meth:`Assistant.stream`."""
        it = self.sync.stream(question, **kwargs)
        sentinel = object()
        try:
            while True:
                ev = await asyncio.to_thread(next, it, sentinel)
                if ev is sentinel:
                    return
                assert isinstance(ev, Event)
                yield ev
        finally:
            it.close()

    async def explain(self, sql: str, **kwargs: Any) -> Explanation:
        """See :meth:`Assistant.explain`."""
        return await asyncio.to_thread(lambda: self.sync.explain(sql, **kwargs))


def _make_model(model: Any) -> Any:
    if isinstance(model, str):
        if model.startswith("offline://"):
            from avl.llm.offline import create

            return create(model)
        from avl.llm import create_chat_model

        return create_chat_model(model)
    if not hasattr(model, "complete"):
        raise ConfigError(f"model must be a ChatModel or a URL, got {type(model).__name__}")
    return model


def _make_embedder(embedder: Any) -> Any:
    if embedder is None:
        return None
    if isinstance(embedder, str):
        from avl.embeddings import create_embedder

        return create_embedder("hash://" if embedder == "default" else embedder)
    if not hasattr(embedder, "embed"):
        raise ConfigError(f"embedder must be an Embedder, got {type(embedder).__name__}")
    return embedder


def _make_store(embedder: Any) -> Any:
    try:
        from avl.vectors import VectorStore
    except ImportError as exc:  # pragma: no cover
        raise ConfigError("avl.vectors is not available; pass store=") from exc
    return VectorStore(int(embedder.dim), metric="cosine")


__all__ += []
_ = CancelledError
