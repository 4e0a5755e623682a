"""The Assistant: ask a database in plain language, safely.

The public class and its collaborators; the pipeline itself (stages and the one
recorder) is in :mod:`avl.assistant._pipeline`, the caller's view in
:mod:`avl.assistant._view`, the training stores in :mod:`avl.assistant._training`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import threading
from collections.abc import AsyncIterator, Callable, Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Union

import attrs
import cachetools
import numpy as np

from avl._args import check_storable_text
from avl._clock import SystemClock
from avl._lazy import lazy_module
from avl.assistant._answer import Answer, Event, EventKind, Explanation, TrainingItem
from avl.assistant._audit import (
    AuditMode,
    Recorder,
    check_context,
    check_name,
    check_question,
    encode_text,
)
from avl.assistant._cache import SemanticCache
from avl.assistant._db import Database, SchemaSnapshot
from avl.assistant._knowledge import (
    KINDS,
    Knowledge,
    Retrieved,
    Scope,
    chunks,
    item_id,
    retrieve,
)
from avl.assistant._pipeline import Request, run
from avl.assistant._prompt import SYSTEM
from avl.assistant._session import (
    NEW_SESSION,
    HistoryTurns,
    MemoryTurns,
    Session,
    bound_turns,
    check_session,
    load_turns,
    new_session_id,
    output_columns,
    unwrap,
)
from avl.assistant._training import open_training_store
from avl.assistant._view import SchemaView, policy_view, probe_sql
from avl.assistant._writer import ChatSqlWriter, as_streaming_writer
from avl.errors import (
    ConfigError,
    InvalidInputError,
    NotFoundError,
    QueryError,
    RateLimitedError,
    UnknownRoleError,
    UnsafeQueryError,
)
from avl.llm import estimate_tokens
from avl.metrics import tracing_enabled
from avl.schema import (
    FailedAttempt,
    TableSpec,
    Turn,
    Values,
    WriteContext,
    build_value_index,
    parse_ddl,
)
from avl.typing import (
    AuditLog,
    ChatModel,
    Clock,
    Embedder,
    Guard,
    Limiter,
    MetricsSink,
    SqlWriter,
    TrainingStore,
    VectorIndex,
    violation_code,
)

if TYPE_CHECKING:
    import asyncio
else:  # imported when the async twin first runs
    asyncio = lazy_module("asyncio")

if TYPE_CHECKING:
    from avl.costs import Budgets
    from avl.safety import Policy, PolicySet

__all__ = ["Assistant", "AsyncAssistant", "AsyncSession"]

#: Text columns with at most this many distinct values are indexed for linking.
_VALUE_CAP = 1000
#: The prefix of avl's own tables: never data (never introspected, denied by default).
OWN_PREFIX = "avl_"
_SYSTEM_TOKENS = estimate_tokens(SYSTEM)
_log = logging.getLogger("avl.assistant")

#: What ``policy=`` takes: one Policy, roles (a mapping or a PolicySet), or a guard.
PolicyLike = Union["Policy", Mapping[str, "Policy"], "PolicySet", Guard, None]
#: What ``summaries=`` takes.
SUMMARY_MODES = ("auto", "model", "template", "off")
#: Providers whose models are not "real" for ``summaries="auto"`` (no extra call).
_NOT_REAL = frozenset({"", "fake", "offline"})


class Assistant:
    """Ask a database questions in plain language, safely.

    Every SQL the model writes runs only after SafeQuery allows it, on a read-only
    connection with a statement timeout and a row cap. A rejected or failing query
    is fed back to the model and retried (at most ``max_attempts`` times).

    What the model sees is the caller's view only: the tables and columns their
    policy lets them read (row-filtered tables marked), sample values from those
    columns and rows, the trained pairs their policy allows and the documentation
    that names nothing they may not read.

    Args:
        db: a database URL (``sqlite:///path.db``, ``postgresql://...``,
            ``mysql://...``), a DB-API connection, or a :class:`Database`.
        model: a :class:`~avl.typing.SqlWriter`, a :class:`~avl.typing.ChatModel`
            (adapted once by :class:`~avl.assistant.ChatSqlWriter`), or a model URL
            (``offline://``, the default).
        embedder: an :class:`~avl.typing.Embedder` for retrieval and the semantic
            cache (default: the hashing embedder; ``None``: lexical retrieval).
        store: a vector store for the training items' vectors (default: an
            in-memory :class:`~avl.vectors.VectorStore` when an embedder is used);
            ids carry the source, so several assistants may share one.
        training: where the training items live: ``"memory://"`` (default, this
            process), ``"sqlite:///path.db"`` or ``"postgresql://..."`` (shared by
            every worker), or a :class:`~avl.typing.TrainingStore`.
        policy: the SafeQuery :class:`~avl.safety.Policy` for everyone, a mapping
            ``role -> Policy``, a ``PolicySet``, or a guard object (``check``).
            With roles, an unknown role is refused (:class:`~avl.errors.UnknownRoleError`)
            and a request without a role uses the role ``"default"`` only when one
            is configured. Default: read-only over the introspected schema with
            ``max_rows``. A Policy is read in the database's dialect.
        history: a History to record every request in (an :class:`~avl.typing.AuditLog`).
        audit: ``"required"`` (default with a history: a request whose audit entry
            cannot be written is refused before the model is called) or
            ``"best_effort"`` (answer anyway, count the miss in metrics).
        metrics: a metrics sink (:class:`~avl.metrics.Metrics`).
        limiter: a rate limiter for requests, keyed by user.
        token_limiter: a rate limiter whose cost is the prompt's tokens, keyed by user.
        budgets: cost budgets (:class:`~avl.costs.Budgets`): each model call reserves
            its most expensive estimate first (refused over budget with
            :class:`~avl.errors.BudgetExceededError`), then settles its real cost.
        name: the data source's name (keys training data and the cache).
        max_attempts: SQL attempts per question (repair loop bound).
        max_rows: the row cap.
        timeout_s: the statement timeout.
        context_tokens: the token budget of the retrieved context.
        cache_threshold: similarity (0..1) above which the semantic cache answers;
            ``None`` disables the cache.
        learn: store successfully answered questions as pairs (off by default).
        sample_values: show the model a few stored values per readable column
            (opt-in).
        summaries: how :attr:`Answer.summary` is written: ``"auto"`` (default: by
            the model when a real provider's model is configured *and*
            ``sample_values`` lets stored values reach it, one extra small call that
            sees the question, the column names and at most 5 rows; else from a
            template), ``"model"`` (by any chat model, rows included), ``"template"``
            (never an extra call; no row leaves the process) or ``"off"``
            (``None``).
        max_turns: the earlier turns of a session carried into a follow-up
            question (0: none).
        turn_tokens: the token budget of those turns (the newest is always kept).
        session_ttl_s: without a History, a session idle this long is forgotten
            (sessions are kept in this process, at most 10,000).
        clock: the clock for timings.

    Raises:
        ConfigError: a bad argument, or a default primitive is unavailable.
        BackendUnavailableError: the database or the training store cannot be opened.

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
        model: str | SqlWriter | ChatModel = "offline://",
        embedder: str | Embedder | None = "default",
        store: VectorIndex | None = None,
        training: str | TrainingStore | None = None,
        policy: PolicyLike = None,
        history: AuditLog | None = None,
        audit: AuditMode | None = None,
        metrics: MetricsSink | None = None,
        limiter: Limiter | None = None,
        token_limiter: Limiter | None = None,
        budgets: Budgets | None = None,
        name: str | None = None,
        max_attempts: int = 3,
        max_rows: int = 1000,
        timeout_s: float = 10.0,
        context_tokens: int = 2000,
        cache_threshold: float | None = 0.95,
        learn: bool = False,
        sample_values: bool = False,
        summaries: str = "auto",
        max_turns: int = 5,
        turn_tokens: int = 600,
        session_ttl_s: float = 3600.0,
        clock: Clock | None = None,
    ) -> None:
        if not isinstance(max_attempts, int) or max_attempts < 1:
            raise ConfigError(f"max_attempts must be a positive int, got {max_attempts!r}")
        if not isinstance(max_rows, int) or max_rows < 1:
            raise ConfigError(f"max_rows must be a positive int, got {max_rows!r}")
        if cache_threshold is not None and not 0.0 < cache_threshold <= 1.0:
            raise ConfigError(f"cache_threshold must be in (0, 1], got {cache_threshold!r}")
        if name is not None and (not isinstance(name, str) or not name):
            raise ConfigError(f"name must be a non-empty string, got {name!r}")
        if summaries not in SUMMARY_MODES:
            raise ConfigError(
                f"summaries must be one of {', '.join(SUMMARY_MODES)}, got {summaries!r}"
            )
        for what, value in (("max_turns", max_turns), ("turn_tokens", turn_tokens)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{what} must be a non-negative int, got {value!r}")
        if (
            isinstance(session_ttl_s, bool)
            or not isinstance(session_ttl_s, (int, float))
            or not 0 < session_ttl_s < float("inf")
        ):
            raise ConfigError(f"session_ttl_s must be a positive number, got {session_ttl_s!r}")
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
        self.training = open_training_store(training)
        self.history = history
        self.metrics = metrics
        self.budgets = budgets
        self._recorder = Recorder(
            history,
            metrics,
            audit=audit if audit is not None else ("required" if history is not None else None),
            source=self.name,
        )
        self.limiter = limiter
        self.token_limiter = token_limiter
        self.max_attempts = max_attempts
        self.max_rows = max_rows
        self.context_tokens = int(context_tokens)
        self.cache_threshold = cache_threshold
        self.learn = learn
        self.sample_values = sample_values
        self.summaries = summaries
        self.max_turns = max_turns
        self.turn_tokens = turn_tokens
        chat = isinstance(self.writer, ChatSqlWriter)
        provider = str(getattr(self.model, "provider", "") or "")
        # rows of an answer go to the provider only where values may: "model", or
        # "auto" when the caller opted in to sample values reaching the model
        self._model_summaries = chat and (
            summaries == "model"
            or (summaries == "auto" and sample_values and provider not in _NOT_REAL)
        )
        # a History holds every answered request with its session: the turns are read
        # there (shared by every worker); without one, in this process
        self._turns: MemoryTurns | HistoryTurns = (
            HistoryTurns(history)
            if _searches_sessions(history)
            else MemoryTurns(
                ttl_s=float(session_ttl_s),
                max_turns=max(max_turns, 1),
                timer=self._clock.monotonic,
            )
        )
        self._cache = SemanticCache(cache_threshold) if cache_threshold is not None else None
        self._lock = threading.RLock()
        self._policy: PolicyLike = None
        self._per_role = False
        self._knowledge = Knowledge(version="")
        self._indexed: set[str] = set()
        self._sizes: dict[str, int] = {}
        self._stems: dict[str, frozenset[str]] = {}
        self._values: dict[tuple[str, str], tuple[str, ...]] = {}
        self._values_of: set[str] = set()
        self._value_index = build_value_index({})
        self._own_tables: tuple[str, ...] = ()
        self._guards: dict[tuple[str | None, str], Guard] = {}
        self._scopes: cachetools.LRUCache[tuple[Any, ...], Scope] = cachetools.LRUCache(256)
        self.policy = policy

    # ------------------------------------------------------------ properties
    @property
    def dialect(self) -> str:
        """The database's SQL dialect (sqlglot name)."""
        return self.db.dialect

    @property
    def schema_version(self) -> str:
        """A hash of the known tables and columns (keys the semantic cache)."""
        return self._knowledge_now().schema_version

    @property
    def policy(self) -> PolicyLike:
        """The policy as configured (``None``: the default policy for everyone).

        Setting it (a Policy, a role mapping, a PolicySet or a guard) takes effect
        for the next request.

        Raises:
            ConfigError: not one of those.
        """
        return self._policy

    @policy.setter
    def policy(self, value: PolicyLike) -> None:
        from avl.safety import Policy, PolicySet

        if not (
            value is None
            or isinstance(value, (Policy, PolicySet))
            or (isinstance(value, Mapping) and all(isinstance(p, Policy) for p in value.values()))
            or callable(getattr(value, "check", None))
        ):
            raise ConfigError(
                "policy must be a Policy, a PolicySet, a role -> Policy mapping or a guard, "
                f"got {type(value).__name__}"
            )
        with self._lock:
            self._policy = value
            self._per_role = isinstance(value, (Mapping, PolicySet))
            self._guards.clear()
            self._scopes.clear()
            if self._cache is not None:
                self._cache.clear()

    # -------------------------------------------------------------- training
    def train(
        self,
        *,
        ddl: str | None = None,
        documentation: str | None = None,
        question: str | None = None,
        sql: str | None = None,
        table: str | None = None,
        added_by: str = "",
    ) -> list[str]:
        """Teach the Assistant DDL, documentation, or a question->SQL pair.

        Items are kept in the training store (``training=``), so every Assistant
        over the same store sees them. A pair is checked by SafeQuery (read-only,
        over the known schema) before it is stored, and later shown only to
        callers whose policy allows its SQL. Documentation is split into chunks of
        whole paragraphs (about 800 characters); with ``table=`` it is shown only
        to callers who may read that table (and never when it names a table or
        column the caller may not read).

        Args:
            ddl: ``CREATE TABLE`` statements (they become known tables).
            documentation: free text about the data.
            question: a question, with ``sql``.
            sql: the SQL that answers ``question``.
            table: the table ``documentation`` is about.
            added_by: who added it (provenance).

        Returns:
            The ids of the stored items.

        Raises:
            InvalidInputError: nothing given, ``question`` without ``sql``, or a text
                with a NUL character or a lone surrogate (no store can keep it).
            UnsafeQueryError: the pair's SQL is refused by SafeQuery.
            BackendUnavailableError: the training store cannot be written.
        """
        texts = {
            "ddl": ddl,
            "documentation": documentation,
            "question": question,
            "sql": sql,
            "table": table,
            "added_by": added_by,
        }
        for name, value in texts.items():
            if isinstance(value, str):  # (other types get their own errors below)
                check_storable_text(name, value)
        items: list[TrainingItem] = []
        if ddl is not None:
            if not isinstance(ddl, str) or not ddl.strip():
                raise InvalidInputError("ddl must be a non-empty string")
            ddl_tables, ddl_fks = parse_ddl(ddl, dialect=self.dialect)
            if not ddl_tables:
                raise InvalidInputError("ddl holds no CREATE TABLE statement that could be parsed")
            for t in ddl_tables:
                own = tuple(fk for fk in ddl_fks if fk.table == t.name)
                items.append(
                    TrainingItem(
                        id=item_id("ddl", self.name, t.name),
                        kind="ddl",
                        text=t.ddl(foreign_keys=own, dialect=self.dialect),
                        table=t.name,
                        added_by=added_by,
                        source=self.name,
                        spec=t,
                        foreign_keys=own,
                    )
                )
        if documentation is not None:
            if not isinstance(documentation, str) or not documentation.strip():
                raise InvalidInputError("documentation must be a non-empty string")
            if table is not None and (not isinstance(table, str) or not table.strip()):
                raise InvalidInputError("table must be a non-empty string")
            for chunk in chunks(documentation.strip()):
                items.append(
                    TrainingItem(
                        id=item_id("documentation", self.name, chunk, table or ""),
                        kind="documentation",
                        text=chunk,
                        table=(table or "").strip(),
                        added_by=added_by,
                        source=self.name,
                    )
                )
        if question is not None or sql is not None:
            if not isinstance(question, str) or not question.strip():
                raise InvalidInputError("a trained pair needs a non-empty question= with sql=")
            if not isinstance(sql, str) or not sql.strip():
                raise InvalidInputError("a trained pair needs a non-empty sql= with question=")
            verdict = self._training_guard().check(sql)
            if not verdict.allowed:
                codes = ", ".join(violation_code(v) for v in verdict.violations)
                raise UnsafeQueryError(
                    f"refusing to train on SQL that SafeQuery rejects ({codes})",
                    violations=verdict.violations,
                    sql=sql,
                )
            items.append(
                TrainingItem(
                    id=item_id("sql", self.name, question.strip(), sql.strip()),
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

        avl's own tables (names starting with ``avl_``: a History, a vector store
        or a training store kept in the same database) are never read as data. A
        writer that runs in this process (the offline generator) also links words
        to the stored values of short text columns; those values never leave the
        process, and each caller's view holds only what their policy lets them read.

        Args:
            tables: only these tables (all when ``None``).
            sample_values: how many sample values per text column to keep for the
                prompt (shown only when the Assistant's ``sample_values`` is on;
                default 3 then).
            added_by: provenance of the items.

        Returns:
            The ids of the stored items (one per table).

        Raises:
            QueryError: the catalogue could not be read.
            BackendUnavailableError: the training store cannot be written.
        """
        n = sample_values or (3 if self.sample_values else 0)
        snap: SchemaSnapshot = self.db.introspect(tables=tables, sample_values=n)
        self._note_own_tables(snap)
        items = [
            TrainingItem(
                id=item_id("schema", self.name, t.name),
                kind="schema",
                text=t.ddl(foreign_keys=snap.foreign_keys, samples=n > 0, dialect=self.dialect),
                table=t.name,
                added_by=added_by,
                source=self.name,
                spec=t,
                foreign_keys=tuple(fk for fk in snap.foreign_keys if fk.table == t.name),
            )
            for t in snap.tables
        ]
        if items:
            self._store_items(items)
        return [i.id for i in items]

    def _note_own_tables(self, snap: SchemaSnapshot) -> None:
        own = tuple(getattr(snap, "skipped", ()))
        if own and not self._own_tables:
            _log.warning(
                "the data database %s holds avl's own tables (%s): they are never shown to a "
                "model or read as data, but a separate database for the History, vectors and "
                "training is safer",
                self.db.url,
                ", ".join(own[:5]) + (" ..." if len(own) > 5 else ""),
            )
        with self._lock:
            self._own_tables = tuple(sorted(set(self._own_tables) | set(own)))
            self._guards.clear()
            self._scopes.clear()

    def remove(self, id: str) -> None:
        """Forget one training item (in every Assistant sharing the store).

        Raises:
            NotFoundError: no item has this id.
        """
        if not self.training.remove(self.name, [id]):
            raise NotFoundError(f"no training item with id {id!r}")
        self._knowledge_now()

    def training_data(self, kind: str | None = None) -> list[TrainingItem]:
        """The stored training items, optionally of one ``kind``.

        Raises:
            InvalidInputError: unknown kind.
        """
        if kind is not None and kind not in KINDS:
            raise InvalidInputError(f"unknown training kind {kind!r} (known: {', '.join(KINDS)})")
        return [i for i in self._knowledge_now().items if kind is None or i.kind == kind]

    def _store_id(self, item: str) -> str:
        return f"{self.name}/{item}"

    def _store_items(self, items: list[TrainingItem]) -> None:
        # vectors first, so a worker that sees the new version finds them
        self._index(items)
        self.training.put(self.name, items)
        self._knowledge_now()

    def _index(self, items: Sequence[TrainingItem]) -> None:
        if self.embedder is None or self.store is None or not items:
            return
        vectors = np.ascontiguousarray(self.embedder.embed([i.text for i in items]), np.float32)
        self.store.upsert(
            [self._store_id(i.id) for i in items],
            vectors,
            [{"source": self.name, "kind": i.kind, "item": i.id} for i in items],
        )
        with self._lock:
            self._indexed.update(i.id for i in items)

    def _knowledge_now(self) -> Knowledge:
        """The knowledge at the store's current version (reloaded only when it changed)."""
        version = self.training.version(self.name)
        if version == self._knowledge.version:
            return self._knowledge
        with self._lock:
            if version == self._knowledge.version:
                return self._knowledge
            items = self.training.items(self.name)
            k = Knowledge.build(version, items, self._sizes, self._stems)
            self._sync_vectors(k)
            if k.schema_version != self._knowledge.schema_version:
                # guards and views depend on the tables only (not on pairs or docs)
                if self._link_values:
                    self._sync_values(k)
                self._guards.clear()
                self._scopes.clear()
            self._knowledge = k
            return k

    def _sync_vectors(self, k: Knowledge) -> None:
        if self.embedder is None or self.store is None:
            return
        ids = {i.id for i in k.items}
        gone = self._indexed - ids
        if gone:
            self.store.delete([self._store_id(i) for i in gone])
            self._indexed -= gone
        fresh = [i for i in k.items if i.id not in self._indexed]
        missing = [i for i in fresh if self._store_id(i.id) not in self.store]
        self._indexed.update(i.id for i in fresh)  # (the missing ones are indexed below)
        self._index(missing)

    def _sync_values(self, k: Knowledge) -> None:
        names = {t.name for t in k.tables.values()}
        for t in k.tables.values():
            if t.name in self._values_of:
                continue
            self._values_of.add(t.name)
            for c in t.columns:
                if c.is_numeric and not c.type.lower().startswith("year"):
                    continue
                vals = self.db.distinct_values(t.name, c.name, _VALUE_CAP + 1)
                if vals and len(vals) <= _VALUE_CAP:
                    self._values[(t.name, c.name)] = vals
        for stale in self._values_of - names:
            self._values_of.discard(stale)
            for key in [key for key in self._values if key[0] == stale]:
                del self._values[key]
        self._value_index = build_value_index(self._values)

    # ---------------------------------------------------------------- safety
    def default_policy(self) -> Policy:
        """The default :class:`~avl.safety.Policy`: read-only over the known schema,
        with the row cap, avl's own tables denied."""
        from avl.safety import Policy

        tables = self._knowledge_now().tables
        schema = {t.name: [c.name for c in t.columns] for t in tables.values()} or None
        return Policy(
            dialect=self.dialect,
            schema=schema,
            max_rows=self.max_rows,
            denied_tables=self._own_tables,
        )

    def _training_guard(self) -> Guard:
        from avl.safety import Policy, SafeQuery

        p = self._policy
        return SafeQuery(self._in_dialect(p) if isinstance(p, Policy) else self.default_policy())

    def _in_dialect(self, policy: Policy) -> Policy:
        """A Policy read in the database's dialect (the SQL runs there)."""
        if getattr(policy, "dialect", self.dialect) == self.dialect:
            return policy
        return attrs.evolve(policy, dialect=self.dialect)

    def policy_for(self, role: str | None) -> Policy:
        """The SafeQuery policy for ``role``.

        Args:
            role: a role name, or ``None`` for a request without one.

        Returns:
            The :class:`~avl.safety.Policy`.

        Raises:
            UnknownRoleError: no policy is configured for the role.
            ConfigError: the guard is a custom object without a Policy.
        """
        from avl.safety import Policy

        policy = getattr(self.guard_for(role), "policy", None)
        if not isinstance(policy, Policy):
            raise ConfigError("this Assistant's guard exposes no Policy")
        return policy

    def guard_for(self, role: str | None = None) -> Guard:
        """The guard (SafeQuery) checking SQL for ``role``; an unknown role fails closed.

        With a single policy (or none) every role uses it; with roles (a mapping or
        a ``PolicySet``) a role must be one of them, and a request without a role
        uses ``"default"`` only when such a role is configured.

        Raises:
            UnknownRoleError: no policy is configured for ``role``.
        """
        return self._guard_of(role, self._knowledge_now())

    def _guard_of(self, role: str | None, k: Knowledge) -> Guard:
        # one policy for everyone: one guard (and one verdict cache) for every role
        key = (role if self._per_role else None, k.schema_version)
        got = self._guards.get(key)
        if got is not None:
            return got
        from avl.safety import Policy, PolicySet, SafeQuery

        with self._lock:
            p = self._policy
            g: Guard
            if p is None:
                g = SafeQuery(self.default_policy())
            elif isinstance(p, Policy):
                g = SafeQuery(self._in_dialect(p))
            elif isinstance(p, PolicySet):
                name = role if role is not None else "default"
                if name not in p.roles:
                    raise UnknownRoleError(role, p.roles)
                g = p.guard(name)
            elif isinstance(p, Mapping):
                name = role if role is not None else "default"
                if name not in p:
                    raise UnknownRoleError(role, sorted(p))
                g = SafeQuery(self._in_dialect(p[name]))
            else:
                g = p  # a guard object: anything with check(sql, params)
            self._guards[key] = g
            return g

    def view(
        self, role: str | None = None, context: Mapping[str, object] | None = None
    ) -> SchemaView:
        """What a caller may read: the view the prompt, the cache and tools are built from.

        Args:
            role: the caller's role.
            context: the caller's row-filter parameters.

        Returns:
            The caller's :class:`~avl.assistant.SchemaView`.

        Raises:
            UnknownRoleError: no policy is configured for ``role``.
            InvalidInputError: a bad context.
        """
        ctx = check_context(context)
        return self._scope_of(self.guard_for(role), role, ctx).view

    def _scope(self, r: Request) -> Scope:
        assert r.guard is not None
        return self._scope_of(r.guard, r.role, r.context, r.knowledge)

    def _scope_of(
        self,
        guard: Guard,
        role: str | None,
        ctx: Mapping[str, object],
        known: Knowledge | None = None,
    ) -> Scope:
        k = known if known is not None else self._knowledge_now()
        ctx_key = json.dumps(ctx, sort_keys=True, default=str)
        key = (role, k.schema_version, ctx_key, self.sample_values)
        with self._lock:  # an LRU lookup reorders the cache
            got = self._scopes.get(key)
        if got is not None:
            return got
        params = dict(ctx) or None
        values: Values = self._values if self._link_values else {}
        view = policy_view(
            guard,
            list(k.tables.values()),
            k.foreign_keys,
            dialect=self.dialect,
            params=params,
            samples=self.sample_values,
            values=values,
            sample_filtered=lambda t, cols: self._sample_filtered(guard, params, t, cols),
        )
        index = (
            self._value_index
            if not view.filtered and len(view.values) == len(values)
            else build_value_index(view.values)
        )
        scope = Scope.of(view, index, dialect=self.dialect, source=self.name)
        with self._lock:
            self._scopes[key] = scope
        return scope

    def _sample_filtered(
        self,
        guard: Guard,
        params: Mapping[str, object] | None,
        table: TableSpec,
        columns: Sequence[str],
    ) -> dict[str, tuple[str, ...]]:
        """Stored values of a row-filtered table as the caller may see them (through
        the caller's guard, so under the caller's row filter)."""
        out: dict[str, tuple[str, ...]] = {}
        for col in columns:
            probe = probe_sql(table.name, [col], self.dialect)
            q = self.db.quote(col)
            sql = probe.replace("SELECT ", "SELECT DISTINCT ", 1) + (
                f" WHERE {q} IS NOT NULL LIMIT {_VALUE_CAP + 1}"
            )
            verdict = guard.check(sql, params)
            if not verdict.allowed:
                continue
            try:
                res = self.db.execute(verdict.sql or sql, max_rows=_VALUE_CAP + 1)
            except QueryError:
                continue
            vals = tuple(r[0] for r in res.rows if isinstance(r[0], str) and len(r[0]) <= 60)
            if vals and len(vals) <= _VALUE_CAP and not res.truncated:
                out[col] = vals
        return out

    # ------------------------------------------------------------- retrieval
    def _embed(self, text: str) -> Any:
        if self.embedder is None:
            return None
        return np.ascontiguousarray(self.embedder.embed([text])[0], dtype=np.float32)

    def _retrieve(self, r: Request, pair_allowed: Callable[[TrainingItem], bool]) -> Retrieved:
        assert r.knowledge is not None
        assert r.scope is not None
        mine: list[str] = []

        def allowed(p: TrainingItem) -> bool:
            # a learned pair stays with the role and context it was learned in
            if p.scope:
                if not mine:
                    mine.append(_scope_key(r))
                if p.scope != mine[0]:
                    return False
            return pair_allowed(p)

        dense: dict[str, float] = {}
        if r.vector is not None and self.store is not None:
            for hit in self.store.search(r.vector, k=64, where={"source": self.name}):
                dense[str(hit.id).split("/", 1)[-1]] = float(hit.score)
        return retrieve(
            r.knowledge,
            r.scope,
            r.search_text or r.text,
            dense=dense,
            budget=self.context_tokens,
            pair_allowed=allowed,
        )

    def retrieval_tables(
        self, question: str, *, role: str | None = None, context: Mapping[str, object] | None = None
    ) -> list[str]:
        """The tables the retrieval step would put in the context for ``question``.

        Raises:
            UnknownRoleError: no policy is configured for ``role``.
        """
        r = self._request(question, user="", role=role, context=context, session="", cancel=None)
        r.guard = self.guard_for(role)
        r.knowledge = self._knowledge_now()
        r.scope = self._scope(r)
        r.vector = self._embed(r.text)
        return [t.name for t in self._retrieve(r, lambda p: True).tables]

    def _write_context(self, r: Request) -> WriteContext:
        got, scope = r.retrieved, r.scope
        assert got is not None
        assert scope is not None
        linking = self._link_values
        return WriteContext(
            question=r.text,
            dialect=self.dialect,
            tables=got.tables,
            foreign_keys=got.foreign_keys,
            examples=got.examples if not r.failed else (),
            documentation=got.documentation,
            turns=r.turns,
            values=scope.view.values if linking else {},
            value_index=scope.value_index if linking else {},
            failed=[
                FailedAttempt(
                    sql=scope.view.redact(f.sql), error=scope.view.redact_error(f.error, f.sql)
                )
                for f in r.failed
            ],
        )

    def _context_tokens(self, r: Request, ctx: WriteContext) -> int:
        """The one token estimate of a context: what retrieval counted, plus the rest."""
        got = r.retrieved
        if r.question_tokens < 0:
            r.question_tokens = estimate_tokens(ctx.question)
        extra = sum(estimate_tokens(f.sql) + estimate_tokens(f.error) + 12 for f in ctx.failed)
        extra += sum(estimate_tokens(t.question) + estimate_tokens(t.sql) + 8 for t in ctx.turns)
        return _SYSTEM_TOKENS + r.question_tokens + (got.tokens if got else 0) + extra

    # ------------------------------------------------------- limits and cache
    def _charge(self, r: Request, what: str, cost: int) -> None:
        limiter = self.limiter if what == "requests" else self.token_limiter
        if limiter is None:
            return
        d = limiter.hit(f"{self.name}:{r.user}:{what}", cost)
        if not d.allowed:
            ra = float(d.retry_after or 0.0)
            over = "request rate limit" if what == "requests" else "token budget"
            raise RateLimitedError(
                f"user {r.user!r} is over the {over}; retry after {ra:.3f}s",
                retry_after_s=ra,
                decision=d,
            )

    def _cache_key(self, r: Request) -> tuple[str, ...]:
        return (
            self.name,
            r.knowledge.schema_version if r.knowledge is not None else "",
            str(r.role),
            r.user,
            json.dumps(r.context, sort_keys=True, default=str),
        )

    def _remember(self, r: Request) -> None:
        if self._cache is not None and not r.turns:
            self._cache.store(r.text, r.vector, self._cache_key(r), r.sql)
        if self.learn and r.question == r.text and r.written and not r.turns:
            # the writer's SQL (not the guard's rewrite, which holds the caller's filter
            # values), shown later only to callers of the same role and context
            verdict = self._training_guard().check(r.written)
            if not verdict.allowed:
                return
            q, scope = r.question.strip(), _scope_key(r)
            self._store_items(
                [
                    TrainingItem(
                        id=item_id("sql", self.name, q, r.written, scope),
                        kind="sql",
                        text=q,
                        question=q,
                        sql=r.written,
                        added_by=f"learned:{r.user}",
                        source=self.name,
                        scope=scope,
                    )
                ]
            )

    def clear_cache(self) -> None:
        """Forget every cached question."""
        if self._cache is not None:
            self._cache.clear()

    # ------------------------------------------------------------------- ask
    def ask(
        self,
        question: str,
        *,
        user: str = "anonymous",
        role: str | None = None,
        context: Mapping[str, object] | None = None,
        session: str = "",
    ) -> Answer:
        """Answer ``question``: admit, retrieve, cache, write, check, run, repair.

        A rejected or failing SQL is not an exception: the returned answer then has
        ``error`` set and no rows (``verdict.allowed`` tells rejections apart). An
        abstention (the writer says the database cannot answer) has ``outcome``
        ``"abstained"`` and a ``reason``.

        Args:
            question: the question in plain language.
            user: who asks (rate limits, history, cache key).
            role: the role whose policy applies.
            context: the user's context: row-filter parameters (``{"tenant_id": 7}``).
            session: a session id: the question is a follow-up of the earlier
                answered questions of this session asked by the same user in the
                same role (see :meth:`session`); ``"new"`` starts a session with a
                fresh id; ``""`` (default) asks on its own. The id is recorded in the
                History and returned in :attr:`Answer.session`.

        Returns:
            The answer.

        Raises:
            InvalidInputError: an empty or oversized question, or a bad user, role,
                session or context.
            UnknownRoleError: no policy is configured for ``role``.
            RateLimitedError: the user is over a rate limit or token budget.
            BackendUnavailableError: the audit log is down and audit is required.
            ProviderError: the model failed.
        """
        answer: Answer | None = None
        for ev in run(
            self, self._request(question, user, role, context, session, None), raise_errors=True
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
        context: Mapping[str, object] | None = None,
        session: str = "",
        cancel: threading.Event | None = None,
    ) -> Generator[Event, None, None]:
        """Answer ``question`` as a stream of :class:`Event` s.

        Events come in this order: ``retrieved``, ``prompt``, ``token`` (zero or
        more), ``sql``, ``verdict``, then ``rows`` if it ran; after a failure the
        ``prompt``...``verdict`` steps repeat for the next attempt. Then ``answer``
        and ``done``. An abstention ends after the tokens with ``answer``
        (``outcome: "abstained"``) and ``done``. Problems that end the request
        (rate limit, model failure, unknown role) give ``error`` then ``done``.
        Closing the iterator early cancels the request: no query is left running or
        in a transaction, and the History records the outcome ``cancelled``.

        Args:
            question: the question.
            user: who asks.
            role: the role whose policy applies.
            context: row-filter parameters.
            session: a session id (see :meth:`ask`).
            cancel: an event another thread may set to cancel the request; it is
                checked between steps (same effect as closing the iterator).

        Returns:
            An iterator of events.

        Raises:
            InvalidInputError: an empty or oversized question, or a bad user, role,
                session or context.
        """
        pipeline = run(
            self, self._request(question, user, role, context, session, cancel), raise_errors=False
        )
        if cancel is None:
            return pipeline
        return _cancellable(pipeline, cancel)

    def _request(
        self,
        question: str,
        user: str,
        role: str | None,
        context: Mapping[str, object] | None,
        session: str,
        cancel: threading.Event | None,
    ) -> Request:
        """Validate and encode the input before anything runs."""
        q = check_question(question)
        sid = check_session(session)
        return Request(
            question=q,
            text=encode_text(q),
            user=str(check_name(user, "user")),
            role=check_name(role, "role", optional=True),
            context=check_context(context),
            session=new_session_id() if sid == NEW_SESSION else sid,
            cancel=cancel,
            model=str(self.writer.name),
            started=self._clock.monotonic(),
            traced=tracing_enabled(),
        )

    # --------------------------------------------------------------- sessions
    def session(
        self,
        *,
        user: str = "anonymous",
        role: str | None = None,
        context: Mapping[str, object] | None = None,
        id: str | None = None,
    ) -> Session:
        """A conversation: follow-up questions that refine the earlier answers.

        Each question of the session is asked with its earlier answered turns
        (question, SQL, result columns; at most ``max_turns``, within
        ``turn_tokens``), so "and only in France?" or "sort them by total" refines
        the previous query; the refined SQL is checked by SafeQuery like any other.
        Turns are kept per session, user and role: another user (or role) giving
        the same id sees none of them. With a History they are read from it (every
        worker sharing the History continues the same conversation); without one
        they are kept in this process (idle sessions forgotten after
        ``session_ttl_s``).

        Args:
            user: who asks.
            role: the role whose policy applies.
            context: row-filter parameters.
            id: continue this session id (default: a fresh, unguessable id).

        Returns:
            The :class:`~avl.assistant.Session`.

        Raises:
            InvalidInputError: a bad user, role, context or id.

        Example:
            >>> chat = assistant.session(user="ann")  # doctest: +SKIP
            >>> chat.ask("how many orders per country?")  # doctest: +SKIP
            >>> chat.ask("and only in France?").sql  # doctest: +SKIP
        """
        sid = new_session_id() if id is None else check_session(id)
        if not sid or sid == NEW_SESSION:
            raise InvalidInputError(
                f"a session id must be a non-empty name other than {NEW_SESSION!r}"
            )
        return Session(
            self,
            id=sid,
            user=str(check_name(user, "user")),
            role=check_name(role, "role", optional=True),
            context=check_context(context),
        )

    def session_turns(
        self, session: str, *, user: str = "anonymous", role: str | None = None
    ) -> tuple[Turn, ...]:
        """The answered turns of ``session`` asked by ``user`` in ``role``, oldest
        first, as they are carried into the next question.

        Raises:
            InvalidInputError: a bad session, user or role.
        """
        sid = check_session(session)
        u = str(check_name(user, "user"))
        rl = check_name(role, "role", optional=True)
        if not sid:
            return ()
        filtered: frozenset[str] = frozenset()
        max_rows: int | None = self.max_rows
        try:
            guard = self.guard_for(rl)
            filtered = self._scope_of(guard, rl, {}).view.filtered
            max_rows = getattr(getattr(guard, "policy", None), "max_rows", self.max_rows)
        except UnknownRoleError:
            pass
        return self._load_turns(sid, u, rl, filtered, max_rows)

    def _load_turns(
        self,
        session: str,
        user: str,
        role: str | None,
        filtered: frozenset[str],
        max_rows: int | None,
    ) -> tuple[Turn, ...]:
        if self.max_turns <= 0:
            return ()
        raw = load_turns(self._turns, (self.name, session, user, role or ""), self.max_turns)
        turns = []
        for t in raw:
            sql = unwrap(t.sql, dialect=self.dialect, filtered=filtered, max_rows=max_rows)
            cols = t.columns or output_columns(sql, self.dialect)
            turns.append(Turn(question=t.question, sql=sql, columns=cols))
        return bound_turns(turns, max_turns=self.max_turns, max_tokens=self.turn_tokens)

    def _turns_for(self, r: Request) -> tuple[Turn, ...]:
        assert r.scope is not None
        policy = getattr(r.guard, "policy", None)
        max_rows = getattr(policy, "max_rows", self.max_rows)
        return self._load_turns(r.session, r.user, r.role, r.scope.view.filtered, max_rows)

    def _search_text(self, r: Request) -> str:
        """What retrieval looks for: the question, after a follow-up the previous
        question and the tables its SQL read."""
        if not r.turns:
            return r.text
        last = r.turns[-1]
        tables = _tables_of(last.sql, self.dialect)
        return " ".join([encode_text(last.question), *tables, r.text])

    def _keep_turn(self, r: Request) -> None:
        """Keep an answered question of a session (the History already holds it)."""
        if not r.session or r.outcome != "ok" or r.result is None:
            return
        if isinstance(self._turns, MemoryTurns):
            self._turns.add(
                (self.name, r.session, r.user, r.role or ""),
                Turn(question=r.question, sql=r.written or r.sql, columns=r.result.columns),
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

        verdict = self.guard_for(role).check(sql)
        if not verdict.allowed:
            raise UnsafeQueryError(
                "SafeQuery refuses the statement", violations=verdict.violations, sql=sql
            )
        run = verdict.sql or sql
        res = self.db.explain(run)
        plan = [" ".join(str(x) for x in r if x is not None) for r in res.rows]
        scanned: list[str] = []
        known = self._knowledge_now().tables
        lowtables = {t.name.lower(): t.name for t in known.values()}
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
                            for t in known.values()
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
            spec = known.get(real.lower())
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
        """Close the database connection (if the Assistant opened it) and the
        training store."""
        self.db.close()
        self.training.close()

    def __repr__(self) -> str:
        return (
            f"Assistant(db={self.db.url!r}, model={self.writer.name!r}, "
            f"source={self.name!r}, items={len(self._knowledge.items)})"
        )


@functools.lru_cache(maxsize=1024)
def _tables_of(sql: str, dialect: str) -> tuple[str, ...]:
    import sqlglot
    from sqlglot import expressions as exp

    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except (sqlglot.errors.SqlglotError, ValueError):
        return ()
    return tuple(dict.fromkeys(t.name for t in tree.find_all(exp.Table) if t.name))


def _searches_sessions(history: object) -> bool:
    """Whether ``history`` can find the entries of one session (``search(session=...)``)."""
    import inspect

    search = getattr(history, "search", None)
    if not callable(search):
        return False
    try:
        params = inspect.signature(search).parameters
    except (TypeError, ValueError):
        return False
    return all(p in params for p in ("session", "user", "role", "outcome", "tags", "limit"))


def _scope_key(r: Request) -> str:
    text = json.dumps([r.role, r.context], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


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

    def session(self, **kwargs: Any) -> AsyncSession:
        """See :meth:`Assistant.session` (nothing blocks: no turn is read here).

        Raises:
            InvalidInputError: a bad user, role, context or id.
        """
        return AsyncSession(self.sync.session(**kwargs))


class AsyncSession:
    """The asyncio twin of :class:`~avl.assistant.Session` (from
    :meth:`AsyncAssistant.session`).

    Args:
        session: the synchronous session to drive.

    Attributes:
        id: the session id.
    """

    def __init__(self, session: Session) -> None:
        self.sync = session
        self.id = session.id

    async def turns(self) -> tuple[Turn, ...]:
        """The session's answered turns so far (see :attr:`Session.turns
        <avl.assistant.Session.turns>`)."""
        return await asyncio.to_thread(lambda: self.sync.turns)

    async def ask(self, question: str) -> Answer:
        """See :meth:`Session.ask <avl.assistant.Session.ask>`."""
        return await asyncio.to_thread(self.sync.ask, question)

    async def stream(self, question: str) -> AsyncIterator[Event]:
        """See :meth:`Session.stream <avl.assistant.Session.stream>`."""
        async for event in AsyncAssistant(self.sync.assistant).stream(
            question,
            user=self.sync.user,
            role=self.sync.role,
            context=self.sync.context,
            session=self.id,
        ):
            yield event

    def __repr__(self) -> str:
        return f"Async{self.sync!r}"


def _make_model(model: object) -> SqlWriter | ChatModel:
    if isinstance(model, str):
        if model.startswith("offline://"):
            from avl.llm.offline import create

            return create(model)
        from avl.llm import create_chat_model

        made: ChatModel = create_chat_model(model)
        return made
    if isinstance(model, (SqlWriter, ChatModel)) or callable(getattr(model, "complete", None)):
        return model  # type: ignore[return-value]  # a duck-typed ChatModel (complete only)
    raise ConfigError(
        f"model must be a SqlWriter, a ChatModel or a URL, got {type(model).__name__}"
    )


def _make_embedder(embedder: str | Embedder | None) -> Embedder | None:
    if embedder is None:
        return None
    if isinstance(embedder, str):
        from avl.embeddings import create_embedder

        made: Embedder = create_embedder("hash://" if embedder == "default" else embedder)
        return made
    if not callable(getattr(embedder, "embed", None)):
        raise ConfigError(f"embedder must be an Embedder, got {type(embedder).__name__}")
    return embedder


def _make_store(embedder: Embedder) -> VectorIndex:
    from avl.vectors import VectorStore

    return VectorStore(int(embedder.dim), metric="cosine")
