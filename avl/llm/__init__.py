"""Chat models: one Protocol, providers over httpx, an offline generator, token counts.

Build a model by URL with :func:`create_chat_model` (``offline://``, ``openai://``,
``anthropic://``, ``gemini://``) or by class. Every provider has an asyncio twin
with the same method names, retries with backoff, and prices its usage with
:class:`avl.metrics.CostTable`.
"""

from __future__ import annotations

from avl.llm._factory import create_async_chat_model, create_chat_model
from avl.llm._http import RetryPolicy
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
from avl.llm.anthropic import AnthropicChatModel, AsyncAnthropicChatModel
from avl.llm.gemini import AsyncGeminiChatModel, GeminiChatModel
from avl.llm.openai import AsyncOpenAIChatModel, OpenAIChatModel

__all__ = [
    "AnthropicChatModel",
    "AsyncAnthropicChatModel",
    "AsyncChatModel",
    "AsyncGeminiChatModel",
    "AsyncOpenAIChatModel",
    "ChatModel",
    "Completion",
    "Delta",
    "GeminiChatModel",
    "Message",
    "OpenAIChatModel",
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
]
