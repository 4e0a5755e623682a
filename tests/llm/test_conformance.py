"""Every chat model passes the same Protocol suite (providers through recordings)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from avl.llm import (
    AsyncChatModel,
    ChatModel,
    create_async_chat_model,
    create_chat_model,
)
from avl.testing import AsyncFakeChatModel, FakeChatModel, recorded_transport
from tests.llm.conformance import AsyncChatModelConformance, ChatModelConformance
from tests.llm.conftest import recording

GEMINI = "/v1beta/models/gemini-2.0-flash"
RECORDED = {
    "openai://?model=gpt-4o-mini": (
        ("openai", "chat_ok", "/v1/chat/completions", {}),
        ("openai", "stream_ok", "/v1/chat/completions", {}),
    ),
    "anthropic://?model=claude-3-5-haiku-latest": (
        ("anthropic", "messages_ok", "/v1/messages", {}),
        ("anthropic", "stream_ok", "/v1/messages", {}),
    ),
    "gemini://?model=gemini-2.0-flash": (
        ("gemini", "generate_ok", f"{GEMINI}:generateContent", {}),
        ("gemini", "stream_ok", f"{GEMINI}:streamGenerateContent", {"alt": "sse"}),
    ),
}
BACKENDS = [*RECORDED, "offline://", "fake"]


def _transport(url: str, streamed: bool):  # type: ignore[no-untyped-def]
    provider, name, path, params = RECORDED[url][1 if streamed else 0]
    return recorded_transport(recording(provider, name, path, params=params))


def _factory(url: str, *, asynchronous: bool) -> Callable[[], object]:
    calls = {"n": 0}

    def make() -> object:
        if url == "fake":
            script = ["SELECT COUNT(*) FROM orders"] * 3
            return AsyncFakeChatModel(script) if asynchronous else FakeChatModel(script)
        if url == "offline://":
            return create_async_chat_model(url) if asynchronous else create_chat_model(url)
        # complete() uses the first recording, stream() the second: each model answers
        # exactly one call, so hand out models alternately.
        streamed = calls["n"] % 2 == 1
        calls["n"] += 1
        create = create_async_chat_model if asynchronous else create_chat_model
        return create(url, api_key="test-key", transport=_transport(url, streamed))

    return make


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make(backend: str, request: pytest.FixtureRequest) -> Callable[[], ChatModel]:
    factory = _factory(backend, asynchronous=False)
    name = request.node.originalname
    if backend in RECORDED and name in ("test_stream", "test_stream_can_be_abandoned"):
        factory()  # skip the non-streamed recording: the next model streams
    return factory  # type: ignore[return-value]


@pytest.fixture
def make_async(backend: str) -> Callable[[], AsyncChatModel]:
    return _factory(backend, asynchronous=True)  # type: ignore[return-value]


class TestChatModels(ChatModelConformance):
    pass


class TestAsyncChatModels(AsyncChatModelConformance):
    pass
