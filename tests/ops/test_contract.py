"""The held-out contract of issue 16, with exactly its calls.

With ``opentelemetry-sdk`` installed and ``opentelemetry.trace.set_tracer_provider(provider)``
done before avl's app is imported, ``create_app(Console())`` over httpx's ASGI transport,
one ``POST /v1/ask`` with JSON ``{"question": ...}`` and a ``traceparent`` header produces at
least four finished spans in that trace.

The first test runs those calls in a fresh interpreter (so the provider is set before
anything of avl is imported, as the contract says); the second runs them in this process
through the ``span_exporter`` fixture and looks at the trace's shape.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from tests.conftest import ROOT, need_module

need_module("opentelemetry.sdk.trace")

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"

SCRIPT = f"""
import asyncio, json
import httpx
import opentelemetry.trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
opentelemetry.trace.set_tracer_provider(provider)

from avl.console import Console
from avl.web import create_app

app = create_app(Console())


async def main():
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        return await client.post(
            "/v1/ask",
            json={{"question": "How many customers are there?"}},
            headers={{"traceparent": "{TRACEPARENT}"}},
        )


response = asyncio.run(main())
spans = [
    {{
        "name": s.name,
        "trace_id": format(s.context.trace_id, "032x"),
        "span_id": format(s.context.span_id, "016x"),
        "parent": None if s.parent is None else format(s.parent.span_id, "016x"),
        "kind": s.kind.name,
    }}
    for s in exporter.get_finished_spans()
]
print(json.dumps({{"status": response.status_code, "spans": spans}}))
"""


def test_contract_in_a_fresh_interpreter() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout.strip().splitlines()[-1])
    assert data["status"] == 200
    in_trace = [s for s in data["spans"] if s["trace_id"] == TRACE_ID]
    assert len(in_trace) >= 4, data["spans"]
    # one server span, child of the caller's span; every other span descends from it
    (server,) = [s for s in in_trace if s["kind"] == "SERVER"]
    assert server["parent"] == PARENT_ID
    ids = {s["span_id"] for s in in_trace} | {PARENT_ID}
    assert all(s["parent"] in ids for s in in_trace)


def test_contract_trace_shape_in_process(span_exporter: Any) -> None:
    import asyncio

    import httpx

    from avl.console import Console
    from avl.web import create_app

    with Console() as console:
        app = create_app(console)

        async def main() -> httpx.Response:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
                return await c.post(
                    "/v1/ask",
                    json={"question": "How many customers are there?"},
                    headers={"traceparent": TRACEPARENT},
                )

        response = asyncio.run(main())
    assert response.status_code == 200
    spans = [
        s for s in span_exporter.get_finished_spans() if f"{s.context.trace_id:032x}" == TRACE_ID
    ]
    names = [s.name for s in spans]
    assert len(spans) >= 4, names
    assert "POST /v1/ask" in names
    assert any(s.instrumentation_scope.name == "avl.db" for s in spans), names
