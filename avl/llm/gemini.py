"""Google Gemini API (``models/{model}:generateContent`` and
``:streamGenerateContent?alt=sse``).

The key goes in ``x-goog-api-key``; messages become ``contents`` with ``parts``
(the assistant's role is ``"model"``), system messages become
``systemInstruction``, and the options go in ``generationConfig``. Usage comes from
``usageMetadata`` (``promptTokenCount``, ``candidatesTokenCount`` plus
``thoughtsTokenCount``, ``cachedContentTokenCount``).

URLs for :func:`avl.llm.create_chat_model`::

    gemini://?model=gemini-2.0-flash    # https://generativelanguage.googleapis.com/v1beta
    gemini://generativelanguage.googleapis.com/v1beta?model=gemini-2.5-flash

The key defaults to ``$GEMINI_API_KEY``, then ``$GOOGLE_API_KEY``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

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
    "DEFAULT_BASE_URL",
    "AsyncGeminiChatModel",
    "GeminiChatModel",
    "create",
    "create_async",
]

#: The base URL used when a ``gemini://`` URL names no host.
DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/v1beta"
_ENV_KEYS = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
_FILTERED = frozenset(
    {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"}
)


def _stop_reason(raw: Any) -> str | None:
    if not isinstance(raw, str) or not raw or raw == "FINISH_REASON_UNSPECIFIED":
        return None
    if raw == "STOP":
        return "stop"
    if raw == "MAX_TOKENS":
        return "length"
    if raw in _FILTERED:
        return "content_filter"
    return raw.lower()


def _usage(data: Any) -> Usage | None:
    if not isinstance(data, dict):
        return None
    return Usage(
        input_tokens=as_int(data.get("promptTokenCount")),
        output_tokens=as_int(data.get("candidatesTokenCount"))
        + as_int(data.get("thoughtsTokenCount")),
        cached_tokens=as_int(data.get("cachedContentTokenCount")),
    )


def _parts(candidate: Any) -> list[dict[str, Any]]:
    if not isinstance(candidate, dict):
        return []
    content = candidate.get("content")
    if not isinstance(content, dict) or not isinstance(content.get("parts"), list):
        return []
    return [p for p in content["parts"] if isinstance(p, dict)]


def _calls(parts: list[dict[str, Any]]) -> list[ToolCall]:
    calls = []
    for part in parts:
        call = part.get("functionCall")
        if isinstance(call, dict):
            calls.append(
                ToolCall(
                    id=str(call.get("id") or ""),
                    name=str(call.get("name") or ""),
                    arguments=json.dumps(call.get("args") or {}, separators=(",", ":")),
                )
            )
    return calls


def _text(parts: list[dict[str, Any]]) -> str:
    return "".join(str(p["text"]) for p in parts if "text" in p and not p.get("thought"))


class GeminiCodec(Codec):
    """The Gemini ``generateContent`` wire format (pure).

    Args:
        model: the model, e.g. ``"gemini-2.0-flash"``.
        base_url: the API base, ``https://generativelanguage.googleapis.com/v1beta``.
        api_key: the key (``x-goog-api-key``).
        provider: the name for errors and the cost table.
    """

    def __init__(
        self, *, model: str, base_url: str, api_key: str, provider: str = "gemini"
    ) -> None:
        if not isinstance(model, str) or not model:
            raise ConfigError("a Gemini model needs model=... (e.g. 'gemini-2.0-flash')")
        self.provider = provider
        self.model = model.removeprefix("models/")
        self.base_url = check_base_url(base_url)
        self.api_key = api_key

    def request(
        self, messages: Sequence[Message], options: CallOptions, *, stream: bool
    ) -> RequestSpec:
        """Build ``POST {base_url}/models/{model}:generateContent`` (or the SSE stream).

        Raises:
            InvalidInputError: only system messages were given.
        """
        system = [m.content for m in messages if m.role == "system"]
        contents = [
            {"role": "model" if m.role == "assistant" else "user", "parts": [{"text": m.content}]}
            for m in messages
            if m.role != "system"
        ]
        if not contents:
            raise InvalidInputError(
                "Gemini needs at least one user or assistant message besides the system prompt"
            )
        body: dict[str, Any] = {"contents": contents}
        if system:
            body["systemInstruction"] = {"parts": [{"text": "\n\n".join(system)}]}
        config: dict[str, Any] = {}
        if options.max_tokens is not None:
            config["maxOutputTokens"] = options.max_tokens
        if options.temperature is not None:
            config["temperature"] = options.temperature
        if options.stop:
            config["stopSequences"] = list(options.stop)
        if config:
            body["generationConfig"] = config
        method = "streamGenerateContent" if stream else "generateContent"
        return RequestSpec(
            url=f"{self.base_url}/models/{quote(self.model, safe='-._')}:{method}",
            params={"alt": "sse"} if stream else {},
            headers={
                "x-goog-api-key": self.api_key,
                "accept": "text/event-stream" if stream else "application/json",
            },
            json=body,
        )

    def parse(self, data: Any, headers: Mapping[str, str]) -> Completion:
        """Read a ``GenerateContentResponse``."""
        if not isinstance(data, dict):
            raise malformed(self.provider, "the response is not a JSON object")
        candidates = data.get("candidates")
        feedback = data.get("promptFeedback")
        if not candidates:
            if isinstance(feedback, dict) and feedback.get("blockReason"):
                stop: str | None = "content_filter"
            else:
                raise malformed(self.provider, "no candidates")
            parts: list[dict[str, Any]] = []
        else:
            if not isinstance(candidates, list):
                raise malformed(self.provider, "candidates is not a list")
            parts = _parts(candidates[0])
            stop = _stop_reason(obj(candidates[0]).get("finishReason"))
        calls = _calls(parts)
        if calls and stop == "stop":
            stop = "tool_use"
        return Completion(
            text=_text(parts),
            model=str(data.get("modelVersion") or self.model),
            provider=self.provider,
            usage=_usage(data.get("usageMetadata")) or Usage(),
            stop_reason=stop,
            request_id=request_id_of(headers) or (str(data.get("responseId") or "") or None),
            tool_calls=tuple(calls),
        )

    def stream_parser(self) -> StreamParser:
        """A parser for the ``alt=sse`` stream of ``GenerateContentResponse`` chunks."""
        return _GeminiStream(self)


class _GeminiStream(StreamParser):
    """Gemini has no final event: the stream is complete once a finish reason came."""

    def __init__(self, codec: GeminiCodec) -> None:
        self._codec = codec
        self._model = ""
        self._usage: Usage | None = None
        self._stop: str | None = None
        self._calls: list[ToolCall] = []

    def feed(self, event: SSEEvent) -> list[Delta]:
        provider = self._codec.provider
        if not event.data.strip():
            return []
        try:
            chunk = json.loads(event.data)
        except ValueError as exc:
            raise malformed(provider, f"bad stream chunk {event.data[:80]!r}", exc) from exc
        if not isinstance(chunk, dict):
            raise malformed(provider, f"bad stream chunk {event.data[:80]!r}")
        if isinstance(chunk.get("error"), dict):
            err = chunk["error"]
            raise ProviderError(
                f"gemini stream failed: {err.get('status', 'error')}: {err.get('message', '')}",
                provider=provider,
                status=err.get("code") if isinstance(err.get("code"), int) else None,
            )
        if chunk.get("modelVersion"):
            self._model = str(chunk["modelVersion"])
        usage = _usage(chunk.get("usageMetadata"))
        if usage is not None:
            self._usage = usage
        out: list[Delta] = []
        candidates = chunk.get("candidates") or []
        if candidates and isinstance(candidates, list):
            parts = _parts(candidates[0])
            text = _text(parts)
            if text:
                out.append(Delta(text=text))
            self._calls.extend(_calls(parts))
            reason = _stop_reason(obj(candidates[0]).get("finishReason"))
            if reason is not None:
                self._stop = "tool_use" if reason == "stop" and self._calls else reason
                self.complete = True
        feedback = chunk.get("promptFeedback")
        if isinstance(feedback, dict) and feedback.get("blockReason"):
            self._stop = "content_filter"
            self.complete = True
        return out

    def final(self) -> Delta:
        return Delta(
            done=True,
            usage=self._usage,
            stop_reason=self._stop,
            model=self._model or self._codec.model,
            tool_calls=tuple(self._calls),
        )


_KNOWN_PARAMS = COMMON_URL_PARAMS


def _codec_from(
    *,
    model: str,
    api_key: str | None,
    base_url: str,
    provider: str,
    env: Mapping[str, str] | None,
) -> GeminiCodec:
    key = resolve_api_key(api_key, env=env, names=_ENV_KEYS, provider=provider, required=True)
    assert key is not None
    return GeminiCodec(model=model, base_url=base_url, api_key=key, provider=provider)


class GeminiChatModel(SyncChatModelCore):
    """A chat model behind Google's Gemini API.

    Args:
        model: the model name, e.g. ``"gemini-2.0-flash"``.
        api_key: the key; defaults to ``$GEMINI_API_KEY`` then ``$GOOGLE_API_KEY``.
        base_url: the API base (default
            ``https://generativelanguage.googleapis.com/v1beta``).
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
        >>> model = GeminiChatModel("gemini-2.0-flash", api_key="test-key")
        >>> model.name
        'gemini/gemini-2.0-flash'
        >>> model.close()
    """

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        provider: str = "gemini",
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
            model=model, api_key=api_key, base_url=base_url, provider=provider, env=env
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


class AsyncGeminiChatModel(AsyncChatModelCore):
    """The asyncio twin of :class:`GeminiChatModel` (same arguments and methods).

    Raises:
        ConfigError: no model, no key, bad URL or options.
    """

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        provider: str = "gemini",
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
            model=model, api_key=api_key, base_url=base_url, provider=provider, env=env
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
        url, scheme="gemini", default_base_url=DEFAULT_BASE_URL, known_params=_KNOWN_PARAMS
    )
    merged = url_kwargs(parsed.params, kwargs)
    merged.setdefault("base_url", parsed.base_url)
    if "model" not in merged:
        raise ConfigError(f"the chat-model URL {url!r} needs ?model=... (or model=...)")
    return merged


def create(url: str, **kwargs: Any) -> GeminiChatModel:
    """Build a :class:`GeminiChatModel` from a ``gemini://`` URL.

    Args:
        url: ``gemini[+http|+https]://host[:port]/path?model=...``.
        **kwargs: :class:`GeminiChatModel` arguments; they win over the URL's.

    Returns:
        The model.

    Raises:
        ConfigError: bad URL, unknown parameter or argument, no model or no key.
    """
    merged = _url_kwargs(url, kwargs)
    check_kwargs(GeminiChatModel, merged)
    return GeminiChatModel(**merged)


def create_async(url: str, **kwargs: Any) -> AsyncGeminiChatModel:
    """Async twin of :func:`create`.

    Raises:
        ConfigError: bad URL, unknown parameter or argument, no model or no key.
    """
    merged = _url_kwargs(url, kwargs)
    check_kwargs(AsyncGeminiChatModel, merged)
    return AsyncGeminiChatModel(**merged)


if TYPE_CHECKING:  # mypy checks that both twins satisfy the Protocols

    def _satisfies(
        model: GeminiChatModel, twin: AsyncGeminiChatModel
    ) -> tuple[ChatModel, AsyncChatModel]:
        return model, twin
