"""Chat models chosen by URL (``offline://``, ``openai://``, ``anthropic://``, ``gemini://``)."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from avl._registry import Registry
from avl.llm._types import AsyncChatModel, ChatModel, Completion, Delta, Message

__all__ = ["ASYNC_CHAT_MODELS", "CHAT_MODELS", "create_async_chat_model", "create_chat_model"]

#: scheme -> factory ``create(url, **kwargs)`` of the synchronous models.
CHAT_MODELS = Registry(
    kind="chat model",
    entries={
        "offline": "avl.llm.offline:create",
        "openai": "avl.llm.openai:create",
        "anthropic": "avl.llm.anthropic:create",
        "gemini": "avl.llm.gemini:create",
    },
)

#: scheme -> factory ``create_async(url, **kwargs)`` of the asyncio models.
ASYNC_CHAT_MODELS = Registry(
    kind="async chat model",
    entries={
        "offline": "avl.llm._factory:create_async_offline",
        "openai": "avl.llm.openai:create_async",
        "anthropic": "avl.llm.anthropic:create_async",
        "gemini": "avl.llm.gemini:create_async",
    },
)


def create_chat_model(url: str = "offline://", /, **kwargs: Any) -> ChatModel:
    """Build a chat model from a URL.

    Args:
        url: ``offline://`` (the default, no model at all),
            ``openai[+http]://host/path?model=...`` (any OpenAI-compatible server),
            ``anthropic://?model=...`` or ``gemini://?model=...``.
        **kwargs: the model class's arguments (``api_key=``, ``transport=``,
            ``retry=``...); they win over the URL's parameters.

    Returns:
        The chat model.

    Raises:
        ConfigError: unknown scheme (with a suggestion), bad URL or parameter, no
            model name, or no API key (naming the environment variable to set).
        MissingDependencyError: the provider's optional dependency is missing.

    Example:
        >>> model = create_chat_model("openai+http://localhost:11434/v1?model=llama3.2")
        >>> model.name
        'openai/llama3.2'
    """
    model: ChatModel = CHAT_MODELS.create(url, **kwargs)
    return model


def create_async_chat_model(url: str = "offline://", /, **kwargs: Any) -> AsyncChatModel:
    """The asyncio twin of :func:`create_chat_model` (same URLs and arguments).

    Raises:
        ConfigError: unknown scheme, bad URL or parameter, no model or no key.
        MissingDependencyError: the provider's optional dependency is missing.
    """
    model: AsyncChatModel = ASYNC_CHAT_MODELS.create(url, **kwargs)
    return model


class _AsyncOverSync:
    """An :class:`AsyncChatModel` over a CPU-only sync model (no I/O to await)."""

    def __init__(self, model: ChatModel) -> None:
        self._model = model

    @property
    def name(self) -> str:
        return self._model.name

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] | None = None,
    ) -> Completion:
        return self._model.complete(
            messages, max_tokens=max_tokens, temperature=temperature, stop=stop
        )

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] | None = None,
    ) -> AsyncIterator[Delta]:
        for delta in self._model.stream(
            messages, max_tokens=max_tokens, temperature=temperature, stop=stop
        ):
            yield delta


def create_async_offline(url: str, **kwargs: Any) -> AsyncChatModel:
    """The async ``offline://`` model: the module's ``create_async`` when it has one,
    else its sync model behind an async facade (it does no I/O)."""
    module = importlib.import_module("avl.llm.offline")
    factory = getattr(module, "create_async", None)
    if factory is not None:
        model: AsyncChatModel = factory(url, **kwargs)
        return model
    return _AsyncOverSync(module.create(url, **kwargs))
