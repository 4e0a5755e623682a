"""History values: entries, outcomes, pages, statistics and verification reports (pure)."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, cast

import attrs

from avl._args import describe, expect_int, expect_number, type_error
from avl._lazy import lazy_module
from avl._optional import require
from avl.errors import InvalidInputError

if TYPE_CHECKING:
    from avl import _html
else:  # the HTML views load when a notebook first shows one
    _html = lazy_module("avl._html")

__all__ = [
    "Entry",
    "GroupStats",
    "Outcome",
    "Page",
    "ProblemKind",
    "Stats",
    "VerifyReport",
]


class Outcome(str, enum.Enum):
    """How a question ended. Stored as its string value.

    Plain strings are accepted wherever an outcome is expected: ``"ok"`` is
    :attr:`Outcome.OK`.
    """

    OK = "ok"
    REJECTED = "rejected"
    DB_ERROR = "db_error"
    LLM_ERROR = "llm_error"
    RATE_LIMITED = "rate_limited"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    ERROR = "error"
    ABSTAINED = "abstained"
    """The writer said the question cannot be answered from this database (not an error)."""
    PENDING = "pending"
    """Recorded before a request reaches the model or the database; a later entry
    tagged ``completes:<id>`` records how it ended."""

    def __str__(self) -> str:
        return self.value


def _to_outcome(value: Outcome | str) -> Outcome:
    if isinstance(value, Outcome):
        return value
    if not isinstance(value, str):
        type_error("outcome", "an Outcome or its string value", value)
    try:
        return Outcome(value)
    except ValueError:
        known = ", ".join(o.value for o in Outcome)
        raise InvalidInputError(f"unknown outcome {describe(value)} (known: {known})") from None


def _str(value: object) -> str:
    # None is "": the type itself is checked by _is_str (which knows the field)
    return "" if value is None else cast(str, value)


def _is_str(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str):
        type_error(f"Entry.{attribute.name}", "a string", value)


def _is_opt_str(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, str):
        type_error(f"Entry.{attribute.name}", "a string or None", value)


def _is_int(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    # stored in 64-bit columns (SQLite INTEGER, PostgreSQL BIGINT)
    expect_int(f"Entry.{attribute.name}", value, low=-(2**63), high=2**63 - 1)


def _is_opt_int(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _is_int(instance, attribute, value)


def _finite(name: str, value: float) -> float:
    # + 0.0 turns -0.0 into 0.0: SQLite's REAL columns store -0.0 as 0.0, and the hash
    # must cover what every backend reads back
    return expect_number(name, value) + 0.0


def _opt_time(value: float | None) -> float | None:
    return None if value is None else _finite("time", value)


def _opt_cost(value: float | None) -> float | None:
    return None if value is None else _finite("cost_usd", value)


def _opt_bool(value: bool | None) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    type_error("allowed", "True, False or None", value)


def _strings(name: str, value: object) -> list[object]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, (list, tuple, set, frozenset)):
        type_error(name, "a list of strings", value)
    return list(value)


def _codes(value: Iterable[str]) -> tuple[str, ...]:
    out = []
    for code in _strings("violations", value):
        if isinstance(code, enum.Enum):
            code = code.value
        if not isinstance(code, str):
            type_error("violations", "a list of code strings", code)
        out.append(code)
    return tuple(out)


def _tags(value: Iterable[str]) -> tuple[str, ...]:
    tags = set()
    for tag in _strings("tags", value):
        if not isinstance(tag, str) or not tag:
            raise InvalidInputError(f"tags must be non-empty strings, got {describe(tag)}")
        tags.add(tag)
    return tuple(sorted(tags))


def _timings(value: Mapping[str, float] | None) -> Mapping[str, float]:
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, Mapping):
        type_error("timings", "a mapping of stage name to seconds", value)
    out: dict[str, float] = {}
    for stage, seconds in dict(value).items():
        if not isinstance(stage, str):
            type_error("timings stage names", "strings", stage)
        out[stage] = _finite(f"timings[{describe(stage)}]", seconds)
    return MappingProxyType(dict(sorted(out.items())))


@attrs.frozen(kw_only=True)
class Entry:
    """One recorded question: who asked what, the SQL, the verdict, the outcome, the cost.

    Every field has a default, so ``Entry(user="ann", question="...", sql="...",
    outcome="ok")`` is a complete entry. The store fills ``id`` (when ``None``),
    ``seq``, ``time`` (when ``None``), ``prev_hash`` and ``hash``.

    Attributes:
        id: a unique string id; when ``None`` the store assigns a 32-character
            hexadecimal id whose first 12 digits are the millisecond timestamp (so ids
            sort roughly by time) followed by 80 random bits.
        seq: the position in the hash chain (1, 2, 3...), assigned by the store; it
            also orders entries ("newest first" means highest ``seq`` first).
        time: seconds since the Unix epoch; defaults to the store clock's ``now()``.
        user: who asked.
        role: the role the user acted in.
        session: a session or conversation id.
        question: the natural-language question.
        sql: the SQL that was generated or run.
        allowed: SafeQuery's verdict (``None`` when not checked).
        violations: the SafeQuery violation codes, in order.
        outcome: how it ended (:class:`Outcome`; plain strings such as ``"ok"`` work).
        error: the error message, if any.
        row_count: rows returned, if the query ran.
        timings: seconds per stage (``{"generate": 0.8, "execute": 0.01}``); a
            ``"total"`` key, when present, is the entry's latency in :meth:`History.stats`.
        model: the chat model used (``"openai/gpt-4o-mini"``).
        tokens_in: input tokens.
        tokens_out: output tokens.
        cost_usd: cost in US dollars, if known.
        tags: free-form labels, stored sorted and without duplicates.
        prev_hash: the hash of the previous entry in the chain (store-filled).
        hash: this entry's hash (store-filled).
    """

    id: str | None = attrs.field(default=None, validator=_is_opt_str)
    seq: int | None = attrs.field(default=None, validator=_is_opt_int)
    time: float | None = attrs.field(default=None, converter=_opt_time)
    user: str = attrs.field(default="", converter=_str, validator=_is_str)
    role: str = attrs.field(default="", converter=_str, validator=_is_str)
    session: str = attrs.field(default="", converter=_str, validator=_is_str)
    question: str = attrs.field(default="", converter=_str, validator=_is_str)
    sql: str = attrs.field(default="", converter=_str, validator=_is_str)
    allowed: bool | None = attrs.field(default=None, converter=_opt_bool)
    violations: tuple[str, ...] = attrs.field(default=(), converter=_codes)
    outcome: Outcome = attrs.field(default=Outcome.OK, converter=_to_outcome)
    error: str = attrs.field(default="", converter=_str, validator=_is_str)
    row_count: int | None = attrs.field(default=None, validator=_is_opt_int)
    timings: Mapping[str, float] = attrs.field(factory=dict, converter=_timings, hash=False)
    model: str = attrs.field(default="", converter=_str, validator=_is_str)
    tokens_in: int = attrs.field(default=0, validator=_is_int)
    tokens_out: int = attrs.field(default=0, validator=_is_int)
    cost_usd: float | None = attrs.field(default=None, converter=_opt_cost)
    tags: tuple[str, ...] = attrs.field(default=(), converter=_tags)
    prev_hash: str | None = attrs.field(default=None, validator=_is_opt_str)
    hash: str | None = attrs.field(default=None, validator=_is_opt_str)

    @property
    def latency_s(self) -> float | None:
        """``timings["total"]`` when present, else the sum of the stages (``None`` if none)."""
        if "total" in self.timings:
            return self.timings["total"]
        if not self.timings:
            return None
        return float(sum(self.timings.values()))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field (``outcome`` as its string)."""
        return {
            "id": self.id,
            "seq": self.seq,
            "time": self.time,
            "user": self.user,
            "role": self.role,
            "session": self.session,
            "question": self.question,
            "sql": self.sql,
            "allowed": self.allowed,
            "violations": list(self.violations),
            "outcome": self.outcome.value,
            "error": self.error,
            "row_count": self.row_count,
            "timings": dict(self.timings),
            "model": self.model,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "cost_usd": self.cost_usd,
            "tags": list(self.tags),
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


_ENTRY_FIELDS = tuple(a.name for a in attrs.fields(Entry))


def replace_checked(entry: Entry, **changes: Any) -> Entry:
    """A copy of ``entry`` with ``changes`` applied, without re-running converters.

    Internal fast path for the store: the caller guarantees the new values are
    already valid (``str`` ids and hashes, ``int`` seq, ``float`` time).
    """
    new = object.__new__(Entry)
    for name in _ENTRY_FIELDS:
        object.__setattr__(new, name, changes[name] if name in changes else getattr(entry, name))
    return new


#: The columns of a page's table view (``repr()`` and the notebook view).
_VIEW_COLUMNS = (
    "seq",
    "time (UTC)",
    "user",
    "role",
    "outcome",
    "question",
    "sql",
    "rows",
    "latency",
)


def _view_row(e: Entry, sql_width: int) -> tuple[object, ...]:
    return (
        e.seq,
        _html.fmt_time(e.time),
        e.user,
        e.role,
        e.outcome.value + (f" ({', '.join(e.violations)})" if e.violations else ""),
        e.question,
        _html.truncate(e.sql.replace("\n", " "), sql_width),
        "" if e.row_count is None else e.row_count,
        "" if e.latency_s is None else _html.fmt_seconds(e.latency_s),
    )


class Page(list[Entry]):
    """A list of entries with the cursor for the next page.

    ``repr()`` prints the entries as an aligned table (the first 10, then ``… N
    more entries``); in a notebook the page shows as an HTML table of at most 50
    entries. :meth:`to_pandas` gives every entry as a DataFrame row.

    Attributes:
        next_cursor: pass it as ``cursor=`` to get the next page; ``None`` on the
            last page.
    """

    next_cursor: str | None

    def __init__(self, entries: Iterable[Entry] = (), next_cursor: str | None = None) -> None:
        super().__init__(entries)
        self.next_cursor = next_cursor

    @property
    def entries(self) -> list[Entry]:
        """The entries as a plain list."""
        return list(self)

    def __repr__(self) -> str:
        n = len(self)
        head = f"Page({n} {'entry' if n == 1 else 'entries'}, next_cursor={self.next_cursor!r})"
        if not n:
            return head
        rows = (_view_row(e, 60) for e in self)
        lines = _html.text_table(
            _VIEW_COLUMNS, rows, total=n, max_rows=10, what="entries", right=(7, 8)
        )
        return "\n".join([head, *lines])

    def _repr_html_(self) -> str:
        """The page as an HTML table (Jupyter calls it): at most 50 entries."""
        n = len(self)
        head = f"<div><b>{n}</b> {'entry' if n == 1 else 'entries'}"
        if self.next_cursor is not None:
            head += " " + _html.muted(f"· more with cursor={self.next_cursor!r}")
        head += "</div>"
        if not n:
            return _html.box(head, kind="page")
        rows = (_view_row(e, _html.MAX_CELL) for e in self)
        body = _html.table(
            _VIEW_COLUMNS, rows, total=n, what="entries", right=(7, 8), nowrap=(1, 4)
        )
        return _html.box(head + body, kind="page")

    def to_pandas(self) -> Any:
        """The entries as a ``pandas.DataFrame``, one row each, one column per
        :class:`Entry` field (as :meth:`Entry.to_dict` gives them) plus
        ``latency_s``; ``time`` is a UTC ``datetime64`` column, ``seq`` and
        ``row_count`` are nullable integers (``<NA>`` for a query that did not run).

        Raises:
            MissingDependencyError: pandas is not installed (``pip install 'avl[pandas]'``).
        """
        pd = require("pandas", extra="pandas")
        columns = [*_ENTRY_FIELDS, "latency_s"]
        records = [{**e.to_dict(), "latency_s": e.latency_s} for e in self]
        frame = pd.DataFrame.from_records(records, columns=columns)
        frame["time"] = pd.to_datetime(frame["time"], unit="s", utc=True)
        for name in ("seq", "row_count"):  # integers with gaps stay integers
            frame[name] = frame[name].astype("Int64")
        return frame


class ProblemKind(str, enum.Enum):
    """What :meth:`History.verify` found wrong with the chain."""

    ALTERED = "altered"
    INSERTED = "inserted"
    DELETED = "deleted"
    REORDERED = "reordered"
    ROLLED_BACK = "rolled_back"
    """The chain does not reach, or does not match, an anchor kept outside the store:
    a restored backup, a deleted tail with the head moved back, a replaced table."""

    def __str__(self) -> str:
        return self.value


@attrs.frozen(kw_only=True)
class VerifyReport:
    """The result of checking the hash chain.

    ``repr()`` reads as one line (``VerifyReport(ok, 12 checked, head seq 12 …)``
    or the problem, where and why); in a notebook it shows as a badge and a table.

    Attributes:
        ok: ``True`` when every entry verified.
        checked: how many entries were checked.
        problem: the first problem found, or ``None``.
        entry_id: the id of the entry where the problem shows (for ``deleted``, the
            first entry after the gap; ``None`` when the gap is at the end).
        seq: the chain position where the problem shows.
        message: a sentence describing the problem (empty when ``ok``).
        head_seq: the chain position of the last entry (0 when empty).
        head_hash: the hash at the head of the chain.
        anchor_seq: the position of the anchor checked against (``None`` without one).
    """

    ok: bool
    checked: int
    problem: ProblemKind | None = None
    entry_id: str | None = None
    seq: int | None = None
    message: str = ""
    head_seq: int = 0
    head_hash: str = ""
    anchor_seq: int | None = None

    def __bool__(self) -> bool:
        return self.ok

    def _rows(self) -> list[tuple[str, object]]:
        out: list[tuple[str, object]] = [("entries checked", self.checked)]
        if self.problem is not None:
            out.append(("problem", self.problem.value))
        if self.seq is not None:
            out.append(("at seq", self.seq))
        if self.entry_id is not None:
            out.append(("entry id", self.entry_id))
        out.append(
            (
                "head",
                f"seq {self.head_seq} {self.head_hash[:16]}"
                if self.head_hash
                else f"seq {self.head_seq}",
            )
        )
        if self.anchor_seq is not None:
            out.append(("anchor at seq", self.anchor_seq))
        return out

    def __repr__(self) -> str:
        if self.ok:
            anchor = f", anchor at seq {self.anchor_seq}" if self.anchor_seq is not None else ""
            head = f"head seq {self.head_seq}"
            if self.head_hash:
                head += f" {self.head_hash[:16]}…"
            return f"VerifyReport(ok, {self.checked} checked, {head}{anchor})"
        where = f" at seq {self.seq}" if self.seq is not None else ""
        entry = f" (entry {self.entry_id})" if self.entry_id is not None else ""
        problem = self.problem.value if self.problem is not None else "failed"
        return (
            f"VerifyReport({problem}{where}{entry}, {self.checked} checked: "
            f"{_html.truncate(self.message, 500)})"
        )

    def _repr_html_(self) -> str:
        """The report as HTML (Jupyter calls it): a badge, the message, the details."""
        label = "chain verified" if self.ok else f"chain {self.problem or 'failed'}"
        body = _html.badge(label, self.ok)
        if self.message:
            body += f" {_html.bad(self.message) if not self.ok else _html.esc(self.message)}"
        return _html.box(body + _html.kv_table(self._rows()), kind="verify")


@attrs.frozen(kw_only=True)
class GroupStats:
    """Counts and latency percentiles of a group of entries.

    Percentiles use linear interpolation between closest ranks (NumPy's default
    ``method="linear"``) over entries that have a latency; ``None`` when none has.

    Attributes:
        count: number of entries.
        p50: median latency in seconds.
        p95: 95th percentile latency in seconds.
        p99: 99th percentile latency in seconds.
        tokens_in: total input tokens.
        tokens_out: total output tokens.
        cost_usd: total known cost.
    """

    count: int
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0


def _groups(value: Mapping[str, GroupStats]) -> Mapping[str, GroupStats]:
    return MappingProxyType(dict(value))


@attrs.frozen(kw_only=True)
class Stats:
    """Statistics over the entries selected by :meth:`History.stats`.

    ``repr()`` prints the groups as aligned tables; in a notebook they show as HTML.

    Attributes:
        total: all selected entries.
        by_user: per user.
        by_outcome: per outcome value (``"ok"``, ``"rejected"``...).
        by_model: per model (``""`` for entries without a model).
    """

    total: GroupStats
    by_user: Mapping[str, GroupStats] = attrs.field(factory=dict, converter=_groups)
    by_outcome: Mapping[str, GroupStats] = attrs.field(factory=dict, converter=_groups)
    by_model: Mapping[str, GroupStats] = attrs.field(factory=dict, converter=_groups)

    def _sections(self) -> list[tuple[str, list[tuple[object, ...]]]]:
        def row(name: str, g: GroupStats) -> tuple[object, ...]:
            ms = _html.fmt_seconds
            return (
                name, g.count, ms(g.p50), ms(g.p95), ms(g.p99),
                g.tokens_in, g.tokens_out, f"{g.cost_usd:.4f}",
            )  # fmt: skip

        out = [("total", [row("all", self.total)])]
        for title, groups in (
            ("by user", self.by_user),
            ("by outcome", self.by_outcome),
            ("by model", self.by_model),
        ):
            if groups:
                out.append((title, [row(k or "(none)", g) for k, g in groups.items()]))
        return out

    def __repr__(self) -> str:
        lines = [f"Stats({self.total.count} entries)"]
        for title, rows in self._sections() if self.total.count else []:
            lines.append(f"  {title}:")
            lines.extend(_html.text_table(_STATS_COLUMNS, rows, indent="    ", right=(2, 3, 4, 7)))
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """The statistics as HTML tables (Jupyter calls it): latency percentiles,
        tokens and cost, in total and per user, outcome and model."""
        parts = [f"<div><b>{self.total.count}</b> entries</div>"]
        for title, rows in self._sections():
            parts.append(f"<div style='margin-top:6px'><b>{_html.esc(title)}</b></div>")
            parts.append(_html.table(_STATS_COLUMNS, rows, right=(2, 3, 4, 7)))
        return _html.box("".join(parts), kind="stats")


_STATS_COLUMNS = ("", "count", "p50", "p95", "p99", "tokens in", "tokens out", "cost (USD)")
