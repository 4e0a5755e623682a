"""Showback and chargeback from the History, and the month-end forecast.

Every question the Assistant answers is in the :class:`~avl.history.History` with its
model, tokens and cost, so the report needs no other store: it streams the entries of
the period once and groups them.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from avl._clock import Clock, SystemClock
from avl.errors import InvalidInputError

__all__ = [
    "FORECAST_METHOD",
    "GROUPS",
    "CostReport",
    "CostRow",
    "Forecast",
    "cost_report",
    "daily_costs",
    "forecast_month",
    "parse_since",
]

#: What a report can be grouped by.
GROUPS: tuple[str, ...] = ("user", "role", "model", "outcome", "day")

#: How :func:`forecast_month` projects (also in every :class:`Forecast`).
FORECAST_METHOD = (
    "month-to-date actual spend of the complete days, plus each remaining day "
    "(today included) projected by an ordinary least-squares line fitted to the daily "
    "totals of the last {window} complete days (days without spend count as 0), "
    "floored at 0; today counts at least what it has already spent; with fewer than "
    "{min_days} complete days of data the line is replaced by their mean"
)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|min|h|d|w)\s*$", re.IGNORECASE)
_UNIT_S = {"m": 60.0, "min": 60.0, "h": 3600.0, "d": 86_400.0, "w": 604_800.0}


def parse_since(value: str | float | _dt.datetime | _dt.date, *, now: float) -> float:
    """A start time from ``"30d"``, ``"12h"``, ``"2w"``, ``"90m"``, an ISO date or time
    (UTC unless it says otherwise), epoch seconds, or a date/datetime.

    Raises:
        InvalidInputError: anything else.

    Example:
        >>> parse_since("1d", now=1_000_000.0)
        913600.0
        >>> parse_since("2025-12-01", now=0.0)
        1764547200.0
    """
    if isinstance(value, bool):
        raise InvalidInputError(f"since: expected a duration, a date or a time, got {value!r}")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise InvalidInputError(f"since: not a finite time: {value!r}")
        return float(value)
    if isinstance(value, _dt.datetime):
        t = value if value.tzinfo is not None else value.replace(tzinfo=_dt.timezone.utc)
        return t.timestamp()
    if isinstance(value, _dt.date):
        return _dt.datetime(value.year, value.month, value.day, tzinfo=_dt.timezone.utc).timestamp()
    if not isinstance(value, str):
        raise InvalidInputError(f"since: expected a duration, a date or a time, got {value!r}")
    m = _DURATION.match(value)
    if m:
        return now - float(m.group(1)) * _UNIT_S[m.group(2).lower()]
    try:
        parsed = _dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInputError(
            f"since: {value!r} is not a duration (30d, 12h, 2w, 90m) or an ISO date/time"
        ) from None
    return parse_since(parsed, now=now)


def _day(t: float) -> str:
    return _dt.datetime.fromtimestamp(t, tz=_dt.timezone.utc).strftime("%Y-%m-%d")


@attrs.frozen(kw_only=True)
class CostRow:
    """One group of a report.

    Attributes:
        key: the user, role, model, outcome or day (``""`` when the entries had none).
        questions: entries in the group.
        tokens_in: input tokens.
        tokens_out: output tokens.
        cost_usd: known cost.
        share: this group's part of the report's cost (0..1; 0 when the total is 0).
        unpriced: entries whose cost is unknown (a model missing from the price table).
    """

    key: str
    questions: int
    tokens_in: int
    tokens_out: int
    cost_usd: float
    share: float
    unpriced: int = 0


@attrs.frozen(kw_only=True)
class Forecast:
    """The month-end projection of spend.

    Attributes:
        month: ``"2025-12"``.
        month_to_date_usd: spent in the month so far (today's partial day included).
        projected_usd: the projected total for the whole month.
        daily_rate_usd: the trend's value for today.
        days_elapsed: complete days of the month before today.
        days_in_month: days in the month.
        method: how the projection was made.
    """

    month: str
    month_to_date_usd: float
    projected_usd: float
    daily_rate_usd: float
    days_elapsed: int
    days_in_month: int
    method: str

    def to_dict(self) -> dict[str, Any]:
        """As JSON values."""
        return attrs.asdict(self)


@attrs.frozen(kw_only=True)
class CostReport:
    """Showback/chargeback: cost, tokens and questions per group over a period.

    Attributes:
        by: the grouping (user, role, model, outcome, day).
        since: the start (epoch seconds, inclusive).
        until: the end (epoch seconds, exclusive).
        rows: the groups, most expensive first.
        total_usd: the cost of every entry in the period.
        questions: the entries in the period.
        forecast: the month-end forecast, when asked for.
    """

    by: str
    since: float
    until: float
    rows: tuple[CostRow, ...]
    total_usd: float
    questions: int
    forecast: Forecast | None = None

    COLUMNS = ("key", "questions", "tokens_in", "tokens_out", "cost_usd", "share", "unpriced")

    def to_dict(self) -> dict[str, Any]:
        """As JSON values."""
        return {
            "by": self.by,
            "since": self.since,
            "until": self.until,
            "total_usd": round(self.total_usd, 6),
            "questions": self.questions,
            "rows": [
                {**attrs.asdict(r), "cost_usd": round(r.cost_usd, 6), "share": round(r.share, 4)}
                for r in self.rows
            ],
            "forecast": None if self.forecast is None else self.forecast.to_dict(),
        }

    def to_csv(self) -> str:
        """The rows as CSV with a header (the grouping names the first column)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([self.by, *self.COLUMNS[1:]])
        for r in self.rows:
            writer.writerow(
                [
                    r.key,
                    r.questions,
                    r.tokens_in,
                    r.tokens_out,
                    f"{r.cost_usd:.6f}",
                    f"{r.share:.4f}",
                    r.unpriced,
                ]
            )
        return out.getvalue()


def _entries(history: Any, since: float, until: float) -> Iterable[Any]:
    from avl.history import Query

    backend = getattr(history, "backend", None)
    if backend is not None and callable(getattr(backend, "scan", None)):
        return backend.scan(Query(since=since, until=until))  # type: ignore[no-any-return]
    return history.iter_entries(since=since, until=until)  # type: ignore[no-any-return]


def _key(entry: Any, by: str) -> str:
    if by == "day":
        return _day(float(entry.time or 0.0))
    value = getattr(entry, by)
    return str(getattr(value, "value", value) or "")


def cost_report(
    history: Any,
    *,
    by: str = "user",
    since: str | float | _dt.datetime | _dt.date = "30d",
    until: str | float | _dt.datetime | _dt.date | None = None,
    forecast: bool = False,
    clock: Clock | None = None,
) -> CostReport:
    """Cost, tokens and questions per user, role, model, outcome or day, from a History.

    Args:
        history: a :class:`~avl.history.History`.
        by: ``"user"``, ``"role"``, ``"model"``, ``"outcome"`` or ``"day"``.
        since: the start: ``"30d"``, ``"12h"``, an ISO date, epoch seconds...
        until: the end (default now).
        forecast: add the month-end :class:`Forecast` (reads the last 28 days and the
            month so far).
        clock: the time source for durations and the forecast.

    Returns:
        The report, most expensive group first.

    Raises:
        InvalidInputError: an unknown grouping or a bad time.
        BackendError: the History could not be read.

    Example:
        >>> from avl.history import History, Entry
        >>> h = History("memory://")
        >>> _ = h.record(Entry(user="ann", model="openai/gpt-4o", cost_usd=0.25))
        >>> cost_report(h, by="user").rows[0].cost_usd
        0.25
    """
    if by not in GROUPS:
        raise InvalidInputError(f"by: expected one of {', '.join(GROUPS)}, got {by!r}")
    now = (clock or SystemClock()).now()
    start = parse_since(since, now=now)
    end = now + 1e-6 if until is None else parse_since(until, now=now)
    if end <= start:
        raise InvalidInputError("until must be after since")
    groups: dict[str, list[float]] = {}
    total = 0.0
    n = 0
    for e in _entries(history, start, end):
        acc = groups.get(_key(e, by))
        if acc is None:
            acc = groups[_key(e, by)] = [0, 0, 0, 0.0, 0]
        acc[0] += 1
        acc[1] += int(e.tokens_in or 0)
        acc[2] += int(e.tokens_out or 0)
        if e.cost_usd is None:
            if e.tokens_in or e.tokens_out:
                acc[4] += 1
        else:
            acc[3] += float(e.cost_usd)
            total += float(e.cost_usd)
        n += 1
    rows = tuple(
        sorted(
            (
                CostRow(
                    key=k,
                    questions=int(a[0]),
                    tokens_in=int(a[1]),
                    tokens_out=int(a[2]),
                    cost_usd=a[3],
                    share=(a[3] / total) if total > 0 else 0.0,
                    unpriced=int(a[4]),
                )
                for k, a in groups.items()
            ),
            key=lambda r: (-r.cost_usd, -r.questions, r.key),
        )
    )
    projection = None
    if forecast:
        today = _dt.datetime.fromtimestamp(now, tz=_dt.timezone.utc).date()
        first = today.replace(day=1)
        back = min(first, today - _dt.timedelta(days=28))
        projection = forecast_month(daily_costs(history, since=back, until=now), today=today)
    return CostReport(
        by=by,
        since=start,
        until=end,
        rows=rows,
        total_usd=total,
        questions=n,
        forecast=projection,
    )


def daily_costs(
    history: Any,
    *,
    since: str | float | _dt.datetime | _dt.date,
    until: str | float | _dt.datetime | _dt.date | None = None,
    clock: Clock | None = None,
) -> dict[_dt.date, float]:
    """Known cost per UTC day (days without entries are absent).

    Raises:
        InvalidInputError: a bad time.
        BackendError: the History could not be read.
    """
    now = (clock or SystemClock()).now()
    start = parse_since(since, now=now)
    end = now + 1e-6 if until is None else parse_since(until, now=now)
    out: dict[_dt.date, float] = {}
    for e in _entries(history, start, end):
        if e.cost_usd is None or e.time is None:
            continue
        d = _dt.datetime.fromtimestamp(float(e.time), tz=_dt.timezone.utc).date()
        out[d] = out.get(d, 0.0) + float(e.cost_usd)
    return out


def forecast_month(
    daily: Mapping[_dt.date, float],
    *,
    today: _dt.date,
    window_days: int = 28,
    min_days: int = 7,
) -> Forecast:
    """Project the month's total spend from the daily trend (see :data:`FORECAST_METHOD`).

    Args:
        daily: cost per UTC day (missing days count as 0 within the window).
        today: the day in progress (its spend is partial).
        window_days: complete days the trend line is fitted to.
        min_days: below this many complete days of data, use their mean instead.

    Returns:
        The :class:`Forecast`.

    Raises:
        InvalidInputError: a bad window.

    Example:
        >>> import datetime as dt
        >>> days = {dt.date(2025, 12, d): 1.0 * d for d in range(1, 11)}
        >>> forecast_month(days, today=dt.date(2025, 12, 11)).projected_usd
        496.0
    """
    if isinstance(window_days, bool) or not isinstance(window_days, int) or window_days < 2:
        raise InvalidInputError(f"window_days must be an integer >= 2, got {window_days!r}")
    first = today.replace(day=1)
    next_month = (first + _dt.timedelta(days=32)).replace(day=1)
    days_in_month = (next_month - first).days
    elapsed = (today - first).days
    complete = [today - _dt.timedelta(days=i) for i in range(window_days, 0, -1)]
    known = [d for d in complete if d >= min(daily, default=today)]
    xs = [(d - today).days for d in known]
    ys = [float(daily.get(d, 0.0)) for d in known]
    if len(xs) >= max(2, min_days):
        mx = sum(xs) / len(xs)
        my = sum(ys) / len(ys)
        sxx = sum((x - mx) ** 2 for x in xs)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
        intercept = my - slope * mx

        def trend(x: int) -> float:
            return max(0.0, intercept + slope * x)
    else:
        mean = sum(ys) / len(ys) if ys else float(daily.get(today, 0.0))

        def trend(x: int) -> float:
            return max(0.0, mean)

    month_complete = sum(v for d, v in daily.items() if first <= d < today)
    today_actual = float(daily.get(today, 0.0))
    remaining = sum(trend(x) for x in range(1, days_in_month - elapsed))
    projected = month_complete + max(today_actual, trend(0)) + remaining
    return Forecast(
        month=first.strftime("%Y-%m"),
        month_to_date_usd=month_complete + today_actual,
        projected_usd=projected,
        daily_rate_usd=trend(0),
        days_elapsed=elapsed,
        days_in_month=days_in_month,
        method=FORECAST_METHOD.format(window=window_days, min_days=min_days),
    )
