"""One question, one trace: avl's spans under the application's OpenTelemetry SDK.

avl never configures OpenTelemetry: the application sets a tracer provider (here the
SDK with an in-memory exporter; in production an OTLP exporter), and avl's web adapter,
pipeline stages, model calls and database queries become spans of the caller's trace.

Run: ``python examples/ops_tracing.py`` (needs ``avl[web,otel,logs]`` and
``opentelemetry-sdk``).
"""

from __future__ import annotations

import asyncio
import logging
import sys

import httpx
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)  # before or after importing avl: both work

from avl.console import Console  # noqa: E402
from avl.logs import configure_logging  # noqa: E402
from avl.web import create_app  # noqa: E402

configure_logging("INFO", json=True, stream=sys.stdout)
logging.getLogger("avl.web.access").setLevel(logging.INFO)

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


async def main() -> None:
    with Console() as console:
        app = create_app(console)  # its AccessLog gives a request id and an access record
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            r = await c.post(
                "/v1/ask",
                json={"question": "How many customers are there?"},
                headers={"traceparent": TRACEPARENT},
            )
        print(r.status_code, r.json()["rows"], "request id", r.headers["x-request-id"])
    for span in exporter.get_finished_spans():
        parent = f"{span.parent.span_id:016x}" if span.parent else "-"
        print(f"{span.context.trace_id:032x} {span.kind.name:8} {span.name:16} parent {parent}")


if __name__ == "__main__":
    asyncio.run(main())
