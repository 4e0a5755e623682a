"""Retries, deadlines and error translation shared by every provider."""

from __future__ import annotations

import email.utils
import json

import httpx
import pytest

from avl.errors import (
    ConfigError,
    InvalidInputError,
    ProviderError,
    ProviderTimeoutError,
)
from avl.llm import Message, OpenAIChatModel, RetryPolicy
from avl.llm._http import error_from_response, parse_retry_after
from avl.testing import FakeClock, Recording, recorded_transport
from tests.llm.conftest import Sleeper, ZeroRandom, recording

PATH = "/v1/chat/completions"
HELLO = [Message(role="user", content="hello")]


def model_for(
    transport: httpx.BaseTransport, sleeper: Sleeper, clock: FakeClock, **kw: object
) -> OpenAIChatModel:
    return OpenAIChatModel(
        "gpt-4o-mini",
        api_key="sk-test",
        transport=transport,
        clock=clock,
        sleep=sleeper,
        rng=ZeroRandom(),
        **kw,  # type: ignore[arg-type]
    )


class TestRetryPolicy:
    def test_backoff_doubles_and_caps(self) -> None:
        policy = RetryPolicy(initial_backoff_s=0.5, multiplier=2.0, max_backoff_s=3.0)
        assert [policy.backoff_s(n, 0.0) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]

    def test_jitter_takes_up_to_its_share_off(self) -> None:
        assert RetryPolicy(jitter=0.5).backoff_s(3, 1.0) == 1.0
        assert RetryPolicy(jitter=1.0).backoff_s(3, 0.25) == 1.5
        assert RetryPolicy(jitter=0.0).backoff_s(3, 0.99) == 2.0

    def test_next_delay_gives_up_after_the_last_attempt(self) -> None:
        policy = RetryPolicy(max_attempts=3)
        kw = {"elapsed_s": 0.0, "retry_after_s": None, "rand": 0.0}
        assert policy.next_delay_s(attempt=2, **kw) == 1.0  # type: ignore[arg-type]
        assert policy.next_delay_s(attempt=3, **kw) is None  # type: ignore[arg-type]

    def test_retry_after_wins_and_the_deadline_bounds_it(self) -> None:
        policy = RetryPolicy(deadline_s=10.0)
        assert policy.next_delay_s(attempt=1, elapsed_s=1.0, retry_after_s=4.0, rand=0.0) == 4.0
        assert policy.next_delay_s(attempt=1, elapsed_s=7.0, retry_after_s=4.0, rand=0.0) is None
        assert (
            RetryPolicy(deadline_s=None).next_delay_s(
                attempt=1, elapsed_s=1e9, retry_after_s=4.0, rand=0.0
            )
            == 4.0
        )

    @pytest.mark.parametrize(
        "kwargs",
        [{"max_attempts": 0}, {"jitter": 1.5}, {"initial_backoff_s": -1}, {"deadline_s": "10"}],
    )
    def test_bad_values(self, kwargs: dict[str, object]) -> None:
        with pytest.raises(ConfigError, match=next(iter(kwargs))):
            RetryPolicy(**kwargs)  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("status", "retried"),
        [
            (400, False),
            (401, False),
            (404, False),
            (408, True),
            (409, True),
            (429, True),
            (500, True),
            (502, True),
            (503, True),
            (529, True),
        ],
    )
    def test_retryable_statuses(self, status: int, retried: bool) -> None:
        assert RetryPolicy.retryable_status(status) is retried


class TestRetryAfter:
    NOW = 1_764_058_000.0

    @pytest.mark.parametrize(
        ("headers", "expected"),
        [
            ({"retry-after": "3"}, 3.0),
            ({"retry-after": " 1.5 "}, 1.5),
            ({"retry-after": "-4"}, 0.0),
            ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
            ({"retry-after": "soon"}, None),
            ({}, None),
        ],
    )
    def test_seconds(self, headers: dict[str, str], expected: float | None) -> None:
        assert parse_retry_after(httpx.Headers(headers), self.NOW) == expected

    def test_http_date(self) -> None:
        date = email.utils.formatdate(self.NOW + 42, usegmt=True)
        assert parse_retry_after(httpx.Headers({"Retry-After": date}), self.NOW) == 42.0
        past = email.utils.formatdate(self.NOW - 42, usegmt=True)
        assert parse_retry_after(httpx.Headers({"Retry-After": past}), self.NOW) == 0.0

    def test_http_date_is_honoured_by_a_call(self, sleeper: Sleeper, clock: FakeClock) -> None:
        date = email.utils.formatdate(clock.now() + 12, usegmt=True)
        transport = recorded_transport(
            Recording(path=PATH, status=429, headers={"retry-after": date}, body=b"{}"),
            recording("openai", "chat_ok", PATH),
        )
        model_for(transport, sleeper, clock).complete(HELLO)
        assert sleeper.waits == [12.0]


def test_error_from_response_without_json_body() -> None:
    error = error_from_response(
        "openai", 502, httpx.Headers({"x-request-id": "r1"}), b"<html>Bad gateway</html>", 0.0
    )
    assert type(error) is ProviderError
    assert str(error) == (
        "openai request failed: <html>Bad gateway</html> (provider=openai, status=502, request_id=r1)"
    )


def test_504_is_a_timeout_error() -> None:
    error = error_from_response("gemini", 504, httpx.Headers(), b'{"error":{"message":"x"}}', 0.0)
    assert isinstance(error, ProviderTimeoutError)


def test_timeouts_are_retried_then_translated(sleeper: Sleeper, clock: FakeClock) -> None:
    transport = recorded_transport(
        *[Recording(path=PATH, error=httpx.ReadTimeout("read timed out")) for _ in range(3)]
    )
    model = model_for(transport, sleeper, clock, retry=RetryPolicy(max_attempts=3))
    with pytest.raises(ProviderTimeoutError, match="did not answer in time") as info:
        model.complete(HELLO)
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)
    assert isinstance(info.value, TimeoutError)
    assert info.value.provider == "openai"
    assert sleeper.waits == [0.5, 1.0]


def test_connection_error_then_success(sleeper: Sleeper, clock: FakeClock) -> None:
    transport = recorded_transport(
        Recording(path=PATH, error=httpx.ConnectError("connection refused")),
        recording("openai", "chat_ok", PATH),
    )
    assert model_for(transport, sleeper, clock).complete(HELLO).usage.output_tokens == 19
    assert sleeper.waits == [0.5]


def test_connection_error_after_all_attempts(sleeper: Sleeper, clock: FakeClock) -> None:
    transport = recorded_transport(
        *[Recording(path=PATH, error=httpx.ConnectError("connection refused"))] * 2
    )
    model = model_for(transport, sleeper, clock, retry=RetryPolicy(max_attempts=2))
    with pytest.raises(ProviderError, match="could not reach openai") as info:
        model.complete(HELLO)
    assert isinstance(info.value.__cause__, httpx.ConnectError)


def test_total_deadline_shortens_attempts_and_stops_retrying(clock: FakeClock) -> None:
    sleeper = Sleeper(clock)
    timeouts: list[float] = []

    def slow_failure(request: httpx.Request) -> httpx.Response:
        timeouts.append(request.extensions["timeout"]["read"])
        clock.advance(40.0)
        return httpx.Response(500, json={"error": {"message": "boom"}})

    model = model_for(
        httpx.MockTransport(slow_failure),
        sleeper,
        clock,
        retry=RetryPolicy(max_attempts=10, deadline_s=100.0),
    )
    with pytest.raises(ProviderError, match="boom") as info:
        model.complete(HELLO)
    assert info.value.status == 500
    assert timeouts == [60.0, 59.5, 18.5]
    assert sleeper.waits == [0.5, 1.0]


def test_not_json_and_wrong_shape(sleeper: Sleeper, clock: FakeClock) -> None:
    transport = recorded_transport(
        Recording(path=PATH, body=b"<html>proxy login</html>"),
        Recording(path=PATH, body=b'{"object": "list", "data": []}'),
    )
    model = model_for(transport, sleeper, clock)
    with pytest.raises(ProviderError, match="not JSON"):
        model.complete(HELLO)
    with pytest.raises(ProviderError, match="unexpected response: no choices"):
        model.complete(HELLO)


@pytest.mark.parametrize(
    ("messages", "kwargs", "match"),
    [
        ([], {}, "messages is empty"),
        ("hello", {}, "sequence of avl.llm.Message"),
        ([{"role": "user", "content": "x"}], {}, r"messages\[0\] must be an avl.llm.Message"),
        (HELLO, {"max_tokens": 0}, "max_tokens must be a positive integer"),
        (HELLO, {"temperature": 3}, "temperature must be between 0 and 2"),
        (HELLO, {"stop": "x"}, "stop must be a sequence"),
    ],
)
def test_bad_call_arguments(messages: object, kwargs: dict[str, object], match: str) -> None:
    model = OpenAIChatModel("gpt-4o-mini", api_key="k", transport=recorded_transport())
    with pytest.raises(InvalidInputError, match=match):
        model.complete(messages, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match=match):
        model.stream(messages, **kwargs)  # type: ignore[arg-type]


def test_injected_client_is_used_and_left_open() -> None:
    transport = recorded_transport(recording("openai", "chat_ok", PATH))
    client = httpx.Client(transport=transport, headers={"x-app": "demo"})
    model = OpenAIChatModel("gpt-4o-mini", api_key="k", http_client=client)
    model.complete(HELLO)
    model.close()
    assert not client.is_closed
    assert transport.requests[0].headers["x-app"] == "demo"
    client.close()


def test_client_and_transport_are_exclusive() -> None:
    with pytest.raises(ConfigError, match="either http_client or transport"):
        OpenAIChatModel(
            "gpt-4o-mini", api_key="k", http_client=httpx.Client(), transport=recorded_transport()
        )
    with pytest.raises(ConfigError, match=r"httpx\.Client"):
        OpenAIChatModel("gpt-4o-mini", api_key="k", http_client=object())  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="timeout_s"):
        OpenAIChatModel("gpt-4o-mini", api_key="k", timeout_s=0)


class _SlowStream(httpx.SyncByteStream):
    """A stream whose every line takes 30 fake seconds."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock

    def __iter__(self):  # type: ignore[no-untyped-def]
        for text in ("Hel", "lo", " there"):
            self.clock.advance(30.0)
            chunk = {"model": "m", "choices": [{"index": 0, "delta": {"content": text}}]}
            yield f"data: {json.dumps(chunk)}\n\n".encode()
        yield b"data: [DONE]\n\n"


def test_stream_past_the_deadline_raises_a_timeout(sleeper: Sleeper, clock: FakeClock) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=_SlowStream(clock))

    model = model_for(
        httpx.MockTransport(handler), sleeper, clock, retry=RetryPolicy(deadline_s=50)
    )
    got: list[str] = []
    with pytest.raises(ProviderTimeoutError, match="stream exceeded its deadline of 50 s"):
        got.extend(d.text for d in model.stream(HELLO))
    assert got == ["Hel"]
