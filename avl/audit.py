"""Audit reports from the History: what was asked, what was refused, and whether the
record itself is intact.

:func:`audit_report` reads the entries of a period once (outcomes, rejections by
violation code, users) and verifies the whole hash chain, and, given anchors kept
outside the database (:meth:`avl.history.History.anchor`), that the chain still reaches
the latest of them (a restored backup or a deleted tail fails it). The report renders
as JSON (:meth:`AuditReport.to_dict`) or as one self-contained HTML page
(:func:`render_html`: no script, every value escaped). ``avl audit report`` is the
command line.

Example:
    >>> from avl.history import History, Entry
    >>> h = History("memory://")
    >>> _ = h.record(Entry(user="ann", allowed=False, violations=("DML",), outcome="rejected"))
    >>> report = audit_report(h, since="1d")
    >>> report.rejections, report.verification.ok
    ({'DML': 1}, True)
"""

from __future__ import annotations

import datetime as _dt
import html
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from avl._clock import Clock, SystemClock
from avl.costs import parse_since
from avl.errors import InvalidInputError

__all__ = [
    "AnchorCheck",
    "AuditReport",
    "ChainCheck",
    "RejectedEntry",
    "UserActivity",
    "audit_report",
    "render_html",
]


@attrs.frozen(kw_only=True)
class ChainCheck:
    """The hash chain's verification.

    Attributes:
        ok: every entry verified.
        checked: entries checked.
        problem: the first problem's kind (``altered``, ``deleted``...), or ``""``.
        entry_id: where the problem shows.
        seq: the chain position where it shows.
        message: the problem in a sentence.
        head_seq: the chain position of the head.
        head_hash: the hash at the head (keep it: it anchors this report).
    """

    ok: bool
    checked: int
    problem: str = ""
    entry_id: str | None = None
    seq: int | None = None
    message: str = ""
    head_seq: int = 0
    head_hash: str = ""


@attrs.frozen(kw_only=True)
class AnchorCheck:
    """One anchor and, for the latest, whether the chain still reaches it.

    Attributes:
        seq: the anchored chain position.
        head_hash: the anchored hash.
        time: when it was taken.
        verified: ``True``/``False`` for the anchor checked, ``None`` for the others
            (the latest anchor covers every earlier one).
        message: the problem, when not verified.
    """

    seq: int
    head_hash: str
    time: float
    verified: bool | None = None
    message: str = ""


@attrs.frozen(kw_only=True)
class UserActivity:
    """One user's entries in the period.

    Attributes:
        user: who.
        entries: how many.
        rejected: refused by SafeQuery.
        errors: ended in an error (database, model, timeout).
        rate_limited: refused by a limit or budget.
        cost_usd: known cost.
    """

    user: str
    entries: int
    rejected: int
    errors: int
    rate_limited: int
    cost_usd: float


@attrs.frozen(kw_only=True)
class RejectedEntry:
    """A refused entry (no question or SQL unless the report was asked for details).

    Attributes:
        id: the entry id.
        seq: its chain position.
        time: when.
        user: who.
        role: the role.
        codes: the violation codes.
        question: the question (with details only).
        sql: the SQL (with details only).
    """

    id: str
    seq: int | None
    time: float | None
    user: str
    role: str
    codes: tuple[str, ...]
    question: str = ""
    sql: str = ""


@attrs.frozen(kw_only=True)
class AuditReport:
    """What :func:`audit_report` found.

    Attributes:
        since: the period's start (epoch seconds).
        until: the period's end.
        generated_at: when the report was made.
        entries: entries in the period.
        outcomes: entries per outcome.
        rejections: violation code -> entries refused with it.
        users: activity per user, most entries first.
        rejected: the latest refused entries (at most ``max_rejected``).
        verification: the chain's verification (the whole chain, not only the period).
        anchors: the anchors given, oldest first.
    """

    since: float
    until: float
    generated_at: float
    entries: int
    outcomes: dict[str, int]
    rejections: dict[str, int]
    users: tuple[UserActivity, ...]
    rejected: tuple[RejectedEntry, ...]
    verification: ChainCheck
    anchors: tuple[AnchorCheck, ...] = ()

    @property
    def ok(self) -> bool:
        """The chain verified, and so did the latest anchor (if any)."""
        return self.verification.ok and all(a.verified is not False for a in self.anchors)

    def to_dict(self) -> dict[str, Any]:
        """As JSON values."""
        out: dict[str, Any] = attrs.asdict(self, recurse=True)
        out["ok"] = self.ok
        out["format"] = "avl.audit.report/1"
        return out


def _entries(history: Any, since: float, until: float) -> Iterable[Any]:
    from avl.history import Query

    backend = getattr(history, "backend", None)
    if backend is not None and callable(getattr(backend, "scan", None)):
        return backend.scan(Query(since=since, until=until))  # type: ignore[no-any-return]
    return history.iter_entries(since=since, until=until)  # type: ignore[no-any-return]


def _chain(report: Any) -> ChainCheck:
    problem = getattr(report, "problem", None)
    return ChainCheck(
        ok=bool(report.ok),
        checked=int(report.checked),
        problem="" if problem is None else str(getattr(problem, "value", problem)),
        entry_id=getattr(report, "entry_id", None),
        seq=getattr(report, "seq", None),
        message=str(getattr(report, "message", "") or ""),
        head_seq=int(getattr(report, "head_seq", 0) or 0),
        head_hash=str(getattr(report, "head_hash", "") or ""),
    )


_ERRORS = frozenset({"error", "db_error", "llm_error", "timeout"})


def audit_report(
    history: Any,
    *,
    since: str | float | _dt.datetime | _dt.date = "30d",
    until: str | float | _dt.datetime | _dt.date | None = None,
    anchors: Sequence[Any] = (),
    details: bool = False,
    max_rejected: int = 100,
    clock: Clock | None = None,
) -> AuditReport:
    """Summarise a period of the History and verify the chain (and its latest anchor).

    Args:
        history: a :class:`~avl.history.History`.
        since: the period's start: ``"30d"``, ``"12h"``, an ISO date, epoch seconds...
        until: its end (default now).
        anchors: anchors taken earlier (:meth:`~avl.history.History.anchor`, kept
            outside the database, e.g. read with :func:`avl.history.read_anchors`);
            the latest is verified against the chain.
        details: include the question and SQL of refused entries (they may hold
            values; off by default).
        max_rejected: at most this many refused entries are listed (the latest).
        clock: the time source for durations.

    Returns:
        The :class:`AuditReport`.

    Raises:
        InvalidInputError: a bad time or bound.
        BackendError: the History could not be read.
    """
    if isinstance(max_rejected, bool) or not isinstance(max_rejected, int) or max_rejected < 0:
        raise InvalidInputError(
            f"max_rejected must be a non-negative integer, got {max_rejected!r}"
        )
    now = (clock or SystemClock()).now()
    start = parse_since(since, now=now)
    end = now + 1e-6 if until is None else parse_since(until, now=now)
    if end <= start:
        raise InvalidInputError("until must be after since")
    outcomes: dict[str, int] = {}
    codes: dict[str, int] = {}
    users: dict[str, list[float]] = {}
    rejected: list[RejectedEntry] = []
    n = 0
    for e in _entries(history, start, end):
        n += 1
        outcome = str(getattr(e.outcome, "value", e.outcome))
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        acc = users.setdefault(e.user, [0, 0, 0, 0, 0.0])
        acc[0] += 1
        refused = e.allowed is False or outcome == "rejected"
        if refused:
            acc[1] += 1
            for code in dict.fromkeys(e.violations):
                codes[code] = codes.get(code, 0) + 1
            rejected.append(
                RejectedEntry(
                    id=str(e.id),
                    seq=e.seq,
                    time=e.time,
                    user=e.user,
                    role=e.role,
                    codes=tuple(e.violations),
                    question=e.question if details else "",
                    sql=e.sql if details else "",
                )
            )
            if len(rejected) > max_rejected:
                del rejected[0]
        if outcome in _ERRORS:
            acc[2] += 1
        if outcome == "rate_limited":
            acc[3] += 1
        acc[4] += float(e.cost_usd or 0.0)
    verification = _chain(history.verify())
    checks: list[AnchorCheck] = []
    ordered = sorted(anchors, key=lambda a: (a.seq, a.time))
    for i, a in enumerate(ordered):
        if i == len(ordered) - 1:
            try:
                r = history.verify(anchor=a)
            except InvalidInputError as exc:  # signed/unsigned mismatch, not an anchor
                checks.append(
                    AnchorCheck(
                        seq=a.seq,
                        head_hash=a.head_hash,
                        time=a.time,
                        verified=False,
                        message=str(exc),
                    )
                )
                continue
            checks.append(
                AnchorCheck(
                    seq=a.seq,
                    head_hash=a.head_hash,
                    time=a.time,
                    verified=bool(r.ok),
                    message=str(getattr(r, "message", "") or ""),
                )
            )
        else:
            checks.append(AnchorCheck(seq=a.seq, head_hash=a.head_hash, time=a.time))
    return AuditReport(
        since=start,
        until=end,
        generated_at=now,
        entries=n,
        outcomes=dict(sorted(outcomes.items(), key=lambda kv: (-kv[1], kv[0]))),
        rejections=dict(sorted(codes.items(), key=lambda kv: (-kv[1], kv[0]))),
        users=tuple(
            sorted(
                (
                    UserActivity(
                        user=u,
                        entries=int(a[0]),
                        rejected=int(a[1]),
                        errors=int(a[2]),
                        rate_limited=int(a[3]),
                        cost_usd=a[4],
                    )
                    for u, a in users.items()
                ),
                key=lambda x: (-x.entries, x.user),
            )
        ),
        rejected=tuple(reversed(rejected)),
        verification=verification,
        anchors=tuple(checks),
    )


def _when(t: float | None) -> str:
    if t is None:
        return ""
    return _dt.datetime.fromtimestamp(t, tz=_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _table(head: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    e = html.escape
    out = ["<table><thead><tr>", *(f"<th>{e(h)}</th>" for h in head), "</tr></thead><tbody>"]
    for r in rows:
        out.append("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in r) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


_CSS = (
    "body{font:14px/1.45 system-ui,sans-serif;margin:2rem;color:#1b1b1b}"
    "h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.6rem}"
    "table{border-collapse:collapse;margin:.4rem 0}"
    "td,th{border:1px solid #ccc;padding:.25rem .6rem;text-align:left}"
    "th{background:#f3f3f3}.ok{color:#11691b;font-weight:600}"
    ".bad{color:#a1140e;font-weight:600}code{font-size:12px}"
)


def render_html(report: AuditReport) -> str:
    """The report as one self-contained HTML page (inline CSS, no script, all escaped).

    Example:
        >>> from avl.history import History
        >>> "<h1>" in render_html(audit_report(History("memory://")))
        True
    """
    e = html.escape
    v = report.verification
    status = (
        '<span class="ok">verified</span>'
        if v.ok
        else f'<span class="bad">FAILED</span>: {e(v.problem)} at seq {e(str(v.seq))} '
        f"({e(v.message)})"
    )
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        "<meta http-equiv=Content-Security-Policy content=\"default-src 'none'; "
        "style-src 'unsafe-inline'\">",
        f"<title>avl audit report {e(_when(report.since))} to {e(_when(report.until))}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>avl audit report</h1>",
        f"<p>Period: {e(_when(report.since))} to {e(_when(report.until))}. "
        f"Generated {e(_when(report.generated_at))}. "
        f"Overall: {'<span class=ok>OK</span>' if report.ok else '<span class=bad>NOT OK</span>'}"
        "</p>",
        "<h2>Chain verification</h2>",
        f"<p>{status}; {v.checked} entries checked; head seq {v.head_seq}, "
        f"hash <code>{e(v.head_hash)}</code></p>",
    ]
    if report.anchors:
        parts.append("<h2>Anchors</h2>")
        parts.append(
            _table(
                ("seq", "taken", "head hash", "verified", "message"),
                (
                    (
                        a.seq,
                        _when(a.time),
                        a.head_hash,
                        {True: "yes", False: "NO", None: "(covered by the latest)"}[a.verified],
                        a.message,
                    )
                    for a in report.anchors
                ),
            )
        )
    parts.append(f"<h2>Entries: {report.entries}</h2>")
    parts.append(_table(("outcome", "entries"), report.outcomes.items()))
    parts.append("<h2>Rejections by code</h2>")
    parts.append(
        _table(("code", "entries"), report.rejections.items())
        if report.rejections
        else "<p>none</p>"
    )
    parts.append("<h2>Users</h2>")
    parts.append(
        _table(
            ("user", "entries", "rejected", "errors", "rate limited", "cost (USD)"),
            (
                (
                    u.user or "-",
                    u.entries,
                    u.rejected,
                    u.errors,
                    u.rate_limited,
                    f"{u.cost_usd:.4f}",
                )
                for u in report.users
            ),
        )
    )
    if report.rejected:
        parts.append("<h2>Latest refused entries</h2>")
        details = any(r.question or r.sql for r in report.rejected)
        head: tuple[str, ...] = ("time", "seq", "user", "role", "codes", "id")
        if details:
            head += ("question", "sql")
        parts.append(
            _table(
                head,
                (
                    (
                        _when(r.time),
                        r.seq,
                        r.user,
                        r.role,
                        ", ".join(r.codes),
                        r.id,
                        *((r.question, r.sql) if details else ()),
                    )
                    for r in report.rejected
                ),
            )
        )
    parts.append("</body></html>\n")
    return "".join(parts)
