"""Values the Assistant returns: answers, events, training items, query reviews."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import attrs

from avl._lazy import LazyPattern, lazy_module
from avl._optional import require
from avl.assistant._chart import Chart
from avl.llm import Usage
from avl.schema import ForeignKeySpec, TableSpec, as_foreign_keys
from avl.typing import Verdict, violation_code

if TYPE_CHECKING:
    from avl import _html
else:  # the HTML views load when a notebook first shows one
    _html = lazy_module("avl._html")

__all__ = ["Answer", "Event", "EventKind", "Explanation", "TrainingItem"]


# an ORDER BY outside any parenthesis ends the statement: the rows come in its order
_ORDERED = LazyPattern(r"\border\s+by\b(?![^()]*\))", re.IGNORECASE)


def _freeze(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


def _strs(value: Any) -> tuple[str, ...]:
    return tuple(value)


def _rows(value: Any) -> tuple[tuple[Any, ...], ...]:
    return tuple(tuple(r) for r in value)


@attrs.frozen(kw_only=True)
class TrainingItem:
    """One thing the Assistant was trained on.

    Attributes:
        id: a stable id (``kind:`` + a hash of the content and source).
        kind: ``"ddl"``, ``"documentation"``, ``"sql"`` (a question->SQL pair) or
            ``"schema"`` (one table read by :meth:`Assistant.train_from_database`).
        text: the text that is embedded and shown to the model.
        question: the question of a pair.
        sql: the SQL of a pair.
        table: the table a ``schema``/``ddl`` item describes, or the table a
            documentation item is tied to (it is then shown only to callers who
            may read that table).
        added_by: who added it (provenance).
        source: the data source it belongs to.
        spec: the table a ``schema``/``ddl`` item describes, as a value.
        foreign_keys: the foreign keys of that table.
        scope: for a pair learned from an answered question (``learn=True``), a key
            of the role and context it was learned in: it is shown only to callers
            of the same role and context (its literals may be theirs).
    """

    id: str
    kind: str
    text: str
    question: str = ""
    sql: str = ""
    table: str = ""
    added_by: str = ""
    source: str = "default"
    spec: TableSpec | None = None
    foreign_keys: tuple[ForeignKeySpec, ...] = attrs.field(default=(), converter=as_foreign_keys)
    scope: str = ""


class EventKind(str, enum.Enum):
    """The kinds of :class:`Event`, in the order a stream sends them."""

    RETRIEVED = "retrieved"
    PROMPT = "prompt"
    TOKEN = "token"
    SQL = "sql"
    VERDICT = "verdict"
    ROWS = "rows"
    ANSWER = "answer"
    ERROR = "error"
    DONE = "done"

    def __str__(self) -> str:
        return self.value


@attrs.frozen(kw_only=True)
class Event:
    """One step of a streamed answer.

    ``data`` is JSON-serialisable, so an SSE adapter sends ``event: <kind>`` and
    ``data: <json>`` as they are. ``answer`` events also carry the
    :class:`Answer` object in ``answer``.

    Attributes:
        kind: what happened.
        data: the details (``retrieved``: items; ``prompt``: tokens; ``token``:
            text; ``sql``: sql and attempt; ``verdict``: allowed, violations, sql;
            ``rows``: columns, rows, truncated; ``answer``: the answer as a dict;
            ``error``: type, message, retryable; ``done``: outcome).
        answer: the final answer on ``answer`` events.
    """

    kind: EventKind
    data: Mapping[str, Any] = attrs.field(factory=dict, converter=_freeze)
    answer: Answer | None = None

    def to_dict(self) -> dict[str, Any]:
        """``{"event": kind, "data": {...}}`` with plain JSON types."""
        return {"event": self.kind.value, "data": _jsonable(dict(self.data))}


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, enum.Enum):
        return _jsonable(value.value)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


@attrs.frozen(kw_only=True)
class Answer:
    """The answer to one question.

    Attributes:
        question: the question asked.
        sql: the SQL that ran (after SafeQuery's rewrites), or the last SQL tried.
        verdict: SafeQuery's verdict on the last SQL (``None`` if no SQL was made).
        columns: the column names of the result.
        rows: the rows (at most the row cap).
        outcome: how it ended: ``ok``, ``abstained``, ``rejected``, ``db_error``,
            ``timeout``, ``llm_error``... (the History outcome).
        reason: why the writer abstained (``""`` unless ``outcome`` is
            ``abstained``).
        understood: what the writer understood of the question, with an abstention.
        attempts: how many SQL attempts were made (0 when served from the cache).
        usage: tokens used by the model over all attempts.
        cost_usd: cost of the model calls (``None`` when the model has no price).
        timings: seconds per stage (``retrieve``, ``model``, ``check``, ``execute``,
            ``total``).
        history_id: the id of the History entry, when a History is attached.
        error: why there is no result (empty on success).
        cached: whether the SQL came from the semantic cache.
        truncated: whether the row cap cut the result.
        source: the data source that was asked.
        summary: one plain-language sentence about the result (the value, the row
            count, the first row of a ranking, "no rows", or why there is no
            result); written by the model when a real model is configured, else
            from a template; ``None`` when summaries are off.
        session: the session id the question was asked in (``""``: none); give it
            back to ask a follow-up question.
    """

    question: str
    sql: str = ""
    verdict: Verdict | None = None
    outcome: str = "ok"
    reason: str = ""
    understood: str = ""
    columns: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    rows: tuple[tuple[Any, ...], ...] = attrs.field(default=(), converter=_rows)
    attempts: int = 0
    usage: Usage = attrs.field(factory=Usage)
    cost_usd: float | None = None
    timings: Mapping[str, float] = attrs.field(factory=dict, converter=_freeze)
    history_id: str | None = None
    error: str = ""
    cached: bool = False
    truncated: bool = False
    source: str = "default"
    summary: str | None = None
    session: str = ""

    @property
    def ok(self) -> bool:
        """Whether the SQL was allowed and ran."""
        return not self.error and self.verdict is not None and bool(self.verdict.allowed)

    @property
    def abstained(self) -> bool:
        """Whether the writer abstained: no SQL, a reason (not an error)."""
        return self.outcome == "abstained"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of the answer."""
        v = self.verdict
        verdict = None
        if v is not None:
            verdict = {
                "allowed": bool(v.allowed),
                "violations": [
                    {"code": violation_code(x), "message": str(x.message)} for x in v.violations
                ],
                "sql": v.sql,
            }
        out: dict[str, Any] = _jsonable(
            {
                "question": self.question,
                "sql": self.sql,
                "verdict": verdict,
                "outcome": self.outcome,
                "abstained": self.abstained,
                "reason": self.reason,
                "understood": self.understood,
                "columns": list(self.columns),
                "rows": [list(r) for r in self.rows],
                "attempts": self.attempts,
                "usage": {
                    "input_tokens": self.usage.input_tokens,
                    "output_tokens": self.usage.output_tokens,
                    "cached_tokens": self.usage.cached_tokens,
                },
                "cost_usd": self.cost_usd,
                "timings": dict(self.timings),
                "history_id": self.history_id,
                "error": self.error,
                "cached": self.cached,
                "truncated": self.truncated,
                "source": self.source,
                "summary": self.summary,
                "session": self.session,
            }
        )
        return out

    def to_pandas(self) -> Any:
        """The rows as a ``pandas.DataFrame``.

        Raises:
            MissingDependencyError: pandas is not installed (``pip install 'avl[pandas]'``).
        """
        pd = require("pandas", extra="pandas")
        return pd.DataFrame(list(self.rows), columns=list(self.columns))

    def chart(self) -> Chart | None:
        """A suggested chart as a Vega-Lite spec, or ``None``.

        Two columns, one of them numeric, give a bar chart (a line chart when the
        other column looks like a date or year). Never code: only a declarative spec.
        The :class:`Chart` is a ``dict`` (``chart["mark"]``) that Jupyter draws:
        with Vega where the frontend has it, else as avl's own SVG.
        """
        if len(self.columns) != 2 or not self.rows:
            return None
        kinds = []
        for i in range(2):
            vals = [r[i] for r in self.rows if r[i] is not None]
            num = bool(vals) and all(
                isinstance(x, (int, float)) and not isinstance(x, bool) for x in vals
            )
            kinds.append("quantitative" if num else "nominal")
        if "quantitative" not in kinds:
            return None
        y = kinds.index("quantitative")
        if kinds == ["quantitative", "quantitative"]:
            y = 1
        x = 1 - y
        xname, yname = self.columns[x], self.columns[y]
        temporal = any(w in xname.lower() for w in ("date", "year", "month", "day", "time"))
        x_channel: dict[str, Any] = {"field": xname, "type": "ordinal" if temporal else kinds[x]}
        if not temporal and kinds[x] == "nominal" and _ORDERED.search(self.sql or ""):
            # the query chose the order ("biggest first"): draw the bars in it
            x_channel["sort"] = None
        return Chart(
            {
                "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
                "description": self.question,
                "data": {
                    "values": [{xname: _jsonable(r[x]), yname: _jsonable(r[y])} for r in self.rows]
                },
                "mark": "line" if temporal else "bar",
                "encoding": {
                    "x": x_channel,
                    "y": {"field": yname, "type": "quantitative"},
                },
            }
        )

    def __repr__(self) -> str:
        status = self._status()
        lines = [f"Answer({status}, {len(self.rows)} row(s), attempts={self.attempts})"]
        lines.append(f"  question: {self.question}")
        if self.summary:
            lines.append(f"  summary: {self.summary}")
        if self.sql:
            lines.append(f"  sql: {self.sql}")
        if self.abstained:
            lines.append(f"  abstained: {self.reason}")
            if self.understood:
                lines.append(f"  understood: {self.understood}")
        if self.verdict is not None and not self.verdict.allowed:
            codes = ", ".join(violation_code(v) for v in self.verdict.violations)
            lines.append(f"  violations: {codes}")
            lines.extend("    " + x for x in _html.violations_lines(self.verdict.violations))
        if self.error:
            lines.append(f"  error: {self.error}")
        if self.columns:
            lines.extend(_html.text_table(self.columns, self.rows, total=len(self.rows)))
        return "\n".join(lines)

    def _status(self) -> str:
        if self.ok or self.abstained:
            return self.outcome
        rejected = self.verdict is not None and not self.verdict.allowed
        return "rejected" if rejected else "error"

    def _repr_html_(self) -> str:
        """The answer as HTML (Jupyter calls it): the question, the summary, the
        verdict with the SQL (violations marked at their positions), the rows (at
        most 50, then ``… N more rows``). Every value is escaped."""
        e = _html.esc
        status = self._status()
        good: bool | None = True if self.ok else (None if self.abstained else False)
        meta = [f"{len(self.rows)} row{'' if len(self.rows) == 1 else 's'}"]
        if self.attempts:
            meta.append(f"{self.attempts} attempt{'' if self.attempts == 1 else 's'}")
        if self.cached:
            meta.append("from the cache")
        if "total" in self.timings:
            meta.append(_html.fmt_seconds(self.timings["total"]))
        parts = [
            f"<div class='avl-question'><b>{e(self.question)}</b> "
            f"{_html.badge(status, good)} {_html.muted(' · '.join(meta))}</div>"
        ]
        if self.summary:
            parts.append(f"<p class='avl-summary' style='margin:6px 0'>{e(self.summary)}</p>")
        v = self.verdict
        if v is not None:
            parts.append(
                _html.verdict_parts(
                    allowed=bool(v.allowed),
                    violations=tuple(v.violations),
                    text=self.sql or str(getattr(v, "text", "") or ""),
                    sql=self.sql if v.allowed else None,
                    kind=getattr(v, "kind", None),
                    tables=tuple(getattr(v, "tables", ()) or ()),
                    show_badge=status != "rejected",  # the header says it already
                )
            )
        elif self.sql:
            parts.append(_html.sql_block(self.sql))
        if self.abstained:
            parts.append(
                f"<p><i>Abstained: {e(self.reason)}</i>"
                + (
                    f"<br>{_html.muted('understood: ' + self.understood)}"
                    if self.understood
                    else ""
                )
                + "</p>"
            )
        if self.error and status != "rejected":  # a rejection's error repeats the list
            parts.append(f"<p>{_html.bad(self.error)}</p>")
        if self.columns:
            parts.append(_html.table(self.columns, self.rows, total=len(self.rows)))
            if self.truncated:
                parts.append(_html.muted("the result was cut at the row cap"))
        return _html.box("".join(parts), kind="answer")


@attrs.frozen(kw_only=True)
class Explanation:
    """A query review from :meth:`Assistant.explain`.

    Attributes:
        sql: the statement that was explained (after SafeQuery).
        plan: the plan lines as the database printed them.
        full_scans: tables read by a full scan.
        suggestions: ``CREATE INDEX`` statements for filter and join columns of
            scanned tables that have no index.
    """

    sql: str
    plan: tuple[str, ...] = attrs.field(converter=_strs)
    full_scans: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    suggestions: tuple[str, ...] = attrs.field(default=(), converter=_strs)

    def _head(self) -> str:
        n, k = len(self.plan), len(self.suggestions)
        parts = [f"{n} plan line{'' if n == 1 else 's'}"]
        if self.full_scans:
            parts.insert(0, f"full scans: {', '.join(self.full_scans)}")
        parts.append(f"{k} suggestion{'' if k == 1 else 's'}")
        return ", ".join(parts)

    def __repr__(self) -> str:
        lines = [f"Explanation({self._head()})"]
        lines.append(f"  sql: {_html.truncate(self.sql, 2000)}")
        lines.extend(f"  plan: {_html.truncate(p, 300)}" for p in self.plan[:20])
        if len(self.plan) > 20:
            lines.append(f"  … {len(self.plan) - 20} more plan lines")
        lines.extend(f"  suggest: {s}" for s in self.suggestions)
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """The review as HTML (Jupyter calls it): the SQL, the plan, the suggestions."""
        head = _html.muted(self._head())
        if self.full_scans:
            head = _html.badge(f"full scan of {', '.join(self.full_scans)}", False) + " " + head
        parts = [f"<div>{head}</div>", _html.sql_block(self.sql)]
        if self.plan:
            plan = "\n".join(self.plan[:200])
            more = _html.more_line(len(self.plan) - 200, "plan lines")
            parts.append(f"<div><b>plan</b></div>{_html.sql_block(plan)}{more}")
        if self.suggestions:
            parts.append(
                "<div><b>suggested indexes</b></div>"
                + _html.sql_block(";\n".join(self.suggestions) + ";")
            )
        return _html.box("".join(parts), kind="explanation")
