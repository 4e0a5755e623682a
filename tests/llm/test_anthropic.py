"""Anthropic Messages API against recorded responses."""

from __future__ import annotations

import asyncio

import pytest

from avl.errors import ConfigError, InvalidInputError, ProviderError, ProviderRateLimitError
from avl.llm import (
    AnthropicChatModel,
    AsyncAnthropicChatModel,
    Completion,
    Delta,
    Message,
    RetryPolicy,
    ToolCall,
    Usage,
)
from avl.testing import FakeClock, RecordedTransport, recorded_transport
from tests.llm.conftest import Sleeper, ZeroRandom, body_of, recording

PATH = "/v1/messages"
MESSAGES = [
    Message(role="system", content="You write SQLite SQL."),
    Message(role="system", content="Only SELECT."),
    Message(role="user", content="Customers per country?"),
    Message(role="assistant", content="Which table?"),
    Message(role="user", content="customers"),
]


def rec(name: str, **kwargs: object):  # type: ignore[no-untyped-def]
    return recording("anthropic", name, PATH, **kwargs)


def model_for(
    transport: RecordedTransport, sleeper: Sleeper, clock: FakeClock, **kw: object
) -> AnthropicChatModel:
    return AnthropicChatModel(
        str(kw.pop("model", "claude-3-5-haiku-latest")),
        api_key="sk-ant-test",
        transport=transport,
        clock=clock,
        sleep=sleeper,
        rng=ZeroRandom(),
        **kw,  # type: ignore[arg-type]
    )


def test_complete_with_cache_usage_and_exact_request(sleeper, clock) -> None:
    transport = recorded_transport(rec("messages_ok"))
    result = model_for(transport, sleeper, clock).complete(MESSAGES, temperature=0.2, stop=["\n\n"])
    assert result == Completion(
        text="SELECT country, COUNT(*) AS customers FROM customers GROUP BY country ORDER BY customers DESC;",
        model="claude-3-5-haiku-20241022",
        provider="anthropic",
        usage=Usage(
            input_tokens=2010, output_tokens=24, cached_tokens=1500, cache_creation_tokens=300
        ),
        cost_usd=pytest.approx((510 * 0.80 + 1500 * 0.08 + 24 * 4.00) / 1e6, rel=1e-12),
        stop_reason="stop",
        request_id="req_011CVT8ZhxYbN3Jt7XQm4s2K",
    )
    (request,) = transport.requests
    assert str(request.url) == "https://api.anthropic.com/v1/messages"
    assert request.headers["x-api-key"] == "sk-ant-test"
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in request.headers
    assert body_of(request) == {
        "model": "claude-3-5-haiku-latest",
        "max_tokens": 1024,
        "system": "You write SQLite SQL.\n\nOnly SELECT.",
        "messages": [
            {"role": "user", "content": "Customers per country?"},
            {"role": "assistant", "content": "Which table?"},
            {"role": "user", "content": "customers"},
        ],
        "temperature": 0.2,
        "stop_sequences": ["\n\n"],
    }


def test_max_tokens_stop_reason(sleeper, clock) -> None:
    transport = recorded_transport(rec("messages_max_tokens"))
    result = model_for(transport, sleeper, clock, model="claude-sonnet-4-0").complete(
        MESSAGES, max_tokens=12
    )
    assert result.stop_reason == "length"
    assert result.text == "SELECT o.id, o.total FROM orders o WHERE"
    assert result.cost_usd == pytest.approx((388 * 3.00 + 12 * 15.00) / 1e6, rel=1e-12)
    assert body_of(transport.requests[0])["max_tokens"] == 12  # type: ignore[index]


def test_tool_use(sleeper, clock) -> None:
    result = model_for(recorded_transport(rec("messages_tool_use")), sleeper, clock).complete(
        MESSAGES
    )
    assert result.stop_reason == "tool_use"
    assert result.text == "I'll count the orders."
    assert result.tool_calls == (
        ToolCall(
            id="toolu_01A09q90qw90lq917835lq9",
            name="run_sql",
            arguments='{"sql":"SELECT COUNT(*) FROM orders"}',
        ),
    )


def test_stream_events(sleeper, clock) -> None:
    transport = recorded_transport(rec("stream_ok"))
    deltas = list(model_for(transport, sleeper, clock).stream(MESSAGES))
    assert deltas == [
        Delta(text="SELECT"),
        Delta(text=" COUNT(*) FROM"),
        Delta(text=" orders;"),
        Delta(
            done=True,
            usage=Usage(input_tokens=1025, output_tokens=9, cached_tokens=1000),
            stop_reason="stop",
            model="claude-3-5-haiku-20241022",
            cost_usd=pytest.approx((25 * 0.80 + 1000 * 0.08 + 9 * 4.00) / 1e6, rel=1e-12),
            request_id="req_011CVT8cStream00000000001",
        ),
    ]
    assert body_of(transport.requests[0])["stream"] is True  # type: ignore[index]


def test_truncated_stream(sleeper, clock) -> None:
    model = model_for(recorded_transport(rec("stream_truncated")), sleeper, clock)
    texts: list[str] = []
    with pytest.raises(ProviderError, match="stream was truncated") as info:
        texts.extend(d.text for d in model.stream(MESSAGES))
    assert info.value.request_id == "req_011CVT8dTrunc000000000001"


def test_error_event_mid_stream(sleeper, clock) -> None:
    model = model_for(recorded_transport(rec("stream_error")), sleeper, clock)
    with pytest.raises(ProviderError, match="overloaded_error: Overloaded") as info:
        list(model.stream(MESSAGES))
    assert info.value.provider == "anthropic"


@pytest.mark.parametrize(
    ("name", "status", "message"),
    [
        ("error_401", 401, "authentication_error: invalid x-api-key"),
        ("error_400", 400, "invalid_request_error: max_tokens: 100000 > 8192"),
    ],
)
def test_client_errors(sleeper, clock, name, status, message) -> None:
    transport = recorded_transport(rec(name))
    with pytest.raises(ProviderError) as info:
        model_for(transport, sleeper, clock).complete(MESSAGES)
    assert info.value.status == status
    assert str(info.value.request_id).startswith("req_011CVT8")
    assert message in str(info.value)
    assert len(transport.requests) == 1


def test_overloaded_529_and_500_are_retried(sleeper, clock) -> None:
    transport = recorded_transport(rec("error_529"), rec("error_500"), rec("messages_ok"))
    assert model_for(transport, sleeper, clock).complete(MESSAGES).usage.output_tokens == 24
    assert sleeper.waits == [0.5, 1.0]


def test_429_retry_after_then_rate_limit_error(sleeper, clock) -> None:
    transport = recorded_transport(rec("error_429"), rec("error_429"))
    model = model_for(transport, sleeper, clock, retry=RetryPolicy(max_attempts=2))
    with pytest.raises(ProviderRateLimitError) as info:
        model.complete(MESSAGES)
    assert info.value.retry_after_s == 7.0
    assert info.value.request_id == "req_011CVT8jRate0000000000001"
    assert sleeper.waits == [7.0]


def test_retry_after_beyond_the_deadline_gives_up_at_once(sleeper, clock) -> None:
    transport = recorded_transport(rec("error_429"))
    model = model_for(transport, sleeper, clock, retry=RetryPolicy(deadline_s=5.0))
    with pytest.raises(ProviderRateLimitError) as info:
        model.complete(MESSAGES)
    assert info.value.retry_after_s == 7.0
    assert sleeper.waits == []


def test_only_system_messages_is_invalid(sleeper, clock) -> None:
    model = model_for(recorded_transport(), sleeper, clock)
    with pytest.raises(InvalidInputError, match="at least one user or assistant"):
        model.complete([Message(role="system", content="x")])


def test_missing_key() -> None:
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY"):
        AnthropicChatModel("claude-3-5-haiku-latest", env={})


def test_async_twin(clock) -> None:
    sleeper = Sleeper(clock)
    transport = recorded_transport(rec("error_529"), rec("messages_ok"), rec("stream_ok"))

    async def run() -> tuple[Completion, list[Delta]]:
        async with AsyncAnthropicChatModel(
            "claude-3-5-haiku-latest",
            api_key="sk-ant-test",
            transport=transport,
            clock=clock,
            sleep=sleeper.async_sleep,
            rng=ZeroRandom(),
        ) as model:
            return await model.complete(MESSAGES), [d async for d in model.stream(MESSAGES)]

    completion, deltas = asyncio.run(run())
    assert completion.usage == Usage(
        input_tokens=2010, output_tokens=24, cached_tokens=1500, cache_creation_tokens=300
    )
    assert "".join(d.text for d in deltas) == "SELECT COUNT(*) FROM orders;"
    assert deltas[-1].stop_reason == "stop"
    assert sleeper.waits == [0.5]


def test_streamed_tool_use_is_assembled(sleeper, clock) -> None:
    deltas = list(
        model_for(recorded_transport(rec("stream_tool_use")), sleeper, clock).stream(MESSAGES)
    )
    assert [d.text for d in deltas] == ["I'll count the orders.", ""]
    final = deltas[-1]
    assert final.stop_reason == "tool_use"
    assert final.tool_calls == (
        ToolCall(
            id="toolu_01T1x1fJ34qAmk2tNTrN7Up6",
            name="run_sql",
            arguments='{"sql":"SELECT COUNT(*) FROM orders"}',
        ),
    )
    assert final.usage == Usage(input_tokens=402, output_tokens=57)
