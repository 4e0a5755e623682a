"""avl.metrics' tracing helpers against the real OpenTelemetry SDK (in-memory exporter)."""

from __future__ import annotations

import contextvars
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from avl.metrics import (
    Span,
    SpanKind,
    current_ids,
    extract_context,
    inject_context,
    sanitize_sql,
    span_attributes,
    sql_attributes,
    start_span,
    tracing_enabled,
)
from tests.conftest import need_module

need_module("opentelemetry.sdk.trace")

from opentelemetry.trace import SpanKind as OtelKind  # noqa: E402
from opentelemetry.trace import StatusCode  # noqa: E402

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"


def test_no_provider_means_no_span_and_no_header() -> None:
    assert tracing_enabled() is False
    with start_span("avl.retrieve", attributes={"avl.stage": "retrieve"}) as span:
        assert span.recording is False
        assert span.ids is None
        span.set("avl.items", 3)  # accepted, ignored
        span.error(ValueError("x"))
        headers: dict[str, str] = {}
        inject_context(headers)
        assert headers == {}
        assert current_ids() is None
    assert extract_context({"traceparent": TRACEPARENT}) is None


def test_span_records_name_kind_attributes(span_exporter: Any) -> None:
    assert tracing_enabled() is True
    with start_span(
        "avl.check",
        attributes={"avl.stage": "check", "avl.user": None},
        tracer="avl.assistant",
    ) as span:
        assert span.recording is True
        span.update(span_attributes(verdict_codes=["DML", "NO_LIMIT"], allowed=False))
        span.set("ignored", None)
    (finished,) = span_exporter.get_finished_spans()
    assert finished.name == "avl.check"
    assert finished.kind is OtelKind.INTERNAL
    assert finished.instrumentation_scope.name == "avl.assistant"
    assert dict(finished.attributes) == {
        "avl.stage": "check",
        "avl.verdict.codes": ("DML", "NO_LIMIT"),
        "avl.verdict.allowed": False,
    }
    assert finished.status.status_code is StatusCode.UNSET


def test_server_span_continues_the_callers_trace(span_exporter: Any) -> None:
    parent = extract_context({"TraceParent": TRACEPARENT, "tracestate": "vendor=x"})
    assert parent is not None
    with (
        start_span("POST /v1/ask", kind=SpanKind.SERVER, context=parent),
        start_span("avl.model", kind=SpanKind.CLIENT) as child,
    ):
        ids = current_ids()
        assert ids is not None
        assert ids == child.ids
        headers: dict[str, str] = {}
        inject_context(headers)
    model, server = span_exporter.get_finished_spans()
    assert server.kind is OtelKind.SERVER
    assert f"{server.context.trace_id:032x}" == TRACE_ID
    assert f"{server.parent.span_id:016x}" == PARENT_ID
    assert server.parent.is_remote is True
    assert model.kind is OtelKind.CLIENT
    assert model.parent.span_id == server.context.span_id
    assert ids.trace_id == TRACE_ID
    assert headers["traceparent"] == f"00-{TRACE_ID}-{ids.span_id}-01"
    assert headers["tracestate"] == "vendor=x"
    assert current_ids() is None  # everything detached


@pytest.mark.parametrize(
    "value",
    [
        "",
        "garbage",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # all-zero trace id
        f"00-{TRACE_ID}-0000000000000000-01",  # all-zero span id
        f"00-{TRACE_ID[:-1]}-{PARENT_ID}-01",
        f"ff-{TRACE_ID}-{PARENT_ID}-01",  # forbidden version
    ],
)
def test_invalid_traceparent_is_ignored(span_exporter: Any, value: str) -> None:
    assert extract_context({"traceparent": value}) is None


def test_exception_marks_the_span_failed(span_exporter: Any) -> None:
    with pytest.raises(KeyError), start_span("avl.execute"):
        raise KeyError("boom")
    (finished,) = span_exporter.get_finished_spans()
    assert finished.status.status_code is StatusCode.ERROR
    assert finished.attributes["error.type"] == "KeyError"
    assert [e.name for e in finished.events] == ["exception"]


def test_closed_generator_is_cancelled_not_failed(span_exporter: Any) -> None:
    def stages() -> Iterator[int]:
        with start_span("avl.model"):
            yield 1
            yield 2

    gen = stages()
    assert next(gen) == 1
    gen.close()
    (finished,) = span_exporter.get_finished_spans()
    assert finished.attributes["avl.outcome"] == "cancelled"
    assert finished.status.status_code is StatusCode.UNSET


def test_generator_resumed_in_other_contexts_does_not_corrupt_them(
    span_exporter: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # What asyncio.to_thread(next, gen) does: each step in a copy of the caller's context.
    def stages() -> Iterator[int]:
        with start_span("avl.retrieve"):
            yield 1
        with start_span("avl.model"):
            yield 2

    gen = stages()
    seen: list[object] = []

    def step() -> None:
        seen.append(next(gen, None))

    with caplog.at_level(logging.ERROR, logger="opentelemetry"):
        for _ in range(3):
            ctx = contextvars.copy_context()
            t = threading.Thread(target=ctx.run, args=(step,))
            t.start()
            t.join()
    assert seen == [1, 2, None]
    assert [s.name for s in span_exporter.get_finished_spans()] == ["avl.retrieve", "avl.model"]
    assert not [r for r in caplog.records if "detach" in r.getMessage().lower()]
    assert current_ids() is None


def test_provider_set_after_import_is_used(span_exporter: Any) -> None:
    # start_span asks for the global provider on each call: nothing was cached before.
    with start_span("avl.admit") as span:
        assert isinstance(span, Span)
    assert [s.name for s in span_exporter.get_finished_spans()] == ["avl.admit"]


def test_span_attributes_names() -> None:
    assert span_attributes(
        stage="model",
        model="openai/gpt-4o-mini",
        input_tokens=812,
        output_tokens=41,
        cost_usd=0.0002,
        row_count=3,
        outcome="ok",
        user="ann",
        role="analyst",
        cached=False,
    ) == {
        "avl.stage": "model",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 812,
        "gen_ai.usage.output_tokens": 41,
        "avl.cost_usd": 0.0002,
        "db.response.returned_rows": 3,
        "avl.outcome": "ok",
        "avl.user": "ann",
        "avl.role": "analyst",
        "avl.cache.hit": False,
    }
    assert span_attributes(model="offline") == {"gen_ai.request.model": "offline"}
    assert span_attributes() == {}


def test_sql_text_only_when_asked_and_never_values(monkeypatch: pytest.MonkeyPatch) -> None:
    sql = "SELECT name FROM customers WHERE email = 'ann@example.com' AND id IN (1, 2)"
    monkeypatch.delenv("AVL_OTEL_RECORD_SQL", raising=False)
    assert sql_attributes(sql, system="postgresql") == {
        "db.system.name": "postgresql",
        "db.operation.name": "SELECT",
    }
    monkeypatch.setenv("AVL_OTEL_RECORD_SQL", "true")
    text = sql_attributes(sql, system="postgresql", dialect="postgres")["db.query.text"]
    assert text == "SELECT name FROM customers WHERE email = ? AND id IN (?, ?)"
    assert "ann@example.com" not in str(text)
    assert "db.query.text" not in sql_attributes(sql, record_sql=False)
    # A statement that does not parse is not recorded at all (it might hold values).
    assert "db.query.text" not in sql_attributes("SELECT 'ann@x' FROM (", record_sql=True)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT * FROM t WHERE a = -1.5e3", "SELECT * FROM t WHERE a = -?"),
        ("SELECT * FROM t WHERE s LIKE '%x%'", "SELECT * FROM t WHERE s LIKE ?"),
        ("select 1; select 'a'", "SELECT ?; SELECT ?"),
        ("SELECT * FROM t WHERE d = DATE '2024-01-01'", None),
    ],
)
def test_sanitize_sql(sql: str, expected: str | None) -> None:
    assert (
        sanitize_sql("SELECT x'ABCD', b'101', N'abc', $$dollar$$ FROM t", "postgres")
        == "SELECT ?, ?, ?, ? FROM t"
    )
    out = sanitize_sql(sql)
    if expected is None:
        assert out is not None
        assert "2024" not in out
    else:
        assert out == expected


def test_import_avl_metrics_does_not_import_opentelemetry() -> None:
    code = (
        "import sys, avl.metrics\n"
        "from avl.metrics import start_span\n"
        "print(any(m.startswith('opentelemetry') for m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_everything_is_a_noop_without_opentelemetry_installed() -> None:
    code = """
import sys  # noqa: E402
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            raise ImportError(name)
sys.meta_path.insert(0, Block())
from avl.metrics import (Metrics, current_ids, extract_context, inject_context, otel_tracer,  # noqa: E402
    start_span, tracing_enabled)
assert tracing_enabled() is False
with start_span("x") as span:
    span.set("a", 1)
    assert span.recording is False
h = {}
inject_context(h)
assert h == {} and current_ids() is None
assert extract_context({"traceparent": "00-%s-%s-01" % ("a" * 32, "b" * 16)}) is None
with Metrics(tracer=otel_tracer()).timer("x"):
    pass
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
