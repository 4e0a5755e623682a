"""The extension points of avl, as Protocols, in one module.

Every place where avl lets you plug in your own object is a Protocol defined here
(as structlog's ``typing.py``); the packages re-export the ones they use
(``avl.llm.ChatModel`` is :class:`avl.typing.ChatModel`). Any object with the right
methods works: nothing needs to inherit from avl.

- :class:`Clock`: time (``now``, ``monotonic``); tests inject a fake.
- :class:`ChatModel`, :class:`AsyncChatModel`: a chat model (``complete``, ``stream``).
- :class:`SqlWriter`: the model side of the Assistant, a
  :class:`~avl.schema.WriteContext` in, a :class:`~avl.schema.SqlDraft` out;
  :class:`StreamingSqlWriter` also streams its output.
- :class:`Embedder`, :class:`AsyncEmbedder`: texts to vectors.
- :class:`VectorBackend`: where a :class:`~avl.vectors.VectorStore` keeps vectors;
  :class:`VectorIndex`: what the Assistant needs of a vector store.
- :class:`HistoryBackend`: where a :class:`~avl.history.History` keeps entries;
  :class:`SimilarityStore`: the vector part History uses for ``similar_to``;
  :class:`AuditLog`: what the Assistant needs of a History (``record``).
- :class:`Guard`, :class:`Verdict`, :class:`Violation`: a SQL checker
  (``check(sql, params) -> Verdict``), :class:`~avl.safety.SafeQuery` or your own.
- :class:`Limiter`, :class:`Decision`: a rate limiter (``hit(key, cost)``).
- :class:`MetricsSink`: what the Assistant reports metrics to; :class:`Tracer`: an
  OpenTelemetry-shaped tracer.
- :class:`TrainingStore`: where the Assistant's training items live.
- :class:`Authenticator`: request headers to an identity (the web adapter).

The values these Protocols mention (messages, entries, drafts...) are imported for
type checking only, so importing this module is cheap and pulls in no package.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from avl.errors import violation_code

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from avl.assistant import TrainingItem
    from avl.history import Entry, Query, Sealer, VerifyReport
    from avl.llm import Completion, Delta, Message
    from avl.schema import SqlDraft, WriteContext
    from avl.vectors import Filter, Hit, Metric, Record
    from avl.web import Identity

__all__ = [
    "AsyncChatModel",
    "AsyncEmbedder",
    "AuditLog",
    "Authenticator",
    "ChatModel",
    "Clock",
    "Decision",
    "Embedder",
    "FloatMatrix",
    "Guard",
    "HistoryBackend",
    "Limiter",
    "MetricsSink",
    "SimilarityStore",
    "SqlWriter",
    "StreamingSqlWriter",
    "Tracer",
    "TrainingStore",
    "Verdict",
    "VectorBackend",
    "VectorIndex",
    "Violation",
    "violation_code",
]

if TYPE_CHECKING:
    #: A float32 matrix (one vector per row).
    FloatMatrix = npt.NDArray[np.float32]


def __getattr__(name: str) -> object:
    # FloatMatrix needs NumPy: made on first use, so importing this module stays cheap
    if name == "FloatMatrix":
        import numpy as np
        import numpy.typing as npt

        return npt.NDArray[np.float32]
    raise AttributeError(f"module 'avl.typing' has no attribute {name!r}")


# ------------------------------------------------------------------------- time
@runtime_checkable
class Clock(Protocol):
    """A source of time.

    ``now()`` is wall-clock seconds since the Unix epoch (for timestamps that are
    stored or shown); ``monotonic()`` never goes backwards (for durations, timeouts
    and rate limits).
    """

    def now(self) -> float:
        """Seconds since the Unix epoch."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""
        ...


# ----------------------------------------------------------------------- models
@runtime_checkable
class ChatModel(Protocol):
    """A synchronous chat model."""

    @property
    def name(self) -> str:
        """The model's name, for metrics, cost and cache keys."""
        ...

    def complete(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] | None = None,
    ) -> Completion:
        """Return the whole completion for ``messages``."""
        ...

    def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] | None = None,
    ) -> Iterator[Delta]:
        """Yield the completion as it is generated; the last delta has ``done=True``."""
        ...


@runtime_checkable
class AsyncChatModel(Protocol):
    """The asyncio twin of :class:`ChatModel` (same method names)."""

    @property
    def name(self) -> str:
        """The model's name."""
        ...

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] | None = None,
    ) -> Completion:
        """Return the whole completion for ``messages``."""
        ...

    def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] | None = None,
    ) -> AsyncIterator[Delta]:
        """Yield the completion as it is generated."""
        ...


@runtime_checkable
class SqlWriter(Protocol):
    """The model side of the Assistant: structured, policy-scoped context in, SQL out.

    The Assistant builds a :class:`~avl.schema.WriteContext` from what the caller
    may read and calls :meth:`write` once per attempt; the draft's SQL is then
    checked by SafeQuery (a writer is never trusted). The offline generator
    (:class:`avl.llm.offline.OfflineChatModel`) is one; any :class:`ChatModel` is
    adapted by :class:`avl.assistant.ChatSqlWriter`.

    Example:
        >>> from avl.schema import SqlDraft, WriteContext
        >>> class Always:
        ...     name = "always"
        ...     def write(self, context: WriteContext) -> SqlDraft:
        ...         return SqlDraft(sql="SELECT 1", model=self.name)
        >>> isinstance(Always(), SqlWriter)
        True
    """

    @property
    def name(self) -> str:
        """The writer's name (for metrics, history and cache keys)."""
        ...

    def write(self, context: WriteContext) -> SqlDraft:
        """Write one SQL statement for ``context.question``, or abstain.

        Raises:
            ProviderError: the model behind the writer failed.
        """
        ...


@runtime_checkable
class StreamingSqlWriter(SqlWriter, Protocol):
    """A :class:`SqlWriter` that can also stream its output as it is produced."""

    def write_stream(self, context: WriteContext) -> Generator[str, None, SqlDraft]:
        """Yield pieces of the output text, then return the draft.

        Raises:
            ProviderError: the model behind the writer failed.
        """
        ...


# ------------------------------------------------------------------- embeddings
@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors.

    ``embed`` returns a C-contiguous float32 array of shape ``(len(texts), dim)``.
    ``name`` identifies the model and its settings (used in cache keys).
    """

    @property
    def name(self) -> str:
        """A stable identifier of the model and its settings."""
        ...

    @property
    def dim(self) -> int:
        """The vector dimension."""
        ...

    def embed(self, texts: Sequence[str]) -> FloatMatrix:
        """Embed ``texts``; shape ``(len(texts), dim)``, float32."""
        ...


@runtime_checkable
class AsyncEmbedder(Protocol):
    """The asyncio twin of :class:`Embedder`."""

    @property
    def name(self) -> str:
        """A stable identifier of the model and its settings."""
        ...

    @property
    def dim(self) -> int:
        """The vector dimension."""
        ...

    async def embed(self, texts: Sequence[str]) -> FloatMatrix:
        """Embed ``texts``; shape ``(len(texts), dim)``, float32."""
        ...


# ---------------------------------------------------------------------- vectors
@runtime_checkable
class VectorBackend(Protocol):
    """What a vector-store backend implements.

    :class:`~avl.vectors.VectorStore` validates every argument before calling a
    backend: ids are unique strings, ``vectors`` is a finite, C-contiguous float32
    matrix of shape ``(len(ids), dim)`` (already L2-normalised for ``cosine``),
    ``metadata`` has one dict per id, and ``where`` is a parsed filter.

    Optional fast path: a backend may also define ``search_one(query, k)``, which
    :meth:`VectorStore.search <avl.vectors.VectorStore.search>` tries first for an
    unfiltered search with a NumPy ``query``. It receives the caller's array
    *unvalidated* and returns the hits, or ``None`` when the query is not a finite,
    non-zero, C-contiguous float32 vector of dimension ``dim`` (or the backend has
    no fast answer right now); the store then validates as usual (raising the
    precise error) and calls :meth:`search_many`. For ``cosine`` the query is not
    normalised: the backend ranks and scores it as if it were.
    """

    @property
    def dim(self) -> int:
        """The vector dimension."""
        ...

    @property
    def metric(self) -> Metric:
        """The metric."""
        ...

    def add(
        self, ids: Sequence[str], vectors: FloatMatrix, metadata: Sequence[dict[str, Any]]
    ) -> None:
        """Insert new ids; raise ``InvalidInputError`` if any id already exists."""
        ...

    def upsert(
        self, ids: Sequence[str], vectors: FloatMatrix, metadata: Sequence[dict[str, Any]]
    ) -> None:
        """Insert or replace."""
        ...

    def delete(self, ids: Sequence[str]) -> int:
        """Remove ids (missing ones are ignored); return how many were removed."""
        ...

    def get(self, ids: Sequence[str]) -> list[Record | None]:
        """The records for ``ids`` in order, ``None`` where an id is unknown."""
        ...

    def count(self) -> int:
        """How many vectors are stored."""
        ...

    def search_many(self, queries: FloatMatrix, k: int, where: Filter) -> list[list[Hit]]:
        """The best ``k`` hits per query among the vectors matching ``where``."""
        ...

    def close(self) -> None:
        """Release resources (files, locks, connections, threads)."""
        ...


@runtime_checkable
class VectorIndex(Protocol):
    """What the Assistant needs of a vector store (:class:`~avl.vectors.VectorStore`)."""

    @property
    def dim(self) -> int:
        """The vector dimension."""
        ...

    def upsert(
        self, ids: Sequence[str], vectors: Any, metadata: Sequence[Mapping[str, Any]] | None = None
    ) -> None:
        """Add vectors, replacing those whose ids exist."""
        ...

    def delete(self, ids: Sequence[str]) -> int:
        """Delete ids; return how many existed."""
        ...

    def search(self, query: Any, k: int = 10, where: Mapping[str, Any] | None = None) -> list[Hit]:
        """The ``k`` closest vectors matching ``where``, best first."""
        ...

    def __contains__(self, id_: object) -> bool:
        """Whether ``id_`` is stored."""
        ...


# ---------------------------------------------------------------------- history
@runtime_checkable
class HistoryBackend(Protocol):
    """Where entries are stored. Implementations: memory, SQLite, PostgreSQL.

    ``append`` runs in one transaction that serialises the chain head, so concurrent
    writers (threads or processes) keep one chain.
    """

    def append(self, items: Sequence[tuple[Entry, dict[str, Any]]], sealer: Sealer) -> list[Entry]:
        """Store entries at the head of the chain, atomically.

        Each item is ``(entry, record)``: ``record`` is the entry's content as plain JSON
        values with ``id`` and ``time`` set; they win over the entry's own (possibly
        ``None``) ``id`` and ``time``.
        """
        ...

    def get(self, id: str) -> Entry | None:
        """The entry with ``id``, or ``None``."""
        ...

    def search(self, query: Query) -> list[Entry]:
        """Entries matching ``query``, newest (highest ``seq``) first."""
        ...

    def scan(self, query: Query) -> Iterator[Entry]:
        """Every entry matching ``query`` (``limit`` ignored), oldest first."""
        ...

    def verify(self, sealer: Sealer, anchor: tuple[int, str] | None = None) -> VerifyReport:
        """Check the chain in one consistent snapshot (against ``(seq, hash)`` of an
        anchor when given)."""
        ...

    def head(self) -> tuple[int, str]:
        """The chain head ``(seq, hash)`` as the store records it."""
        ...

    def ping(self) -> None:
        """Raise :class:`~avl.errors.BackendUnavailableError` when the store is down."""
        ...

    def prune(self, before_time: float, sealer: Sealer) -> int:
        """Remove the oldest entries with ``time < before_time`` (a prefix of the chain).

        Stores a signed checkpoint of the last removed entry; returns how many went.
        """
        ...

    def close(self) -> None:
        """Release connections."""
        ...


@runtime_checkable
class SimilarityStore(Protocol):
    """The part of :class:`avl.vectors.VectorStore` that history uses."""

    def add(
        self,
        ids: Sequence[str],
        vectors: FloatMatrix,
        metadata: Sequence[dict[str, Any]],
    ) -> None:
        """Add vectors under ``ids``."""
        ...

    def search(self, query: FloatMatrix, k: int) -> Sequence[Any]:
        """The ``k`` closest entries as hits with ``.id`` and ``.score``."""
        ...


@runtime_checkable
class AuditLog(Protocol):
    """What the Assistant needs of a History: append one entry, get it back stored."""

    def record(self, entry: Entry) -> Entry:
        """Store ``entry`` and return it with its ``id``.

        Raises:
            BackendError: the write failed (nothing was stored).
        """
        ...


# ----------------------------------------------------------------------- safety
@runtime_checkable
class Violation(Protocol):
    """One reason a guard refuses a statement."""

    @property
    def code(self) -> Any:
        """A stable code (a string, or a string-valued enum)."""
        ...

    @property
    def message(self) -> str:
        """A sentence for people."""
        ...


@runtime_checkable
class Verdict(Protocol):
    """What a :class:`Guard` returns: allowed or not, why, and the SQL to run."""

    @property
    def allowed(self) -> bool:
        """Whether the statement may run."""
        ...

    @property
    def violations(self) -> Sequence[Violation]:
        """Why not (empty when allowed)."""
        ...

    @property
    def sql(self) -> str | None:
        """The (possibly rewritten) SQL to run when allowed."""
        ...


@runtime_checkable
class Guard(Protocol):
    """A SQL checker: :class:`~avl.safety.SafeQuery` or any object with ``check``."""

    def check(self, sql: str, params: Mapping[str, object] | None = None) -> Verdict:
        """Decide whether ``sql`` may run, with ``params`` for its row filters."""
        ...


# ---------------------------------------------------------------- rate limiting
@runtime_checkable
class Decision(Protocol):
    """A rate-limit decision."""

    @property
    def allowed(self) -> bool:
        """Whether the request may go ahead."""
        ...

    @property
    def retry_after(self) -> float:
        """Seconds until a refused request could be allowed (0 when allowed)."""
        ...


@runtime_checkable
class Limiter(Protocol):
    """A rate limiter: :class:`~avl.ratelimit.RateLimiter` or any object with ``hit``."""

    def hit(self, key: str, cost: int = 1) -> Decision:
        """Take ``cost`` from ``key``'s allowance."""
        ...


# ------------------------------------------------------------- metrics, tracing
@runtime_checkable
class MetricsSink(Protocol):
    """What the Assistant reports to (:class:`~avl.metrics.Metrics` is one)."""

    def observe_stage(
        self,
        stage: str,
        seconds: float,
        *,
        model: str | None = None,
        user: str | None = None,
        outcome: str | None = None,
    ) -> None:
        """Record how long a pipeline stage took."""
        ...

    def record_tokens(
        self,
        model: str,
        input_tokens: int,
        output_tokens: int,
        cost_usd: float | None = None,
        *,
        cached_tokens: int = 0,
    ) -> float | None:
        """Add a model call's tokens and cost."""
        ...

    def record_rejection(self, code: str) -> None:
        """Count a SafeQuery rejection by violation code."""
        ...

    def record_rate_limited(self, user: str | None = None) -> None:
        """Count a request refused by a rate limit."""
        ...

    def record_cache(self, hit: bool) -> None:
        """Count a semantic-cache lookup."""
        ...

    def count(self, name: str, value: float = 1.0, **labels: str) -> None:
        """Add to a custom counter."""
        ...


@runtime_checkable
class Tracer(Protocol):
    """What avl needs from an OpenTelemetry tracer."""

    def start_as_current_span(
        self, name: str, *, attributes: Mapping[str, str] | None = None
    ) -> AbstractContextManager[Any]:
        """Open a span around a block."""
        ...


# --------------------------------------------------------------------- training
@runtime_checkable
class TrainingStore(Protocol):
    """Where the Assistant's training items live, shared by every Assistant over it.

    Items are kept per ``source`` (the Assistant's ``name``). ``version`` changes
    whenever the items of a source change, in any process, so an Assistant reloads
    them (and rebuilds what it derives from them) only when it must.
    """

    def put(self, source: str, items: Sequence[TrainingItem]) -> None:
        """Add or replace items (by id)."""
        ...

    def remove(self, source: str, ids: Sequence[str]) -> int:
        """Remove items by id; return how many existed."""
        ...

    def items(self, source: str) -> list[TrainingItem]:
        """Every item of ``source``, in the order they were first added."""
        ...

    def version(self, source: str) -> str:
        """A token that changes whenever the items of ``source`` change."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


# -------------------------------------------------------------------------- web
@runtime_checkable
class Authenticator(Protocol):
    """Turns request headers into an :class:`~avl.web.Identity`.

    Implement this to plug in any scheme (sessions, OAuth introspection, mTLS
    headers from a proxy...).
    """

    def authenticate(self, headers: Mapping[str, str], client: str | None) -> Identity | None:
        """Identify the caller.

        Args:
            headers: request headers, names in lower case.
            client: the client host, if known.

        Returns:
            The identity, or ``None`` when this authenticator finds no credentials
            of its kind.

        Raises:
            avl.errors.AuthenticationError: credentials of its kind are present but
                wrong (bad key, bad signature, expired token).
        """
        ...
