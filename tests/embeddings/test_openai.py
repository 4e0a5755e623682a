"""OpenAI-compatible embedders against recorded wire-format payloads."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from avl.embeddings import AsyncOpenAIEmbedder, Embedder, OpenAIEmbedder, create_embedder
from avl.errors import (
    ConfigError,
    InvalidInputError,
    ProviderError,
    ProviderRateLimitError,
    ProviderTimeoutError,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "embeddings"


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def _response(name: str) -> httpx.Response:
    rec = _load(name)["response"]
    return httpx.Response(rec["status"], headers=rec["headers"], json=rec["body"])


class Replay:
    """Answers requests with recorded responses, in order, and keeps the requests."""

    def __init__(self, *names: str) -> None:
        self.names = list(names)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        name = self.names.pop(0)
        if name == "timeout":
            raise httpx.ReadTimeout("timed out", request=request)
        return _response(name)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))

    def async_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self))


OK = "openai_ok_3_texts_dim8.json"
TEXTS = _load(OK)["request"]["body"]["input"]


def _expected() -> np.ndarray:
    data = sorted(_load(OK)["response"]["body"]["data"], key=lambda d: d["index"])
    return np.asarray([d["embedding"] for d in data], dtype=np.float32)


def _embedder(replay: Replay, sleeps: list[float], **kw: Any) -> OpenAIEmbedder:
    return OpenAIEmbedder(
        "text-embedding-3-small",
        api_key="sk-test",
        dimensions=8,
        http_client=replay.client(),
        sleep=sleeps.append,
        **kw,
    )


def test_request_is_the_recorded_wire_format_and_order_is_restored() -> None:
    replay = Replay(OK)
    emb = _embedder(replay, [])
    assert isinstance(emb, Embedder)
    out = emb.embed(TEXTS)
    np.testing.assert_array_equal(out, _expected())
    assert out.dtype == np.float32
    assert out.shape == (3, 8)
    (req,) = replay.requests
    assert req.method == "POST"
    assert str(req.url) == "https://api.openai.com/v1/embeddings"
    assert req.headers["authorization"] == "Bearer sk-test"
    assert json.loads(req.content) == _load(OK)["request"]["body"]
    assert emb.name == "openai:text-embedding-3-small:8@https://api.openai.com/v1/embeddings"
    assert emb.dim == 8


def test_retries_429_and_5xx_honouring_retry_after() -> None:
    replay = Replay("openai_429_rate_limited.json", "openai_503_overloaded.json", "timeout", OK)
    sleeps: list[float] = []
    emb = _embedder(replay, sleeps, backoff_s=0.25)
    np.testing.assert_array_equal(emb.embed(TEXTS), _expected())
    # retry-after-ms wins over retry-after; then exponential backoff 0.25*2**1, 0.25*2**2
    assert sleeps == [1.5, 0.5, 1.0]
    assert len(replay.requests) == 4


def test_rate_limit_after_retries_carries_status_and_request_id() -> None:
    replay = Replay(*["openai_429_rate_limited.json"] * 3)
    sleeps: list[float] = []
    emb = _embedder(replay, sleeps, max_retries=2)
    with pytest.raises(ProviderRateLimitError) as info:
        emb.embed(["x"])
    err = info.value
    assert (err.provider, err.status, err.request_id) == (
        "openai",
        429,
        "req_0a9b8c7d6e5f40312a3b4c5d6e7f8091",
    )
    assert err.retry_after_s == 1.5
    assert "Rate limit reached" in str(err)
    assert sleeps == [1.5, 1.5]


@pytest.mark.parametrize(
    ("name", "status", "text"),
    [
        ("openai_400_context_length.json", 400, "maximum context length"),
        ("openai_401_invalid_key.json", 401, "Incorrect API key"),
    ],
)
def test_client_errors_are_not_retried(name: str, status: int, text: str) -> None:
    replay = Replay(name)
    sleeps: list[float] = []
    with pytest.raises(ProviderError, match=text) as info:
        _embedder(replay, sleeps).embed(["x"])
    assert info.value.status == status
    assert info.value.request_id is not None
    assert sleeps == []


def test_timeouts_become_provider_timeout_error() -> None:
    replay = Replay("timeout", "timeout")
    with pytest.raises(ProviderTimeoutError, match="timed out"):
        _embedder(replay, [], max_retries=1).embed(["x"])


def test_malformed_responses_are_provider_errors() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json={"object": "list", "data": [{"index": 0, "embedding": [1.0, 2.0]}]}
        )

    emb = OpenAIEmbedder(
        "m", dim=8, http_client=httpx.Client(transport=httpx.MockTransport(handler))
    )
    with pytest.raises(ProviderError, match=r"shape \(1, 2\), expected \(1, 8\)"):
        emb.embed(["x"])


def test_batches_and_progress() -> None:
    seen: list[list[str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(body["input"])
        data = [
            {"object": "embedding", "index": i, "embedding": [float(len(t)), 1.0]}
            for i, t in enumerate(body["input"])
        ]
        return httpx.Response(
            200,
            json={
                "object": "list",
                "data": data,
                "model": "m",
                "usage": {"prompt_tokens": 1, "total_tokens": 1},
            },
        )

    progress: list[tuple[int, int]] = []
    emb = OpenAIEmbedder(
        "m",
        base_url="http://localhost:8080/v1",
        dim=2,
        batch_size=2,
        max_concurrency=1,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
        progress=lambda d, t: progress.append((d, t)),
    )
    out = emb.embed(["a", "bb", "ccc", "dddd", "eeeee"])
    assert out[:, 0].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert seen == [["a", "bb"], ["ccc", "dddd"], ["eeeee"]]
    assert progress == [(2, 5), (4, 5), (5, 5)]
    assert emb.embed([]).shape == (0, 2)
    with pytest.raises(InvalidInputError, match="sequence of texts"):
        emb.embed("abc")


def test_async_twin_same_behaviour() -> None:
    replay = Replay("openai_429_rate_limited.json", OK)
    sleeps: list[float] = []

    async def fake_sleep(s: float) -> None:
        sleeps.append(s)

    async def run() -> np.ndarray:
        async with AsyncOpenAIEmbedder(
            "text-embedding-3-small",
            dimensions=8,
            http_client=replay.async_client(),
            sleep=fake_sleep,
        ) as emb:
            return await emb.embed(TEXTS)

    np.testing.assert_array_equal(asyncio.run(run()), _expected())
    assert sleeps == [1.5]
    assert "authorization" not in replay.requests[0].headers


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown dimension"):
        OpenAIEmbedder("my-model")
    # a dimension given as 0 or negative is named as such, not taken as "not given"
    with pytest.raises(ConfigError, match=r"^dim must be a positive int, got 0$"):
        OpenAIEmbedder("my-model", dim=0)
    with pytest.raises(ConfigError, match=r"^dimensions must be a positive int, got -3$"):
        create_embedder("openai://?model=text-embedding-3-small&dimensions=-3", api_key="k")
    with pytest.raises(ConfigError, match="batch_size"):
        OpenAIEmbedder(batch_size=0)
    with pytest.raises(ConfigError, match="batch_size"):
        OpenAIEmbedder(batch_size=2049)
    with pytest.raises(ConfigError, match="max_concurrency"):
        OpenAIEmbedder(max_concurrency=0)
    with pytest.raises(ConfigError, match="max_batch_tokens"):
        AsyncOpenAIEmbedder(max_batch_tokens=0)
    with pytest.raises(ConfigError, match="encoding_format"):
        OpenAIEmbedder(encoding_format="binary")


def test_create_embedder_openai_url() -> None:
    replay = Replay(OK)
    emb = create_embedder(
        "openai+http://localhost:8080/v1?model=text-embedding-3-small&dimensions=8",
        api_key="k",
        http_client=replay.client(),
    )
    np.testing.assert_array_equal(emb.embed(TEXTS), _expected())
    assert str(replay.requests[0].url) == "http://localhost:8080/v1/embeddings"


def _echo_body(inputs: list[str], fmt: str = "float") -> dict[str, Any]:
    """An OpenAI-format answer whose vector for a text is [len(text), first char code]."""
    data = []
    for i, t in enumerate(inputs):
        vec = np.asarray([float(len(t)), float(ord(t[0]) if t else 0)], dtype="<f4")
        emb: Any = base64.b64encode(vec.tobytes()).decode() if fmt == "base64" else vec.tolist()
        data.append({"object": "embedding", "index": i, "embedding": emb})
    return {
        "object": "list",
        "data": data,
        "model": "m",
        "usage": {"prompt_tokens": len(inputs), "total_tokens": len(inputs)},
    }


def _want(texts: list[str]) -> np.ndarray:
    return np.asarray([[len(t), ord(t[0]) if t else 0] for t in texts], dtype=np.float32)


def test_default_batches_are_as_large_as_the_api_allows() -> None:
    seen: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        inputs = json.loads(request.content)["input"]
        seen.append(len(inputs))
        return httpx.Response(200, json=_echo_body(inputs))

    emb = OpenAIEmbedder(
        "m",
        dim=2,
        max_concurrency=1,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    texts = [f"text number {i}" for i in range(5000)]
    np.testing.assert_array_equal(emb.embed(texts), _want(texts))
    assert seen == [2048, 2048, 904]


def test_batches_respect_the_token_limit_in_utf8_bytes() -> None:
    seen: list[list[str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        inputs = json.loads(request.content)["input"]
        seen.append(inputs)
        return httpx.Response(200, json=_echo_body(inputs))

    emb = OpenAIEmbedder(
        "m",
        dim=2,
        max_batch_tokens=10,
        max_concurrency=1,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    # "é" is 2 bytes: "éééé" costs 8; a text over the limit travels alone
    texts = ["abcd", "efgh", "ij", "éééé", "k", "x" * 25, "yz"]
    np.testing.assert_array_equal(emb.embed(texts), _want(texts))
    assert seen == [["abcd", "efgh", "ij"], ["éééé", "k"], ["x" * 25], ["yz"]]


def test_requests_run_concurrently_up_to_the_bound_and_order_is_restored() -> None:
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}
    barrier = threading.Barrier(3, timeout=10)

    def handler(request: httpx.Request) -> httpx.Response:
        inputs = json.loads(request.content)["input"]
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        try:
            if inputs[0] in texts[:3]:
                barrier.wait()  # the first three requests are in flight together
            return httpx.Response(200, json=_echo_body(inputs))
        finally:
            with lock:
                state["now"] -= 1

    progress: list[tuple[int, int]] = []
    emb = OpenAIEmbedder(
        "m",
        dim=2,
        batch_size=1,
        max_concurrency=3,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
        progress=lambda d, t: progress.append((d, t)),
    )
    texts = [f"t{i}" + "z" * i for i in range(12)]
    np.testing.assert_array_equal(emb.embed(texts), _want(texts))
    assert state["peak"] == 3
    assert [d for d, _ in progress] == list(range(1, 13))
    assert {t for _, t in progress} == {12}


def test_a_failed_request_stops_the_rest() -> None:
    sent: list[str] = []
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        inputs = json.loads(request.content)["input"]
        with lock:
            sent.append(inputs[0])
        if inputs[0] == "t1":
            return _response("openai_400_context_length.json")
        return httpx.Response(200, json=_echo_body(inputs))

    emb = OpenAIEmbedder(
        "m",
        dim=2,
        batch_size=1,
        max_concurrency=2,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    with pytest.raises(ProviderError, match="maximum context length") as info:
        emb.embed([f"t{i}" for i in range(50)])
    assert info.value.status == 400
    assert "t1" in sent
    assert len(sent) < 10  # the queued requests were never sent


def test_base64_encoding_is_requested_and_decoded() -> None:
    bodies: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        bodies.append(body)
        return httpx.Response(200, json=_echo_body(body["input"], fmt="base64"))

    emb = OpenAIEmbedder(
        "m",
        dim=2,
        encoding_format="base64",
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    texts = ["alpha", "be", "c"]
    np.testing.assert_array_equal(emb.embed(texts), _want(texts))
    assert bodies[0]["encoding_format"] == "base64"


def test_malformed_base64_is_a_provider_error() -> None:
    def short(request: httpx.Request) -> httpx.Response:
        body = _echo_body(["a"], fmt="base64")
        body["data"][0]["embedding"] = base64.b64encode(b"\0" * 12).decode()
        return httpx.Response(200, json=body)

    def garbage(request: httpx.Request) -> httpx.Response:
        body = _echo_body(["a"], fmt="base64")
        body["data"][0]["embedding"] = "not base64!"
        return httpx.Response(200, json=body)

    for handler, text in ((short, "holds 12 bytes, expected 8"), (garbage, "malformed")):
        emb = OpenAIEmbedder(
            "m",
            dim=2,
            encoding_format="base64",
            http_client=httpx.Client(transport=httpx.MockTransport(handler)),
        )
        with pytest.raises(ProviderError, match=text):
            emb.embed(["a"])


def test_async_requests_run_concurrently_up_to_the_bound() -> None:
    state = {"now": 0, "peak": 0}

    async def handler(request: httpx.Request) -> httpx.Response:
        inputs = json.loads(request.content)["input"]
        state["now"] += 1
        state["peak"] = max(state["peak"], state["now"])
        await asyncio.sleep(0.01)
        state["now"] -= 1
        return httpx.Response(200, json=_echo_body(inputs))

    async def run() -> np.ndarray:
        async with AsyncOpenAIEmbedder(
            "m",
            dim=2,
            batch_size=2,
            max_concurrency=3,
            http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        ) as emb:
            return await emb.embed(texts)

    texts = [f"t{i}" + "z" * i for i in range(15)]
    np.testing.assert_array_equal(asyncio.run(run()), _want(texts))
    assert state["peak"] == 3


def test_async_failure_cancels_the_requests_in_flight() -> None:
    cancelled: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        inputs = json.loads(request.content)["input"]
        if inputs[0] == "t0":
            await asyncio.sleep(0.01)
            return _response("openai_401_invalid_key.json")
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(inputs[0])
            raise
        return httpx.Response(200, json=_echo_body(inputs))

    async def run() -> None:
        emb = AsyncOpenAIEmbedder(
            "m",
            dim=2,
            batch_size=1,
            max_concurrency=3,
            http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        )
        await emb.embed([f"t{i}" for i in range(6)])

    with pytest.raises(ProviderError, match="Incorrect API key"):
        asyncio.run(run())
    assert sorted(cancelled) == ["t1", "t2"]
