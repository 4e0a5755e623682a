"""Chat models: one Protocol, providers over httpx, an offline generator, token counts.

Build a model by URL with :func:`create_chat_model` (``offline://``, ``openai://``,
``anthropic://``, ``gemini://``) or by class. Every provider has an asyncio twin
with the same method names, retries with backoff, and prices its usage with
:class:`avl.metrics.CostTable`.

The provider classes (and :class:`RetryPolicy`) are imported on first use, so code
that only needs the values, the Protocols or the offline model does not load httpx.
"""

from __future__ import annotations

import importlib
from types import MappingProxyType
from typing import TYPE_CHECKING

from avl.llm._factory import create_async_chat_model, create_chat_model
from avl.llm._tokens import (
    TokenCounter,
    TokenizerBackend,
    count_tokens,
    ensure_offline_encodings,
    estimate_tokens,
)
from avl.llm._types import (
    AsyncChatModel,
    ChatModel,
    Completion,
    Delta,
    Message,
    Role,
    ToolCall,
    Usage,
)

if TYPE_CHECKING:
    from avl.llm._fake import AsyncFakeChatModel, FakeCall, FakeChatModel
    from avl.llm._http import RetryPolicy
    from avl.llm._replay import RecordedTransport, Recording, load_recording, recorded_transport
    from avl.llm.anthropic import AnthropicChatModel, AsyncAnthropicChatModel
    from avl.llm.gemini import AsyncGeminiChatModel, GeminiChatModel
    from avl.llm.openai import AsyncOpenAIChatModel, OpenAIChatModel

__all__ = [
    "AnthropicChatModel",
    "AsyncFakeChatModel",
    "AsyncAnthropicChatModel",
    "AsyncChatModel",
    "AsyncGeminiChatModel",
    "AsyncOpenAIChatModel",
    "ChatModel",
    "Completion",
    "Delta",
    "FakeCall",
    "FakeChatModel",
    "GeminiChatModel",
    "Message",
    "OpenAIChatModel",
    "RecordedTransport",
    "Recording",
    "RetryPolicy",
    "Role",
    "TokenCounter",
    "TokenizerBackend",
    "ToolCall",
    "Usage",
    "count_tokens",
    "create_async_chat_model",
    "create_chat_model",
    "ensure_offline_encodings",
    "estimate_tokens",
    "load_recording",
    "recorded_transport",
]

_LAZY = MappingProxyType(
    {
        # the test doubles (documented in avl.testing), loaded on first use
        "FakeCall": "avl.llm._fake",
        "FakeChatModel": "avl.llm._fake",
        "AsyncFakeChatModel": "avl.llm._fake",
        "RecordedTransport": "avl.llm._replay",
        "Recording": "avl.llm._replay",
        "load_recording": "avl.llm._replay",
        "recorded_transport": "avl.llm._replay",
        "RetryPolicy": "avl.llm._http",
        "OpenAIChatModel": "avl.llm.openai",
        "AsyncOpenAIChatModel": "avl.llm.openai",
        "AnthropicChatModel": "avl.llm.anthropic",
        "AsyncAnthropicChatModel": "avl.llm.anthropic",
        "GeminiChatModel": "avl.llm.gemini",
        "AsyncGeminiChatModel": "avl.llm.gemini",
    }
)


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'avl.llm' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
