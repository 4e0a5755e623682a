"""Optional OpenTelemetry tracing (extra ``otel``), following the convention for libraries.

avl never configures OpenTelemetry. It asks the API for the *global* tracer provider
(``opentelemetry.trace.set_tracer_provider``, the application's choice) each time a
span starts, so a provider set before or after avl is imported is used, and with no
provider (or without ``opentelemetry-api`` installed) every helper here is a no-op
that costs one function call: no span, no context change, no header written.

The helpers hide OpenTelemetry's types, so the rest of avl (and its users) can call
them whether or not the API is installed:

- :func:`start_span` opens a span (internal, server or client) as the current one;
  the :class:`Span` it yields sets attributes and records errors.
- :func:`extract_context` reads W3C ``traceparent``/``tracestate`` (through the global
  propagator) from request headers; :func:`inject_context` writes the current span's
  context into outgoing headers.
- :func:`current_ids` gives the current trace and span ids (for log records).
- :func:`span_attributes` and :func:`sql_attributes` build the attribute names avl
  uses (the OpenTelemetry semantic conventions where one exists); SQL text only when
  asked for, with its literals replaced by ``?``, never values.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import os
import sys
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, NamedTuple

from avl.typing import Tracer

__all__ = [
    "RECORD_SQL_ENV",
    "AttributeValue",
    "NoOpTracer",
    "Span",
    "SpanKind",
    "TraceContext",
    "TraceIds",
    "Tracer",
    "current_ids",
    "extract_context",
    "inject_context",
    "otel_tracer",
    "sanitize_sql",
    "span_attributes",
    "sql_attributes",
    "start_span",
    "tracing_enabled",
]

#: A span attribute value (what OpenTelemetry accepts).
AttributeValue = str | bool | int | float | Sequence[str] | Sequence[int] | Sequence[float]

#: The environment variable that turns on SQL text in spans (``1``/``true``/``yes``).
RECORD_SQL_ENV = "AVL_OTEL_RECORD_SQL"

_TRUE = frozenset({"1", "true", "yes", "on"})


class NoOpTracer:
    """A tracer whose spans do nothing (used when opentelemetry-api is not installed)."""

    @contextlib.contextmanager
    def start_as_current_span(
        self, name: str, *, attributes: Mapping[str, str] | None = None
    ) -> Iterator[None]:
        """A span that records nothing."""
        yield None


def otel_tracer(name: str = "avl") -> Tracer:
    """An OpenTelemetry tracer for :class:`~avl.metrics.Metrics` (``tracer=``).

    Uses the application's configured tracer provider (``opentelemetry.trace``).
    Returns a :class:`NoOpTracer` when ``opentelemetry-api`` is not installed
    (``pip install 'avl[otel]'``), so code can pass it unconditionally.

    Example:
        >>> from avl.metrics import Metrics, otel_tracer
        >>> metrics = Metrics(tracer=otel_tracer())
    """
    try:
        import opentelemetry.trace as trace
    except ImportError:
        return NoOpTracer()
    tracer: Tracer = trace.get_tracer(name)
    return tracer


class SpanKind(str, enum.Enum):
    """The role of a span (OpenTelemetry's ``SpanKind``, without importing it)."""

    INTERNAL = "internal"
    """Work inside avl (a pipeline stage)."""
    SERVER = "server"
    """An incoming request (the web adapter)."""
    CLIENT = "client"
    """An outgoing call (a model's HTTP request, a database query)."""


class TraceIds(NamedTuple):
    """The current trace and span ids, lowercase hex (32 and 16 digits)."""

    trace_id: str
    span_id: str


class TraceContext:
    """An opaque parent context, from :func:`extract_context`; pass it to :func:`start_span`."""

    __slots__ = ("_context",)

    def __init__(self, context: Any) -> None:
        self._context = context

    def __repr__(self) -> str:
        return "TraceContext(...)"


# -- the OpenTelemetry API, imported on first use ------------------------------------


def _otel_possible() -> bool:
    """Whether OpenTelemetry can be tracing at all, without importing it: a tracer
    provider is set by code that imported ``opentelemetry.trace`` (so did any code that
    started a span), or named by ``OTEL_PYTHON_TRACER_PROVIDER``. When neither holds,
    importing the API (about 10 ms) would only find its no-op provider."""
    return "opentelemetry.trace" in sys.modules or "OTEL_PYTHON_TRACER_PROVIDER" in os.environ


@functools.lru_cache(maxsize=1)
def _api() -> Any:
    """The ``opentelemetry`` API modules, or ``None`` when not installed."""
    try:
        from opentelemetry import context, propagate, trace
    except ImportError:
        return None
    kinds = {
        SpanKind.INTERNAL: trace.SpanKind.INTERNAL,
        SpanKind.SERVER: trace.SpanKind.SERVER,
        SpanKind.CLIENT: trace.SpanKind.CLIENT,
    }
    noop = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
    return (trace, context, propagate, kinds, noop)


@functools.lru_cache(maxsize=32)
def _tracer(name: str, provider: Any) -> Any:
    # Keyed by the provider: a tracer is bound to the provider that made it.
    from avl import __version__

    return provider.get_tracer(name, __version__)


def tracing_enabled() -> bool:
    """Whether spans are recorded: ``opentelemetry-api`` is installed and the
    application set a (non no-op) global tracer provider.

    Example:
        >>> isinstance(tracing_enabled(), bool)
        True
    """
    if not _otel_possible():
        return False
    api = _api()
    return api is not None and not isinstance(api[0].get_tracer_provider(), api[4])


class Span:
    """A handle on an open span (or on nothing, when tracing is off).

    Every method is safe to call either way; attribute values that are ``None`` are
    skipped.

    Example:
        >>> with start_span("avl.check") as span:
        ...     span.set("avl.verdict.allowed", True)
        >>> span.recording
        False
    """

    __slots__ = ("_span",)

    def __init__(self, span: Any = None) -> None:
        self._span = span

    @property
    def recording(self) -> bool:
        """Whether this span is recorded (a tracer provider is set and sampled it)."""
        return self._span is not None and bool(self._span.is_recording())

    @property
    def ids(self) -> TraceIds | None:
        """This span's trace and span ids (``None`` when not recording)."""
        if self._span is None:
            return None
        ctx = self._span.get_span_context()
        if not ctx.is_valid:
            return None
        return TraceIds(f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}")

    def set(self, key: str, value: AttributeValue | None) -> None:
        """Set one attribute (skipped when ``value`` is ``None``)."""
        if self._span is not None and value is not None:
            self._span.set_attribute(key, value)

    def update(self, attributes: Mapping[str, AttributeValue | None]) -> None:
        """Set several attributes (``None`` values are skipped)."""
        if self._span is not None:
            for key, value in attributes.items():
                if value is not None:
                    self._span.set_attribute(key, value)

    def error(
        self,
        exc: BaseException | None = None,
        *,
        record: bool = True,
        error_type: str | None = None,
    ) -> None:
        """Mark the span failed: ``error.type``, ERROR status, and the exception event.

        Args:
            exc: the exception (``None`` when the failure is not one, e.g. a status).
            record: add the exception event (its message and stack) to the span.
            error_type: ``error.type`` (default: the exception's class name), e.g. an
                HTTP status code as the semantic conventions ask.
        """
        if self._span is None:
            return
        api = _api()
        kind = error_type or (type(exc).__qualname__ if exc is not None else "error")
        self._span.set_attribute("error.type", kind)
        if record and exc is not None:
            self._span.record_exception(exc)
        self._span.set_status(api[0].Status(api[0].StatusCode.ERROR, kind))

    def __repr__(self) -> str:
        return f"Span(recording={self.recording})"


_NO_SPAN = Span(None)


@contextlib.contextmanager
def _noop_span() -> Iterator[Span]:
    yield _NO_SPAN


def start_span(
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, AttributeValue | None] | None = None,
    context: TraceContext | None = None,
    tracer: str = "avl",
) -> AbstractContextManager[Span]:
    """Open a span as the current one for the ``with`` block.

    The span's parent is ``context`` (from :func:`extract_context`) or else the
    current span. An exception leaving the block marks the span failed and
    propagates; ``GeneratorExit`` (a stream closed early) is recorded as
    ``avl.outcome="cancelled"``, not as an error. With tracing off
    (:func:`tracing_enabled` is false) nothing happens at all.

    The span is detached from the current context at the end only if it is still
    the current span there, so a span opened in one step of a generator that is
    resumed from another thread (or task) never corrupts that context.

    Args:
        name: the span name (``"avl.retrieve"``, ``"POST /v1/ask"``).
        kind: internal, server or client.
        attributes: initial attributes (``None`` values are skipped).
        context: an explicit parent (an incoming request's context).
        tracer: the instrumentation scope's name (``"avl.web"``, ``"avl.assistant"``).

    Returns:
        A context manager yielding a :class:`Span`.

    Example:
        >>> with start_span("avl.retrieve", attributes={"avl.stage": "retrieve"}) as span:
        ...     span.set("avl.items", 3)
    """
    api = _api() if _otel_possible() else None
    if api is None:
        return _noop_span()
    provider = api[0].get_tracer_provider()
    if isinstance(provider, api[4]):
        return _noop_span()
    return _real_span(api, provider, name, kind, attributes, context, tracer)


@contextlib.contextmanager
def _real_span(
    api: Any,
    provider: Any,
    name: str,
    kind: SpanKind,
    attributes: Mapping[str, AttributeValue | None] | None,
    context: TraceContext | None,
    tracer_name: str,
) -> Iterator[Span]:
    trace, otel_context = api[0], api[1]
    parent = context._context if context is not None else None
    attrs = {k: v for k, v in (attributes or {}).items() if v is not None}
    otel_span = _tracer(tracer_name, provider).start_span(
        name,
        context=parent,
        kind=api[3][kind],
        attributes=attrs,
        record_exception=False,
        set_status_on_exception=False,
    )
    token = otel_context.attach(trace.set_span_in_context(otel_span, parent))
    handle = Span(otel_span)
    try:
        yield handle
    except GeneratorExit:
        otel_span.set_attribute("avl.outcome", "cancelled")
        raise
    except BaseException as exc:
        handle.error(exc)
        raise
    finally:
        if trace.get_current_span() is otel_span:
            otel_context.detach(token)
        otel_span.end()


def extract_context(headers: Mapping[str, str]) -> TraceContext | None:
    """The parent context named by W3C ``traceparent``/``tracestate`` headers.

    Uses the global propagator (W3C trace context and baggage unless the application
    changed it). Header names are matched case-insensitively.

    Args:
        headers: the request headers (``str`` names and values).

    Returns:
        The context to pass to :func:`start_span` (``context=``), or ``None`` when
        tracing is off or the headers carry no valid trace context.

    Example:
        >>> extract_context({"traceparent": "not-a-traceparent"}) is None
        True
    """
    if not tracing_enabled():
        return None
    api = _api()
    lowered = {str(k).lower(): v for k, v in headers.items()}
    ctx = api[2].extract(lowered)
    if not api[0].get_current_span(ctx).get_span_context().is_valid:
        return None
    return TraceContext(ctx)


def inject_context(headers: MutableMapping[str, str]) -> None:
    """Write the current span's context into outgoing ``headers`` (``traceparent``...).

    A no-op when tracing is off or no span is current.

    Example:
        >>> headers: dict[str, str] = {}
        >>> inject_context(headers)
        >>> headers
        {}
    """
    if not tracing_enabled():
        return
    api = _api()
    if not api[0].get_current_span().get_span_context().is_valid:
        return
    api[2].inject(headers)


def current_ids() -> TraceIds | None:
    """The current trace and span ids (hex), or ``None`` without a current span.

    Example:
        >>> current_ids() is None
        True
    """
    api = _api() if _otel_possible() else None
    if api is None:
        return None
    ctx = api[0].get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return TraceIds(f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}")


def span_attributes(
    *,
    stage: str | None = None,
    model: str | None = None,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    cost_usd: float | None = None,
    verdict_codes: Sequence[str] | None = None,
    allowed: bool | None = None,
    row_count: int | None = None,
    outcome: str | None = None,
    user: str | None = None,
    role: str | None = None,
    cached: bool | None = None,
) -> dict[str, AttributeValue]:
    """The span attributes of a pipeline stage, by avl's names (``None`` is left out).

    Model and tokens use the OpenTelemetry GenAI conventions; ``model`` is
    ``"provider/name"`` (``gen_ai.provider.name`` and ``gen_ai.request.model``).
    There is no argument for SQL text or row values: see :func:`sql_attributes`.

    Returns:
        The attributes given, under these names: ``avl.stage``,
        ``gen_ai.provider.name``, ``gen_ai.request.model``,
        ``gen_ai.usage.input_tokens``, ``gen_ai.usage.output_tokens``,
        ``avl.cost_usd``, ``avl.verdict.codes``, ``avl.verdict.allowed``,
        ``db.response.returned_rows``, ``avl.outcome``, ``avl.user``, ``avl.role``,
        ``avl.cache.hit``.

    Example:
        >>> span_attributes(stage="check", verdict_codes=["DML"], allowed=False)
        {'avl.stage': 'check', 'avl.verdict.codes': ('DML',), 'avl.verdict.allowed': False}
    """
    out: dict[str, AttributeValue] = {}
    if stage is not None:
        out["avl.stage"] = stage
    if model:
        provider, sep, name = model.partition("/")
        if sep:
            out["gen_ai.provider.name"] = provider
            out["gen_ai.request.model"] = name
        else:
            out["gen_ai.request.model"] = model
    if input_tokens is not None:
        out["gen_ai.usage.input_tokens"] = int(input_tokens)
    if output_tokens is not None:
        out["gen_ai.usage.output_tokens"] = int(output_tokens)
    if cost_usd is not None:
        out["avl.cost_usd"] = float(cost_usd)
    if verdict_codes is not None:
        out["avl.verdict.codes"] = tuple(str(getattr(c, "value", c)) for c in verdict_codes)
    if allowed is not None:
        out["avl.verdict.allowed"] = bool(allowed)
    if row_count is not None:
        out["db.response.returned_rows"] = int(row_count)
    if outcome is not None:
        out["avl.outcome"] = outcome
    if user is not None:
        out["avl.user"] = user
    if role is not None:
        out["avl.role"] = role
    if cached is not None:
        out["avl.cache.hit"] = bool(cached)
    return out


def _record_sql_default() -> bool:
    return os.environ.get(RECORD_SQL_ENV, "").strip().lower() in _TRUE


def sanitize_sql(sql: str, dialect: str | None = None) -> str | None:
    """``sql`` with every literal (string, number, hex, bit, byte...) replaced by ``?``.

    Args:
        sql: the statement.
        dialect: its sqlglot dialect (``"sqlite"``, ``"postgres"``...).

    Returns:
        The sanitized text, or ``None`` when the statement cannot be parsed (then
        nothing of it should be recorded).

    Example:
        >>> sanitize_sql("SELECT name FROM users WHERE email = 'a@b.c' AND age > 30")
        'SELECT name FROM users WHERE email = ? AND age > ?'
    """
    import sqlglot
    from sqlglot import expressions as exp

    try:
        trees = sqlglot.parse(sql, read=dialect)
    except (sqlglot.errors.SqlglotError, ValueError, RecursionError):
        return None
    literal = (
        exp.Literal,
        exp.HexString,
        exp.BitString,
        exp.ByteString,
        exp.RawString,
        exp.National,
        exp.UnicodeString,
    )
    parts: list[str] = []
    for tree in trees:
        if tree is None:
            continue
        cleaned = tree.transform(
            lambda node: exp.Var(this="?") if isinstance(node, literal) else node
        )
        try:
            parts.append(cleaned.sql(dialect=dialect))
        except (sqlglot.errors.SqlglotError, ValueError):
            return None
    return "; ".join(parts) if parts else None


def sql_attributes(
    sql: str | None,
    *,
    system: str | None = None,
    dialect: str | None = None,
    record_sql: bool | None = None,
) -> dict[str, AttributeValue]:
    """Database span attributes: the system, the operation and (only when asked) the text.

    The SQL text is recorded only when ``record_sql`` is true, or when it is ``None``
    and the environment variable ``AVL_OTEL_RECORD_SQL`` is ``1``/``true``; even then
    its literals are replaced by ``?`` (:func:`sanitize_sql`), so no value leaves the
    process through a span.

    Args:
        sql: the statement (``None``: only the system).
        system: ``db.system.name`` (``"sqlite"``, ``"postgresql"``, ``"mysql"``...).
        dialect: the sqlglot dialect to parse with.
        record_sql: record the sanitized text (default: from the environment).

    Returns:
        ``db.system.name``, ``db.operation.name`` (the first keyword) and
        ``db.query.text``, restricted to what is known and allowed.

    Example:
        >>> sql_attributes("select * from t where id = 7", system="sqlite", record_sql=True)
        {'db.system.name': 'sqlite', 'db.operation.name': 'SELECT', 'db.query.text': 'SELECT * FROM t WHERE id = ?'}
    """
    out: dict[str, AttributeValue] = {}
    if system:
        out["db.system.name"] = system
    if not sql:
        return out
    head = sql.lstrip().split(None, 1)
    if head and head[0].isalpha():
        out["db.operation.name"] = head[0].upper()
    if record_sql is None:
        record_sql = _record_sql_default()
    if record_sql:
        text = sanitize_sql(sql, dialect)
        if text is not None:
            out["db.query.text"] = text
    return out
