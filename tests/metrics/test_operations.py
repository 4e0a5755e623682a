"""Metrics for operations: HTTP requests by route, gauges, rejections by source, verification."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from avl.errors import InvalidInputError
from avl.metrics import Metrics
from avl.testing import FakeClock

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _samples(m: Metrics) -> Samples:
    out: Samples = {}
    for fam in text_string_to_metric_families(m.prometheus_text().decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_requests_by_route_method_status_and_latency_histogram() -> None:
    m = Metrics(buckets=(0.01, 0.1, 1.0))
    m.observe_request("/v1/ask", "POST", 200, 0.05)
    m.observe_request("/v1/ask", "POST", 200, 0.5)
    m.observe_request("/v1/ask", "POST", 429, 0.001)
    m.observe_request("/v1/history/{entry_id}", "GET", 404, 5.0)
    s = _samples(m)
    ask = (("method", "POST"), ("route", "/v1/ask"))
    assert s[("avl_http_requests_total", (*ask[:1], *ask[1:], ("status", "200")))] == 2
    assert s[("avl_http_requests_total", (*ask, ("status", "429")))] == 1
    assert (
        s[
            (
                "avl_http_requests_total",
                (("method", "GET"), ("route", "/v1/history/{entry_id}"), ("status", "404")),
            )
        ]
        == 1
    )

    def bucket(le: str) -> float:
        return s[("avl_http_request_duration_seconds_bucket", (("le", le), *ask))]

    assert [bucket(le) for le in ("0.01", "0.1", "1.0", "+Inf")] == [1, 2, 3, 3]
    assert s[("avl_http_request_duration_seconds_count", ask)] == 3
    assert s[("avl_http_request_duration_seconds_sum", ask)] == pytest.approx(0.551)
    # Over the last bucket: counted only in +Inf.
    hist = (("method", "GET"), ("route", "/v1/history/{entry_id}"))
    assert s[("avl_http_request_duration_seconds_bucket", (("le", "1.0"), *hist))] == 0
    assert s[("avl_http_request_duration_seconds_bucket", (("le", "+Inf"), *hist))] == 1
    assert m.snapshot().requests == {
        ("/v1/ask", "POST", "200"): 2,
        ("/v1/ask", "POST", "429"): 1,
        ("/v1/history/{entry_id}", "GET", "404"): 1,
    }


@pytest.mark.parametrize("status", [99, 600, True, "200", 200.0])
def test_bad_status_is_refused(status: object) -> None:
    with pytest.raises(InvalidInputError, match="status"):
        Metrics().observe_request("/", "GET", status, 0.1)  # type: ignore[arg-type]
    m = Metrics()
    m.observe_request("/", "GET", 200, 0.1)  # the series exists: still checked
    with pytest.raises(InvalidInputError, match="status"):
        m.observe_request("/", "GET", status, 0.1)  # type: ignore[arg-type]
    assert dict(m.snapshot().requests) == {("/", "GET", "200"): 1}


@pytest.mark.parametrize("seconds", [-0.1, float("nan"), float("inf"), "0.1", True])
def test_bad_durations_and_labels_are_refused_on_a_known_series(seconds: object) -> None:
    m = Metrics()
    m.observe_request("/", "GET", 200, 0.1)
    m.observe_request("/", "GET", 200, 1)  # an int duration is fine
    with pytest.raises(InvalidInputError):
        m.observe_request("/", "GET", 200, seconds)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        m.observe_request(["/"], "GET", 200, 0.1)  # type: ignore[arg-type]
    snap = m.snapshot()
    assert dict(snap.requests) == {("/", "GET", "200"): 2}


def test_gauges_set_add_and_callbacks() -> None:
    m = Metrics()
    m.add_gauge("sse_streams_active")
    m.add_gauge("sse_streams_active")
    m.add_gauge("sse_streams_active", -1)
    m.set_gauge("budget_spent_usd", 12.5, scope="user", name="ann")
    pool = {"in_use": 2, "idle": 3}
    m.gauge_callback("db_pool_connections", lambda: pool, help="Database pool connections.")
    m.gauge_callback("db_pool_size", lambda: 5)
    s = _samples(m)
    assert s[("avl_sse_streams_active", ())] == 1
    assert s[("avl_budget_spent_usd", (("name", "ann"), ("scope", "user")))] == 12.5
    assert s[("avl_db_pool_connections", (("state", "idle"),))] == 3
    assert s[("avl_db_pool_connections", (("state", "in_use"),))] == 2
    assert s[("avl_db_pool_size", ())] == 5
    pool["in_use"] = 4  # read at scrape time
    assert _samples(m)[("avl_db_pool_connections", (("state", "in_use"),))] == 4
    snap = m.snapshot().gauges
    assert snap['db_pool_connections{state="in_use"}'] == 4
    assert snap["sse_streams_active"] == 1
    assert b"# HELP avl_db_pool_connections Database pool connections." in m.prometheus_text()


def test_a_broken_gauge_callback_does_not_break_the_scrape() -> None:
    m = Metrics()

    def broken() -> float:
        raise RuntimeError("pool closed")

    m.gauge_callback("db_pool_size", broken)
    m.record_cache(True)
    s = _samples(m)
    assert ("avl_db_pool_size", ()) not in s
    assert s[("avl_cache_lookups_total", (("result", "hit"),))] == 1


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda m: m.set_gauge("bad name", 1), "name"),
        (lambda m: m.set_gauge("x", float("nan")), "finite"),
        (lambda m: m.add_gauge("x", "1"), "number"),
        (lambda m: m.set_gauge("x", 1, **{"bad-label": "v"}), "label"),
        (lambda m: m.gauge_callback("x", 3), "callable"),
        (lambda m: m.gauge_callback("x", lambda: 1, label="a b"), "label"),
        (lambda m: m.record_verification(True, -1), "checked"),
    ],
)
def test_bad_gauge_input(call: object, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        call(Metrics())  # type: ignore[operator]


def test_rejections_and_rate_limits_keep_their_source() -> None:
    m = Metrics()
    m.record_rejection("DML")
    m.record_rejection("DML", source="sql_run")
    m.record_rejection("NO_LIMIT", source="sql_check")
    m.record_rate_limited("ann", source="web")
    m.record_rate_limited("ann")
    snap = m.snapshot()
    assert dict(snap.rejections) == {"DML": 2, "NO_LIMIT": 1}
    assert dict(snap.rate_limited) == {"ann": 2}
    s = _samples(m)
    assert s[("avl_rejections_total", (("code", "DML"), ("source", "sql_run")))] == 1
    assert s[("avl_rejections_total", (("code", "NO_LIMIT"), ("source", "sql_check")))] == 1
    assert s[("avl_rate_limited_total", (("source", "web"), ("user", "ann")))] == 1


def test_tokens_and_cost_by_model_and_user() -> None:
    m = Metrics()
    m.record_tokens("openai/gpt-4o", 100, 10, cost_usd=0.5, user="ann")
    m.record_tokens("openai/gpt-4o", 50, 5, cost_usd=0.25, user="bob")
    m.record_tokens("openai/gpt-4o", 1, 1, cost_usd=0.125)
    model = m.snapshot().models["openai/gpt-4o"]
    assert (model.calls, model.input_tokens, model.output_tokens) == (3, 151, 16)
    assert model.cost_usd == 0.875
    s = _samples(m)
    assert s[("avl_cost_usd_total", (("model", "openai/gpt-4o"), ("user", "bob")))] == 0.25
    assert s[("avl_cost_usd_total", (("model", "openai/gpt-4o"), ("user", "")))] == 0.125


def test_verification_gauges() -> None:
    clock = FakeClock(start=1_700_000_000.0)
    m = Metrics(clock=clock)
    assert "avl_history_verify_ok" not in m.prometheus_text().decode()
    m.record_verification(True, 120)
    m.record_verification(False, 7, at=1_700_000_100.0)
    s = _samples(m)
    assert s[("avl_history_verify_ok", ())] == 0
    assert s[("avl_history_verify_checked", ())] == 7
    assert s[("avl_history_verify_timestamp_seconds", ())] == 1_700_000_100.0
    assert s[("avl_history_verifications_total", (("result", "ok"),))] == 1
    assert s[("avl_history_verifications_total", (("result", "failed"),))] == 1
    assert m.snapshot().verification == (False, 7, 1_700_000_100.0)


def test_request_sink_queues_and_checks_at_the_fold(caplog: pytest.LogCaptureFixture) -> None:
    m = Metrics()
    sink = m.request_sink()
    sink("/v1/ask", "POST", 200, 0.05)
    sink("/v1/ask", "POST", 200, 0.5)
    sink("/v1/ask", "POST", True, 0.1)  # type: ignore[arg-type]  # dropped at the fold
    sink("/v1/ask", "POST", 200, float("nan"))  # dropped
    sink(["/"], "GET", 200, 0.1)  # type: ignore[arg-type]  # dropped
    with caplog.at_level("WARNING", logger="avl.metrics"):
        snap = m.snapshot()
    assert dict(snap.requests) == {("/v1/ask", "POST", "200"): 2}
    assert "3 request samples" in caplog.text
    text = m.prometheus_text().decode()
    assert 'avl_http_request_duration_seconds_count{method="POST",route="/v1/ask"} 2.0' in text


def test_request_sink_folds_a_long_queue_by_itself() -> None:
    from avl.metrics import _metrics

    m = Metrics()
    sink = m.request_sink()
    for _ in range(_metrics._FOLD_AT + 5):
        sink("/", "GET", 200, 0.001)
    assert len(m._raw_requests) < _metrics._FOLD_AT  # bounded without a reader
    assert dict(m.snapshot().requests) == {("/", "GET", "200"): _metrics._FOLD_AT + 5}
