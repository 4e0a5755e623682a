"""Metrics: percentiles against NumPy, window, counters, cost, Prometheus text, tracing."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping

import numpy as np
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from avl.errors import ConfigError, InvalidInputError
from avl.metrics import CostTable, Metrics, ModelPrice, Percentiles, otel_tracer
from avl.testing import FakeClock


def test_percentiles_match_numpy_linear() -> None:
    rng = np.random.default_rng(7)
    values = rng.lognormal(mean=-2.0, sigma=1.0, size=997)
    m = Metrics(clock=FakeClock())
    for v in values:
        m.observe_stage("generate", float(v))
    got = m.percentiles("generate")
    want = np.percentile(values, [50, 95, 99], method="linear")
    assert got is not None
    assert got == pytest.approx(tuple(want), rel=1e-12, abs=0)
    assert isinstance(got, Percentiles)


@pytest.mark.parametrize("n", [1, 2, 3, 10, 101])
def test_percentiles_small_samples(n: int) -> None:
    values = [float((i * 37) % 11) / 7 for i in range(n)]
    m = Metrics(clock=FakeClock())
    for v in values:
        m.observe_stage("execute", v)
    assert m.percentiles("execute") == pytest.approx(
        tuple(np.percentile(values, [50, 95, 99])), rel=1e-12
    )


def test_percentiles_by_label() -> None:
    m = Metrics(clock=FakeClock())
    for i in range(10):
        m.observe_stage("generate", i, model="a" if i % 2 else "b", user="u")
    assert m.percentiles("generate", model="a") == pytest.approx(
        tuple(np.percentile([1, 3, 5, 7, 9], [50, 95, 99]))
    )
    assert m.percentiles("generate", user="nobody") is None
    assert m.percentiles("missing") is None


def test_sliding_window_expires_old_samples() -> None:
    clock = FakeClock()
    m = Metrics(clock=clock, window_s=60)
    m.observe_stage("validate", 10.0)
    clock.advance(30)
    m.observe_stage("validate", 1.0)
    assert m.percentiles("validate") == pytest.approx((5.5, 9.55, 9.91))
    clock.advance(31)  # the first sample is now 61 s old
    assert m.percentiles("validate") == (1.0, 1.0, 1.0)
    clock.advance(30)
    assert m.percentiles("validate") is None
    snap = m.snapshot().stages["validate"]
    assert (snap.count, snap.sum_s, snap.window_count, snap.p50) == (2, 11.0, 0, None)


def test_window_memory_is_bounded() -> None:
    m = Metrics(clock=FakeClock(), max_samples=100)
    for i in range(1000):
        m.observe_stage("retrieve", float(i))
    assert m.percentiles("retrieve") == pytest.approx(
        tuple(np.percentile(np.arange(900, 1000, dtype=float), [50, 95, 99]))
    )
    assert m.snapshot().stages["retrieve"].count == 1000


def test_timer_uses_the_clock_and_labels_errors() -> None:
    clock = FakeClock()
    m = Metrics(clock=clock)
    with m.timer("execute", user="ann"):
        clock.advance(0.25)
    with pytest.raises(RuntimeError), m.timer("execute", user="ann"):
        clock.advance(0.75)
        raise RuntimeError("boom")
    assert m.percentiles("execute", outcome="error") == (0.75, 0.75, 0.75)
    assert m.percentiles("execute", outcome="") == (0.25, 0.25, 0.25)


def test_tokens_cost_and_counters() -> None:
    table = CostTable.default().with_prices(
        {"acme/m1": ModelPrice(input_per_mtok=1.0, output_per_mtok=2.0)}
    )
    m = Metrics(clock=FakeClock(), cost_table=table)
    assert m.record_tokens("acme/m1", 1_000_000, 500_000) == 2.0
    assert m.record_tokens("acme/m1", 10, 10, cost_usd=0.5) == 0.5
    assert m.record_tokens("unknown/x", 5, 5) is None
    m.record_cache(True)
    m.record_cache(True)
    m.record_cache(False)
    m.record_rejection("DML")
    m.record_rejection("DML")
    m.record_rejection("NO_LIMIT")
    m.record_rate_limited("bob")
    m.count("answers", kind="sql")
    m.count("answers", 2, kind="sql")
    snap = m.snapshot()
    assert snap.models["acme/m1"].cost_usd == 2.5
    assert snap.models["acme/m1"].input_tokens == 1_000_010
    assert snap.models["unknown/x"].calls == 1
    assert (snap.cache_hits, snap.cache_misses) == (2, 1)
    assert snap.cache_hit_ratio == pytest.approx(2 / 3)
    assert dict(snap.rejections) == {"DML": 2, "NO_LIMIT": 1}
    assert dict(snap.rate_limited) == {"bob": 1}
    assert dict(snap.counters) == {'answers{kind="sql"}': 3.0}


def test_bad_input_is_a_clear_error() -> None:
    m = Metrics()
    with pytest.raises(InvalidInputError, match="non-negative"):
        m.observe_stage("x", -1)
    with pytest.raises(InvalidInputError, match="finite"):
        m.observe_stage("x", float("nan"))
    with pytest.raises(InvalidInputError, match="input_tokens"):
        m.record_tokens("a/b", -1, 0)
    with pytest.raises(InvalidInputError, match="counter name"):
        m.count("bad name")
    with pytest.raises(ConfigError, match="window_s"):
        Metrics(window_s=0)


def test_thread_safe_counts() -> None:
    m = Metrics(clock=FakeClock())

    def work() -> None:
        for _ in range(1000):
            m.observe_stage("s", 0.001)
            m.record_cache(True)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    snap = m.snapshot()
    assert snap.stages["s"].count == 4000
    assert snap.cache_hits == 4000


def _families(text: bytes) -> dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    out: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for fam in text_string_to_metric_families(text.decode()):
        for s in fam.samples:
            out.setdefault(fam.name, {})[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_prometheus_text_parses_with_right_values() -> None:
    clock = FakeClock()
    m = Metrics(clock=clock, buckets=(0.1, 1.0))
    m.observe_stage("generate", 0.05, model="openai/gpt-4o", user="ann", outcome="ok")
    m.observe_stage("generate", 0.5, model="openai/gpt-4o", user="ann", outcome="ok")
    m.observe_stage("generate", 3.0, model="openai/gpt-4o", user="ann", outcome="ok")
    m.record_tokens("openai/gpt-4o", 100, 20, cost_usd=0.01, user="ann")
    m.record_cache(False)
    m.record_rejection("DML")
    m.record_rejection("DML", source="sql_run")
    m.record_rate_limited("bob")
    m.count("questions", user="ann")
    fams = _families(m.prometheus_text())
    labels = {"model": "openai/gpt-4o", "outcome": "ok", "stage": "generate", "user": "ann"}
    hist = fams["avl_stage_duration_seconds"]

    def key(sample: str, **extra: str) -> tuple[str, tuple[tuple[str, str], ...]]:
        return sample, tuple(sorted({**labels, **extra}.items()))

    assert hist[key("avl_stage_duration_seconds_bucket", le="0.1")] == 1
    assert hist[key("avl_stage_duration_seconds_bucket", le="1.0")] == 2
    assert hist[key("avl_stage_duration_seconds_bucket", le="+Inf")] == 3
    assert hist[key("avl_stage_duration_seconds_count")] == 3
    assert hist[key("avl_stage_duration_seconds_sum")] == pytest.approx(3.55)
    window = fams["avl_stage_duration_window_seconds"]
    p50, p95, p99 = np.percentile([0.05, 0.5, 3.0], [50, 95, 99])
    assert window[
        ("avl_stage_duration_window_seconds", (("quantile", "0.5"), ("stage", "generate")))
    ] == pytest.approx(p50)
    assert window[
        ("avl_stage_duration_window_seconds", (("quantile", "0.99"), ("stage", "generate")))
    ] == pytest.approx(p99)
    tokens = fams["avl_tokens"]
    model_ann = (("model", "openai/gpt-4o"), ("user", "ann"))
    assert tokens[("avl_tokens_total", (("direction", "input"), *model_ann))] == 100
    assert tokens[("avl_tokens_total", (("direction", "output"), *model_ann))] == 20
    assert fams["avl_cost_usd"][("avl_cost_usd_total", model_ann)] == 0.01
    assert fams["avl_model_calls"][("avl_model_calls_total", model_ann)] == 1
    assert fams["avl_cache_lookups"][("avl_cache_lookups_total", (("result", "miss"),))] == 1
    rejections = fams["avl_rejections"]
    assert rejections[("avl_rejections_total", (("code", "DML"), ("source", "ask")))] == 1
    assert rejections[("avl_rejections_total", (("code", "DML"), ("source", "sql_run")))] == 1
    limited = fams["avl_rate_limited"]
    assert limited[("avl_rate_limited_total", (("source", "ask"), ("user", "bob")))] == 1
    assert fams["avl_questions"][("avl_questions_total", (("user", "ann"),))] == 1
    _ = p95


def test_registry_is_private() -> None:
    m = Metrics()
    m.record_cache(True)
    assert m.registry is m.registry
    assert REGISTRY.get_sample_value("avl_cache_lookups_total", {"result": "hit"}) is None
    assert m.registry.get_sample_value("avl_cache_lookups_total", {"result": "hit"}) == 1.0


class RecordingTracer:
    def __init__(self) -> None:
        self.spans: list[tuple[str, dict[str, str]]] = []

    @contextlib.contextmanager
    def start_as_current_span(
        self, name: str, attributes: Mapping[str, str] | None = None
    ) -> Iterator[None]:
        self.spans.append((name, dict(attributes or {})))
        yield None


def test_timer_opens_spans() -> None:
    tracer = RecordingTracer()
    m = Metrics(clock=FakeClock(), tracer=tracer)
    with m.timer("retrieve", model="hash/x", user="ann"):
        pass
    assert tracer.spans == [
        ("avl.retrieve", {"avl.stage": "retrieve", "avl.model": "hash/x", "avl.user": "ann"})
    ]


def test_real_otel_tracer_works_without_sdk() -> None:
    clock = FakeClock()
    m = Metrics(clock=clock, tracer=otel_tracer())
    with m.timer("generate"):
        clock.advance(1.0)
    assert m.percentiles("generate") == (1.0, 1.0, 1.0)
