"""Whatever JSON a provider sends, parsing gives a value or a ProviderError, never a crash."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from avl.errors import ProviderError
from avl.llm import Completion, Delta
from avl.llm._base import Codec
from avl.llm._sse import SSEEvent
from avl.llm.anthropic import AnthropicCodec
from avl.llm.gemini import GeminiCodec
from avl.llm.openai import OpenAICodec

CODECS: list[Codec] = [
    OpenAICodec(model="m", base_url="https://api.openai.com/v1", api_key="k"),
    AnthropicCodec(model="m", base_url="https://api.anthropic.com/v1", api_key="k"),
    GeminiCodec(
        model="m", base_url="https://generativelanguage.googleapis.com/v1beta", api_key="k"
    ),
]

KEYS = st.sampled_from(
    [
        "choices",
        "message",
        "content",
        "delta",
        "finish_reason",
        "usage",
        "model",
        "tool_calls",
        "function",
        "type",
        "text",
        "stop_reason",
        "index",
        "candidates",
        "parts",
        "finishReason",
        "usageMetadata",
        "promptTokenCount",
        "prompt_tokens",
        "input_tokens",
        "error",
        "message",
        "functionCall",
        "promptFeedback",
        "blockReason",
        "content_block",
        "input",
        "args",
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.floats(allow_nan=False)
    | st.text(max_size=5)
)
JSON = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=12,
)
EVENTS = st.sampled_from(
    [
        "message",
        "message_start",
        "content_block_delta",
        "message_delta",
        "message_stop",
        "error",
        "ping",
    ]
)


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.provider)
@settings(max_examples=100, deadline=None)
@given(data=JSON)
@example(data={"choices": [{"message": ["x"]}]})
@example(data={"choices": [{"message": {"tool_calls": ["x", {"function": 3}]}}]})
@example(data={"candidates": ["x"], "usageMetadata": []})
@example(data={"content": [1, {"type": "tool_use", "input": [1]}], "usage": "x"})
def test_parse_any_json(codec: Codec, data: object) -> None:
    try:
        result = codec.parse(data, httpx.Headers())
    except ProviderError:
        return
    assert isinstance(result, Completion)
    assert isinstance(result.text, str)


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.provider)
@settings(max_examples=100, deadline=None)
@given(events=st.lists(st.tuples(EVENTS, JSON | st.text(max_size=8)), max_size=5))
@example(events=[("message", {"choices": 3})])
@example(events=[("message_start", {"type": "message_start", "message": [1]})])
@example(events=[("content_block_delta", {"type": "content_block_delta", "delta": "x"})])
@example(events=[("message_delta", {"type": "message_delta", "delta": [], "usage": {}})])
@example(events=[("message", {"candidates": [7]})])
def test_stream_any_events(codec: Codec, events: list[tuple[str, object]]) -> None:
    parser = codec.stream_parser()
    try:
        for name, data in events:
            text = data if isinstance(data, str) else json.dumps(data)
            for delta in parser.feed(SSEEvent(event=name, data=text)):
                assert isinstance(delta, Delta)
                assert isinstance(delta.text, str)
        final = parser.final()
    except ProviderError:
        return
    assert final.done is True
