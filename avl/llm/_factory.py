"""Chat models chosen by URL (``offline://``, ``openai://``, ``anthropic://``, ``gemini://``)
or by the short names people already write (``openai:gpt-4o``, ``openai/gpt-4o``,
``anthropic:claude-sonnet-4-0``, ``gemini:gemini-2.0-flash``, ``ollama:llama3``)."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import quote

from avl._registry import Registry
from avl.errors import ConfigError
from avl.llm._types import AsyncChatModel, ChatModel, Completion, Delta, Message

__all__ = [
    "ASYNC_CHAT_MODELS",
    "CHAT_MODELS",
    "MODEL_PROVIDERS",
    "create_async_chat_model",
    "create_chat_model",
    "model_url",
]

#: provider prefix of a short model name -> the URL it stands for (``{model}`` is
#: the model name, URL-quoted). Local servers are at their usual ports: Ollama
#: 11434, the llama.cpp server 8080, LM Studio 1234, vLLM 8000.
MODEL_PROVIDERS: dict[str, str] = {
    "openai": "openai://?model={model}",
    "anthropic": "anthropic://?model={model}",
    "gemini": "gemini://?model={model}",
    "google": "gemini://?model={model}",
    "google-gla": "gemini://?model={model}",
    "ollama": "openai+http://localhost:11434/v1?model={model}",
    "llamacpp": "openai+http://localhost:8080/v1?model={model}",
    "llama.cpp": "openai+http://localhost:8080/v1?model={model}",
    "lmstudio": "openai+http://localhost:1234/v1?model={model}",
    "vllm": "openai+http://localhost:8000/v1?model={model}",
}

# a bare model name's usual provider, for the "did you mean" of a name without one
_FAMILIES = (
    (("gpt-", "o1", "o3", "o4", "chatgpt-", "text-"), "openai"),
    (("claude",), "anthropic"),
    (("gemini", "gemma"), "gemini"),
    (("llama", "mistral", "mixtral", "qwen", "phi", "deepseek", "codellama", "sqlcoder"), "ollama"),
)


def model_url(name: str) -> str:
    """The URL of a model name: URLs pass unchanged, short names are expanded.

    ``provider:model`` and ``provider/model`` are both read (the first ``:`` or
    ``/`` ends the provider, so ``ollama:llama3:8b`` is Ollama's ``llama3:8b``).

    Args:
        name: ``openai:gpt-4o``, ``openai/gpt-4o``, ``anthropic:claude-...``,
            ``gemini:...``, ``ollama:llama3``, ``llamacpp:model``, ``offline``, or
            a URL.

    Returns:
        The URL for :func:`create_chat_model`.

    Raises:
        ConfigError: not a string, an unknown provider (with the closest known
            one), no model after the provider, or a bare model name (with the
            ``provider:model`` it probably means).

    Example:
        >>> model_url("ollama:llama3")
        'openai+http://localhost:11434/v1?model=llama3'
        >>> model_url("openai/gpt-4o")
        'openai://?model=gpt-4o'
    """
    if not isinstance(name, str):
        raise ConfigError(f"a model name must be a string, got {type(name).__name__}")
    text = name.strip()
    if "://" in text:
        return text
    if text.lower() in ("offline", "offline:"):
        return "offline://"
    cut = min((i for i in (text.find(":"), text.find("/")) if i >= 0), default=-1)
    known = ", ".join(f"{p}:" for p in MODEL_PROVIDERS)
    if cut < 0:
        low = text.lower()
        guess = next((p for prefixes, p in _FAMILIES if low.startswith(prefixes)), None)
        hint = f"; did you mean '{guess}:{text}'?" if guess else ""
        raise ConfigError(
            f"model {text!r} has no scheme or provider{hint} (write provider:model with one of "
            f"{known} or a URL such as openai://?model=...)"
        )
    provider, model = text[:cut].lower(), text[cut + 1 :].strip()
    template = MODEL_PROVIDERS.get(provider)
    if template is None:
        close = difflib.get_close_matches(provider, MODEL_PROVIDERS, n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}:{model}'?" if close else ""
        raise ConfigError(f"unknown model provider {provider!r} in {text!r}{hint} (known: {known})")
    if not model:
        raise ConfigError(f"model {text!r} names no model after {provider!r}")
    return template.format(model=quote(model, safe=""))


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
            ``anthropic://?model=...`` or ``gemini://?model=...``; or a short name
            (``openai:gpt-4o``, ``openai/gpt-4o``, ``anthropic:claude-...``,
            ``gemini:...``, ``ollama:llama3``; see :func:`model_url`).
        **kwargs: the model class's arguments (``api_key=``, ``transport=``,
            ``retry=``...); they win over the URL's parameters.

    Returns:
        The chat model.

    Raises:
        ConfigError: unknown scheme or provider (with a suggestion), bad URL or
            parameter, no model name, or no API key (naming the environment
            variable to set).
        MissingDependencyError: the provider's optional dependency is missing.

    Example:
        >>> model = create_chat_model("openai+http://localhost:11434/v1?model=llama3.2")
        >>> model.name
        'openai/llama3.2'
    """
    model: ChatModel = CHAT_MODELS.create(model_url(url), **kwargs)
    return model


def create_async_chat_model(url: str = "offline://", /, **kwargs: Any) -> AsyncChatModel:
    """The asyncio twin of :func:`create_chat_model` (same URLs and arguments).

    Raises:
        ConfigError: unknown scheme, bad URL or parameter, no model or no key.
        MissingDependencyError: the provider's optional dependency is missing.
    """
    model: AsyncChatModel = ASYNC_CHAT_MODELS.create(model_url(url), **kwargs)
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
