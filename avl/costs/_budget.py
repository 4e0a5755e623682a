"""Cost budgets in money per user, role or team: reserve, settle, refund, alert.

A call reserves its most expensive estimate on every budget that applies to the
caller *before* it reaches the model, and settles with the real cost afterwards (a
failed call is refunded). A reservation that would take any budget over its limit is
refused with :class:`~avl.errors.BudgetExceededError`, naming the budget, what was
spent and when the period starts afresh. Crossing 50, 80 and 100% of a budget (or a
refusal) fires an alert once per budget and period, through a callback
(:class:`WebhookAlerts` posts it as JSON).

Periods are calendar periods in UTC (a day, an ISO week, a month): budgets start afresh
at midnight, on Monday, on the first of the month. (The rate limiter's windows are
rolling or aligned to the epoch, so they do not fit money budgets; the reserve, settle
and refund shape is the same as :meth:`avl.ratelimit.RateLimiter.reserve`.)
"""

from __future__ import annotations

import datetime as _dt
import enum
import logging
import math
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs

from avl._clock import Clock, SystemClock
from avl.costs._ledger import NANO, Ledger, ledger_from_url
from avl.errors import (
    BackendUnavailableError,
    BudgetExceededError,
    ConfigError,
    InvalidInputError,
)
from avl.ratelimit import OnUnavailable

__all__ = [
    "DEFAULT_THRESHOLDS",
    "AlertCallback",
    "Budget",
    "BudgetAlert",
    "BudgetReservation",
    "BudgetStatus",
    "Budgets",
    "Period",
    "Scope",
    "WebhookAlerts",
    "estimate_cost",
]

log = logging.getLogger("avl.costs")

#: The default alert thresholds (shares of a budget).
DEFAULT_THRESHOLDS: tuple[float, ...] = (0.5, 0.8, 1.0)

#: How long a period's totals are kept after it ends (for reports of last month).
_KEEP_S = 40 * 86_400


class Scope(str, enum.Enum):
    """Who a budget is for."""

    USER = "user"
    ROLE = "role"
    TEAM = "team"


class Period(str, enum.Enum):
    """A budget's calendar period, in UTC."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"

    def window(self, now: float) -> tuple[str, float, float]:
        """The period containing ``now``: its label, start and end (epoch seconds).

        Example:
            >>> Period.MONTH.window(1_764_892_800.0)[0]  # 2025-12-05
            '2025-12'
        """
        t = _dt.datetime.fromtimestamp(now, tz=_dt.timezone.utc)
        if self is Period.DAY:
            start = t.replace(hour=0, minute=0, second=0, microsecond=0)
            end = start + _dt.timedelta(days=1)
            label = start.strftime("%Y-%m-%d")
        elif self is Period.WEEK:
            day = t.replace(hour=0, minute=0, second=0, microsecond=0)
            start = day - _dt.timedelta(days=day.weekday())
            end = start + _dt.timedelta(days=7)
            year, week, _ = start.isocalendar()
            label = f"{year}-W{week:02d}"
        else:
            start = t.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
            end = (start + _dt.timedelta(days=32)).replace(day=1)
            label = start.strftime("%Y-%m")
        return label, start.timestamp(), end.timestamp()


def _limit(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
        or value > 9_000_000
    ):
        raise ConfigError(
            f"a budget's limit_usd must be a positive number up to 9,000,000, got {value!r}"
        )


def _name(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not value or ":" in value:
        raise ConfigError(f"a budget's name must be a non-empty string without ':', got {value!r}")


@attrs.frozen(kw_only=True)
class Budget:
    """A limit in US dollars per period for one user, role or team (or each of them).

    Attributes:
        scope: user, role or team.
        name: the user, role or team; ``"*"`` gives each one its own budget of this
            size (a more specific budget for the same name wins).
        limit_usd: the most the period may cost.
        period: day, week or month (default).

    Example:
        >>> Budget(scope="user", name="*", limit_usd=5.0).key("ann", "2025-12")
        'user:ann:month:2025-12'
    """

    scope: Scope = attrs.field(converter=Scope)
    name: str = attrs.field(validator=_name)
    limit_usd: float = attrs.field(validator=_limit)
    period: Period = attrs.field(default=Period.MONTH, converter=Period)

    def key(self, who: str, label: str) -> str:
        """The ledger key of ``who``'s total in the period ``label``."""
        return f"{self.scope.value}:{who}:{self.period.value}:{label}"


@attrs.frozen(kw_only=True)
class BudgetStatus:
    """Where one budget stands.

    Attributes:
        scope: user, role or team.
        name: whose budget (a real name, never ``"*"``).
        period: the period's label (``"2025-12"``).
        spent_usd: spent and reserved so far in the period.
        limit_usd: the budget.
        resets_at: when the period ends (epoch seconds).
    """

    scope: Scope
    name: str
    period: str
    spent_usd: float
    limit_usd: float
    resets_at: float

    @property
    def share(self) -> float:
        """``spent_usd / limit_usd``."""
        return self.spent_usd / self.limit_usd

    @property
    def remaining_usd(self) -> float:
        """What is left (never negative)."""
        return max(0.0, self.limit_usd - self.spent_usd)

    @property
    def budget(self) -> str:
        """``"scope:name"``."""
        return f"{self.scope.value}:{self.name}"


@attrs.frozen(kw_only=True)
class BudgetAlert:
    """A budget crossed a threshold (or refused a call).

    Attributes:
        status: the budget's state when it happened.
        threshold: the share crossed (0.5, 0.8, 1.0).
        refused: whether a call was refused (the budget is exhausted).
        at: when (epoch seconds).
    """

    status: BudgetStatus
    threshold: float
    refused: bool
    at: float

    def to_dict(self) -> dict[str, Any]:
        """The alert as JSON values (what :class:`WebhookAlerts` posts)."""
        s = self.status
        return {
            "kind": "avl.budget.alert",
            "budget": s.budget,
            "scope": s.scope.value,
            "name": s.name,
            "period": s.period,
            "threshold": self.threshold,
            "refused": self.refused,
            "spent_usd": round(s.spent_usd, 6),
            "limit_usd": s.limit_usd,
            "share": round(s.share, 4),
            "resets_at": s.resets_at,
            "at": self.at,
        }


@attrs.frozen(kw_only=True)
class BudgetReservation:
    """What :meth:`Budgets.reserve` took; settle or refund it once.

    Attributes:
        keys: the ledger keys charged.
        amount_usd: the amount reserved on each.
        statuses: the budgets after reserving.
        ttls_s: how long each key is kept.
    """

    keys: tuple[str, ...]
    amount_usd: float
    statuses: tuple[BudgetStatus, ...]
    ttls_s: tuple[int, ...]


def _usd(value: float, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInputError(f"{name} must be a finite number of dollars, got {value!r}")
    if value < 0:
        raise InvalidInputError(f"{name} must not be negative, got {value!r}")
    return round(value * NANO)


def estimate_cost(
    model: str,
    *,
    input_tokens: int,
    max_output_tokens: int,
    cost_table: Any = None,
) -> float:
    """The most a model call can cost: the prompt's tokens at the input price plus
    ``max_output_tokens`` at the output price (what :meth:`Budgets.reserve` takes).

    Args:
        model: ``"provider/name"`` (``"openai/gpt-4o-mini"``).
        input_tokens: the prompt's tokens.
        max_output_tokens: the most the model may write.
        cost_table: a :class:`~avl.metrics.CostTable` (default: the default prices).

    Returns:
        The estimate in USD; 0.0 for a model missing from the table (its calls are
        then settled with their reported cost, if any).

    Example:
        >>> round(estimate_cost("openai/gpt-4o-mini", input_tokens=1000, max_output_tokens=500), 6)
        0.00045
    """
    from avl.metrics import CostTable

    table = cost_table if cost_table is not None else CostTable.default()
    provider, _, name = model.partition("/")
    cost = table.cost_usd(
        provider, name, input_tokens=max(0, input_tokens), output_tokens=max(0, max_output_tokens)
    )
    return 0.0 if cost is None else float(cost)


#: What receives budget alerts.
AlertCallback = Callable[[BudgetAlert], None]


class Budgets:
    """The budgets of a console: who may still spend how much, shared by every process
    when the ledger is Redis.

    Args:
        budgets: the :class:`Budget` values.
        ledger: ``"memory://"`` (default, one process) or ``"redis://host:6379/0"``, or a
            :class:`~avl.costs.Ledger`.
        teams: user -> team (a caller's team when none is given to :meth:`reserve`).
        thresholds: alert at these shares of a budget (default 50, 80, 100%).
        on_alert: called with each :class:`BudgetAlert` (a :class:`WebhookAlerts`, a
            function); errors it raises are logged, never raised.
        metrics: a :class:`~avl.metrics.Metrics`; each change sets the gauges
            ``avl_budget_spent_usd`` and ``avl_budget_limit_usd`` (scope, name,
            period) and refusals count in ``avl_budget_refusals_total`` (scope).
        on_unavailable: when the ledger cannot be reached: ``"raise"`` (default,
            :class:`~avl.errors.BackendUnavailableError`), ``"allow"`` (fail open,
            the call is not charged) or ``"deny"`` (fail closed, refused).
        clock: the time source (periods are read from ``now()``).

    Raises:
        ConfigError: a bad budget, threshold, ledger URL, or two budgets for the
            same scope and name.

    Example:
        >>> budgets = Budgets([Budget(scope="user", name="*", limit_usd=1.0)])
        >>> r = budgets.reserve(0.30, user="ann")
        >>> budgets.settle(r, 0.12)[0].spent_usd
        0.12
    """

    def __init__(
        self,
        budgets: Iterable[Budget],
        *,
        ledger: str | Ledger = "memory://",
        teams: Mapping[str, str] | None = None,
        thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
        on_alert: AlertCallback | None = None,
        metrics: Any = None,
        on_unavailable: str | OnUnavailable = OnUnavailable.RAISE,
        clock: Clock | None = None,
    ) -> None:
        self.budgets: tuple[Budget, ...] = tuple(budgets)
        seen: dict[tuple[Scope, str], Budget] = {}
        for b in self.budgets:
            if not isinstance(b, Budget):
                raise ConfigError(f"expected Budget values, got {type(b).__name__}")
            if (b.scope, b.name) in seen:
                raise ConfigError(f"two budgets for {b.scope.value} {b.name!r}")
            seen[(b.scope, b.name)] = b
        self._by: Mapping[tuple[Scope, str], Budget] = seen
        ts = tuple(float(t) for t in thresholds)
        if any(not 0 < t <= 1 for t in ts) or list(ts) != sorted(set(ts)):
            raise ConfigError(f"thresholds must be ascending shares in (0, 1], got {thresholds!r}")
        self.thresholds = ts
        self.teams: Mapping[str, str] = dict(teams or {})
        self.ledger: Ledger = ledger_from_url(ledger) if isinstance(ledger, str) else ledger
        self.on_alert = on_alert
        self.metrics = metrics
        try:
            self.on_unavailable = OnUnavailable(on_unavailable)
        except ValueError:
            raise ConfigError(
                f"on_unavailable must be raise, allow or deny, got {on_unavailable!r}"
            ) from None
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._lock = threading.Lock()

    # -- config ----------------------------------------------------------------------

    @classmethod
    def from_config(
        cls,
        config: Mapping[str, Any],
        *,
        metrics: Any = None,
        on_alert: AlertCallback | None = None,
        clock: Clock | None = None,
    ) -> Budgets:
        """Build from the ``[budgets]`` table of a console config.

        .. code-block:: toml

            [budgets]
            period = "month"            # day, week or month (default month)
            storage = "redis://cache:6379/0"   # default memory://
            alerts = [0.5, 0.8, 1.0]
            webhook = "https://hooks.example.com/avl-budgets"
            on_unavailable = "raise"    # or allow / deny
            user = { "*" = 5.0, ann = 50.0 }   # USD per period
            role = { analyst = 200.0 }
            team = { data = 1000.0 }
            teams = { ann = "data", bob = "data" }   # user -> team

        Raises:
            ConfigError: an unknown key or a bad value.
        """
        if not isinstance(config, Mapping):
            raise ConfigError("budgets: expected a table")
        known = {"period", "storage", "alerts", "webhook", "on_unavailable", "teams"}
        known |= {s.value for s in Scope}
        unknown = set(config) - known
        if unknown:
            raise ConfigError(
                f"budgets: unknown key(s) {', '.join(sorted(unknown))} "
                f"(known: {', '.join(sorted(known))})"
            )
        try:
            period = Period(config.get("period", "month"))
        except ValueError:
            raise ConfigError(
                f"budgets.period must be day, week or month, got {config.get('period')!r}"
            ) from None
        budgets: list[Budget] = []
        for scope in Scope:
            table = config.get(scope.value) or {}
            if not isinstance(table, Mapping):
                raise ConfigError(f"budgets.{scope.value}: expected a table of name = USD")
            for name, limit in table.items():
                budgets.append(Budget(scope=scope, name=str(name), limit_usd=limit, period=period))
        teams = config.get("teams") or {}
        if not isinstance(teams, Mapping) or not all(isinstance(v, str) for v in teams.values()):
            raise ConfigError("budgets.teams: expected a table of user = team")
        webhook = config.get("webhook")
        if webhook is not None and on_alert is None:
            if not isinstance(webhook, str):
                raise ConfigError("budgets.webhook: expected a URL")
            on_alert = WebhookAlerts(webhook)
        alerts = config.get("alerts", DEFAULT_THRESHOLDS)
        if not isinstance(alerts, (list, tuple)):
            raise ConfigError("budgets.alerts: expected a list of shares such as [0.5, 0.8, 1.0]")
        return cls(
            budgets,
            ledger=str(config.get("storage", "memory://")),
            teams={str(k): v for k, v in teams.items()},
            thresholds=alerts,
            on_alert=on_alert,
            metrics=metrics,
            on_unavailable=config.get("on_unavailable", "raise"),
            clock=clock,
        )

    # -- which budgets ---------------------------------------------------------------

    def applicable(
        self, *, user: str, role: str | None = None, team: str | None = None
    ) -> list[tuple[Budget, str]]:
        """The budgets a caller spends from, with whose name each is kept under.

        A budget for the exact name wins over the ``"*"`` one of the same scope.
        """
        if team is None:
            team = self.teams.get(user)
        out: list[tuple[Budget, str]] = []
        for scope, who in ((Scope.USER, user), (Scope.ROLE, role), (Scope.TEAM, team)):
            if not who:
                continue
            b = self._by.get((scope, who)) or self._by.get((scope, "*"))
            if b is not None:
                out.append((b, who))
        return out

    def _plan(
        self, user: str, role: str | None, team: str | None
    ) -> tuple[list[tuple[Budget, str, str, float]], list[str], list[int], list[int]]:
        now = self._clock.now()
        rows: list[tuple[Budget, str, str, float]] = []
        keys: list[str] = []
        limits: list[int] = []
        ttls: list[int] = []
        for b, who in self.applicable(user=user, role=role, team=team):
            label, _start, end = b.period.window(now)
            rows.append((b, who, label, end))
            keys.append(b.key(who, label))
            limits.append(round(b.limit_usd * NANO))
            ttls.append(int(end - now) + _KEEP_S)
        return rows, keys, limits, ttls

    # -- the operations --------------------------------------------------------------

    def reserve(
        self,
        estimate_usd: float,
        *,
        user: str,
        role: str | None = None,
        team: str | None = None,
    ) -> BudgetReservation:
        """Take ``estimate_usd`` (the most the call can cost) from every applicable budget.

        Args:
            estimate_usd: the call's most expensive estimate (prompt tokens at the
                input price plus ``max_tokens`` at the output price).
            user: who calls.
            role: the caller's role.
            team: the caller's team (default: from ``teams``).

        Returns:
            The reservation to :meth:`settle` (or :meth:`refund`) once.

        Raises:
            BudgetExceededError: a budget would go over its limit (nothing is taken).
            InvalidInputError: a negative or non-finite estimate, or no user.
            BackendUnavailableError: the ledger is unreachable and
                ``on_unavailable="raise"``.
        """
        if not isinstance(user, str) or not user:
            raise InvalidInputError("user must be a non-empty string")
        amount = _usd(estimate_usd, "estimate_usd")
        rows, keys, limits, ttls = self._plan(user, role, team)
        if not keys:
            return BudgetReservation(keys=(), amount_usd=0.0, statuses=(), ttls_s=())
        try:
            ok, totals = self.ledger.reserve(keys, amount, limits, ttls)
        except BackendUnavailableError as exc:
            return self._unavailable(exc, rows)
        statuses = tuple(
            BudgetStatus(
                scope=b.scope,
                name=who,
                period=label,
                spent_usd=total / NANO,
                limit_usd=b.limit_usd,
                resets_at=end,
            )
            for (b, who, label, end), total in zip(rows, totals, strict=True)
        )
        self._gauges(statuses)
        if not ok:
            worst = next(
                (s for s in statuses if s.spent_usd * NANO + amount > s.limit_usd * NANO),
                statuses[0],
            )
            self._count_refusal(worst)
            self._alert(worst, 1.0, refused=True)
            log.warning(
                "budget %s refused a call: spent %.6f of %.2f USD in %s",
                worst.budget,
                worst.spent_usd,
                worst.limit_usd,
                worst.period,
                extra={"outcome": "budget_exceeded", "budget": worst.budget},
            )
            raise BudgetExceededError(
                f"budget {worst.budget} ({worst.limit_usd:g} USD per "
                f"{self._by_status(worst).period.value}) is spent: {worst.spent_usd:.4f} USD "
                f"used in {worst.period}, and this call may cost up to {amount / NANO:.4f} USD",
                budget=worst.budget,
                period=worst.period,
                spent_usd=worst.spent_usd,
                limit_usd=worst.limit_usd,
                retry_after_s=max(0.0, worst.resets_at - self._clock.now()),
            )
        return BudgetReservation(
            keys=tuple(keys), amount_usd=amount / NANO, statuses=statuses, ttls_s=tuple(ttls)
        )

    def settle(self, reservation: BudgetReservation, actual_usd: float) -> tuple[BudgetStatus, ...]:
        """Replace a reservation by the real cost (which may go past the limit: the
        work is done); fires the alerts of the thresholds crossed.

        Returns:
            The budgets after settling.

        Raises:
            InvalidInputError: a negative or non-finite cost.
            BackendUnavailableError: the ledger is unreachable (``"raise"`` mode).
        """
        actual = _usd(actual_usd, "actual_usd")
        return self._adjust(reservation, actual - round(reservation.amount_usd * NANO))

    def refund(self, reservation: BudgetReservation) -> tuple[BudgetStatus, ...]:
        """Give a reservation back (the call failed before costing anything).

        Raises:
            BackendUnavailableError: the ledger is unreachable (``"raise"`` mode).
        """
        return self._adjust(reservation, -round(reservation.amount_usd * NANO), alert=False)

    def _adjust(
        self, reservation: BudgetReservation, delta: int, *, alert: bool = True
    ) -> tuple[BudgetStatus, ...]:
        if not reservation.keys:
            return ()
        try:
            totals = self.ledger.adjust(list(reservation.keys), delta, list(reservation.ttls_s))
        except BackendUnavailableError as exc:
            if self.on_unavailable is OnUnavailable.RAISE:
                raise
            log.warning("budget ledger unavailable; settlement lost: %s", exc)
            return reservation.statuses
        statuses = tuple(
            attrs.evolve(s, spent_usd=t / NANO)
            for s, t in zip(reservation.statuses, totals, strict=True)
        )
        self._gauges(statuses)
        if alert:
            for s in statuses:
                for t in self.thresholds:
                    if s.share >= t:
                        self._alert(s, t, refused=False)
        return statuses

    def status(
        self, *, user: str, role: str | None = None, team: str | None = None
    ) -> tuple[BudgetStatus, ...]:
        """Where every budget of a caller stands now.

        Raises:
            BackendUnavailableError: the ledger is unreachable.
        """
        rows, keys, _limits, _ttls = self._plan(user, role, team)
        totals = self.ledger.spent(keys)
        return tuple(
            BudgetStatus(
                scope=b.scope,
                name=who,
                period=label,
                spent_usd=t / NANO,
                limit_usd=b.limit_usd,
                resets_at=end,
            )
            for (b, who, label, end), t in zip(rows, totals, strict=True)
        )

    def close(self) -> None:
        """Release the ledger's connections."""
        self.ledger.close()

    # -- helpers ---------------------------------------------------------------------

    def _by_status(self, s: BudgetStatus) -> Budget:
        return self._by.get((s.scope, s.name)) or self._by[(s.scope, "*")]

    def _unavailable(
        self, exc: BackendUnavailableError, rows: list[tuple[Budget, str, str, float]]
    ) -> BudgetReservation:
        mode = self.on_unavailable
        if mode is OnUnavailable.RAISE:
            raise exc
        b, who, label, _end = rows[0]
        log.warning(
            "budget ledger unavailable; failing %s: %s",
            "open" if mode is OnUnavailable.ALLOW else "closed",
            exc,
        )
        if mode is OnUnavailable.ALLOW:
            return BudgetReservation(keys=(), amount_usd=0.0, statuses=(), ttls_s=())
        raise BudgetExceededError(
            f"budget {b.scope.value}:{who} cannot be checked (the ledger is unavailable) "
            "and budgets fail closed",
            budget=f"{b.scope.value}:{who}",
            period=label,
            spent_usd=math.nan,
            limit_usd=b.limit_usd,
            retry_after_s=1.0,
        ) from exc

    def _alert(self, s: BudgetStatus, threshold: float, *, refused: bool) -> None:
        key = f"{s.scope.value}:{s.name}:{self._by_status(s).period.value}:{s.period}"
        mark = f"{key}:alert:{threshold:g}"
        try:
            first = self.ledger.mark(mark, max(1, int(s.resets_at - self._clock.now()) + _KEEP_S))
        except BackendUnavailableError as exc:
            log.warning("budget ledger unavailable; alert not deduplicated: %s", exc)
            first = True
        if not first:
            return
        alert = BudgetAlert(status=s, threshold=threshold, refused=refused, at=self._clock.now())
        log.warning(
            "budget %s at %.0f%% of %.2f USD in %s%s",
            s.budget,
            100 * s.share,
            s.limit_usd,
            s.period,
            " (a call was refused)" if refused else "",
            extra={"budget": s.budget, "threshold": threshold},
        )
        if self.on_alert is not None:
            try:
                self.on_alert(alert)
            except Exception:  # an alert sink must never break a request
                log.exception("budget alert callback failed for %s", s.budget)

    def _gauges(self, statuses: Iterable[BudgetStatus]) -> None:
        set_gauge = getattr(self.metrics, "set_gauge", None)
        if set_gauge is None:
            return
        for s in statuses:
            labels = {"scope": s.scope.value, "name": s.name, "period": s.period}
            set_gauge("budget_spent_usd", s.spent_usd, **labels)
            set_gauge("budget_limit_usd", s.limit_usd, **labels)

    def _count_refusal(self, s: BudgetStatus) -> None:
        count = getattr(self.metrics, "count", None)
        if count is not None:
            count("budget_refusals", scope=s.scope.value, name=s.name)

    def __repr__(self) -> str:
        return f"Budgets({len(self.budgets)} budget(s), ledger={self.ledger!r})"


class WebhookAlerts:
    """Posts each :class:`BudgetAlert` as JSON to a URL (Slack-style incoming webhooks,
    an alert manager, your own endpoint).

    By default the post happens in a background thread, so a slow hook never delays a
    request; a failure is logged on ``avl.costs`` (the URL redacted), never raised.

    Args:
        url: where to post (``https://...``).
        headers: extra request headers (an ``Authorization``).
        timeout_s: the request timeout.
        client: the ``httpx.Client`` to use (injected in tests).
        background: post from a daemon thread (default) or in the caller's thread.

    Raises:
        ConfigError: the URL is not http(s).
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout_s: float = 5.0,
        client: Any = None,
        background: bool = True,
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigError(f"budget webhook must be an http(s) URL, got {url!r}")
        self.url = url
        self.headers = dict(headers or {})
        self.timeout_s = float(timeout_s)
        self._client = client
        self.background = background

    def __call__(self, alert: BudgetAlert) -> None:
        """Post ``alert``."""
        if self.background:
            threading.Thread(target=self.post, args=(alert,), daemon=True).start()
        else:
            self.post(alert)

    @property
    def safe_url(self) -> str:
        """The URL without credentials or query (what logs and ``repr`` show)."""
        import httpx

        try:
            url = httpx.URL(self.url)
        except httpx.InvalidURL:
            return "<invalid url>"
        return str(url.copy_with(username=None, password=None, query=None, fragment=None))

    def post(self, alert: BudgetAlert) -> bool:
        """Post ``alert`` now; ``True`` when the hook answered 2xx."""
        import httpx

        try:
            if self._client is not None:
                response = self._client.post(
                    self.url, json=alert.to_dict(), headers=self.headers, timeout=self.timeout_s
                )
            else:
                with httpx.Client(timeout=self.timeout_s) as client:
                    response = client.post(self.url, json=alert.to_dict(), headers=self.headers)
        except httpx.HTTPError as exc:
            log.warning("budget webhook %s failed: %s", self.safe_url, type(exc).__name__)
            return False
        if response.status_code >= 300:
            log.warning("budget webhook %s answered %s", self.safe_url, response.status_code)
            return False
        return True

    def __repr__(self) -> str:
        return f"WebhookAlerts({self.safe_url!r})"
