"""OpenAI-compatible embedders against recorded wire-format payloads."""

from __future__ import annotations

import asyncio
import json
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
    with pytest.raises(ConfigError, match="batch_size"):
        OpenAIEmbedder(batch_size=0)


def test_create_embedder_openai_url() -> None:
    replay = Replay(OK)
    emb = create_embedder(
        "openai+http://localhost:8080/v1?model=text-embedding-3-small&dimensions=8",
        api_key="k",
        http_client=replay.client(),
    )
    np.testing.assert_array_equal(emb.embed(TEXTS), _expected())
    assert str(replay.requests[0].url) == "http://localhost:8080/v1/embeddings"
