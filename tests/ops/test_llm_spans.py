"""Model HTTP calls are client spans whose context goes out in ``traceparent``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from avl.errors import ProviderError
from avl.llm import AsyncOpenAIChatModel, Message, OpenAIChatModel
from avl.metrics import start_span
from avl.testing import FakeClock, Recording, load_recording, recorded_transport
from tests.conftest import need_module

need_module("opentelemetry.sdk.trace")
from opentelemetry.trace import SpanKind, StatusCode  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "llm" / "openai"
PATH = "/v1/chat/completions"
HELLO = [Message(role="user", content="hello")]


def _replies(*names: str) -> list[Recording]:
    return [load_recording(FIXTURES / f"{n}.http", path=PATH) for n in names]


def _model(transport: Any, clock: FakeClock) -> OpenAIChatModel:
    return OpenAIChatModel(
        "gpt-4o-mini",
        api_key="sk-test-secret",
        base_url="https://user:pw@api.example.com/v1",
        transport=transport,
        clock=clock,
        sleep=clock.advance,
    )


def test_each_attempt_is_a_client_span_and_its_context_is_sent(span_exporter: Any) -> None:
    clock = FakeClock()
    transport = recorded_transport(*_replies("error_500", "chat_ok"))
    with start_span("avl.model") as stage:
        _model(transport, clock).complete(HELLO)
    first, second, parent = span_exporter.get_finished_spans()
    assert parent.name == "avl.model"
    for span in (first, second):
        assert span.name == "POST"
        assert span.kind is SpanKind.CLIENT
        assert span.parent.span_id == parent.context.span_id
        assert span.context.trace_id == parent.context.trace_id
        assert span.attributes["url.full"] == "https://api.example.com/v1/chat/completions"
        assert span.attributes["server.address"] == "api.example.com"
        assert span.attributes["server.port"] == 443
        assert span.attributes["gen_ai.provider.name"] == "openai"
    assert first.attributes["http.response.status_code"] == 500
    assert first.attributes["error.type"] == "500"
    assert first.status.status_code is StatusCode.ERROR
    assert "http.request.resend_count" not in first.attributes
    assert second.attributes["http.request.resend_count"] == 1
    assert second.attributes["http.response.status_code"] == 200
    assert second.status.status_code is StatusCode.UNSET
    # What the provider received: each attempt's own span id, the same trace.
    trace_id = f"{parent.context.trace_id:032x}"
    sent = [r.headers["traceparent"].rsplit("-", 1)[0] for r in transport.requests]
    assert sent == [
        f"00-{trace_id}-{first.context.span_id:016x}",
        f"00-{trace_id}-{second.context.span_id:016x}",
    ]
    # No secret in any attribute.
    for span in (first, second):
        assert not [v for v in span.attributes.values() if "sk-test" in str(v) or "pw" in str(v)]
    assert stage.ids is not None


def test_a_refused_call_is_one_failed_span(span_exporter: Any) -> None:
    clock = FakeClock()
    transport = recorded_transport(*_replies("error_401"))
    with pytest.raises(ProviderError):
        _model(transport, clock).complete(HELLO)
    (span,) = span_exporter.get_finished_spans()
    assert span.attributes["error.type"] == "401"
    assert span.parent is None  # no stage span around it: a root client span


def test_transport_errors_name_their_class(span_exporter: Any) -> None:
    import httpx

    clock = FakeClock()
    transport = recorded_transport(
        Recording(path=PATH, error=httpx.ConnectError("refused")),
        *_replies("chat_ok"),
    )
    _model(transport, clock).complete(HELLO)
    failed, ok = span_exporter.get_finished_spans()
    assert failed.attributes["error.type"] == "ConnectError"
    assert "http.response.status_code" not in failed.attributes
    assert ok.attributes["http.response.status_code"] == 200


def test_async_twin_sends_the_context_too(span_exporter: Any) -> None:
    clock = FakeClock()
    transport = recorded_transport(*_replies("chat_ok"))

    async def run() -> None:
        async def sleep(s: float) -> None:
            clock.advance(s)

        model = AsyncOpenAIChatModel(
            "gpt-4o-mini",
            api_key="sk-test",
            base_url="https://api.example.com/v1",
            transport=transport,
            clock=clock,
            sleep=sleep,
        )
        with start_span("avl.model"):
            await model.complete(HELLO)

    asyncio.run(run())
    client, parent = span_exporter.get_finished_spans()
    assert client.parent.span_id == parent.context.span_id
    assert transport.requests[0].headers["traceparent"].split("-")[2] == (
        f"{client.context.span_id:016x}"
    )


def test_no_header_without_a_provider() -> None:
    clock = FakeClock()
    transport = recorded_transport(*_replies("chat_ok"))
    _model(transport, clock).complete(HELLO)
    assert "traceparent" not in transport.requests[0].headers
