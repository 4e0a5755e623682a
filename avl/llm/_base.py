"""What every HTTP chat provider shares: the codec contract and the sync/async cores.

A provider is a *codec* (pure: builds the request, parses the response and the
event stream) plus the I/O cores here, which send through an injected
``httpx.Client`` / ``httpx.AsyncClient`` with retries, and price the usage.
"""

from __future__ import annotations

import abc
import inspect
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import attrs
import httpx

from avl._clock import Clock
from avl._registry import redact_url
from avl.errors import ConfigError, InvalidInputError, ProviderError
from avl.llm._http import AsyncSender, RequestSpec, RetryPolicy, SyncSender
from avl.llm._sse import SSEDecoder, SSEEvent
from avl.llm._types import Completion, Delta, Message, Usage
from avl.metrics import CostTable

__all__ = [
    "AsyncChatModelCore",
    "CallOptions",
    "Codec",
    "ParsedURL",
    "StreamParser",
    "SyncChatModelCore",
    "check_base_url",
    "check_messages",
    "parse_model_url",
    "resolve_api_key",
]


@attrs.frozen(kw_only=True)
class CallOptions:
    """The per-call generation options, validated.

    Attributes:
        max_tokens: the most tokens to generate, or ``None`` for the provider default.
        temperature: sampling temperature, or ``None`` for the provider default.
        stop: stop sequences.
    """

    max_tokens: int | None = None
    temperature: float | None = None
    stop: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        *,
        max_tokens: int | None,
        temperature: float | None,
        stop: Sequence[str] | None,
    ) -> CallOptions:
        """Validate the public arguments into options.

        Raises:
            InvalidInputError: a value has the wrong type or range.
        """
        if max_tokens is not None and (
            isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
        ):
            raise InvalidInputError(f"max_tokens must be a positive integer, got {max_tokens!r}")
        if temperature is not None and (
            isinstance(temperature, bool)
            or not isinstance(temperature, (int, float))
            or not 0 <= temperature <= 2
        ):
            raise InvalidInputError(f"temperature must be between 0 and 2, got {temperature!r}")
        if stop is None:
            stops: tuple[str, ...] = ()
        elif isinstance(stop, str) or not all(isinstance(s, str) and s for s in stop):
            raise InvalidInputError(f"stop must be a sequence of non-empty strings, got {stop!r}")
        else:
            stops = tuple(stop)
        return cls(
            max_tokens=max_tokens,
            temperature=None if temperature is None else float(temperature),
            stop=stops,
        )


def check_messages(messages: Sequence[Message]) -> tuple[Message, ...]:
    """Validate the messages of a call.

    Raises:
        InvalidInputError: not a non-empty sequence of :class:`Message`.
    """
    value: object = messages
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise InvalidInputError(
            f"messages must be a sequence of avl.llm.Message, got {type(messages).__name__}"
        )
    if not messages:
        raise InvalidInputError("messages is empty: a chat call needs at least one message")
    for i, message in enumerate(messages):
        if not isinstance(message, Message):
            raise InvalidInputError(
                f"messages[{i}] must be an avl.llm.Message, got {type(message).__name__}"
            )
    return tuple(messages)


class StreamParser(abc.ABC):
    """Turns a provider's server-sent events into :class:`Delta` values (pure)."""

    #: stop reading: the provider's final event arrived.
    done: bool = False
    #: the stream ended properly (final event, or a stop reason where the
    #: provider has no final event).
    complete: bool = False

    @abc.abstractmethod
    def feed(self, event: SSEEvent) -> list[Delta]:
        """Read one event; return the text deltas it carries.

        Raises:
            ProviderError: the event is an error or cannot be read.
        """

    @abc.abstractmethod
    def final(self) -> Delta:
        """The last delta (``done=True``) with usage, stop reason and model."""


class Codec(abc.ABC):
    """A provider's wire format (pure): requests out, completions and deltas in."""

    provider: str
    model: str

    @abc.abstractmethod
    def request(
        self, messages: Sequence[Message], options: CallOptions, *, stream: bool
    ) -> RequestSpec:
        """Build the HTTP request for a call."""

    @abc.abstractmethod
    def parse(self, data: Any, headers: Mapping[str, str]) -> Completion:
        """Read a non-streamed response body (decoded JSON).

        Raises:
            ProviderError: the body does not have the provider's shape.
        """

    @abc.abstractmethod
    def stream_parser(self) -> StreamParser:
        """A fresh parser for one streamed response."""


def request_id_of(headers: Mapping[str, str]) -> str | None:
    """The provider's request id from ``x-request-id`` or ``request-id``."""
    return headers.get("x-request-id") or headers.get("request-id") or None


def malformed(provider: str, what: str, exc: BaseException | None = None) -> ProviderError:
    """The error for a response that does not have the provider's shape."""
    suffix = f" ({type(exc).__name__}: {exc})" if exc is not None else ""
    return ProviderError(
        f"{provider} sent an unexpected response: {what}{suffix}", provider=provider
    )


def obj(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one (for lenient reading)."""
    return value if isinstance(value, dict) else {}


def seq(value: Any) -> list[Any]:
    """``value`` if it is a JSON array, else an empty one."""
    return value if isinstance(value, list) else []


def as_int(value: Any) -> int:
    """A token count from JSON (missing or null is 0)."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    return 0


@attrs.frozen(kw_only=True)
class ParsedURL:
    """A chat-model URL split into its parts.

    Attributes:
        base_url: the HTTP base URL of the API.
        params: the query parameters.
    """

    base_url: str
    params: Mapping[str, str]


def parse_model_url(
    url: str, *, scheme: str, default_base_url: str, known_params: Sequence[str]
) -> ParsedURL:
    """Read ``<scheme>[+http|+https]://host[:port][/path][?model=...&...]``.

    With no host the provider's default base URL is used; with the default host
    and no path, the default path. ``+http`` selects plain HTTP (local servers).

    Raises:
        ConfigError: wrong scheme, or an unknown query parameter.
    """
    if not isinstance(url, str):
        raise ConfigError(f"expected a chat-model URL string, got {type(url).__name__}")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ConfigError(f"cannot read chat-model URL {redact_url(url)!r}: {exc}") from exc
    main, _, transport = parts.scheme.lower().partition("+")
    if main != scheme or transport not in ("", "http", "https"):
        raise ConfigError(
            f"chat-model URL {redact_url(url)!r} must start with '{scheme}://', "
            f"'{scheme}+http://' or '{scheme}+https://'"
        )
    params: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in known_params:
            raise ConfigError(
                f"unknown parameter {key!r} in chat-model URL {redact_url(url)!r} "
                f"(known: {', '.join(known_params)})"
            )
        params[key] = value
    if parts.username is not None or parts.password is not None:
        raise ConfigError(
            f"chat-model URL {redact_url(url)!r} carries credentials: pass the key as "
            "api_key=... or through the environment instead"
        )
    if not parts.netloc:
        return ParsedURL(base_url=default_base_url, params=params)
    default = urlsplit(default_base_url)
    path = parts.path.rstrip("/")
    if not path and parts.hostname == default.hostname:
        path = default.path.rstrip("/")
    http = transport or "https"
    return ParsedURL(base_url=f"{http}://{parts.netloc}{path}", params=params)


def check_base_url(base_url: object) -> str:
    """Validate an API base URL (``http`` or ``https``, parseable by httpx).

    Returns:
        The URL without a trailing slash.

    Raises:
        ConfigError: not a string, not http(s), or unparseable.
    """
    if not isinstance(base_url, str):
        raise ConfigError(f"base_url must be an http(s) URL string, got {type(base_url).__name__}")
    try:
        url = httpx.URL(base_url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise ConfigError(f"base_url {base_url!r} is not a valid URL: {exc}") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigError(f"base_url must be an http(s) URL with a host, got {base_url!r}")
    return base_url.rstrip("/")


def resolve_api_key(
    api_key: str | None,
    *,
    env: Mapping[str, str] | None,
    names: Sequence[str],
    provider: str,
    required: bool,
) -> str | None:
    """The API key from the argument, else the first set environment variable.

    Raises:
        ConfigError: ``required`` and no key was found; names the variables.
    """
    if api_key is not None:
        if not isinstance(api_key, str) or not api_key.strip():
            raise ConfigError(f"{provider} api_key must be a non-empty string")
        return api_key
    source = os.environ if env is None else env
    for name in names:
        value = source.get(name)
        if value:
            return value
    if required:
        raise ConfigError(
            f"no {provider} API key: pass api_key=... or set the environment variable "
            f"{' or '.join(names)}"
        )
    return None


def int_param(params: Mapping[str, str], name: str) -> int | None:
    """An integer URL parameter, if present.

    Raises:
        ConfigError: not an integer.
    """
    if name not in params:
        return None
    try:
        return int(params[name])
    except ValueError as exc:
        raise ConfigError(f"URL parameter {name}={params[name]!r} is not an integer") from exc


def float_param(params: Mapping[str, str], name: str) -> float | None:
    """A number URL parameter, if present.

    Raises:
        ConfigError: not a number.
    """
    if name not in params:
        return None
    try:
        return float(params[name])
    except ValueError as exc:
        raise ConfigError(f"URL parameter {name}={params[name]!r} is not a number") from exc


def url_kwargs(params: Mapping[str, str], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Merge the common URL parameters (``model``, ``timeout_s``, ``max_attempts``,
    ``deadline_s``) into ``kwargs``; explicit keyword arguments win."""
    merged = dict(kwargs)
    if "model" in params:
        merged.setdefault("model", params["model"])
    timeout = float_param(params, "timeout_s")
    if timeout is not None:
        merged.setdefault("timeout_s", timeout)
    attempts = int_param(params, "max_attempts")
    deadline = float_param(params, "deadline_s")
    if (attempts is not None or deadline is not None) and "retry" not in merged:
        policy = RetryPolicy()
        merged["retry"] = attrs.evolve(
            policy,
            max_attempts=policy.max_attempts if attempts is None else attempts,
            deadline_s=policy.deadline_s if deadline is None else deadline,
        )
    return merged


COMMON_URL_PARAMS = ("model", "timeout_s", "max_attempts", "deadline_s")


def check_kwargs(cls: type, kwargs: Mapping[str, Any]) -> None:
    """Reject keyword arguments that ``cls`` does not take, naming the known ones.

    Raises:
        ConfigError: an unknown argument.
    """
    known = [
        name
        for name, p in inspect.signature(cls).parameters.items()
        if name != "self" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    unknown = sorted(set(kwargs) - set(known))
    if unknown:
        raise ConfigError(
            f"{cls.__name__} got unknown argument(s) {', '.join(map(repr, unknown))} "
            f"(known: {', '.join(known)})"
        )


class _ChatModelCore:
    """The I/O-free part of a provider model: naming and pricing."""

    def __init__(self, codec: Codec, *, cost_table: CostTable | None) -> None:
        self._codec = codec
        self._cost_table = cost_table if cost_table is not None else CostTable.default()

    @property
    def name(self) -> str:
        """``"<provider>/<model>"``, e.g. ``"openai/gpt-4o-mini"``."""
        return f"{self._codec.provider}/{self._codec.model}"

    @property
    def model(self) -> str:
        """The configured model name."""
        return self._codec.model

    @property
    def provider(self) -> str:
        """The provider name used for errors and the cost table."""
        return self._codec.provider

    def _cost(self, model: str, usage: Usage) -> float | None:
        return self._cost_table.cost_usd(
            self._codec.provider,
            model or self._codec.model,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_tokens=usage.cached_tokens,
        )

    def _priced(self, completion: Completion) -> Completion:
        return attrs.evolve(completion, cost_usd=self._cost(completion.model, completion.usage))

    def _priced_final(self, delta: Delta, request_id: str | None) -> Delta:
        usage = delta.usage
        cost = None if usage is None else self._cost(delta.model, usage)
        return attrs.evolve(
            delta, model=delta.model or self._codec.model, cost_usd=cost, request_id=request_id
        )

    def _spec(
        self,
        messages: Sequence[Message],
        max_tokens: int | None,
        temperature: float | None,
        stop: Sequence[str] | None,
        *,
        stream: bool,
    ) -> RequestSpec:
        options = CallOptions.of(max_tokens=max_tokens, temperature=temperature, stop=stop)
        return self._codec.request(check_messages(messages), options, stream=stream)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def _client_args(http_client: object | None, transport: object | None, cls_name: str) -> None:
    if http_client is not None and transport is not None:
        raise ConfigError(f"pass either http_client or transport to {cls_name}, not both")


class SyncChatModelCore(_ChatModelCore):
    """Sends a codec's requests synchronously; the base of every sync provider."""

    def __init__(
        self,
        codec: Codec,
        *,
        http_client: httpx.Client | None,
        transport: httpx.BaseTransport | None,
        timeout_s: float,
        retry: RetryPolicy | None,
        clock: Clock | None,
        sleep: Callable[[float], None] | None,
        rng: random.Random | None,
        cost_table: CostTable | None,
    ) -> None:
        super().__init__(codec, cost_table=cost_table)
        _client_args(http_client, transport, type(self).__name__)
        if http_client is not None and not isinstance(http_client, httpx.Client):
            raise ConfigError(
                f"http_client must be an httpx.Client, got {type(http_client).__name__}"
            )
        self._owns_client = http_client is None
        client = http_client if http_client is not None else httpx.Client(transport=transport)
        self._sender = SyncSender(
            provider=codec.provider,
            client=client,
            retry=retry if retry is not None else RetryPolicy(),
            timeout_s=timeout_s,
            clock=clock,
            sleep=sleep,
            rng=rng,
        )

    def complete(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] | None = None,
    ) -> Completion:
        """Return the whole completion for ``messages``.

        Args:
            messages: the conversation, oldest first.
            max_tokens: the most tokens to generate.
            temperature: sampling temperature (0 to 2).
            stop: stop sequences.

        Returns:
            The completion with usage and cost.

        Raises:
            InvalidInputError: bad messages or options.
            ProviderError: the provider failed (status, request id and message).
            ProviderRateLimitError: 429 after the retries.
            ProviderTimeoutError: no answer within the timeout or deadline.
        """
        spec = self._spec(messages, max_tokens, temperature, stop, stream=False)
        data, headers = self._sender.send_json(spec)
        return self._priced(self._codec.parse(data, headers))

    def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] | None = None,
    ) -> Iterator[Delta]:
        """Yield the completion as it is generated; the last delta has ``done=True``.

        Args:
            messages: the conversation, oldest first.
            max_tokens: the most tokens to generate.
            temperature: sampling temperature (0 to 2).
            stop: stop sequences.

        Returns:
            An iterator of deltas; the last carries usage, stop reason and cost.

        Raises:
            InvalidInputError: bad messages or options (raised at once).
            ProviderError: the provider failed, or the stream was truncated.
            ProviderRateLimitError: 429 after the retries.
            ProviderTimeoutError: no answer within the timeout or deadline.
        """
        spec = self._spec(messages, max_tokens, temperature, stop, stream=True)
        return self._iter_stream(spec)

    def _iter_stream(self, spec: RequestSpec) -> Iterator[Delta]:
        lines = self._sender.stream_lines(spec)
        try:
            first = next(lines)
            assert isinstance(first, httpx.Headers)
            headers = first
            parser = self._codec.stream_parser()
            decoder = SSEDecoder()
            for line in lines:
                assert isinstance(line, str)
                event = decoder.feed(line)
                if event is not None:
                    for delta in parser.feed(event):
                        if delta.text:
                            yield delta
                    if parser.done:
                        break
            else:
                if decoder.pending:
                    event = decoder.feed("")
                    if event is not None:
                        for delta in parser.feed(event):
                            if delta.text:
                                yield delta
            if not parser.complete:
                raise self._sender.truncated(headers)
            yield self._priced_final(parser.final(), request_id_of(headers))
        finally:
            lines.close()

    def close(self) -> None:
        """Close the HTTP client if this model created it."""
        if self._owns_client:
            self._sender.client.close()

    def __enter__(self) -> SyncChatModelCore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncChatModelCore(_ChatModelCore):
    """The asyncio twin of :class:`SyncChatModelCore` (same method names)."""

    def __init__(
        self,
        codec: Codec,
        *,
        http_client: httpx.AsyncClient | None,
        transport: httpx.AsyncBaseTransport | None,
        timeout_s: float,
        retry: RetryPolicy | None,
        clock: Clock | None,
        sleep: Callable[[float], Awaitable[None]] | None,
        rng: random.Random | None,
        cost_table: CostTable | None,
    ) -> None:
        super().__init__(codec, cost_table=cost_table)
        _client_args(http_client, transport, type(self).__name__)
        if http_client is not None and not isinstance(http_client, httpx.AsyncClient):
            raise ConfigError(
                f"http_client must be an httpx.AsyncClient, got {type(http_client).__name__}"
            )
        self._owns_client = http_client is None
        client = http_client if http_client is not None else httpx.AsyncClient(transport=transport)
        self._sender = AsyncSender(
            provider=codec.provider,
            client=client,
            retry=retry if retry is not None else RetryPolicy(),
            timeout_s=timeout_s,
            clock=clock,
            sleep=sleep,
            rng=rng,
        )

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] | None = None,
    ) -> Completion:
        """Async twin of the sync ``complete``: the whole completion for ``messages``.

        Raises:
            InvalidInputError: bad messages or options.
            ProviderError: the provider failed (status, request id and message).
            ProviderRateLimitError: 429 after the retries.
            ProviderTimeoutError: no answer within the timeout or deadline.
        """
        spec = self._spec(messages, max_tokens, temperature, stop, stream=False)
        data, headers = await self._sender.send_json(spec)
        return self._priced(self._codec.parse(data, headers))

    def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] | None = None,
    ) -> AsyncIterator[Delta]:
        """Async twin of the sync ``stream``: an async iterator of deltas.

        Raises:
            InvalidInputError: bad messages or options (raised at once).
            ProviderError: the provider failed, or the stream was truncated.
            ProviderRateLimitError: 429 after the retries.
            ProviderTimeoutError: no answer within the timeout or deadline.
        """
        spec = self._spec(messages, max_tokens, temperature, stop, stream=True)
        return self._iter_stream(spec)

    async def _iter_stream(self, spec: RequestSpec) -> AsyncIterator[Delta]:
        lines = self._sender.stream_lines(spec)
        try:
            first = await lines.__anext__()
            assert isinstance(first, httpx.Headers)
            headers = first
            parser = self._codec.stream_parser()
            decoder = SSEDecoder()
            finished_early = False
            async for line in lines:
                assert isinstance(line, str)
                event = decoder.feed(line)
                if event is not None:
                    for delta in parser.feed(event):
                        if delta.text:
                            yield delta
                    if parser.done:
                        finished_early = True
                        break
            if not finished_early and decoder.pending:
                event = decoder.feed("")
                if event is not None:
                    for delta in parser.feed(event):
                        if delta.text:
                            yield delta
            if not parser.complete:
                raise self._sender.truncated(headers)
            yield self._priced_final(parser.final(), request_id_of(headers))
        finally:
            await lines.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if this model created it."""
        if self._owns_client:
            await self._sender.client.aclose()

    async def __aenter__(self) -> AsyncChatModelCore:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
