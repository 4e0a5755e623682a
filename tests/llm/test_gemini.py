"""Google Gemini API against recorded responses."""

from __future__ import annotations

import asyncio

import pytest

from avl.errors import ConfigError, ProviderError, ProviderRateLimitError
from avl.llm import (
    AsyncGeminiChatModel,
    Completion,
    Delta,
    GeminiChatModel,
    Message,
    RetryPolicy,
    ToolCall,
    Usage,
)
from avl.testing import FakeClock, RecordedTransport, recorded_transport
from tests.llm.conftest import Sleeper, ZeroRandom, body_of, recording

MESSAGES = [
    Message(role="system", content="You write SQLite SQL."),
    Message(role="user", content="Top 5 products?"),
    Message(role="assistant", content="By units or revenue?"),
    Message(role="user", content="units"),
]


def rec(name: str, model: str = "gemini-2.0-flash", *, stream: bool = False, **kwargs: object):  # type: ignore[no-untyped-def]
    method = "streamGenerateContent" if stream else "generateContent"
    params = {"alt": "sse"} if stream else {}
    return recording("gemini", name, f"/v1beta/models/{model}:{method}", params=params, **kwargs)


def model_for(
    transport: RecordedTransport, sleeper: Sleeper, clock: FakeClock, **kw: object
) -> GeminiChatModel:
    return GeminiChatModel(
        str(kw.pop("model", "gemini-2.0-flash")),
        api_key="AIza-test",
        transport=transport,
        clock=clock,
        sleep=sleeper,
        rng=ZeroRandom(),
        **kw,  # type: ignore[arg-type]
    )


def test_generate_content_with_cached_tokens_and_exact_request(sleeper, clock) -> None:
    transport = recorded_transport(rec("generate_ok"))
    result = model_for(transport, sleeper, clock).complete(
        MESSAGES, max_tokens=256, temperature=0, stop=[";"]
    )
    assert result == Completion(
        text="SELECT product_name, SUM(quantity) AS units FROM order_items GROUP BY product_name ORDER BY units DESC LIMIT 5;",
        model="gemini-2.0-flash",
        provider="gemini",
        usage=Usage(input_tokens=2048, output_tokens=31, cached_tokens=1536),
        cost_usd=pytest.approx((512 * 0.10 + 1536 * 0.025 + 31 * 0.40) / 1e6, rel=1e-12),
        stop_reason="stop",
        request_id="kTNFaOfhLZ6wz7IPjL_3wQk",
    )
    (request,) = transport.requests
    assert str(request.url) == (
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent"
    )
    assert request.headers["x-goog-api-key"] == "AIza-test"
    assert body_of(request) == {
        "contents": [
            {"role": "user", "parts": [{"text": "Top 5 products?"}]},
            {"role": "model", "parts": [{"text": "By units or revenue?"}]},
            {"role": "user", "parts": [{"text": "units"}]},
        ],
        "systemInstruction": {"parts": [{"text": "You write SQLite SQL."}]},
        "generationConfig": {"maxOutputTokens": 256, "temperature": 0.0, "stopSequences": [";"]},
    }


def test_max_tokens_counts_thoughts_as_output(sleeper, clock) -> None:
    transport = recorded_transport(rec("generate_max_tokens", "gemini-2.5-flash"))
    result = model_for(transport, sleeper, clock, model="gemini-2.5-flash").complete(MESSAGES)
    assert result.stop_reason == "length"
    assert result.text == "SELECT c.name, COUNT(o.id)"
    assert result.usage == Usage(input_tokens=120, output_tokens=70, cached_tokens=0)
    assert result.cost_usd == pytest.approx((120 * 0.30 + 70 * 2.50) / 1e6, rel=1e-12)
    assert "generationConfig" not in body_of(transport.requests[0])  # type: ignore[operator]


def test_function_call(sleeper, clock) -> None:
    result = model_for(recorded_transport(rec("generate_function_call")), sleeper, clock).complete(
        MESSAGES
    )
    assert result.stop_reason == "tool_use"
    assert result.text == ""
    assert result.tool_calls == (
        ToolCall(name="run_sql", arguments='{"sql":"SELECT COUNT(*) FROM orders"}'),
    )


def test_stream_sse_with_crlf(sleeper, clock) -> None:
    transport = recorded_transport(rec("stream_ok", stream=True))
    deltas = list(model_for(transport, sleeper, clock).stream(MESSAGES))
    assert deltas == [
        Delta(text="SELECT"),
        Delta(text=" city, AVG(total) FROM orders"),
        Delta(text=" GROUP BY city;"),
        Delta(
            done=True,
            usage=Usage(input_tokens=640, output_tokens=14, cached_tokens=512),
            stop_reason="stop",
            model="gemini-2.0-flash",
            cost_usd=pytest.approx((128 * 0.10 + 512 * 0.025 + 14 * 0.40) / 1e6, rel=1e-12),
            request_id=None,
        ),
    ]
    assert transport.requests[0].url.params["alt"] == "sse"


def test_truncated_stream(sleeper, clock) -> None:
    model = model_for(recorded_transport(rec("stream_truncated", stream=True)), sleeper, clock)
    got: list[str] = []
    with pytest.raises(ProviderError, match="stream was truncated"):
        got.extend(d.text for d in model.stream(MESSAGES))
    assert got == ["SELECT", " city FROM"]


@pytest.mark.parametrize(
    ("name", "status", "message"),
    [
        ("error_400", 400, "INVALID_ARGUMENT: API key not valid."),
        ("error_403", 403, "PERMISSION_DENIED: Method doesn't allow unregistered callers"),
    ],
)
def test_client_errors(sleeper, clock, name, status, message) -> None:
    transport = recorded_transport(rec(name))
    with pytest.raises(ProviderError) as info:
        model_for(transport, sleeper, clock).complete(MESSAGES)
    assert (info.value.provider, info.value.status) == ("gemini", status)
    assert message in str(info.value)
    assert len(transport.requests) == 1


def test_500_and_503_retried(sleeper, clock) -> None:
    transport = recorded_transport(rec("error_500"), rec("error_503"), rec("generate_ok"))
    assert model_for(transport, sleeper, clock).complete(MESSAGES).usage.output_tokens == 31
    assert sleeper.waits == [0.5, 1.0]


def test_429_reads_retry_delay_from_the_body(sleeper, clock) -> None:
    transport = recorded_transport(rec("error_429"), rec("error_429"))
    model = model_for(transport, sleeper, clock, retry=RetryPolicy(max_attempts=2))
    with pytest.raises(ProviderRateLimitError) as info:
        model.complete(MESSAGES)
    assert info.value.retry_after_s == 31.0
    assert "RESOURCE_EXHAUSTED" in str(info.value)
    assert sleeper.waits == [31.0]


def test_key_from_google_api_key(sleeper, clock) -> None:
    transport = recorded_transport(rec("generate_ok"))
    GeminiChatModel(
        "gemini-2.0-flash", env={"GOOGLE_API_KEY": "g-key"}, transport=transport
    ).complete(MESSAGES)
    assert transport.requests[0].headers["x-goog-api-key"] == "g-key"
    with pytest.raises(ConfigError, match="GEMINI_API_KEY or GOOGLE_API_KEY"):
        GeminiChatModel("gemini-2.0-flash", env={})


def test_async_twin(clock) -> None:
    sleeper = Sleeper(clock)
    transport = recorded_transport(rec("generate_ok"), rec("stream_ok", stream=True))

    async def run() -> tuple[Completion, list[Delta]]:
        async with AsyncGeminiChatModel(
            "gemini-2.0-flash",
            api_key="k",
            transport=transport,
            clock=clock,
            sleep=sleeper.async_sleep,
        ) as model:
            return await model.complete(MESSAGES), [d async for d in model.stream(MESSAGES)]

    completion, deltas = asyncio.run(run())
    assert completion.usage.cached_tokens == 1536
    assert "".join(d.text for d in deltas) == "SELECT city, AVG(total) FROM orders GROUP BY city;"
    assert deltas[-1].usage == Usage(input_tokens=640, output_tokens=14, cached_tokens=512)


def test_streamed_function_call(sleeper, clock) -> None:
    transport = recorded_transport(rec("stream_function_call", stream=True))
    deltas = list(model_for(transport, sleeper, clock).stream(MESSAGES))
    assert deltas == [
        Delta(
            done=True,
            usage=Usage(input_tokens=88, output_tokens=12),
            stop_reason="tool_use",
            model="gemini-2.0-flash",
            cost_usd=pytest.approx((88 * 0.10 + 12 * 0.40) / 1e6, rel=1e-12),
            tool_calls=(
                ToolCall(name="run_sql", arguments='{"sql":"SELECT COUNT(*) FROM orders"}'),
            ),
        )
    ]
