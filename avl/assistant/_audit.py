"""Input checks before anything runs, and the one recorder of every request.

Nothing runs unaudited: when a History is attached, a *pending* entry is written
before a request reaches the model or the database, and one entry records how it
ended, tagged ``completes:<pending id>``. With ``audit="required"`` (the default
with a History) a request whose pending entry cannot be written is refused before
the model is called, and rows whose completing entry cannot be written are not
returned; with ``audit="best_effort"`` the request goes on and the miss is counted
in metrics (``audit_misses``).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

from avl.errors import AvlError, BackendUnavailableError, ConfigError, InvalidInputError
from avl.typing import AuditLog, MetricsSink, violation_code

if TYPE_CHECKING:
    from avl.assistant._pipeline import Request

__all__ = [
    "AuditMode",
    "Recorder",
    "check_context",
    "check_name",
    "check_question",
    "encode_text",
    "unsafe_characters",
]

AuditMode = Literal["required", "best_effort"]

#: The longest question accepted (characters).
MAX_QUESTION = 20_000
_UNSAFE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_log = logging.getLogger("avl.assistant")


def unsafe_characters(text: str) -> list[str]:
    """The characters of ``text`` that no model API or database accepts as they are:
    NUL and other control characters (tab and newlines are fine) and lone surrogates."""
    return _UNSAFE.findall(text)


def encode_text(text: str) -> str:
    """``text`` with control characters and lone surrogates written as escapes.

    What a model, a retriever or a cache sees of a question; the History keeps the
    question as it was asked.

    Example:
        >>> encode_text("orders\\x00 from \\ud800 Paris")
        'orders\\\\x00 from \\\\ud800 Paris'
    """

    def esc(m: re.Match[str]) -> str:
        c = ord(m.group())
        return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"

    return _UNSAFE.sub(esc, text)


def check_question(question: object) -> str:
    """The question, stripped; refused when it is not a non-empty string of sane size.

    Raises:
        InvalidInputError: not a string, blank, or longer than 20,000 characters.
    """
    if not isinstance(question, str) or not question.strip():
        raise InvalidInputError("the question must be a non-empty string")
    if len(question) > MAX_QUESTION:
        raise InvalidInputError(
            f"the question is {len(question)} characters long; at most {MAX_QUESTION} are accepted"
        )
    return question.strip()


def check_name(value: object, what: str, *, optional: bool = False) -> str | None:
    """A user, role or session name: a string without control characters or lone
    surrogates, at most 256 characters.

    Raises:
        InvalidInputError: anything else.
    """
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise InvalidInputError(f"{what} must be a string, got {type(value).__name__}")
    if len(value) > 256 or unsafe_characters(value):
        raise InvalidInputError(
            f"{what} must be at most 256 characters, without control characters or lone "
            f"surrogates, got {value[:40]!r}"
        )
    return value


def check_context(context: object) -> dict[str, object]:
    """The row-filter parameters: a mapping of names to str, int, float, bool or None.

    Raises:
        InvalidInputError: anything else (a string value with a NUL byte or a lone
            surrogate, a non-finite number, a nested value).
    """
    if context is None:
        return {}
    if not isinstance(context, Mapping):
        raise InvalidInputError(f"context must be a mapping, got {type(context).__name__}")
    out: dict[str, object] = {}
    for k, v in context.items():
        check_name(k, "a context key")
        if isinstance(v, str):
            if unsafe_characters(v):
                raise InvalidInputError(
                    f"context[{k!r}] holds a control character or a lone surrogate"
                )
        elif isinstance(v, float):
            if not math.isfinite(v):
                raise InvalidInputError(f"context[{k!r}] must be finite, got {v!r}")
        elif not (v is None or isinstance(v, (bool, int))):
            raise InvalidInputError(
                f"context[{k!r}] must be a str, int, float, bool or None, got {type(v).__name__}"
            )
        out[str(k)] = v
    return out


class Recorder:
    """Records every request: the pending entry, refused attempts, and how it ended.

    Args:
        history: where entries go (``None``: metrics only).
        metrics: the metrics sink (``None``: none).
        audit: ``"required"`` or ``"best_effort"`` (only with a history).
        source: the data source (tagged ``source:<name>``).
    """

    def __init__(
        self,
        history: AuditLog | None,
        metrics: MetricsSink | None,
        *,
        audit: AuditMode | None,
        source: str,
    ) -> None:
        if history is not None and audit not in ("required", "best_effort"):
            raise ConfigError(f"audit must be 'required' or 'best_effort', got {audit!r}")
        self.history = history
        self.metrics = metrics
        self.audit: AuditMode | None = audit if history is not None else None
        self.tag = f"source:{source}"

    # ------------------------------------------------------------------ writing
    def _write(self, req: Request, entry_kw: dict[str, object], stage: str) -> str | None:
        from avl.history import Entry

        assert self.history is not None
        try:
            stored = self.history.record(Entry(**entry_kw))  # type: ignore[arg-type]
        except AvlError as exc:
            self._missed(stage)
            if self.audit == "required" and stage == "begin":
                raise BackendUnavailableError(
                    f"the audit log is unavailable ({exc}); with audit='required' the "
                    "request is refused before it reaches the model or the database"
                ) from exc
            if self.audit == "required" and stage == "finish" and req.result is not None:
                req.result = None
                raise BackendUnavailableError(
                    f"the audit log is unavailable ({exc}); with audit='required' the "
                    "result is withheld (the request's pending entry is recorded)"
                ) from exc
            _log.warning("audit entry not written (%s): %s", stage, exc)
            return None
        return str(stored.id) if stored.id is not None else None

    def _missed(self, stage: str) -> None:
        if self.metrics is not None:
            self.metrics.count("audit_misses", stage=stage)

    def _base(self, req: Request) -> dict[str, object]:
        return {
            "user": req.user,
            "role": req.role or "",
            "session": req.session,
            "question": req.question,
            "model": req.model,
        }

    def begin(self, req: Request) -> None:
        """The pending entry, written before the request reaches the model or the database.

        Raises:
            BackendUnavailableError: it cannot be written and audit is required.
        """
        if self.history is None:
            return
        kw = self._base(req)
        kw.update(outcome="pending", tags=(self.tag,))
        req.pending_id = self._write(req, kw, "begin")

    def attempt(self, req: Request, *, sql: str, error: str) -> None:
        """A refused attempt that the request goes on after (repair)."""
        self._count_rejection(req)
        if self.history is None:
            return
        kw = self._base(req)
        kw.update(
            sql=sql,
            allowed=False,
            violations=tuple(violation_code(v) for v in req.verdict.violations)
            if req.verdict is not None
            else (),
            outcome="rejected",
            error=error,
            tags=self._tags(req, "request"),
        )
        self._write(req, kw, "attempt")

    def finish(self, req: Request) -> None:
        """How the request ended: one entry, and the outcome in metrics.

        Raises:
            BackendUnavailableError: it cannot be written, audit is required and the
                request reached the model or the database.
        """
        m = self.metrics
        if m is not None:
            m.count("asks", outcome=req.outcome, model=req.model)
            if req.outcome == "rate_limited":
                m.record_rate_limited(req.user)
            if req.outcome == "rejected" and req.verdict is not None:
                self._count_rejection(req)
        if self.history is None:
            return
        v = req.verdict
        kw = self._base(req)
        kw.update(
            sql=req.sql,
            allowed=None if v is None else bool(v.allowed),
            violations=() if v is None else tuple(violation_code(x) for x in v.violations),
            outcome=req.outcome,
            error=req.error or (req.reason if req.outcome == "abstained" else ""),
            row_count=None if req.result is None else len(req.result.rows),
            timings=dict(req.timings),
            tokens_in=req.usage.input_tokens,
            tokens_out=req.usage.output_tokens,
            cost_usd=req.cost,
            tags=self._tags(req, "completes"),
        )
        req.history_id = self._write(req, kw, "finish")

    def _tags(self, req: Request, link: str) -> tuple[str, ...]:
        if req.pending_id is None:
            return (self.tag,)
        return (self.tag, f"{link}:{req.pending_id}")

    # ------------------------------------------------------------------ metrics
    def stage(self, req: Request, stage: str, seconds: float) -> None:
        """One stage's duration (``retrieve``, ``model``, ``check``, ``execute``)."""
        req.timings[stage] = req.timings.get(stage, 0.0) + seconds
        if self.metrics is not None:
            self.metrics.observe_stage(stage, seconds, model=req.model)

    def tokens(
        self,
        req: Request,
        *,
        model: str,
        input_tokens: int,
        output_tokens: int,
        cached_tokens: int,
        cost_usd: float | None,
    ) -> None:
        """One model call's tokens and cost."""
        if self.metrics is not None:
            self.metrics.record_tokens(
                model, input_tokens, output_tokens, cost_usd, cached_tokens=cached_tokens
            )

    def summary_failed(self, req: Request, exc: BaseException) -> None:
        """A model-written summary failed: the template is used (counted as
        ``summary_fallbacks`` in metrics)."""
        _log.warning("the model's summary failed (%s); the template is used", exc)
        if self.metrics is not None:
            self.metrics.count("summary_fallbacks")

    def cache(self, hit: bool) -> None:
        """One semantic-cache lookup."""
        if self.metrics is not None:
            self.metrics.record_cache(hit)

    def _count_rejection(self, req: Request) -> None:
        if self.metrics is not None and req.verdict is not None:
            for v in req.verdict.violations:
                self.metrics.record_rejection(violation_code(v))
