"""Anthropic Messages API (``POST {base_url}/messages``).

The key goes in ``x-api-key``, the API version in ``anthropic-version``, system
messages become the top-level ``system`` field, and ``max_tokens`` is always sent
(Anthropic requires it; default 1024). Streaming reads the ``message_start``,
``content_block_delta``, ``message_delta`` and ``message_stop`` events.

URLs for :func:`avl.llm.create_chat_model`::

    anthropic://?model=claude-3-5-haiku-latest          # https://api.anthropic.com/v1
    anthropic://api.anthropic.com/v1?model=claude-sonnet-4-0
    anthropic+http://localhost:8080/v1?model=...        # a compatible proxy

Usage: ``input_tokens`` of :class:`~avl.llm.Usage` is Anthropic's ``input_tokens``
plus ``cache_read_input_tokens`` plus ``cache_creation_input_tokens`` (all prompt
tokens); ``cached_tokens`` is the cache reads and ``cache_creation_tokens`` the
cache writes. The cost table prices cache writes as ordinary input.
"""

from __future__ import annotations

import json
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx

from avl._clock import Clock
from avl.errors import ConfigError, InvalidInputError, ProviderError
from avl.llm._base import (
    COMMON_URL_PARAMS,
    AsyncChatModelCore,
    CallOptions,
    Codec,
    StreamParser,
    SyncChatModelCore,
    as_int,
    check_base_url,
    check_kwargs,
    malformed,
    obj,
    parse_model_url,
    request_id_of,
    resolve_api_key,
    url_kwargs,
)
from avl.llm._http import RequestSpec, RetryPolicy
from avl.llm._sse import SSEEvent
from avl.llm._types import AsyncChatModel, ChatModel, Completion, Delta, Message, ToolCall, Usage
from avl.metrics import CostTable

__all__ = [
    "API_VERSION",
    "DEFAULT_BASE_URL",
    "AnthropicChatModel",
    "AsyncAnthropicChatModel",
    "create",
    "create_async",
]

#: The base URL used when an ``anthropic://`` URL names no host.
DEFAULT_BASE_URL = "https://api.anthropic.com/v1"
#: The ``anthropic-version`` header sent with every request.
API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 1024
_ENV_KEYS = ("ANTHROPIC_API_KEY",)
_STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_use",
    "refusal": "content_filter",
}


def _stop_reason(raw: Any) -> str | None:
    if not isinstance(raw, str) or not raw:
        return None
    return _STOP_REASONS.get(raw, raw)


def _usage(data: Any) -> Usage:
    if not isinstance(data, dict):
        return Usage()
    read = as_int(data.get("cache_read_input_tokens"))
    created = as_int(data.get("cache_creation_input_tokens"))
    return Usage(
        input_tokens=as_int(data.get("input_tokens")) + read + created,
        output_tokens=as_int(data.get("output_tokens")),
        cached_tokens=read,
        cache_creation_tokens=created,
    )


class AnthropicCodec(Codec):
    """The Anthropic Messages wire format (pure).

    Args:
        model: the model, e.g. ``"claude-3-5-haiku-latest"``.
        base_url: the API base, ``https://api.anthropic.com/v1`` by default.
        api_key: the key (``x-api-key``).
        api_version: the ``anthropic-version`` header.
        default_max_tokens: ``max_tokens`` when a call does not set it.
        provider: the name for errors and the cost table.
    """

    def __init__(
        self,
        *,
        model: str,
        base_url: str,
        api_key: str,
        api_version: str = API_VERSION,
        default_max_tokens: int = DEFAULT_MAX_TOKENS,
        provider: str = "anthropic",
    ) -> None:
        if not isinstance(model, str) or not model:
            raise ConfigError("an Anthropic model needs model=... (e.g. 'claude-3-5-haiku-latest')")
        if (
            isinstance(default_max_tokens, bool)
            or not isinstance(default_max_tokens, int)
            or default_max_tokens < 1
        ):
            raise ConfigError(
                f"default_max_tokens must be a positive integer, got {default_max_tokens!r}"
            )
        self.provider = provider
        self.model = model
        self.base_url = check_base_url(base_url)
        self.api_key = api_key
        self.api_version = api_version
        self.default_max_tokens = default_max_tokens

    def request(
        self, messages: Sequence[Message], options: CallOptions, *, stream: bool
    ) -> RequestSpec:
        """Build ``POST {base_url}/messages``.

        Raises:
            InvalidInputError: only system messages were given.
        """
        system = [m.content for m in messages if m.role == "system"]
        turns = [
            {"role": "assistant" if m.role == "assistant" else "user", "content": m.content}
            for m in messages
            if m.role != "system"
        ]
        if not turns:
            raise InvalidInputError(
                "Anthropic needs at least one user or assistant message besides the system prompt"
            )
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": options.max_tokens or self.default_max_tokens,
        }
        if system:
            body["system"] = "\n\n".join(system)
        body["messages"] = turns
        if options.temperature is not None:
            body["temperature"] = options.temperature
        if options.stop:
            body["stop_sequences"] = list(options.stop)
        if stream:
            body["stream"] = True
        headers = {
            "x-api-key": self.api_key,
            "anthropic-version": self.api_version,
            "accept": "text/event-stream" if stream else "application/json",
        }
        return RequestSpec(url=f"{self.base_url}/messages", headers=headers, json=body)

    def parse(self, data: Any, headers: Mapping[str, str]) -> Completion:
        """Read a ``message`` object."""
        if not isinstance(data, dict) or not isinstance(data.get("content"), list):
            raise malformed(self.provider, "no content list in the message")
        texts: list[str] = []
        calls: list[ToolCall] = []
        for block in data["content"]:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "text":
                texts.append(str(block.get("text") or ""))
            elif block.get("type") == "tool_use":
                calls.append(
                    ToolCall(
                        id=str(block.get("id") or ""),
                        name=str(block.get("name") or ""),
                        arguments=json.dumps(block.get("input") or {}, separators=(",", ":")),
                    )
                )
        return Completion(
            text="".join(texts),
            model=str(data.get("model") or self.model),
            provider=self.provider,
            usage=_usage(data.get("usage")),
            stop_reason=_stop_reason(data.get("stop_reason")),
            request_id=request_id_of(headers),
            tool_calls=tuple(calls),
        )

    def stream_parser(self) -> StreamParser:
        """A parser for the Messages event stream."""
        return _AnthropicStream(self)


class _AnthropicStream(StreamParser):
    def __init__(self, codec: AnthropicCodec) -> None:
        self._codec = codec
        self._model = ""
        self._usage = Usage()
        self._stop: str | None = None
        self._calls: dict[int, list[str]] = {}  # block index -> [id, name, json]

    def feed(self, event: SSEEvent) -> list[Delta]:
        provider = self._codec.provider
        try:
            data = json.loads(event.data) if event.data else {}
        except ValueError as exc:
            raise malformed(provider, f"bad {event.event} event {event.data[:80]!r}", exc) from exc
        if not isinstance(data, dict):
            raise malformed(provider, f"bad {event.event} event {event.data[:80]!r}")
        kind = data.get("type") or event.event
        if kind == "error":
            raw = data.get("error")
            err: dict[str, Any] = raw if isinstance(raw, dict) else {}
            raise ProviderError(
                f"anthropic stream failed: {err.get('type', 'error')}: "
                f"{err.get('message', event.data)}",
                provider=provider,
            )
        if kind == "message_start":
            message = obj(data.get("message"))
            self._model = str(message.get("model") or "")
            self._usage = _usage(message.get("usage"))
        elif kind == "content_block_start":
            block = obj(data.get("content_block"))
            index = data.get("index")
            if block.get("type") == "tool_use" and isinstance(index, int):
                self._calls[index] = [str(block.get("id") or ""), str(block.get("name") or ""), ""]
        elif kind == "content_block_delta":
            delta = obj(data.get("delta"))
            if delta.get("type") == "text_delta" and delta.get("text"):
                return [Delta(text=str(delta["text"]))]
            index = data.get("index")
            if (
                delta.get("type") == "input_json_delta"
                and isinstance(index, int)
                and index in self._calls
                and isinstance(delta.get("partial_json"), str)
            ):
                self._calls[index][2] += delta["partial_json"]
        elif kind == "message_delta":
            delta = obj(data.get("delta"))
            self._stop = _stop_reason(delta.get("stop_reason")) or self._stop
            usage = data.get("usage")
            if isinstance(usage, dict):
                # message_delta's counts are cumulative; input counts only when sent.
                update = _usage({**_raw_usage(self._usage), **usage})
                self._usage = update
        elif kind == "message_stop":
            self.done = True
            self.complete = True
        return []

    def final(self) -> Delta:
        return Delta(
            done=True,
            usage=self._usage,
            stop_reason=self._stop,
            model=self._model or self._codec.model,
            tool_calls=tuple(
                ToolCall(id=slot[0], name=slot[1], arguments=_compact_json(slot[2]))
                for _, slot in sorted(self._calls.items())
            ),
        )


def _compact_json(text: str) -> str:
    """Tool input as compact JSON (as the non-streamed answer gives it)."""
    if not text.strip():
        return "{}"
    try:
        return json.dumps(json.loads(text), separators=(",", ":"))
    except ValueError:
        return text


def _raw_usage(usage: Usage) -> dict[str, int]:
    """Back to Anthropic's field names (to merge a cumulative ``message_delta``)."""
    return {
        "input_tokens": usage.input_tokens - usage.cached_tokens - usage.cache_creation_tokens,
        "output_tokens": usage.output_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
        "cache_creation_input_tokens": usage.cache_creation_tokens,
    }


_KNOWN_PARAMS = (*COMMON_URL_PARAMS, "anthropic-version")


def _codec_from(
    *,
    model: str,
    api_key: str | None,
    base_url: str,
    api_version: str,
    default_max_tokens: int,
    provider: str,
    env: Mapping[str, str] | None,
) -> AnthropicCodec:
    key = resolve_api_key(api_key, env=env, names=_ENV_KEYS, provider=provider, required=True)
    assert key is not None
    return AnthropicCodec(
        model=model,
        base_url=base_url,
        api_key=key,
        api_version=api_version,
        default_max_tokens=default_max_tokens,
        provider=provider,
    )


class AnthropicChatModel(SyncChatModelCore):
    """A chat model behind Anthropic's Messages API.

    Args:
        model: the model name, e.g. ``"claude-3-5-haiku-latest"``.
        api_key: the key; defaults to ``$ANTHROPIC_API_KEY``.
        base_url: the API base (default ``https://api.anthropic.com/v1``).
        api_version: the ``anthropic-version`` header (default ``2023-06-01``).
        default_max_tokens: ``max_tokens`` when a call does not set one.
        provider: the provider name for errors and the cost table.
        http_client: an ``httpx.Client`` to use (not closed by :meth:`close`).
        transport: an ``httpx`` transport for a client this model creates.
        timeout_s: the timeout of one attempt.
        retry: the retry policy (attempts, backoff, total deadline).
        clock: the clock for the deadline and ``Retry-After`` dates.
        sleep: how to wait between attempts (default :func:`time.sleep`).
        rng: randomness for the jitter.
        cost_table: prices (default :meth:`avl.metrics.CostTable.default`).
        env: where to read the key from (default ``os.environ``).

    Raises:
        ConfigError: no model, no key, bad URL or options.

    Example:
        >>> model = AnthropicChatModel("claude-3-5-haiku-latest", api_key="sk-ant-test")
        >>> model.name
        'anthropic/claude-3-5-haiku-latest'
        >>> model.close()
    """

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        api_version: str = API_VERSION,
        default_max_tokens: int = DEFAULT_MAX_TOKENS,
        provider: str = "anthropic",
        http_client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout_s: float = 60.0,
        retry: RetryPolicy | None = None,
        clock: Clock | None = None,
        sleep: Callable[[float], None] | None = None,
        rng: random.Random | None = None,
        cost_table: CostTable | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        codec = _codec_from(
            model=model,
            api_key=api_key,
            base_url=base_url,
            api_version=api_version,
            default_max_tokens=default_max_tokens,
            provider=provider,
            env=env,
        )
        super().__init__(
            codec,
            http_client=http_client,
            transport=transport,
            timeout_s=timeout_s,
            retry=retry,
            clock=clock,
            sleep=sleep,
            rng=rng,
            cost_table=cost_table,
        )


class AsyncAnthropicChatModel(AsyncChatModelCore):
    """The asyncio twin of :class:`AnthropicChatModel` (same arguments and methods).

    Raises:
        ConfigError: no model, no key, bad URL or options.
    """

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        api_version: str = API_VERSION,
        default_max_tokens: int = DEFAULT_MAX_TOKENS,
        provider: str = "anthropic",
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout_s: float = 60.0,
        retry: RetryPolicy | None = None,
        clock: Clock | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        rng: random.Random | None = None,
        cost_table: CostTable | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        codec = _codec_from(
            model=model,
            api_key=api_key,
            base_url=base_url,
            api_version=api_version,
            default_max_tokens=default_max_tokens,
            provider=provider,
            env=env,
        )
        super().__init__(
            codec,
            http_client=http_client,
            transport=transport,
            timeout_s=timeout_s,
            retry=retry,
            clock=clock,
            sleep=sleep,
            rng=rng,
            cost_table=cost_table,
        )


def _url_kwargs(url: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    parsed = parse_model_url(
        url, scheme="anthropic", default_base_url=DEFAULT_BASE_URL, known_params=_KNOWN_PARAMS
    )
    merged = url_kwargs(parsed.params, kwargs)
    merged.setdefault("base_url", parsed.base_url)
    if "anthropic-version" in parsed.params:
        merged.setdefault("api_version", parsed.params["anthropic-version"])
    if "model" not in merged:
        raise ConfigError(f"the chat-model URL {url!r} needs ?model=... (or model=...)")
    return merged


def create(url: str, **kwargs: Any) -> AnthropicChatModel:
    """Build an :class:`AnthropicChatModel` from an ``anthropic://`` URL.

    Args:
        url: ``anthropic[+http|+https]://host[:port]/path?model=...``.
        **kwargs: :class:`AnthropicChatModel` arguments; they win over the URL's.

    Returns:
        The model.

    Raises:
        ConfigError: bad URL, unknown parameter or argument, no model or no key.
    """
    merged = _url_kwargs(url, kwargs)
    check_kwargs(AnthropicChatModel, merged)
    return AnthropicChatModel(**merged)


def create_async(url: str, **kwargs: Any) -> AsyncAnthropicChatModel:
    """Async twin of :func:`create`.

    Raises:
        ConfigError: bad URL, unknown parameter or argument, no model or no key.
    """
    merged = _url_kwargs(url, kwargs)
    check_kwargs(AsyncAnthropicChatModel, merged)
    return AsyncAnthropicChatModel(**merged)


if TYPE_CHECKING:  # mypy checks that both twins satisfy the Protocols

    def _satisfies(
        model: AnthropicChatModel, twin: AsyncAnthropicChatModel
    ) -> tuple[ChatModel, AsyncChatModel]:
        return model, twin
