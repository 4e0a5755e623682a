"""What the MCP tools do, without the MCP SDK: plain functions over a Console.

Every function takes the :class:`Caller` (user, role and row-filter context) and
goes through the same Console as the REST API: the caller's policy (an unknown
role is refused), its row filters, the rate limit, the history. The results are
plain JSON values, the shapes the tools declare.
"""

from __future__ import annotations

import datetime
import decimal
import math
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

try:  # pydantic (which the mcp SDK uses) needs this TypedDict below Python 3.12
    from typing_extensions import TypedDict
except ModuleNotFoundError:  # pragma: no cover - without it there is no mcp SDK either
    from typing import TypedDict

from avl.errors import (
    InvalidInputError,
    NotFoundError,
    QueryError,
    RateLimitedError,
    UnsafeQueryError,
)
from avl.typing import violation_code

__all__ = [
    "AnswerResult",
    "Caller",
    "ColumnInfo",
    "ExplainResult",
    "HistoryItem",
    "HistoryResult",
    "RunResult",
    "TableInfo",
    "TablesResult",
    "VerdictResult",
    "ViolationItem",
    "ask",
    "check_sql",
    "describe_table",
    "explain",
    "list_tables",
    "run_sql",
    "schema_text",
    "search_history",
]

#: the longest SQL or question a tool takes (characters)
MAX_TEXT = 100_000


@attrs.frozen(kw_only=True)
class Caller:
    """Who calls a tool: the user (for limits and history), the role (its policy)
    and the row-filter context (``{"tenant": 7}``).

    Attributes:
        user: the user id.
        role: the role whose policy applies (``None``: the default policy).
        context: values for the policy's row-filter parameters.
        admitted: the adapter already counted this request against the caller's
            rate limit (the web adapter's middleware does), so tools do not count
            it again.
        via: where the call comes from: the tag of the history entries it records
            and the ``source`` of its metrics (``"mcp"``; ``avl shell`` says
            ``"shell"``).
    """

    user: str = "mcp"
    role: str | None = None
    context: Mapping[str, Any] = attrs.field(factory=dict)
    admitted: bool = False
    via: str = "mcp"


class PositionItem(TypedDict):
    """Where in the SQL a violation is (1-based)."""

    line: int
    col: int


class ViolationItem(TypedDict):
    """One broken SafeQuery rule."""

    code: str
    message: str
    position: PositionItem | None


class VerdictResult(TypedDict):
    """SafeQuery's decision on one statement."""

    allowed: bool
    violations: list[ViolationItem]
    sql: str | None


class AnswerResult(TypedDict):
    """The Assistant's answer to a question."""

    question: str
    sql: str | None
    verdict: VerdictResult | None
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool
    error: str | None
    summary: str | None
    session: str | None


class RunResult(TypedDict):
    """The verdict and the rows of a query that ran."""

    verdict: VerdictResult
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool


class ColumnInfo(TypedDict):
    """A column the caller may read."""

    name: str
    type: str


class TableInfo(TypedDict):
    """A table the caller may read, with the columns it may read."""

    name: str
    columns: list[ColumnInfo]
    row_filtered: bool
    comment: str


class TablesResult(TypedDict):
    """The tables the caller may read."""

    tables: list[str]


class HistoryItem(TypedDict):
    """One of the caller's own history entries."""

    seq: int | None
    time: str | None
    question: str
    sql: str
    outcome: str
    allowed: bool | None


class HistoryResult(TypedDict):
    """The caller's own history entries that match."""

    entries: list[HistoryItem]


class ExplainResult(TypedDict):
    """The database's plan for a query and index suggestions."""

    sql: str
    plan: list[str]
    full_scans: list[str]
    suggestions: list[str]


# ------------------------------------------------------------------ helpers
def _text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise InvalidInputError(f"{name}: expected a string, got {type(value).__name__}")
    if not value.strip():
        raise InvalidInputError(f"{name}: must not be empty")
    if len(value) > MAX_TEXT:
        raise InvalidInputError(f"{name}: at most {MAX_TEXT} characters, got {len(value)}")
    return value


def json_value(value: object) -> Any:
    """A result cell as a JSON value (bytes as hex, decimals and dates as text)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    return str(value)


def _rows(rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    return [[json_value(v) for v in r] for r in rows]


def verdict_result(verdict: Any) -> VerdictResult:
    """A SafeQuery verdict as the tools' JSON shape."""
    out: list[ViolationItem] = []
    for v in verdict.violations:
        pos = v.position
        out.append(
            {
                "code": violation_code(v),
                "message": str(v.message),
                "position": None if pos is None else {"line": pos.line, "col": pos.col},
            }
        )
    return {"allowed": bool(verdict.allowed), "violations": out, "sql": verdict.sql}


def _policy(console: Any, caller: Caller) -> Any:
    """The caller's policy; an unknown role is refused (the Console raises
    :class:`~avl.errors.UnknownRoleError`), never given the default."""
    return console.policy_for(caller.role)


def _guard(console: Any, caller: Caller) -> Any:
    _policy(console, caller)
    return console.guard_for(caller.role)


def _admit(console: Any, caller: Caller) -> None:
    """Count one request against the caller's rate limit."""
    limiter = getattr(console, "limiter", None)
    if limiter is None or caller.admitted:
        return
    decision = limiter.hit(caller.user)
    if not decision.allowed:
        _count(console, "record_rate_limited", caller.user, source=caller.via)
        raise RateLimitedError(
            f"rate limit reached for {caller.user!r}; retry in {decision.retry_after:.1f} s",
            retry_after_s=decision.retry_after,
        )


def _count(console: Any, method: str, *args: str, source: str) -> None:
    """A refusal in the console's metrics (rejections and rate limits, by path)."""
    fn = getattr(getattr(console, "metrics", None), method, None)
    if fn is not None:
        fn(*args, source=source)


def _record(console: Any, caller: Caller, **fields: Any) -> None:
    history = getattr(console, "history", None)
    if history is None:
        return
    from avl.history import Entry

    history.record(Entry(user=caller.user, role=caller.role or "", tags=(caller.via,), **fields))


# ------------------------------------------------------------ schema view
def _visible(console: Any, caller: Caller) -> list[TableInfo]:
    """The tables and columns the caller may read: the Assistant's policy view, the
    same one its prompts are built from (an unknown role is refused there)."""
    _policy(console, caller)
    view = console.assistant.view(caller.role, dict(caller.context) or None)
    out: list[TableInfo] = []
    for t in view.tables:
        out.append(
            {
                "name": t.name,
                "columns": [{"name": c.name, "type": c.type} for c in t.columns],
                "row_filtered": t.name.lower() in view.filtered,
                "comment": t.comment,
            }
        )
    return out


# -------------------------------------------------------------------- tools
def ask(console: Any, caller: Caller, question: str, session: str | None = None) -> AnswerResult:
    """Answer ``question`` with the Assistant, as ``caller`` (within ``session``, a
    conversation of this caller, when given: ``"new"`` starts one)."""
    question = _text(question, "question")
    _policy(console, caller)
    extra = {"session": _text(session, "session")} if session else {}
    answer = console.assistant.ask(
        question,
        user=caller.user,
        role=caller.role,
        context=dict(caller.context) or None,
        **extra,
    )
    return {
        "question": answer.question,
        "sql": answer.sql,
        "verdict": None if answer.verdict is None else verdict_result(answer.verdict),
        "columns": list(answer.columns),
        "rows": _rows(answer.rows),
        "truncated": bool(answer.truncated),
        "error": answer.error or None,
        "summary": getattr(answer, "summary", None),
        "session": getattr(answer, "session", "") or None,
    }


def check_sql(console: Any, caller: Caller, sql: str) -> VerdictResult:
    """SafeQuery's verdict on ``sql`` under the caller's policy (nothing runs)."""
    sql = _text(sql, "sql")
    _admit(console, caller)
    verdict = _guard(console, caller).check(sql, params=dict(caller.context) or None)
    return verdict_result(verdict)


def run_sql(console: Any, caller: Caller, sql: str) -> RunResult:
    """Run ``sql`` read-only after SafeQuery allowed it; refused SQL raises.

    Raises:
        UnsafeQueryError: SafeQuery refused the statement (the violations are on
            the error).
        QueryError: the database refused or timed out.
    """
    sql = _text(sql, "sql")
    _admit(console, caller)
    verdict = _guard(console, caller).check(sql, params=dict(caller.context) or None)
    result = verdict_result(verdict)
    codes = tuple(v["code"] for v in result["violations"])
    if not verdict.allowed:
        for code in codes:
            _count(console, "record_rejection", code, source=caller.via)
        _record(console, caller, sql=sql, allowed=False, violations=codes, outcome="rejected")
        raise UnsafeQueryError(
            "the query was refused by SafeQuery", violations=list(verdict.violations), sql=sql
        )
    try:
        rows = console.assistant.db.execute(verdict.sql)
    except QueryError as exc:
        outcome = "timeout" if isinstance(exc, TimeoutError) else "db_error"
        _record(console, caller, sql=verdict.sql, allowed=True, outcome=outcome, error=str(exc))
        raise
    _record(console, caller, sql=verdict.sql, allowed=True, outcome="ok", row_count=len(rows.rows))
    return {
        "verdict": result,
        "columns": list(rows.columns),
        "rows": _rows(rows.rows),
        "truncated": bool(rows.truncated),
    }


def list_tables(console: Any, caller: Caller) -> TablesResult:
    """The names of the tables the caller may read."""
    _admit(console, caller)
    return {"tables": sorted(t["name"] for t in _visible(console, caller))}


def describe_table(console: Any, caller: Caller, name: str) -> TableInfo:
    """The columns of one table the caller may read.

    Raises:
        NotFoundError: no such table, or not one the caller may read (the same
            answer for both, so the tool does not reveal what exists).
    """
    name = _text(name, "name")
    _admit(console, caller)
    low = name.strip().lower()
    for t in _visible(console, caller):
        if t["name"].lower() == low:
            return t
    raise NotFoundError(f"no table {name!r} that you may read")


def schema_text(console: Any, caller: Caller) -> str:
    """The caller's view of the schema as ``CREATE TABLE`` text (the MCP resource)."""
    parts = []
    for t in _visible(console, caller):
        cols = ",\n".join(f"  {c['name']} {c['type'] or 'TEXT'}" for c in t["columns"])
        filtered = t["row_filtered"] and "filtered" not in t["comment"]
        note = "-- rows are filtered for you by your access policy\n" if filtered else ""
        comment = f"-- {t['comment']}\n" if t["comment"] else ""
        parts.append(f"{comment}{note}CREATE TABLE {t['name']} (\n{cols}\n);")
    return "\n\n".join(parts) + "\n"


def search_history(console: Any, caller: Caller, text: str = "", limit: int = 20) -> HistoryResult:
    """The caller's own history entries, newest first, optionally matching ``text``."""
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 1000:
        raise InvalidInputError(f"limit: expected an integer from 1 to 1000, got {limit!r}")
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        raise InvalidInputError("text: expected a string of at most 100000 characters")
    _admit(console, caller)
    history = getattr(console, "history", None)
    if history is None:
        raise NotFoundError("this console keeps no history")
    page = history.search(user=caller.user, text=text or None, limit=limit)
    items: list[HistoryItem] = []
    for e in page.entries:
        when = None
        if e.time is not None:
            when = datetime.datetime.fromtimestamp(e.time, tz=datetime.timezone.utc).isoformat()
        items.append(
            {
                "seq": e.seq,
                "time": when,
                "question": e.question,
                "sql": e.sql,
                "outcome": str(e.outcome),
                "allowed": e.allowed,
            }
        )
    return {"entries": items}


def explain(console: Any, caller: Caller, sql: str) -> ExplainResult:
    """The database's plan for ``sql`` (checked by SafeQuery first) and index hints."""
    sql = _text(sql, "sql")
    _admit(console, caller)
    _policy(console, caller)
    result = console.assistant.explain(sql, role=caller.role)
    return {
        "sql": result.sql,
        "plan": list(result.plan),
        "full_scans": list(result.full_scans),
        "suggestions": list(result.suggestions),
    }
