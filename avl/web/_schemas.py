"""The request and response bodies of the HTTP API, as attrs classes.

They are the API's contract (the OpenAPI document is generated from them) and are
kept apart from the primitives' own types: converters below read the primitives'
values by attribute name, so the wire format stays stable when internals move.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from avl.web._jsonschema import encode_value

__all__ = [
    "AnswerOut",
    "answer_body",
    "history_body",
    "verdict_body",
    "AskRequest",
    "CheckRequest",
    "EntryOut",
    "Health",
    "HistoryPage",
    "PositionOut",
    "Problem",
    "RateLimitStatus",
    "Ready",
    "RunRequest",
    "RunResult",
    "TrainRequest",
    "TrainResult",
    "VerdictOut",
    "VerifyOut",
    "ViolationOut",
]

Scalar = str | int | float | bool | None


def _d(text: str, **extra: Any) -> dict[str, Any]:
    return {"description": text, **extra}


@attrs.frozen(kw_only=True)
class AskRequest:
    """A question for the assistant."""

    question: str = attrs.field(
        metadata=_d(
            "The question, in natural language.",
            min_length=1,
            max_length=4000,
            example="How many customers are there in each country?",
        )
    )
    session: str | None = attrs.field(
        default=None,
        metadata=_d(
            "Ask within a conversation: the `session` of an earlier answer continues it "
            "(a follow-up question refines the earlier answers of the same caller); "
            '`"new"` starts one with a fresh id; absent or null asks on its own. A '
            "session id sent by another caller starts afresh: turns are kept per caller.",
            min_length=1,
            max_length=256,
            example="new",
        ),
    )


@attrs.frozen(kw_only=True)
class CheckRequest:
    """An SQL text to check against the caller's SafeQuery policy."""

    sql: str = attrs.field(
        metadata=_d(
            "The SQL text.", min_length=1, max_length=16_000, example="SELECT name FROM customers"
        )
    )
    role: str | None = attrs.field(
        default=None,
        metadata=_d(
            "Check under this role's policy instead of the caller's own (needs the "
            "`sql:any-role` permission unless it is the caller's role)."
        ),
    )
    params: dict[str, Scalar] | None = attrs.field(
        default=None,
        metadata=_d(
            "Parameters for the policy's row filters; the caller's identity context "
            "overrides any of the same name."
        ),
    )


@attrs.frozen(kw_only=True)
class RunRequest:
    """An SQL text to check and then run read-only."""

    sql: str = attrs.field(
        metadata=_d(
            "The SQL text.", min_length=1, max_length=16_000, example="SELECT name FROM customers"
        )
    )
    params: dict[str, Scalar] | None = attrs.field(
        default=None, metadata=_d("Parameters for row filters (identity context wins).")
    )


@attrs.frozen(kw_only=True)
class TrainRequest:
    """Training material for the assistant (needs the `train` permission)."""

    question: str | None = attrs.field(
        default=None, metadata=_d("A question (paired with `sql`).", max_length=4000)
    )
    sql: str | None = attrs.field(
        default=None,
        metadata=_d("An example query; it must pass SafeQuery.", max_length=16_000),
    )
    ddl: str | None = attrs.field(
        default=None, metadata=_d("Schema (CREATE TABLE ...).", max_length=64_000)
    )
    documentation: str | None = attrs.field(
        default=None, metadata=_d("Free-text documentation.", max_length=64_000)
    )


@attrs.frozen(kw_only=True)
class PositionOut:
    """Where in the SQL text a violation is."""

    line: int = attrs.field(metadata=_d("1-based line."))
    col: int = attrs.field(metadata=_d("1-based column."))
    offset: int | None = attrs.field(default=None, metadata=_d("0-based character offset."))


@attrs.frozen(kw_only=True)
class ViolationOut:
    """One broken rule."""

    code: str = attrs.field(metadata=_d("Stable rule code.", example="write_statement"))
    message: str = attrs.field(metadata=_d("Explanation for people."))
    position: PositionOut | None = attrs.field(default=None, metadata=_d("Where, if known."))


@attrs.frozen(kw_only=True)
class VerdictOut:
    """What SafeQuery decided."""

    allowed: bool = attrs.field(metadata=_d("Whether the statement may run.", example=True))
    violations: list[ViolationOut] = attrs.field(
        factory=list, metadata=_d("Broken rules (empty when allowed).")
    )
    sql: str | None = attrs.field(
        default=None, metadata=_d("The SQL that would run (rewritten), or null.")
    )
    kind: str | None = attrs.field(default=None, metadata=_d("Statement kind.", example="select"))
    tables: list[str] = attrs.field(factory=list, metadata=_d("Tables read."))
    columns: list[str] = attrs.field(factory=list, metadata=_d("Columns read."))
    role: str = attrs.field(default="", metadata=_d("The role whose policy was applied."))


@attrs.frozen(kw_only=True)
class RunResult:
    """The verdict and the rows of a query."""

    verdict: VerdictOut
    columns: list[str] = attrs.field(factory=list)
    rows: list[list[Any]] = attrs.field(factory=list)
    row_count: int = 0


@attrs.frozen(kw_only=True)
class AnswerOut:
    """The assistant's answer."""

    question: str
    sql: str | None = attrs.field(default=None, metadata=_d("The SQL that ran."))
    verdict: VerdictOut | None = None
    columns: list[str] = attrs.field(factory=list)
    rows: list[list[Any]] = attrs.field(factory=list)
    text: str = attrs.field(default="", metadata=_d("A summary for people."))
    summary: str | None = attrs.field(
        default=None,
        metadata=_d(
            "One plain-language sentence about the result (the value, the row count, "
            "the first row of a ranking, no rows, or why there is no result); null when "
            "summaries are off."
        ),
    )
    session: str | None = attrs.field(
        default=None,
        metadata=_d(
            "The session the question was asked in: send it back as `session` to ask a "
            "follow-up question (null: asked on its own)."
        ),
    )
    error: str | None = attrs.field(default=None, metadata=_d("What failed, if anything."))
    details: dict[str, Any] = attrs.field(
        factory=dict, metadata=_d("Everything else the assistant reported.")
    )
    chart: dict[str, Any] | None = attrs.field(
        default=None,
        metadata=_d(
            "A suggested chart of the rows as a Vega-Lite spec (a declarative dict, "
            "never code), or null when the result does not chart."
        ),
    )


@attrs.frozen(kw_only=True)
class TrainResult:
    """What training stored."""

    stored: int = attrs.field(metadata=_d("How many items were stored."))
    ids: list[str] = attrs.field(factory=list)


@attrs.frozen(kw_only=True)
class EntryOut:
    """One history entry."""

    id: str | None = None
    seq: int | None = None
    time: float | None = None
    user: str = ""
    role: str = ""
    question: str = ""
    sql: str = ""
    allowed: bool | None = None
    violations: list[str] = attrs.field(factory=list)
    outcome: str = ""
    error: str = ""
    row_count: int | None = None
    model: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float | None = None
    tags: list[str] = attrs.field(factory=list)


@attrs.frozen(kw_only=True)
class HistoryPage:
    """A page of history entries, newest first."""

    items: list[EntryOut] = attrs.field(factory=list)
    next_cursor: str | None = None


@attrs.frozen(kw_only=True)
class VerifyOut:
    """The result of checking the history's hash chain."""

    ok: bool
    checked: int = 0
    problem: str | None = None
    entry_id: str | None = None
    message: str = ""


@attrs.frozen(kw_only=True)
class RateLimitStatus:
    """The caller's rate-limit status."""

    key: str = attrs.field(metadata=_d("The limiter key (derived from the user)."))
    limited: bool = attrs.field(metadata=_d("Whether a limiter is configured."))
    allowed: bool = True
    remaining: int | None = None
    limit: int | None = None
    reset_after: float | None = None
    retry_after: float | None = None
    headers: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class Health:
    """Liveness."""

    status: str = attrs.field(default="ok", metadata=_d("Always `ok`.", example="ok"))


@attrs.frozen(kw_only=True)
class Ready:
    """Readiness: whether each backend answered."""

    status: str = attrs.field(metadata=_d("`ok` or `unavailable`.", example="ok"))
    checks: dict[str, str] = attrs.field(factory=dict, metadata=_d("Backend -> `ok` or an error."))


@attrs.frozen(kw_only=True)
class Problem:
    """An RFC 9457 problem details object."""

    type: str = attrs.field(metadata=_d("A URI naming the problem type."))
    title: str
    status: int
    detail: str = ""
    instance: str | None = None
    violations: list[ViolationOut] | None = None
    retry_after: float | None = None


# -- converters from the primitives' values (read by attribute name) ----------------


def _str_or_none(value: object) -> str | None:
    if value is None:
        return None
    return str(encode_value(value))


def position_out(value: object) -> PositionOut | None:
    """Convert a SafeQuery position (attrs ``line``/``col``, or an int offset)."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return PositionOut(line=1, col=value + 1, offset=value)
    line = getattr(value, "line", None)
    col = getattr(value, "col", getattr(value, "column", None))
    if not isinstance(line, int) or not isinstance(col, int):
        return None
    offset = getattr(value, "offset", None)
    return PositionOut(line=line, col=col, offset=offset if isinstance(offset, int) else None)


def violation_out(value: object) -> ViolationOut:
    """Convert a SafeQuery violation."""
    return ViolationOut(
        code=str(encode_value(getattr(value, "code", "unknown"))),
        message=str(getattr(value, "message", value)),
        position=position_out(getattr(value, "position", None)),
    )


def verdict_out(value: object, role: str) -> VerdictOut:
    """Convert a SafeQuery verdict."""
    return VerdictOut(
        allowed=bool(getattr(value, "allowed", False)),
        violations=[violation_out(v) for v in getattr(value, "violations", ())],
        sql=_str_or_none(getattr(value, "sql", None)),
        kind=_str_or_none(getattr(value, "kind", None)),
        tables=[str(t) for t in getattr(value, "tables", ())],
        columns=[str(c) for c in getattr(value, "columns", ())],
        role=role,
    )


def rows_out(value: object) -> list[list[Any]]:
    """Convert rows (sequences or mappings) to JSON lists."""
    if value is None:
        return []
    out: list[list[Any]] = []
    for row in value:  # type: ignore[attr-defined]  # any iterable of rows
        if isinstance(row, Mapping):
            out.append([encode_value(v) for v in row.values()])
        else:
            out.append([encode_value(v) for v in row])
    return out


_ANSWER_KNOWN = frozenset(
    {
        "question",
        "sql",
        "verdict",
        "columns",
        "rows",
        "text",
        "summary",
        "session",
        "error",
        "chart",
    }
)


def chart_out(value: object) -> dict[str, Any] | None:
    """The answer's suggested chart as a JSON Vega-Lite spec, or ``None``.

    Reads ``value.chart()`` when the answer has one: a plain mapping, or an object
    carrying the mapping (``.spec``, ``.to_dict()``), such as a notebook-drawable
    chart. Anything else is no chart.
    """
    method = getattr(value, "chart", None)
    if not callable(method):
        return None
    chart = method()
    if chart is None:
        return None
    spec: object = chart
    if not isinstance(spec, Mapping):
        spec = getattr(chart, "spec", None)
    if not isinstance(spec, Mapping):
        to_dict = getattr(chart, "to_dict", None)
        spec = to_dict() if callable(to_dict) else None
    if not isinstance(spec, Mapping):
        return None
    encoded = encode_value(dict(spec))
    return encoded if isinstance(encoded, dict) else None


def answer_out(value: object, question: str, role: str) -> AnswerOut:
    """Convert the Assistant's answer (read by attribute name)."""
    verdict = getattr(value, "verdict", None)
    result = getattr(value, "result", None)
    columns = getattr(value, "columns", None)
    rows = getattr(value, "rows", None)
    if result is not None and rows is None:
        columns = getattr(result, "columns", columns)
        rows = getattr(result, "rows", None)
    details = encode_value(value)
    if not isinstance(details, dict):
        details = {"value": details}
    error = getattr(value, "error", None)
    summary = getattr(value, "summary", None)
    session = getattr(value, "session", None)
    return AnswerOut(
        question=str(getattr(value, "question", question)),
        sql=_str_or_none(getattr(value, "sql", None)),
        verdict=None if verdict is None else verdict_out(verdict, role),
        columns=[str(c) for c in (columns or ())],
        rows=rows_out(rows),
        text=str(getattr(value, "text", "") or summary or ""),
        summary=None if summary is None else str(summary),
        session=str(session) if session else None,
        error=str(encode_value(error)) if error else None,
        details={k: v for k, v in details.items() if k not in _ANSWER_KNOWN},
        chart=chart_out(value),
    )


def entry_out(value: object) -> EntryOut:
    """Convert a history entry."""
    data = encode_value(value)
    if not isinstance(data, dict):
        data = {}
    names = {f.name for f in attrs.fields(EntryOut)}
    kwargs = {k: v for k, v in data.items() if k in names and v is not None}
    kwargs["violations"] = [str(v) for v in kwargs.get("violations", [])]
    kwargs["tags"] = [str(v) for v in kwargs.get("tags", [])]
    for key in ("user", "role", "question", "sql", "outcome", "error", "model"):
        if key in kwargs:
            kwargs[key] = str(kwargs[key])
    return EntryOut(**kwargs)


# -- the response bodies as JSON values: one serializer for the HTTP API and the CLI --


def answer_body(answer: object, *, role: str = "default", question: str = "") -> dict[str, Any]:
    """The ``POST /v1/ask`` response body for an :class:`~avl.assistant.Answer`.

    Args:
        answer: the answer.
        role: the role whose policy applied (in the verdict).
        question: the question, when the answer does not carry it.

    Returns:
        The body as plain JSON values (the ``AnswerOut`` schema of the OpenAPI
        document); ``avl ask --json`` prints the same.
    """
    body: dict[str, Any] = encode_value(answer_out(answer, question, role))
    return body


def verdict_body(verdict: object, *, role: str = "default") -> dict[str, Any]:
    """The ``POST /v1/sql/check`` response body for a SafeQuery verdict (the
    ``VerdictOut`` schema); ``avl check --json`` prints the same."""
    body: dict[str, Any] = encode_value(verdict_out(verdict, role))
    return body


def history_body(
    entries: Any, *, next_cursor: str | None = None, user: str | None = None
) -> dict[str, Any]:
    """The ``GET /v1/history`` response body for history entries, newest first
    (the ``HistoryPage`` schema); ``avl history --json`` prints the same.

    Args:
        entries: the entries (a History page or any iterable of entries).
        next_cursor: the cursor of the next page, if any.
        user: keep only this user's entries (``None``: all).
    """
    items = [entry_out(e) for e in entries]
    if user is not None:
        items = [e for e in items if e.user == user]
    body: dict[str, Any] = encode_value(HistoryPage(items=items, next_cursor=next_cursor))
    return body
