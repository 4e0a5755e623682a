"""The question pipeline: one request object through small stages, one recorder around them.

::

    admit -> retrieve -> cache -> attempts (write -> check -> execute -> repair)
                                   \\-> answer (recorded once, whatever the outcome)

Each stage is a generator that reads and updates the :class:`Request` and yields
:class:`~avl.assistant.Event` s; a stage that ends the request sets
``request.done``. :func:`run` drives them and records the request exactly once, in
one place, for every outcome (answered, abstained, rejected, failed, rate-limited,
cancelled). Each stage is an OpenTelemetry span (``avl.admit``, ``avl.retrieve``,
``avl.cache``, ``avl.model``, ``avl.check``, ``avl.execute``, ``avl.record``) when
the application set a tracer provider; never with row values, and with SQL text
only when ``AVL_OTEL_RECORD_SQL`` asks for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import attrs

from avl.assistant._answer import Answer, Event, EventKind
from avl.assistant._audit import unsafe_characters
from avl.assistant._knowledge import Knowledge, Retrieved, Scope
from avl.errors import (
    AvlError,
    CancelledError,
    ProviderError,
    QueryError,
    QueryTimeoutError,
    RateLimitedError,
)
from avl.llm import Usage, estimate_tokens
from avl.logs import set_outcome
from avl.metrics import Span, span_attributes, sql_attributes, start_span
from avl.schema import FailedAttempt, SqlDraft, Turn, WriteContext
from avl.typing import Guard, Verdict, violation_code

if TYPE_CHECKING:
    from avl.assistant._assistant import Assistant
    from avl.assistant._db import QueryResult

__all__ = ["STAGES", "Request", "run"]

Events = Generator[Event, None, None]


@attrs.define(kw_only=True, eq=False)
class Request:
    """One question on its way through the pipeline (mutable, one per request).

    ``question`` is what was asked (kept for the History and the answer);
    ``text`` is the same with control characters and lone surrogates escaped (what
    the writer, the retriever and the cache see).
    """

    question: str
    text: str
    user: str
    role: str | None
    context: dict[str, object]
    session: str
    cancel: threading.Event | None
    model: str
    started: float
    timings: dict[str, float] = attrs.Factory(dict)
    usage: Usage = attrs.Factory(Usage)
    cost: float | None = None
    attempts: int = 0
    sql: str = ""
    verdict: Verdict | None = None
    outcome: str = "ok"
    error: str = ""
    reason: str = ""
    understood: str = ""
    result: QueryResult | None = None
    cached: bool = False
    reached: bool = False
    done: bool = False
    recorded: bool = False
    pending_id: str | None = None
    history_id: str | None = None
    guard: Guard | None = None
    knowledge: Knowledge | None = None
    scope: Scope | None = None
    vector: Any = None
    retrieved: Retrieved | None = None
    failed: list[FailedAttempt] = attrs.Factory(list)
    prompt_tokens: int = 0
    question_tokens: int = -1
    written: str = ""
    traced: bool = False
    turns: tuple[Turn, ...] = ()
    search_text: str = ""
    summary: str | None = None

    @property
    def params(self) -> Mapping[str, object] | None:
        """The row-filter parameters (``None`` when there are none)."""
        return self.context or None

    def end(self, outcome: str, error: str = "") -> None:
        """Set how the request ended."""
        self.outcome, self.error = outcome, error

    def answer(self, source: str) -> Answer:
        """The answer the caller gets."""
        res = self.result
        return Answer(
            question=self.question,
            sql=self.sql,
            verdict=self.verdict,
            outcome=self.outcome,
            reason=self.reason,
            understood=self.understood,
            columns=res.columns if res is not None else (),
            rows=res.rows if res is not None else (),
            truncated=res.truncated if res is not None else False,
            attempts=self.attempts,
            usage=self.usage,
            cost_usd=self.cost,
            timings=self.timings,
            history_id=self.history_id,
            error=self.error,
            cached=self.cached,
            source=source,
            summary=self.summary,
            session=self.session,
        )


# ------------------------------------------------------------------------ helpers
class stage:
    """A span around one stage (when tracing is on), and (``timed``) its duration in
    the timings and metrics. A plain class: it runs a dozen times per request."""

    __slots__ = ("a", "cm", "name", "r", "t0", "timed")

    def __init__(self, a: Assistant, r: Request, name: str, *, timed: bool = True) -> None:
        self.a, self.r, self.name, self.timed = a, r, name, timed
        self.cm: AbstractContextManager[Span] | None = None
        self.t0 = 0.0

    def __enter__(self) -> Span:
        if self.timed:
            self.t0 = self.a._clock.monotonic()
        if not self.r.traced:
            return _NO_SPAN
        self.cm = start_span(
            f"avl.{self.name}",
            attributes=span_attributes(stage=self.name, model=self.r.model),
            tracer="avl.assistant",
        )
        return self.cm.__enter__()

    def __exit__(self, *exc: Any) -> bool | None:
        try:
            return None if self.cm is None else self.cm.__exit__(*exc)
        finally:
            if self.timed:
                seconds = max(0.0, self.a._clock.monotonic() - self.t0)
                self.a._recorder.stage(self.r, self.name, seconds)


_NO_SPAN = Span(None)


def _verdict_event(verdict: Verdict) -> Event:
    return Event(
        kind=EventKind.VERDICT,
        data={
            "allowed": bool(verdict.allowed),
            "violations": [
                {"code": violation_code(v), "message": str(v.message)} for v in verdict.violations
            ],
            "sql": verdict.sql,
        },
    )


def _rows_event(result: QueryResult) -> Event:
    return Event(
        kind=EventKind.ROWS,
        data={
            "columns": list(result.columns),
            "rows": [list(row) for row in result.rows],
            "truncated": result.truncated,
        },
    )


def check(a: Assistant, r: Request, sql: str) -> Generator[Event, None, Verdict]:
    """SafeQuery (the caller's guard, with the caller's parameters) on ``sql``."""
    assert r.guard is not None
    with stage(a, r, "check") as span:
        verdict = r.guard.check(sql, r.params)
        if r.traced:
            span.update(
                span_attributes(
                    allowed=bool(verdict.allowed),
                    verdict_codes=[violation_code(v) for v in verdict.violations],
                )
            )
    r.sql, r.verdict = sql, verdict
    yield _verdict_event(verdict)
    return verdict


def execute(a: Assistant, r: Request, sql: str) -> Generator[Event, None, QueryResult]:
    """Run allowed SQL read-only (the row cap, the statement timeout, ``cancel``).

    Raises:
        QueryError: the database rejected it or it timed out.
        CancelledError: the caller cancelled it.
    """
    r.reached = True
    with stage(a, r, "execute") as span:
        if r.traced:
            span.update(sql_attributes(sql, system=a.dialect, dialect=a.dialect))
        result = a.db.execute(sql, max_rows=a.max_rows, cancel=r.cancel)
        if r.traced:
            span.update(span_attributes(row_count=len(result.rows)))
    r.sql, r.result = sql, result
    yield _rows_event(result)
    return result


#: The output tokens a budget reservation assumes when the model sets no ``max_tokens``.
BUDGET_OUTPUT_TOKENS = 1024


def write(a: Assistant, r: Request, ctx: WriteContext) -> Generator[Event, None, SqlDraft]:
    """Ask the writer once, streaming its output as ``token`` events; with budgets,
    reserve the call's most expensive estimate first and settle its real cost after."""
    r.reached = True
    budgets = a.budgets
    if budgets is None:
        return (yield from _write(a, r, ctx))
    from avl.costs import estimate_cost

    reservation = budgets.reserve(
        estimate_cost(
            r.model,
            input_tokens=r.prompt_tokens,
            max_output_tokens=BUDGET_OUTPUT_TOKENS,
            cost_table=getattr(a.model, "cost_table", None),
        ),
        user=r.user,
        role=r.role,
    )
    try:
        draft = yield from _write(a, r, ctx)
    except BaseException:
        budgets.refund(reservation)
        raise
    budgets.settle(reservation, draft.cost_usd or 0.0)
    return draft


def _write(a: Assistant, r: Request, ctx: WriteContext) -> Generator[Event, None, SqlDraft]:
    with stage(a, r, "model") as span:
        pieces = a.writer.write_stream(ctx)
        while True:
            try:
                piece = next(pieces)
            except StopIteration as stop:
                draft: SqlDraft = stop.value
                break
            yield Event(kind=EventKind.TOKEN, data={"text": piece})
        usage = Usage(
            input_tokens=draft.input_tokens if draft.input_tokens is not None else r.prompt_tokens,
            output_tokens=draft.output_tokens
            if draft.output_tokens is not None
            else estimate_tokens(draft.sql or draft.reason),
            cached_tokens=draft.cached_tokens,
        )
        model = draft.model or r.model
        if r.traced:
            span.update(
                span_attributes(
                    model=model,
                    input_tokens=usage.input_tokens,
                    output_tokens=usage.output_tokens,
                    cost_usd=draft.cost_usd,
                )
            )
    r.usage = r.usage + usage
    if draft.cost_usd is not None:
        r.cost = (r.cost or 0.0) + draft.cost_usd
    a._recorder.tokens(
        r,
        model=model,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cached_tokens=usage.cached_tokens,
        cost_usd=draft.cost_usd,
    )
    return draft


# ------------------------------------------------------------------------- stages
def admit(a: Assistant, r: Request) -> Events:
    """The caller's guard (an unknown role fails closed), rate limit, pending entry."""
    with stage(a, r, "admit", timed=False):
        r.knowledge = a._knowledge_now()
        r.guard = a._guard_of(r.role, r.knowledge)
        a._charge(r, "requests", 1)
        a._recorder.begin(r)
    yield from ()


def retrieve(a: Assistant, r: Request) -> Events:
    """The caller's scope of the training, and what of it fits the token budget."""
    with stage(a, r, "retrieve") as span:
        r.scope = a._scope(r)
        if r.session:
            r.turns = a._turns_for(r)
        r.search_text = a._search_text(r)
        r.vector = a._embed(r.search_text)
        guard, params = r.guard, r.params
        assert guard is not None
        r.retrieved = a._retrieve(r, lambda p: bool(guard.check(p.sql, params).allowed))
        span.update({"avl.retrieved.items": len(r.retrieved.shown)})
    yield Event(
        kind=EventKind.RETRIEVED,
        data={
            "items": [
                {"id": i.id, "kind": i.kind, "table": i.table, "question": i.question}
                for i in r.retrieved.shown
            ]
        },
    )


def cache(a: Assistant, r: Request) -> Events:
    """A close enough question of the same caller, in the same scope, reuses its SQL
    (never for a follow-up question: its meaning depends on the earlier turns)."""
    if a._cache is None or r.turns:
        return
    with stage(a, r, "cache", timed=False) as span:
        sql = a._cache.lookup(r.text, r.vector, a._cache_key(r))
        if r.traced:
            span.update(span_attributes(cached=sql is not None))
    a._recorder.cache(sql is not None)
    if sql is None:
        return
    yield Event(kind=EventKind.SQL, data={"sql": sql, "attempt": 0, "cached": True})
    verdict = yield from check(a, r, sql)
    if not verdict.allowed:
        return  # the policy changed: write anew
    try:
        yield from execute(a, r, verdict.sql or sql)
    except QueryError:
        r.result = None
        return
    r.cached = r.done = True


def attempts(a: Assistant, r: Request) -> Events:
    """Write -> check -> execute, repairing from the error, at most ``max_attempts``."""
    while r.attempts < a.max_attempts:
        r.attempts += 1
        ctx = a._write_context(r)
        r.prompt_tokens = a._context_tokens(r, ctx)
        yield Event(kind=EventKind.PROMPT, data={"attempt": r.attempts, "tokens": r.prompt_tokens})
        a._charge(r, "tokens", max(1, r.prompt_tokens))
        draft = yield from write(a, r, ctx)
        if draft.abstained:
            r.reason, r.understood, r.sql, r.verdict = draft.reason, draft.understood, "", None
            r.end("abstained")
            return
        yield Event(kind=EventKind.SQL, data={"sql": draft.sql, "attempt": r.attempts})
        problem = _malformed(draft)
        if problem:
            r.sql, r.verdict = draft.sql, None
            r.failed.append(FailedAttempt(sql=draft.text[:200] or draft.sql, error=problem))
            r.end("llm_error", f"the model's reply {problem}")
            continue
        verdict = yield from check(a, r, draft.sql)
        if not verdict.allowed:
            msgs = "; ".join(f"{violation_code(v)}: {v.message}" for v in verdict.violations)
            r.failed.append(FailedAttempt(sql=draft.sql, error=f"SafeQuery rejected it: {msgs}"))
            r.end("rejected", f"SafeQuery rejected the SQL: {msgs}")
            if r.attempts < a.max_attempts:
                a._recorder.attempt(r, sql=draft.sql, error=r.error)
            continue
        run_sql = verdict.sql or draft.sql
        try:
            yield from execute(a, r, run_sql)
        except QueryError as exc:
            r.sql = run_sql
            # the writer's own SQL goes back, not the guard's rewrite (row filters stay out)
            r.failed.append(FailedAttempt(sql=draft.sql, error=str(exc)))
            r.end("timeout" if isinstance(exc, QueryTimeoutError) else "db_error", str(exc))
            yield Event(
                kind=EventKind.ERROR,
                data={
                    "type": type(exc).__name__,
                    "message": str(exc),
                    "retryable": r.attempts < a.max_attempts,
                },
            )
            continue
        r.end("ok")
        r.written = draft.sql
        a._remember(r)
        return


def _malformed(draft: SqlDraft) -> str:
    if not draft.sql.strip():
        return "held no SQL query"
    if unsafe_characters(draft.sql):
        return (
            "holds a NUL byte, a control character or a lone surrogate, which no database accepts"
        )
    return ""


#: The stages, in order (a stage that ends the request sets ``request.done``).
STAGES: tuple[Callable[[Assistant, Request], Events], ...] = (admit, retrieve, cache, attempts)


# ---------------------------------------------------------------------------- run
def run(a: Assistant, r: Request, *, raise_errors: bool) -> Events:
    """Drive the stages and record the request once, whatever happens."""
    try:
        for step in STAGES:
            yield from step(a, r)
            if r.done:
                break
        summarise(a, r)
        record(a, r)
        a._keep_turn(r)
    except GeneratorExit:
        if not r.recorded:
            r.end("cancelled", "the caller closed the stream")
            r.result = None  # never delivered
            record(a, r)
        raise
    except AvlError as exc:
        if not r.recorded:
            if isinstance(exc, CancelledError):
                r.end("cancelled", "the caller cancelled the request")
            elif isinstance(exc, RateLimitedError):
                r.end("rate_limited", str(exc))
            elif r.outcome in ("ok", "abstained"):
                r.end("llm_error" if isinstance(exc, ProviderError) else "error", str(exc))
            else:
                r.error = r.error or str(exc)
            r.result = None
            record(a, r)
        if raise_errors:
            raise
        yield Event(
            kind=EventKind.ERROR,
            data={
                "type": type(exc).__name__,
                "message": str(exc),
                "retryable": isinstance(exc, RateLimitedError),
            },
        )
        yield Event(kind=EventKind.DONE, data={"outcome": r.outcome})
        return
    answer = r.answer(a.name)
    yield Event(kind=EventKind.ANSWER, data=answer.to_dict(), answer=answer)
    yield Event(kind=EventKind.DONE, data={"outcome": r.outcome})


def summarise(a: Assistant, r: Request) -> None:
    """The answer's one-sentence summary: the model's (one small call, budgeted and
    counted) when the Assistant uses one for summaries, else the template; the
    template also when the model fails or writes no usable sentence."""
    mode = a.summaries
    if mode == "off":
        return
    from avl.assistant._summary import template_summary

    res = r.result
    columns = res.columns if res is not None else ()
    rows = res.rows if res is not None else ()
    if a._model_summaries and r.outcome == "ok" and rows:
        with stage(a, r, "summary"):
            r.summary = _model_summary(a, r, columns, rows)
    if r.summary is None:
        r.summary = template_summary(
            outcome=r.outcome,
            columns=columns,
            rows=rows,
            sql=r.sql,
            verdict=r.verdict,
            reason=r.reason,
            error=r.error,
            truncated=res.truncated if res is not None else False,
        )


def _model_summary(a: Assistant, r: Request, columns: Any, rows: Any) -> str | None:
    from avl.assistant._summary import SUMMARY_MAX_TOKENS, clean_summary, summary_messages

    model = a.model
    complete = getattr(model, "complete", None)
    if not callable(complete):
        return None
    messages = summary_messages(
        r.question, columns, rows, truncated=bool(r.result is not None and r.result.truncated)
    )
    prompt_tokens = sum(estimate_tokens(m.content) for m in messages)
    budgets = a.budgets
    reservation = None
    try:
        if budgets is not None:
            from avl.costs import estimate_cost

            reservation = budgets.reserve(
                estimate_cost(
                    r.model,
                    input_tokens=prompt_tokens,
                    max_output_tokens=SUMMARY_MAX_TOKENS,
                    cost_table=getattr(model, "cost_table", None),
                ),
                user=r.user,
                role=r.role,
            )
        completion = complete(messages, max_tokens=SUMMARY_MAX_TOKENS)
    except Exception as exc:  # a provider failure or the budget: the template says it
        if budgets is not None and reservation is not None:
            budgets.refund(reservation)
        a._recorder.summary_failed(r, exc)
        return None
    usage = getattr(completion, "usage", None) or Usage()
    cost = getattr(completion, "cost_usd", None)
    if budgets is not None and reservation is not None:
        budgets.settle(reservation, cost or 0.0)
    r.usage = r.usage + usage
    if cost is not None:
        r.cost = (r.cost or 0.0) + cost
    a._recorder.tokens(
        r,
        model=str(getattr(completion, "model", "") or r.model),
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cached_tokens=usage.cached_tokens,
        cost_usd=cost,
    )
    return clean_summary(str(getattr(completion, "text", "") or ""))


def record(a: Assistant, r: Request) -> None:
    """The one place a request is recorded (History entry and outcome metrics)."""
    r.recorded = True
    r.timings["total"] = max(0.0, a._clock.monotonic() - r.started)
    with stage(a, r, "record", timed=False) as span:
        if r.traced:
            span.update(
                span_attributes(
                    outcome=r.outcome,
                    row_count=None if r.result is None else len(r.result.rows),
                    input_tokens=r.usage.input_tokens,
                    output_tokens=r.usage.output_tokens,
                    cost_usd=r.cost,
                )
            )
        a._recorder.finish(r)
    set_outcome(r.outcome)  # the request's log records (avl.logs) say how it ended
