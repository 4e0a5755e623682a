"""OpenAI-compatible Chat Completions against recorded responses."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from avl.errors import ConfigError, ProviderError, ProviderRateLimitError
from avl.llm import (
    AsyncOpenAIChatModel,
    Completion,
    Delta,
    Message,
    OpenAIChatModel,
    RetryPolicy,
    ToolCall,
    Usage,
)
from avl.metrics import CostTable, ModelPrice
from avl.testing import FakeClock, recorded_transport
from tests.llm.conftest import Sleeper, ZeroRandom, body_of, recording

PATH = "/v1/chat/completions"
MESSAGES = [
    Message(role="system", content="You write SQLite SQL."),
    Message(role="user", content="Customers in France?"),
]


def rec(name: str, path: str = PATH, **kwargs: object):  # type: ignore[no-untyped-def]
    return recording("openai", name, path, **kwargs)


def model_for(
    transport: httpx.MockTransport, sleeper: Sleeper, clock: FakeClock, **kw: object
) -> OpenAIChatModel:
    return OpenAIChatModel(
        str(kw.pop("model", "gpt-4o-mini")),
        api_key="sk-test",
        transport=transport,
        clock=clock,
        sleep=sleeper,
        rng=ZeroRandom(),
        **kw,  # type: ignore[arg-type]
    )


def test_complete_parses_text_usage_cost_and_sends_the_exact_request(sleeper, clock) -> None:
    transport = recorded_transport(rec("chat_ok"))
    model = model_for(transport, sleeper, clock)
    result = model.complete(MESSAGES, max_tokens=200, temperature=0, stop=[";"])
    assert result == Completion(
        text="SELECT name, email FROM customers WHERE country = 'France' LIMIT 100;",
        model="gpt-4o-mini-2024-07-18",
        provider="openai",
        usage=Usage(input_tokens=1843, output_tokens=19, cached_tokens=1024),
        cost_usd=pytest.approx((819 * 0.15 + 1024 * 0.075 + 19 * 0.60) / 1e6, rel=1e-12),
        stop_reason="stop",
        request_id="req_5f1c0c3b7f4e4a0fa1d1c2b3a4e5f6a7",
    )
    (request,) = transport.requests
    assert str(request.url) == "https://api.openai.com/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.headers["content-type"] == "application/json"
    assert body_of(request) == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You write SQLite SQL."},
            {"role": "user", "content": "Customers in France?"},
        ],
        "max_completion_tokens": 200,
        "temperature": 0.0,
        "stop": [";"],
    }
    assert sleeper.waits == []


def test_length_stop_reason_and_prefix_priced_model(sleeper, clock) -> None:
    model = model_for(recorded_transport(rec("chat_length")), sleeper, clock, model="gpt-4o")
    result = model.complete(MESSAGES)
    assert result.stop_reason == "length"
    assert result.text == "SELECT c.name, SUM(o.total) AS revenue FROM customers c JOIN"
    assert result.usage == Usage(input_tokens=412, output_tokens=16, cached_tokens=0)
    assert result.cost_usd == pytest.approx((412 * 2.50 + 16 * 10.00) / 1e6, rel=1e-12)


def test_tool_calls_are_parsed(sleeper, clock) -> None:
    result = model_for(recorded_transport(rec("chat_tool_calls")), sleeper, clock).complete(
        MESSAGES
    )
    assert result.text == ""
    assert result.stop_reason == "tool_use"
    assert result.tool_calls == (
        ToolCall(
            id="call_q9X2mVb7", name="run_sql", arguments='{"sql":"SELECT COUNT(*) FROM orders"}'
        ),
    )


def test_stream_yields_deltas_then_usage_and_cost(sleeper, clock) -> None:
    transport = recorded_transport(rec("stream_ok"))
    model = model_for(transport, sleeper, clock)
    deltas = list(model.stream(MESSAGES, max_tokens=50))
    assert deltas == [
        Delta(text="SELECT"),
        Delta(text=" COUNT(*)"),
        Delta(text=" FROM orders;"),
        Delta(
            done=True,
            usage=Usage(input_tokens=1200, output_tokens=7, cached_tokens=1152),
            stop_reason="stop",
            model="gpt-4o-mini-2024-07-18",
            cost_usd=pytest.approx((48 * 0.15 + 1152 * 0.075 + 7 * 0.60) / 1e6, rel=1e-12),
            request_id="req_stream0001",
        ),
    ]
    body = body_of(transport.requests[0])
    assert body["stream"] is True  # type: ignore[index]
    assert body["stream_options"] == {"include_usage": True}  # type: ignore[index]
    assert transport.requests[0].headers["accept"] == "text/event-stream"


def test_truncated_stream_raises_provider_error(sleeper, clock) -> None:
    model = model_for(recorded_transport(rec("stream_truncated")), sleeper, clock)
    seen: list[str] = []
    with pytest.raises(ProviderError, match="stream was truncated") as info:
        for delta in model.stream(MESSAGES):
            seen.append(delta.text)
    assert seen == ["SELECT name", " FROM"]
    assert info.value.provider == "openai"
    assert info.value.request_id == "req_stream0002"


def test_connection_cut_mid_stream_raises_provider_error(sleeper, clock) -> None:
    model = model_for(recorded_transport(rec("stream_ok", cut_after=700)), sleeper, clock)
    with pytest.raises(ProviderError, match=r"truncated.*RemoteProtocolError") as info:
        list(model.stream(MESSAGES))
    assert isinstance(info.value.__cause__, httpx.RemoteProtocolError)


@pytest.mark.parametrize(
    ("name", "status", "request_id", "message"),
    [
        ("error_401", 401, "req_auth0401", "invalid_request_error: Incorrect API key provided"),
        ("error_400", 400, "req_bad0400", "invalid_request_error: Invalid value for 'temperature'"),
    ],
)
def test_client_errors_are_not_retried(sleeper, clock, name, status, request_id, message) -> None:
    transport = recorded_transport(rec(name))
    with pytest.raises(ProviderError) as info:
        model_for(transport, sleeper, clock).complete(MESSAGES)
    error = info.value
    assert type(error) is ProviderError
    assert (error.provider, error.status, error.request_id) == ("openai", status, request_id)
    assert message in str(error)
    assert f"status={status}" in str(error)
    assert len(transport.requests) == 1
    assert sleeper.waits == []


def test_server_error_is_retried_with_backoff_then_succeeds(sleeper, clock) -> None:
    transport = recorded_transport(rec("error_500"), rec("error_500"), rec("chat_ok"))
    result = model_for(transport, sleeper, clock).complete(MESSAGES)
    assert result.request_id == "req_5f1c0c3b7f4e4a0fa1d1c2b3a4e5f6a7"
    assert sleeper.waits == [0.5, 1.0]
    assert len(transport.requests) == 3


def test_server_error_after_all_attempts(sleeper, clock) -> None:
    transport = recorded_transport(*[rec("error_500")] * 3)
    model = model_for(transport, sleeper, clock, retry=RetryPolicy(max_attempts=3))
    with pytest.raises(ProviderError, match="The server had an error") as info:
        model.complete(MESSAGES)
    assert info.value.status == 500
    assert info.value.request_id == "req_srv0500"
    assert sleeper.waits == [0.5, 1.0]


def test_429_waits_for_retry_after_then_succeeds(sleeper, clock) -> None:
    transport = recorded_transport(rec("error_429"), rec("chat_ok"))
    result = model_for(transport, sleeper, clock).complete(MESSAGES)
    assert result.usage.input_tokens == 1843
    assert sleeper.waits == [2.0]


def test_429_exhausted_raises_rate_limit_error_with_retry_after(sleeper, clock) -> None:
    transport = recorded_transport(rec("error_429"), rec("error_429"))
    model = model_for(transport, sleeper, clock, retry=RetryPolicy(max_attempts=2))
    with pytest.raises(ProviderRateLimitError) as info:
        model.complete(MESSAGES)
    assert info.value.retry_after_s == 2.0
    assert info.value.status == 429
    assert info.value.request_id == "req_rate0429"
    assert "Rate limit reached for gpt-4o-mini" in str(info.value)
    assert sleeper.waits == [2.0]


def test_stream_retries_before_the_first_byte(sleeper, clock) -> None:
    transport = recorded_transport(rec("error_429"), rec("stream_ok"))
    text = "".join(d.text for d in model_for(transport, sleeper, clock).stream(MESSAGES))
    assert text == "SELECT COUNT(*) FROM orders;"
    assert sleeper.waits == [2.0]


def test_local_server_needs_no_key_and_uses_max_tokens(sleeper, clock) -> None:
    transport = recorded_transport(rec("chat_ok"))
    model = OpenAIChatModel(
        "llama3.2", base_url="http://localhost:11434/v1", transport=transport, env={}
    )
    model.complete(MESSAGES, max_tokens=64)
    (request,) = transport.requests
    assert str(request.url) == "http://localhost:11434/v1/chat/completions"
    assert "authorization" not in request.headers
    assert body_of(request)["max_tokens"] == 64  # type: ignore[index]
    # The response names a model in the cost table: priced by it.
    assert model.name == "openai/llama3.2"


def test_unknown_model_has_no_cost_and_cost_table_overrides(sleeper, clock) -> None:
    table = CostTable.default().with_prices(
        {"openai/gpt-4o-mini-2024-07-18": ModelPrice(input_per_mtok=1.0, output_per_mtok=2.0)}
    )
    model = model_for(recorded_transport(rec("chat_ok")), sleeper, clock, cost_table=table)
    assert model.complete(MESSAGES).cost_usd == pytest.approx((1843 * 1.0 + 19 * 2.0) / 1e6)
    empty = CostTable(prices={})
    model = model_for(recorded_transport(rec("chat_ok")), sleeper, clock, cost_table=empty)
    assert model.complete(MESSAGES).cost_usd is None


def test_azure_uses_api_key_header_and_api_version(sleeper, clock) -> None:
    base = "https://myres.openai.azure.com/openai/deployments/gpt4o-prod"
    transport = recorded_transport(
        rec(
            "chat_ok",
            path="/openai/deployments/gpt4o-prod/chat/completions",
            params={"api-version": "2024-10-21"},
        )
    )
    model = OpenAIChatModel(
        "gpt-4o", api_key="azure-key", base_url=base, api_version="2024-10-21", transport=transport
    )
    model.complete(MESSAGES)
    (request,) = transport.requests
    assert request.headers["api-key"] == "azure-key"
    assert "authorization" not in request.headers
    assert request.url.params["api-version"] == "2024-10-21"


def test_missing_key_for_openai_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        OpenAIChatModel("gpt-4o-mini", env={})


def test_key_from_environment_mapping(sleeper, clock) -> None:
    transport = recorded_transport(rec("chat_ok"))
    OpenAIChatModel("gpt-4o-mini", env={"OPENAI_API_KEY": "sk-env"}, transport=transport).complete(
        MESSAGES
    )
    assert transport.requests[0].headers["authorization"] == "Bearer sk-env"


def test_async_complete_and_stream(clock) -> None:
    sleeper = Sleeper(clock)
    transport = recorded_transport(rec("error_500"), rec("chat_ok"), rec("stream_ok"))

    async def run() -> tuple[Completion, list[Delta]]:
        model = AsyncOpenAIChatModel(
            "gpt-4o-mini",
            api_key="sk-test",
            transport=transport,
            clock=clock,
            sleep=sleeper.async_sleep,
            rng=ZeroRandom(),
        )
        async with model:
            completion = await model.complete(MESSAGES)
            deltas = [d async for d in model.stream(MESSAGES)]
        return completion, deltas

    completion, deltas = asyncio.run(run())
    assert (
        completion.text == "SELECT name, email FROM customers WHERE country = 'France' LIMIT 100;"
    )
    assert completion.usage == Usage(input_tokens=1843, output_tokens=19, cached_tokens=1024)
    assert [d.text for d in deltas] == ["SELECT", " COUNT(*)", " FROM orders;", ""]
    assert deltas[-1].usage == Usage(input_tokens=1200, output_tokens=7, cached_tokens=1152)
    assert sleeper.waits == [0.5]


def test_async_truncated_stream(clock) -> None:
    transport = recorded_transport(rec("stream_truncated"))

    async def run() -> list[str]:
        model = AsyncOpenAIChatModel("gpt-4o-mini", api_key="k", transport=transport)
        out: list[str] = []
        async for delta in model.stream(MESSAGES):
            out.append(delta.text)
        return out

    with pytest.raises(ProviderError, match="stream was truncated"):
        asyncio.run(run())


def test_streamed_tool_calls_are_assembled(sleeper, clock) -> None:
    deltas = list(
        model_for(recorded_transport(rec("stream_tool_calls")), sleeper, clock).stream(MESSAGES)
    )
    assert len(deltas) == 1
    (final,) = deltas
    assert final.stop_reason == "tool_use"
    assert final.tool_calls == (
        ToolCall(
            id="call_DdmZ1y3b", name="run_sql", arguments='{"sql":"SELECT COUNT(*) FROM orders"}'
        ),
    )
    assert final.usage == Usage(input_tokens=95, output_tokens=21)
