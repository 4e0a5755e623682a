"""A server span per request from the W3C trace context, spans opened in the pipeline
as its children (JSON asks and streams alike), and per-route request metrics."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from avl import sse
from avl.metrics import Metrics
from avl.web import create_app

from .conftest import Ev, TinyConsole, client

pytestmark = pytest.mark.anyio

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"


@pytest.fixture(scope="module")
def exporter() -> Iterator[InMemorySpanExporter]:
    """An in-memory exporter on the global provider (if another test module set an
    SDK provider first, the exporter is added to it; one set here is unset after)."""
    from opentelemetry.util._once import Once

    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    ours = not isinstance(provider, TracerProvider)
    if ours:
        trace.set_tracer_provider(TracerProvider())
        provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()
    if ours:  # later test modules see no provider (as tests/conftest.py's span_exporter does)
        trace._TRACER_PROVIDER_SET_ONCE = Once()
        trace._TRACER_PROVIDER = None


class TracedAssistant:
    """Opens a span in each pipeline step, as the Assistant's stages do."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.db = real.db
        self.tracer = trace.get_tracer("avl.assistant")
        self.threads: set[str] = set()

    def stream(self, question: str, **kw: Any) -> Iterator[Any]:
        with self.tracer.start_as_current_span("avl.retrieve"):
            self.threads.add(threading.current_thread().name)
        yield Ev(kind="retrieved", data={"items": []})
        with self.tracer.start_as_current_span("avl.generate"):
            self.threads.add(threading.current_thread().name)
            with self.tracer.start_as_current_span("avl.model"):
                pass
        yield Ev(kind="sql", data={"sql": "SELECT 1"})
        yield Ev(kind="done", data={"outcome": "ok"})

    def ask(self, question: str, **kw: Any) -> Any:
        for _ in self.stream(question, **kw):
            pass
        return self.real.ask("how many customers")


def _spans(exporter: InMemorySpanExporter, trace_id: str = TRACE_ID) -> list[Any]:
    return [
        s for s in exporter.get_finished_spans() if format(s.context.trace_id, "032x") == trace_id
    ]


@pytest.mark.parametrize("how", ["json", "sse", "get-stream"])
async def test_pipeline_spans_are_children_of_the_server_span(
    exporter: InMemorySpanExporter, console: TinyConsole, how: str
) -> None:
    exporter.clear()
    assistant = TracedAssistant(console.assistant)
    console.assistant = assistant  # type: ignore[assignment]
    app = create_app(console)
    headers = {"traceparent": TRACEPARENT, "tracestate": "vendor=1", "user-agent": "probe/1"}
    async with client(app) as c:
        if how == "json":
            r = await c.post("/v1/ask", json={"question": "q"}, headers=headers)
        elif how == "sse":
            r = await c.post(
                "/v1/ask",
                json={"question": "q"},
                headers={**headers, "accept": "text/event-stream"},
            )
            assert [e.event for e in sse.parse([r.content])] == ["retrieved", "sql", "done"]
        else:
            r = await c.get(
                "/v1/ask/stream",
                params={"question": "q"},
                headers={**headers, "sec-fetch-site": "same-origin"},
            )
    assert r.status_code == 200
    spans = _spans(exporter)
    by_name = {s.name: s for s in spans}
    route = "/v1/ask/stream" if how == "get-stream" else "/v1/ask"
    method = "GET" if how == "get-stream" else "POST"
    server = by_name[f"{method} {route}"]
    assert server.kind == trace.SpanKind.SERVER
    assert format(server.parent.span_id, "016x") == PARENT_ID  # the caller's span
    assert server.parent.is_remote
    assert server.context.trace_state.get("vendor") == "1"
    attrs = dict(server.attributes)
    assert attrs["http.request.method"] == method
    assert attrs["http.route"] == route
    assert attrs["url.path"] == route
    assert attrs["url.scheme"] == "http"
    assert attrs["http.response.status_code"] == 200
    assert attrs["client.address"] == "127.0.0.1"
    assert attrs["user_agent.original"] == "probe/1"
    assert "url.query" not in attrs  # a question may be in it
    sid = server.context.span_id
    assert by_name["avl.retrieve"].parent.span_id == sid
    assert by_name["avl.generate"].parent.span_id == sid
    assert by_name["avl.model"].parent.span_id == by_name["avl.generate"].context.span_id
    assert {s.name for s in spans} >= {
        f"{method} {route}",
        "avl.retrieve",
        "avl.generate",
        "avl.model",
    }
    assert all(t.startswith("avl-pipeline") for t in assistant.threads)  # on the pool, not the loop


async def test_spans_without_an_incoming_context_start_a_trace(
    exporter: InMemorySpanExporter, app: Any
) -> None:
    exporter.clear()
    async with client(app) as c:
        ok = await c.get("/healthz")
        refused = await c.get("/healthz", headers={"host": "evil.example"})
        missing = await c.get("/v1/history/x/y")
    assert (ok.status_code, refused.status_code, missing.status_code) == (200, 421, 404)
    spans = exporter.get_finished_spans()
    names = [s.name for s in spans]
    assert names == ["GET /healthz", "GET /healthz", "GET"]
    assert spans[0].parent is None
    assert spans[1].attributes["http.response.status_code"] == 421
    assert "http.route" not in spans[2].attributes  # an unknown path has no route


async def test_route_metrics(console: TinyConsole) -> None:
    metrics = Metrics()
    console.metrics = metrics
    app = create_app(console)
    async with client(app) as c:
        for _ in range(3):
            await c.get("/healthz")
        await c.post("/v1/sql/check", json={"sql": "SELECT 1"})
        await c.post("/v1/sql/check", json={"sql": "SELECT 1"})  # from the cache
        await c.post("/v1/sql/check", content=b"x", headers={"content-type": "text/plain"})
        await c.get("/v1/history/abc")
        await c.get("/v1/history/def")
        await c.get("/scanner/probe/1")
        await c.get("/scanner/probe/2")
        await c.request("BREW", "/healthz")
        exposition = await c.get("/metrics")
    assert dict(metrics.snapshot().requests) == {
        ("/healthz", "GET", "200"): 3,
        ("/v1/sql/check", "POST", "200"): 2,
        ("/v1/sql/check", "POST", "415"): 1,
        ("/v1/history/{entry_id}", "GET", "404"): 2,
        ("unmatched", "GET", "404"): 2,
        ("/healthz", "_OTHER", "405"): 1,
        ("/metrics", "GET", "200"): 1,
    }
    assert exposition.status_code == 200
    text = exposition.text
    assert 'avl_http_requests_total{method="GET",route="/healthz",status="200"} 3.0' in text
    assert 'avl_http_request_duration_seconds_count{method="GET",route="/healthz"} 3.0' in text


_LATE_PROVIDER = textwrap.dedent(
    """
    import asyncio

    import httpx
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from avl.console import Console
    from avl.web import create_app


    async def main() -> None:
        exporter = InMemorySpanExporter()
        with Console() as console:
            app = create_app(console)
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 1))
            async with httpx.AsyncClient(
                transport=transport, base_url="http://127.0.0.1:8000"
            ) as c:
                assert (await c.get("/healthz")).status_code == 200
                provider = TracerProvider()
                provider.add_span_processor(SimpleSpanProcessor(exporter))
                trace.set_tracer_provider(provider)  # after the app was built and served
                assert (await c.post("/v1/sql/check", json={"sql": "SELECT 1"})).status_code == 200
        print([s.name for s in exporter.get_finished_spans()])


    asyncio.run(main())
    """
)


def test_a_provider_set_after_the_app_is_built_is_used_from_the_next_request() -> None:
    # A fresh process: the global provider can be set once per process.
    out = subprocess.run(
        [sys.executable, "-c", _LATE_PROVIDER],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "['POST /v1/sql/check']"
