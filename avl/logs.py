"""Structured logs: stdlib :mod:`logging`, with trace ids, request id, user and outcome.

avl logs through the standard library, under one hierarchy (:data:`LOGGERS`), and never
configures logging on import: like any library it adds no handler, so records go where
the application sends them. This module gives the application the pieces:

- :class:`ContextFilter` puts ``trace_id``, ``span_id`` (the current OpenTelemetry
  span, see :func:`avl.metrics.current_ids`), ``request_id``, ``user`` and ``outcome``
  (from :func:`log_context`) on every record it sees;
- :class:`RedactFilter` removes secrets (passwords in URLs, API keys, bearer tokens,
  ``password=...`` pairs) from messages and extra fields, and drops row values
  (``rows``, ``values``, ``params``...) unless told otherwise;
- :func:`json_formatter` renders one JSON object per record (python-json-logger,
  ``pip install 'avl[logs]'``); :func:`text_formatter` is the plain-text twin;
- :func:`configure_logging` wires the three onto the ``avl`` logger for an application
  or the CLI (``avl serve --log-format json``).

Example:
    >>> import logging
    >>> from avl.logs import ContextFilter, RedactFilter, log_context, set_outcome
    >>> handler = logging.StreamHandler()
    >>> handler.addFilter(ContextFilter())
    >>> handler.addFilter(RedactFilter())
    >>> with log_context(request_id="r-1", user="ann"):
    ...     set_outcome("ok")  # later, from the code that knows it
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import re
import sys
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import IO, Any

from avl._optional import require
from avl.errors import ConfigError
from avl.metrics import current_ids

__all__ = [
    "CONTEXT_FIELDS",
    "LOGGERS",
    "VALUE_FIELDS",
    "AccessLog",
    "ContextFilter",
    "RedactFilter",
    "configure_logging",
    "json_formatter",
    "log_context",
    "bind_log_fields",
    "log_fields",
    "redact",
    "set_outcome",
    "text_formatter",
]

#: The logger hierarchy: every avl record comes from one of these (or a child).
LOGGERS: Mapping[str, str] = MappingProxyType(
    {
        "avl": "the root: set its level or handler to cover everything below",
        "avl.assistant": "the question pipeline: one record per question (outcome, model, "
        "tokens, cost), repairs and model failures",
        "avl.web": "the ASGI adapter: refused requests, probe failures, unhandled errors",
        "avl.web.access": "one record per HTTP request (method, route, status, duration)",
        "avl.ratelimit": "rate-limit storage failures (fail open/closed decisions)",
        "avl.costs": "budgets: threshold alerts (50/80/100%), refusals, webhook failures",
        "avl.history": "the audit history: verification results",
        "avl.llm": "model providers: retries and failures",
        "avl.db": "the databases the Assistant asks: connection loss and reconnects",
        "avl.metrics": "metrics: request samples dropped for a bad value",
    }
)

#: The fields :class:`ContextFilter` adds to every record.
CONTEXT_FIELDS: tuple[str, ...] = ("trace_id", "span_id", "request_id", "user", "outcome")

#: Extra fields that hold data values; :class:`RedactFilter` drops them by default.
VALUE_FIELDS: frozenset[str] = frozenset(
    {"rows", "row", "values", "value", "params", "parameters", "result", "results", "answer"}
)

_SECRET_NAMES = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "secret",
        "token",
        "api_key",
        "apikey",
        "access_key",
        "authorization",
        "cookie",
        "dsn",
        "client_secret",
        "private_key",
        "webhook_url",
    }
)

_REDACTED = "[REDACTED]"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # scheme://user:password@host -> scheme://user:***@host
    (re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)[^@\s/]+@"), r"\1***@"),
    # Authorization: Bearer xxx / Basic xxx
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}"), r"\1 ***"),
    # password=xxx, "api_key": "xxx", token: xxx, x-api-key=xxx
    (
        re.compile(
            r"(?i)\b((?:x-)?(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key"
            r"|client[_-]?secret|authorization))(\"?'?\s*[:=]\s*\"?'?)([^\s\"',;&}]+)"
        ),
        r"\1\2***",
    ),
    # provider keys: OpenAI/Anthropic sk-..., Google AIza...
    (re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"), "sk-***"),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{20,}"), "AIza***"),
)

_FIELDS: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "avl_log_fields", default=None
)


def redact(text: str) -> str:
    """``text`` with credentials, keys and tokens replaced by ``***``.

    Example:
        >>> redact("connect postgresql://app:s3cret@db/prod with api_key=sk-abcdef123456")
        'connect postgresql://app:***@db/prod with api_key=***'
    """
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[dict[str, Any]]:
    """Fields that every record logged inside the block carries (``request_id``, ``user``...).

    Blocks nest (inner fields win). The fields live in a :class:`contextvars.ContextVar`:
    worker threads started with a copy of the context (``asyncio.to_thread``,
    ``anyio.to_thread``) see them, and :func:`set_outcome` called there is seen by
    the block's owner (the same mapping is shared).

    Args:
        **fields: the fields (``None`` values are left out).

    Returns:
        A context manager yielding the block's mutable field mapping.
    """
    parent = _FIELDS.get()
    current = dict(parent or {})
    current.update({k: v for k, v in fields.items() if v is not None})
    token = _FIELDS.set(current)
    try:
        yield current
    finally:
        _FIELDS.reset(token)


def set_outcome(outcome: str, **fields: Any) -> None:
    """Set ``outcome`` (and other fields) on the innermost :func:`log_context`.

    A no-op outside any :func:`log_context`.

    Example:
        >>> with log_context(request_id="r-1") as fields:
        ...     set_outcome("rejected")
        >>> fields["outcome"]
        'rejected'
    """
    current = _FIELDS.get()
    if current is None:
        return
    current["outcome"] = outcome
    current.update({k: v for k, v in fields.items() if v is not None})


def bind_log_fields(**fields: Any) -> None:
    """Add fields (``user=...``) to the innermost :func:`log_context` (``None`` skipped).

    A no-op outside any :func:`log_context`. The web adapter's authentication calls it
    with the caller's user once it is known.
    """
    current = _FIELDS.get()
    if current is not None:
        current.update({k: v for k, v in fields.items() if v is not None})


def log_fields() -> Mapping[str, Any]:
    """The fields of the innermost :func:`log_context` (empty outside one)."""
    return MappingProxyType(dict(_FIELDS.get() or {}))


class ContextFilter(logging.Filter):
    """Adds ``trace_id``, ``span_id``, ``request_id``, ``user`` and ``outcome`` to records.

    Fields passed explicitly (``log.info(..., extra={"outcome": "ok"})``) win over
    the context's. Missing ones are ``""`` (so a text format can name them all). Put
    it on a handler: then it sees records of every logger the handler serves.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Add the fields; never drops a record."""
        ids = current_ids()
        if not getattr(record, "trace_id", None):
            record.trace_id = ids.trace_id if ids is not None else ""
            record.span_id = ids.span_id if ids is not None else ""
        fields = _FIELDS.get() or {}
        for name, value in fields.items():
            if not hasattr(record, name):
                setattr(record, name, value)
        for name in CONTEXT_FIELDS:
            if not hasattr(record, name):
                setattr(record, name, "")
        return True


_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
}


class RedactFilter(logging.Filter):
    """Removes secrets from records, and row values unless ``allow_values`` is set.

    The message is formatted once (``record.getMessage()``), redacted with
    :func:`redact`, and its arguments cleared. Extra fields named like a secret
    (``password``, ``token``, ``api_key``, ``authorization``, ``dsn``...) become
    ``"[REDACTED]"``; string extras are redacted; extra fields that hold data values
    (:data:`VALUE_FIELDS`: ``rows``, ``values``, ``params``...) are removed.

    Args:
        allow_values: keep the :data:`VALUE_FIELDS` (for a debugging session).
    """

    def __init__(self, *, allow_values: bool = False) -> None:
        super().__init__()
        self.allow_values = allow_values

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact in place; never drops a record."""
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # bad %-args: keep the template only
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        for name in [k for k in record.__dict__ if k not in _STANDARD]:
            value = record.__dict__[name]
            if name.lower() in _SECRET_NAMES or name.lower().replace("-", "_") in _SECRET_NAMES:
                record.__dict__[name] = _REDACTED
            elif not self.allow_values and name.lower() in VALUE_FIELDS:
                del record.__dict__[name]
            elif isinstance(value, str):
                record.__dict__[name] = redact(value)
        return True


_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")

_ASGI = Callable[[Any, Any, Any], Awaitable[None]]


def _outcome_of(status: int) -> str:
    if status < 400:
        return "ok"
    if status == 429:
        return "rate_limited"
    if status in (401, 403):
        return "denied"
    if status == 422:
        return "rejected"
    if status < 500:
        return "bad_request"
    if status == 504:
        return "timeout"
    return "error"


async def _no_app(scope: Any, receive: Any, send: Any) -> None:
    raise ConfigError("this AccessLog wraps no app: it only opens and closes request contexts")


class AccessLog:
    """ASGI middleware: a request id and log fields per request, one access record each.

    For each HTTP request it takes the caller's ``X-Request-Id`` (when it is a short
    token; else it makes one), opens a :func:`log_context` with ``request_id`` (so every
    record logged while the request runs, in worker threads too, carries it), sends the
    id back in ``X-Request-Id``, and at the end logs one record on ``avl.web.access``:
    ``"POST /v1/ask 200"`` with ``method``, ``path``, ``status``, ``duration_ms`` and the
    ``outcome`` (the one set with :func:`set_outcome`, else derived from the status:
    ``ok``, ``rejected`` (422), ``rate_limited`` (429), ``denied``, ``bad_request``,
    ``timeout`` (504), ``error``). The query string is never logged.

    A middleware that does more per request can log the same way without wrapping
    ``send`` once more: :meth:`begin` opens a request's context and :meth:`end` logs
    its record (the web adapter does, in the layer that also adds its headers).

    Args:
        app: the ASGI app to wrap (``None`` for :meth:`begin` and :meth:`end` only).
        logger: where the access records go (default ``avl.web.access``).
        trust_request_id: keep a caller's ``X-Request-Id`` (default); off: always
            make a new one.
        clock: ``() -> seconds`` (monotonic), for the duration.
        skip_paths: paths passed through untouched (the probes and the scrape, called
            every few seconds: no id, no record).
    """

    def __init__(
        self,
        app: _ASGI | None,
        *,
        logger: logging.Logger | None = None,
        trust_request_id: bool = True,
        clock: Callable[[], float] | None = None,
        skip_paths: Iterable[str] = ("/healthz", "/readyz", "/metrics"),
    ) -> None:
        import time

        self.app: _ASGI = app if app is not None else _no_app
        self.skip = frozenset(skip_paths)
        self.log = logger if logger is not None else logging.getLogger("avl.web.access")
        self.trust = trust_request_id
        self._clock = clock if clock is not None else time.perf_counter

    def _request_id(self, headers: Iterable[tuple[bytes, bytes]]) -> str:
        if self.trust:
            for name, value in headers:
                if name == b"x-request-id":
                    text = value.decode("latin-1")
                    if _REQUEST_ID.match(text):
                        return text
                    break
        # 128 random bits as 32 hex digits (what uuid4().hex gave, five times cheaper)
        return os.urandom(16).hex()

    def begin(self, scope: Any) -> tuple[str, dict[str, Any], Any, float] | None:
        """Open a request's log context (for a middleware that logs like this one).

        Args:
            scope: the ASGI scope.

        Returns:
            ``(request_id, fields, token, start)`` to hand to :meth:`end`, or
            ``None`` for a request passed through untouched (not HTTP, or a path in
            ``skip_paths``).
        """
        if scope["type"] != "http" or scope["path"] in self.skip:
            return None
        request_id = self._request_id(scope["headers"])
        # What log_context(request_id=...) does, without a generator-based context manager.
        parent = _FIELDS.get()
        fields = (
            {"request_id": request_id} if parent is None else {**parent, "request_id": request_id}
        )
        return request_id, fields, _FIELDS.set(fields), self._clock()

    def end(self, begun: tuple[str, dict[str, Any], Any, float], scope: Any, status: int) -> None:
        """Log the request's record (when ``avl.web.access`` is enabled for INFO) and
        close the context :meth:`begin` opened.

        Args:
            begun: what :meth:`begin` returned.
            scope: the ASGI scope.
            status: the response status (500 when none was sent).
        """
        _, fields, token, start = begun
        try:
            if self.log.isEnabledFor(logging.INFO):  # the record is built only when wanted
                self._record(scope, int(status), self._clock() - start, fields)
        finally:
            _FIELDS.reset(token)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Run the request inside its log context and log it at the end."""
        begun = self.begin(scope)
        if begun is None:
            await self.app(scope, receive, send)
            return
        status = 500
        header = (b"x-request-id", begun[0].encode("latin-1"))

        def send_with_id(message: Any) -> Awaitable[None]:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [h for h in message.get("headers", ()) if h[0] != b"x-request-id"]
                headers.append(header)
                message = {**message, "headers": headers}
            return send(message)  # type: ignore[no-any-return]

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self.end(begun, scope, status)

    def _record(self, scope: Any, status: int, seconds: float, fields: Mapping[str, Any]) -> None:
        outcome = fields.get("outcome") or _outcome_of(status)
        method = str(scope.get("method", ""))
        path = str(scope.get("path", ""))
        self.log.info(
            "%s %s %d",
            method,
            path,
            status,
            extra={
                "method": method,
                "path": path,
                "status": status,
                "duration_ms": round(1000 * seconds, 3),
                "outcome": outcome,
            },
        )


_TEXT_FORMAT = (
    "%(asctime)s %(levelname)s %(name)s [trace=%(trace_id)s span=%(span_id)s "
    "request=%(request_id)s user=%(user)s outcome=%(outcome)s] %(message)s"
)


def text_formatter() -> logging.Formatter:
    """A plain-text formatter naming the context fields (needs :class:`ContextFilter`).

    Example:
        >>> text_formatter()._fmt.startswith("%(asctime)s")
        True
    """
    return logging.Formatter(_TEXT_FORMAT)


def json_formatter(*, static_fields: Mapping[str, Any] | None = None) -> logging.Formatter:
    """A formatter writing one JSON object per record (python-json-logger).

    Each object has ``timestamp`` (ISO 8601, UTC), ``level``, ``logger``,
    ``message``, the context fields (:data:`CONTEXT_FIELDS`, with
    :class:`ContextFilter`), any ``extra`` fields, and ``exc_info`` for exceptions.

    Args:
        static_fields: fields added to every record (``{"service": "avl"}``).

    Returns:
        The formatter.

    Raises:
        MissingDependencyError: python-json-logger is not installed
            (``pip install 'avl[logs]'``).
    """
    module = require("pythonjsonlogger.json", extra="logs")
    formatter: logging.Formatter = module.JsonFormatter(
        "%(levelname)s %(name)s %(message)s",
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp=True,
        static_fields=dict(static_fields or {}),
        json_ensure_ascii=False,
        json_default=str,
    )
    return formatter


_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def configure_logging(
    level: str | int = "INFO",
    *,
    json: bool = False,
    stream: IO[str] | None = None,
    logger: str = "avl",
    allow_values: bool = False,
    static_fields: Mapping[str, Any] | None = None,
) -> logging.Handler:
    """Send avl's records to ``stream`` as JSON or text, with context and redaction.

    For applications and the CLI, never called by avl itself. Calling it again
    replaces the handler it added before (it does not stack).

    Args:
        level: the ``avl`` logger's level (``"INFO"``, ``"debug"``, ``20``...).
        json: one JSON object per line (needs ``avl[logs]``) instead of text.
        stream: where to write (default ``sys.stderr``).
        logger: the logger to configure (default the hierarchy's root ``avl``).
        allow_values: keep row values in records (see :class:`RedactFilter`).
        static_fields: JSON fields added to every record.

    Returns:
        The handler it added.

    Raises:
        ConfigError: an unknown level.
        MissingDependencyError: ``json=True`` without python-json-logger.

    Example:
        >>> import io, logging
        >>> out = io.StringIO()
        >>> _ = configure_logging("INFO", stream=out)
        >>> logging.getLogger("avl.web").info("hello")
        >>> "hello" in out.getvalue()
        True
    """
    if isinstance(level, str):
        name = level.strip().upper()
        if name not in _LEVELS:
            raise ConfigError(f"unknown log level {level!r} (known: {', '.join(_LEVELS)})")
        numeric = logging.getLevelName(name)
    elif isinstance(level, int) and not isinstance(level, bool):
        numeric = level
    else:
        raise ConfigError(f"log level must be a name or a number, got {level!r}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactFilter(allow_values=allow_values))
    handler.setFormatter(json_formatter(static_fields=static_fields) if json else text_formatter())
    handler.set_name("avl.logs")
    target = logging.getLogger(logger)
    for old in [h for h in target.handlers if h.get_name() == "avl.logs"]:
        target.removeHandler(old)
    target.addHandler(handler)
    target.setLevel(numeric)
    return handler
