"""Budgets: reserve before the call, settle with the real cost, refuse over budget, alert."""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from avl.costs import (
    Budget,
    BudgetAlert,
    Budgets,
    MemoryLedger,
    Period,
    RedisLedger,
    WebhookAlerts,
)
from avl.errors import (
    BackendUnavailableError,
    BudgetExceededError,
    ConfigError,
    InvalidInputError,
    RateLimitedError,
)
from avl.metrics import Metrics
from avl.testing import FakeClock

# 2025-12-05 10:00 UTC
T0 = dt.datetime(2025, 12, 5, 10, tzinfo=dt.timezone.utc).timestamp()


@pytest.fixture(params=["memory", "redis"])
def ledger(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "memory":
        yield MemoryLedger()
        return
    url = request.getfixturevalue("redis_url")
    led = RedisLedger(url, prefix=f"avl:test:budget:{uuid.uuid4().hex}:")
    try:
        yield led
    finally:
        client = led._client
        for key in client.scan_iter(f"{led.prefix}*"):
            client.delete(key)
        led.close()


def make(ledger: Any, *budgets: Budget, **kw: Any) -> tuple[Budgets, list[BudgetAlert], FakeClock]:
    alerts: list[BudgetAlert] = []
    clock = FakeClock(start=T0)
    b = Budgets(budgets, ledger=ledger, on_alert=alerts.append, clock=clock, **kw)
    return b, alerts, clock


def test_reserve_settle_refund(ledger: Any) -> None:
    b, _, _ = make(ledger, Budget(scope="user", name="*", limit_usd=1.0))
    r = b.reserve(0.3, user="ann")
    assert [s.spent_usd for s in r.statuses] == [0.3]
    (after,) = b.settle(r, 0.1)
    assert after.spent_usd == pytest.approx(0.1)
    assert after.remaining_usd == pytest.approx(0.9)
    assert after.period == "2025-12"
    assert after.resets_at == dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc).timestamp()
    r2 = b.reserve(0.5, user="ann")
    b.refund(r2)
    assert [s.spent_usd for s in b.status(user="ann")] == [pytest.approx(0.1)]
    # each user has their own "*" budget
    assert [s.spent_usd for s in b.status(user="bob")] == [0.0]


def test_over_budget_is_refused_with_a_clear_error(ledger: Any) -> None:
    b, alerts, _clock = make(ledger, Budget(scope="user", name="ann", limit_usd=1.0))
    b.settle(b.reserve(0.9, user="ann"), 0.95)
    with pytest.raises(BudgetExceededError) as info:
        b.reserve(0.1, user="ann")
    err = info.value
    assert isinstance(err, RateLimitedError)  # the web adapter answers 429
    assert err.budget == "user:ann"
    assert err.period == "2025-12"
    assert err.spent_usd == pytest.approx(0.95)
    assert err.limit_usd == 1.0
    assert err.retry_after_s == pytest.approx(
        dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc).timestamp() - T0
    )
    assert "budget user:ann" in str(err)
    assert "0.9500 USD used in 2025-12" in str(err)
    # nothing was taken by the refused reservation
    assert [s.spent_usd for s in b.status(user="ann")] == [pytest.approx(0.95)]
    # a small call still fits
    b.reserve(0.05, user="ann")
    assert alerts[-1].refused is True
    assert alerts[-1].threshold == 1.0


def test_every_applicable_budget_or_none(ledger: Any) -> None:
    b, _, _ = make(
        ledger,
        Budget(scope="user", name="*", limit_usd=10.0),
        Budget(scope="role", name="analyst", limit_usd=1.0),
        Budget(scope="team", name="data", limit_usd=100.0),
        teams={"ann": "data"},
    )
    r = b.reserve(0.6, user="ann", role="analyst")
    assert [(s.budget, s.spent_usd) for s in r.statuses] == [
        ("user:ann", 0.6),
        ("role:analyst", 0.6),
        ("team:data", 0.6),
    ]
    with pytest.raises(BudgetExceededError) as info:
        b.reserve(0.6, user="bob", role="analyst")  # the role's budget is the limit
    assert info.value.budget == "role:analyst"
    # the refused call took nothing from bob's own budget
    assert [s.spent_usd for s in b.status(user="bob")] == [0.0]
    # no role: only the user's budget and (none for bob) no team
    assert [s.budget for s in b.reserve(0.6, user="bob").statuses] == ["user:bob"]


def test_specific_budget_wins_over_star(ledger: Any) -> None:
    b, _, _ = make(
        ledger,
        Budget(scope="user", name="*", limit_usd=1.0),
        Budget(scope="user", name="ceo", limit_usd=100.0),
    )
    b.reserve(50.0, user="ceo")
    with pytest.raises(BudgetExceededError):
        b.reserve(50.0, user="ann")


def test_alerts_fire_once_per_threshold_and_period(ledger: Any) -> None:
    b, alerts, clock = make(ledger, Budget(scope="user", name="*", limit_usd=10.0))
    for cost in (4.0, 1.5, 0.5, 2.0, 0.1, 2.0):
        b.settle(b.reserve(0.0, user="ann"), cost)
    assert [(a.threshold, round(a.status.spent_usd, 2), a.refused) for a in alerts] == [
        (0.5, 5.5, False),
        (0.8, 8.0, False),
        (1.0, 10.1, False),
    ]
    assert alerts[0].to_dict()["budget"] == "user:ann"
    clock.advance(31 * 86_400)  # January: a fresh budget, fresh alerts
    b.settle(b.reserve(0.0, user="ann"), 6.0)
    assert [a.status.period for a in alerts[3:]] == ["2026-01"]


def test_alert_crossing_two_thresholds_at_once(ledger: Any) -> None:
    b, alerts, _ = make(ledger, Budget(scope="user", name="*", limit_usd=1.0))
    b.settle(b.reserve(0.0, user="ann"), 0.9)
    assert [a.threshold for a in alerts] == [0.5, 0.8]


def test_concurrent_reservations_never_overspend(ledger: Any) -> None:
    b, _, _ = make(ledger, Budget(scope="user", name="*", limit_usd=1.0))
    granted: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(10):
            try:
                b.reserve(0.03, user="ann")
            except BudgetExceededError:
                continue
            with lock:
                granted.append(1)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(granted) == 33  # floor(1.0 / 0.03)
    assert b.status(user="ann")[0].spent_usd == pytest.approx(0.99)


def test_periods_are_calendar_periods_in_utc() -> None:
    t = dt.datetime(2025, 12, 31, 23, 59, tzinfo=dt.timezone.utc).timestamp()
    assert Period.DAY.window(t)[0] == "2025-12-31"
    assert Period.WEEK.window(t)[0] == "2026-W01"  # ISO week of Monday 2025-12-29
    label, start, end = Period.MONTH.window(t)
    assert label == "2025-12"
    assert end - start == 31 * 86_400
    feb = dt.datetime(2024, 2, 10, tzinfo=dt.timezone.utc).timestamp()
    _, s2, e2 = Period.MONTH.window(feb)
    assert e2 - s2 == 29 * 86_400


def test_daily_budget_resets_at_midnight(ledger: Any) -> None:
    b, _, clock = make(ledger, Budget(scope="user", name="*", limit_usd=1.0, period="day"))
    b.reserve(1.0, user="ann")
    with pytest.raises(BudgetExceededError) as info:
        b.reserve(0.01, user="ann")
    assert info.value.retry_after_s == pytest.approx(14 * 3600)
    clock.advance(14 * 3600)
    b.reserve(1.0, user="ann")


def test_metrics_gauges_and_refusals(ledger: Any) -> None:
    m = Metrics()
    b, _, _ = make(ledger, Budget(scope="user", name="*", limit_usd=1.0), metrics=m)
    b.settle(b.reserve(0.5, user="ann"), 0.25)
    with pytest.raises(BudgetExceededError):
        b.reserve(0.9, user="ann")
    snap = m.snapshot()
    assert snap.gauges['budget_spent_usd{name="ann",period="2025-12",scope="user"}'] == 0.25
    assert snap.gauges['budget_limit_usd{name="ann",period="2025-12",scope="user"}'] == 1.0
    assert snap.counters['budget_refusals{name="ann",scope="user"}'] == 1


def test_from_config() -> None:
    b = Budgets.from_config(
        {
            "period": "week",
            "user": {"*": 5, "ann": 50.0},
            "role": {"analyst": 200},
            "team": {"data": 1000},
            "teams": {"ann": "data"},
            "alerts": [0.9, 1.0],
        }
    )
    assert {(x.scope.value, x.name, x.limit_usd, x.period.value) for x in b.budgets} == {
        ("user", "*", 5, "week"),
        ("user", "ann", 50.0, "week"),
        ("role", "analyst", 200, "week"),
        ("team", "data", 1000, "week"),
    }
    assert b.thresholds == (0.9, 1.0)
    assert [x.budget for x in b.status(user="ann", role="analyst")] == [
        "user:ann",
        "role:analyst",
        "team:data",
    ]


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"users": {}}, "unknown key"),
        ({"period": "year"}, "period"),
        ({"user": {"ann": -1}}, "positive"),
        ({"user": {"ann": "ten"}}, "positive"),
        ({"user": {"ann": 1e7}}, "9,000,000"),
        ({"user": ["ann"]}, "table"),
        ({"alerts": [0.8, 0.5]}, "ascending"),
        ({"alerts": [1.5]}, "ascending"),
        ({"teams": {"ann": 3}}, "teams"),
        ({"webhook": "ftp://x"}, "http"),
        ({"storage": "rediss2://x"}, "scheme"),
        ({"on_unavailable": "maybe"}, "on_unavailable"),
        ("x", "table"),
    ],
)
def test_bad_config(config: Any, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Budgets.from_config(config)


def test_bad_amounts() -> None:
    b = Budgets([Budget(scope="user", name="*", limit_usd=1.0)])
    for bad in (-0.1, float("nan"), float("inf"), "1", True):
        with pytest.raises(InvalidInputError):
            b.reserve(bad, user="ann")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="user"):
        b.reserve(0.1, user="")
    with pytest.raises(ConfigError, match="two budgets"):
        Budgets(
            [
                Budget(scope="user", name="a", limit_usd=1),
                Budget(scope="user", name="a", limit_usd=2),
            ]
        )


def test_no_applicable_budget_reserves_nothing() -> None:
    b = Budgets([Budget(scope="role", name="analyst", limit_usd=1.0)])
    r = b.reserve(99.0, user="ann")
    assert r.keys == ()
    assert b.settle(r, 99.0) == ()


class _DownLedger(MemoryLedger):
    def reserve(self, *a: Any) -> Any:
        raise BackendUnavailableError("redis down")

    def adjust(self, *a: Any) -> Any:
        raise BackendUnavailableError("redis down")


@pytest.mark.parametrize("mode", ["raise", "allow", "deny"])
def test_ledger_unavailable(mode: str) -> None:
    b = Budgets(
        [Budget(scope="user", name="*", limit_usd=1.0)], ledger=_DownLedger(), on_unavailable=mode
    )
    if mode == "raise":
        with pytest.raises(BackendUnavailableError):
            b.reserve(0.1, user="ann")
    elif mode == "allow":
        r = b.reserve(0.1, user="ann")
        assert r.keys == ()
        assert b.settle(r, 0.1) == ()
    else:
        with pytest.raises(BudgetExceededError, match="fail closed"):
            b.reserve(0.1, user="ann")


def test_alert_callback_errors_are_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    def broken(alert: BudgetAlert) -> None:
        raise RuntimeError("sink down")

    b = Budgets([Budget(scope="user", name="*", limit_usd=1.0)], on_alert=broken)
    b.settle(b.reserve(0.0, user="ann"), 0.6)
    assert "budget alert callback failed" in caplog.text


def test_webhook_posts_json() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    client = httpx.Client(transport=httpx.MockTransport(handler))
    hook = WebhookAlerts(
        "https://hooks.example.com/avl?token=s3cret",
        headers={"Authorization": "Bearer x"},
        client=client,
        background=False,
    )
    b = Budgets([Budget(scope="team", name="data", limit_usd=10.0)], on_alert=hook)
    b.settle(b.reserve(0.0, user="ann", team="data"), 6.0)
    (request,) = seen
    body = json.loads(request.content)
    assert body["kind"] == "avl.budget.alert"
    assert (body["budget"], body["threshold"], body["spent_usd"], body["limit_usd"]) == (
        "team:data",
        0.5,
        6.0,
        10.0,
    )
    assert request.headers["authorization"] == "Bearer x"
    assert "s3cret" not in repr(hook)


def test_webhook_failure_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    hook = WebhookAlerts(
        "https://u:pw@hooks.example.com/x",
        client=httpx.Client(transport=httpx.MockTransport(handler)),
        background=False,
    )
    b = Budgets([Budget(scope="user", name="*", limit_usd=1.0)], on_alert=hook)
    b.settle(b.reserve(0.0, user="ann"), 0.6)
    assert "budget webhook" in caplog.text
    assert "pw@" not in caplog.text


def test_estimate_cost() -> None:
    from avl.costs import estimate_cost
    from avl.metrics import CostTable, ModelPrice

    # gpt-4o: 2.50 in, 10.00 out per million tokens
    assert estimate_cost("openai/gpt-4o", input_tokens=2000, max_output_tokens=1000) == (
        pytest.approx(0.015)
    )
    assert estimate_cost("offline/demo", input_tokens=10**6, max_output_tokens=10**6) == 0.0
    assert estimate_cost("acme/unknown", input_tokens=10, max_output_tokens=10) == 0.0
    table = CostTable.default().with_prices(
        {"acme/unknown": ModelPrice(input_per_mtok=1.0, output_per_mtok=2.0)}
    )
    assert estimate_cost(
        "acme/unknown", input_tokens=10**6, max_output_tokens=10**6, cost_table=table
    ) == pytest.approx(3.0)
