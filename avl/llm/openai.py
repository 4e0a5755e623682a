"""OpenAI-compatible Chat Completions (``POST {base_url}/chat/completions``).

One codec serves OpenAI, Azure OpenAI (a deployment URL, the ``api-key`` header and
the ``api-version`` query parameter), vLLM, the llama.cpp server, Ollama's and
LM Studio's OpenAI endpoints: only the base URL and the key change.

URLs for :func:`avl.llm.create_chat_model`::

    openai://?model=gpt-4o-mini                          # https://api.openai.com/v1
    openai://api.openai.com/v1?model=gpt-4o-mini
    openai+http://localhost:11434/v1?model=llama3.2      # Ollama (no key needed)
    openai://myres.openai.azure.com/openai/deployments/gpt4o?api-version=2024-10-21

Streaming asks for ``stream_options.include_usage`` so the last chunk carries the
usage; the stream ends with ``data: [DONE]``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from avl._clock import Clock
from avl.errors import ConfigError, ProviderError
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
    seq,
    url_kwargs,
)
from avl.llm._http import RequestSpec, RetryPolicy
from avl.llm._sse import SSEEvent
from avl.llm._types import AsyncChatModel, ChatModel, Completion, Delta, Message, ToolCall, Usage
from avl.metrics import CostTable

__all__ = [
    "DEFAULT_BASE_URL",
    "AsyncOpenAIChatModel",
    "OpenAIChatModel",
    "create",
    "create_async",
]

#: The base URL used when an ``openai://`` URL names no host.
DEFAULT_BASE_URL = "https://api.openai.com/v1"
_ENV_KEYS = ("OPENAI_API_KEY",)
_STOP_REASONS = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "content_filter",
}


def _stop_reason(raw: Any) -> str | None:
    if not isinstance(raw, str) or not raw:
        return None
    return _STOP_REASONS.get(raw, raw)


def _usage(data: Any) -> Usage | None:
    if not isinstance(data, dict):
        return None
    details = data.get("prompt_tokens_details")
    cached = as_int(details.get("cached_tokens")) if isinstance(details, dict) else 0
    return Usage(
        input_tokens=as_int(data.get("prompt_tokens")),
        output_tokens=as_int(data.get("completion_tokens")),
        cached_tokens=cached,
    )


def _error_in_body(data: Any) -> ProviderError | None:
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        err = data["error"]
        message = err.get("message") or json.dumps(err)
        kind = err.get("type") or err.get("code")
        text = f"{kind}: {message}" if isinstance(kind, str) and kind else str(message)
        return ProviderError(f"openai stream failed: {text}", provider="openai")
    return None


class OpenAICodec(Codec):
    """The OpenAI Chat Completions wire format (pure).

    Args:
        model: the model (for Azure, any label: the deployment is in the URL).
        base_url: the API base, e.g. ``https://api.openai.com/v1``.
        api_key: the key, or ``None`` to send no credentials (local servers).
        api_version: set for Azure OpenAI: sent as ``api-version`` with the key in
            the ``api-key`` header instead of ``Authorization: Bearer``.
        organization: sent as ``OpenAI-Organization`` when set.
        max_tokens_param: the body field for ``max_tokens``
            (``"max_completion_tokens"`` on api.openai.com, ``"max_tokens"``
            elsewhere when ``None``).
        provider: the name for errors and the cost table.
    """

    def __init__(
        self,
        *,
        model: str,
        base_url: str,
        api_key: str | None,
        api_version: str | None = None,
        organization: str | None = None,
        max_tokens_param: str | None = None,
        provider: str = "openai",
    ) -> None:
        if not isinstance(model, str) or not model:
            raise ConfigError("an OpenAI-compatible model needs model=... (e.g. 'gpt-4o-mini')")
        self.provider = provider
        self.model = model
        self.base_url = check_base_url(base_url)
        self.api_key = api_key
        self.api_version = api_version
        self.organization = organization
        if max_tokens_param is None:
            host = urlsplit(self.base_url).hostname or ""
            max_tokens_param = "max_completion_tokens" if host == "api.openai.com" else "max_tokens"
        if max_tokens_param not in ("max_tokens", "max_completion_tokens"):
            raise ConfigError(
                "max_tokens_param must be 'max_tokens' or 'max_completion_tokens', "
                f"got {max_tokens_param!r}"
            )
        self.max_tokens_param = max_tokens_param

    def headers(self) -> dict[str, str]:
        """The request headers (credentials included)."""
        headers = {"accept": "application/json"}
        if self.api_key is not None:
            if self.api_version is not None:
                headers["api-key"] = self.api_key
            else:
                headers["authorization"] = f"Bearer {self.api_key}"
        if self.organization:
            headers["openai-organization"] = self.organization
        return headers

    def request(
        self, messages: Sequence[Message], options: CallOptions, *, stream: bool
    ) -> RequestSpec:
        """Build ``POST {base_url}/chat/completions``."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [
                {"role": "user" if m.role == "tool" else m.role, "content": m.content}
                for m in messages
            ],
        }
        if options.max_tokens is not None:
            body[self.max_tokens_param] = options.max_tokens
        if options.temperature is not None:
            body["temperature"] = options.temperature
        if options.stop:
            body["stop"] = list(options.stop)
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        params = {"api-version": self.api_version} if self.api_version is not None else {}
        headers = self.headers()
        if stream:
            headers["accept"] = "text/event-stream"
        return RequestSpec(
            url=f"{self.base_url}/chat/completions", params=params, headers=headers, json=body
        )

    def parse(self, data: Any, headers: Mapping[str, str]) -> Completion:
        """Read a ``chat.completion`` object."""
        try:
            choice = obj(data["choices"][0])
            message = obj(choice["message"])
        except (KeyError, IndexError, TypeError) as exc:
            raise malformed(self.provider, "no choices[0].message", exc) from exc
        content = message.get("content")
        tool_calls = []
        for raw_call in seq(message.get("tool_calls")):
            call = obj(raw_call)
            function = obj(call.get("function"))
            tool_calls.append(
                ToolCall(
                    id=str(call.get("id") or ""),
                    name=str(function.get("name") or ""),
                    arguments=str(function.get("arguments") or "{}"),
                )
            )
        return Completion(
            text=content if isinstance(content, str) else "",
            model=str(obj(data).get("model") or self.model),
            provider=self.provider,
            usage=_usage(obj(data).get("usage")) or Usage(),
            stop_reason=_stop_reason(choice.get("finish_reason")),
            request_id=request_id_of(headers) or None,
            tool_calls=tuple(tool_calls),
        )

    def stream_parser(self) -> StreamParser:
        """A parser for ``chat.completion.chunk`` events ending with ``[DONE]``."""
        return _OpenAIStream(self)


class _OpenAIStream(StreamParser):
    def __init__(self, codec: OpenAICodec) -> None:
        self._codec = codec
        self._model = ""
        self._usage: Usage | None = None
        self._stop: str | None = None
        self._calls: dict[int, list[str]] = {}  # index -> [id, name, arguments]

    def _tool_deltas(self, raw: Any) -> None:
        for item in seq(raw):
            call = obj(item)
            index = call.get("index", 0)
            if not isinstance(index, int):
                continue
            slot = self._calls.setdefault(index, ["", "", ""])
            function = obj(call.get("function"))
            if isinstance(call.get("id"), str):
                slot[0] = call["id"]
            if isinstance(function.get("name"), str):
                slot[1] += function["name"]
            if isinstance(function.get("arguments"), str):
                slot[2] += function["arguments"]

    def feed(self, event: SSEEvent) -> list[Delta]:
        data = event.data.strip()
        if data == "[DONE]":
            self.done = True
            self.complete = True
            return []
        if not data:
            return []
        try:
            chunk = json.loads(data)
        except ValueError as exc:
            raise malformed(self._codec.provider, f"bad stream chunk {data[:80]!r}", exc) from exc
        error = _error_in_body(chunk)
        if error is not None:
            raise error
        if not isinstance(chunk, dict):
            raise malformed(self._codec.provider, f"bad stream chunk {data[:80]!r}")
        if chunk.get("model"):
            self._model = str(chunk["model"])
        usage = _usage(chunk.get("usage"))
        if usage is not None:
            self._usage = usage
        out: list[Delta] = []
        for choice in seq(chunk.get("choices")):
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = obj(choice.get("delta"))
            text = delta.get("content")
            self._tool_deltas(delta.get("tool_calls"))
            if isinstance(text, str) and text:
                out.append(Delta(text=text))
            reason = _stop_reason(choice.get("finish_reason"))
            if reason is not None:
                self._stop = reason
                # Some servers end without [DONE]; a stop reason ends the answer.
                self.complete = True
        return out

    def final(self) -> Delta:
        return Delta(
            done=True,
            usage=self._usage,
            stop_reason=self._stop,
            model=self._model or self._codec.model,
            tool_calls=tuple(
                ToolCall(id=slot[0], name=slot[1], arguments=slot[2] or "{}")
                for _, slot in sorted(self._calls.items())
            ),
        )


_KNOWN_PARAMS = (*COMMON_URL_PARAMS, "api-version")


def _codec_from(
    *,
    model: str,
    api_key: str | None,
    base_url: str,
    api_version: str | None,
    organization: str | None,
    max_tokens_param: str | None,
    provider: str,
    env: Mapping[str, str] | None,
) -> OpenAICodec:
    host = urlsplit(check_base_url(base_url)).hostname or ""
    needs_key = host == "api.openai.com" or api_version is not None
    key = resolve_api_key(api_key, env=env, names=_ENV_KEYS, provider=provider, required=needs_key)
    return OpenAICodec(
        model=model,
        base_url=base_url,
        api_key=key,
        api_version=api_version,
        organization=organization,
        max_tokens_param=max_tokens_param,
        provider=provider,
    )


class OpenAIChatModel(SyncChatModelCore):
    """A chat model behind an OpenAI-compatible ``/chat/completions`` endpoint.

    Args:
        model: the model name (``"gpt-4o-mini"``, ``"llama3.2"``...).
        api_key: the key; defaults to ``$OPENAI_API_KEY``. Required for
            api.openai.com and Azure, optional for other base URLs.
        base_url: the API base (default ``https://api.openai.com/v1``; Ollama:
            ``http://localhost:11434/v1``; Azure:
            ``https://RES.openai.azure.com/openai/deployments/DEPLOYMENT``).
        api_version: Azure OpenAI's ``api-version`` (switches to the ``api-key`` header).
        organization: OpenAI organization id, sent as ``OpenAI-Organization``.
        max_tokens_param: ``"max_tokens"`` or ``"max_completion_tokens"`` (see
            :class:`OpenAICodec`).
        provider: the provider name for errors and the cost table (``"openai"``).
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
        ConfigError: no model, no key where one is required, bad URL or options.

    Example:
        >>> import httpx
        >>> model = OpenAIChatModel("llama3.2", base_url="http://localhost:11434/v1",
        ...                         transport=httpx.MockTransport(lambda r: httpx.Response(500)))
        >>> model.name
        'openai/llama3.2'
    """

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        api_version: str | None = None,
        organization: str | None = None,
        max_tokens_param: str | None = None,
        provider: str = "openai",
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
            organization=organization,
            max_tokens_param=max_tokens_param,
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


class AsyncOpenAIChatModel(AsyncChatModelCore):
    """The asyncio twin of :class:`OpenAIChatModel` (same arguments and methods).

    ``http_client`` is an ``httpx.AsyncClient``, ``transport`` an async transport and
    ``sleep`` an async function (default :func:`asyncio.sleep`).

    Raises:
        ConfigError: no model, no key where one is required, bad URL or options.
    """

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        api_version: str | None = None,
        organization: str | None = None,
        max_tokens_param: str | None = None,
        provider: str = "openai",
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
            organization=organization,
            max_tokens_param=max_tokens_param,
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
        url, scheme="openai", default_base_url=DEFAULT_BASE_URL, known_params=_KNOWN_PARAMS
    )
    merged = url_kwargs(parsed.params, kwargs)
    merged.setdefault("base_url", parsed.base_url)
    if "api-version" in parsed.params:
        merged.setdefault("api_version", parsed.params["api-version"])
    if "model" not in merged:
        if merged.get("api_version") is None:
            raise ConfigError(f"the chat-model URL {url!r} needs ?model=... (or model=...)")
        merged["model"] = urlsplit(merged["base_url"]).path.rstrip("/").rsplit("/", 1)[-1]
    return merged


def create(url: str, **kwargs: Any) -> OpenAIChatModel:
    """Build an :class:`OpenAIChatModel` from an ``openai://`` URL.

    Args:
        url: ``openai[+http|+https]://host[:port]/path?model=...`` (see the module).
        **kwargs: :class:`OpenAIChatModel` arguments; they win over the URL's.

    Returns:
        The model.

    Raises:
        ConfigError: bad URL, unknown parameter or argument, no model or no key.
    """
    merged = _url_kwargs(url, kwargs)
    check_kwargs(OpenAIChatModel, merged)
    return OpenAIChatModel(**merged)


def create_async(url: str, **kwargs: Any) -> AsyncOpenAIChatModel:
    """Async twin of :func:`create`.

    Raises:
        ConfigError: bad URL, unknown parameter or argument, no model or no key.
    """
    merged = _url_kwargs(url, kwargs)
    check_kwargs(AsyncOpenAIChatModel, merged)
    return AsyncOpenAIChatModel(**merged)


if TYPE_CHECKING:  # mypy checks that both twins satisfy the Protocols

    def _satisfies(
        model: OpenAIChatModel, twin: AsyncOpenAIChatModel
    ) -> tuple[ChatModel, AsyncChatModel]:
        return model, twin
