"""HTTP plumbing shared by the providers: retries, error translation, I/O twins.

The decisions (which status is retried, how long to wait, what error to raise) are
pure functions of their inputs; :class:`SyncSender` and :class:`AsyncSender` only
add the I/O and are otherwise the same code.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Mapping
from typing import Any

import attrs
import httpx

from avl._clock import Clock, SystemClock
from avl.errors import (
    ConfigError,
    ProviderError,
    ProviderRateLimitError,
    ProviderTimeoutError,
)
from avl.metrics import Span, SpanKind, inject_context, start_span, tracing_enabled

__all__ = [
    "AsyncSender",
    "RequestSpec",
    "RetryPolicy",
    "SyncSender",
    "error_from_response",
    "parse_retry_after",
]

_RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


def _positive(_: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigError(f"{attribute.name} must be a non-negative number, got {value!r}")


def _at_least_one(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{attribute.name} must be an integer >= 1, got {value!r}")


def _between_0_and_1(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ConfigError(f"{attribute.name} must be between 0 and 1, got {value!r}")


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """When and how long to retry a failed provider call.

    A call is retried on 408, 409, 429, 5xx (and Anthropic's 529), timeouts and
    connection errors; never on other 4xx. The wait before attempt ``n + 1`` is the
    provider's ``Retry-After`` when it sent one, else
    ``min(max_backoff_s, initial_backoff_s * multiplier ** (n - 1))`` reduced by up
    to ``jitter`` of itself at random. No attempt starts after ``deadline_s`` from
    the first one, and no wait would end after it.

    Attributes:
        max_attempts: attempts in total (1 means no retry).
        initial_backoff_s: the first wait.
        multiplier: growth of the wait per attempt.
        max_backoff_s: the longest computed wait.
        jitter: the share of the wait that is randomised (0 = none, 1 = full).
        deadline_s: the total time budget of a call, all attempts and waits
            included (``None``: no budget).

    Example:
        >>> RetryPolicy(max_attempts=3).next_delay_s(
        ...     attempt=1, elapsed_s=0.0, retry_after_s=None, rand=0.0)
        0.5
    """

    max_attempts: int = attrs.field(default=4, validator=_at_least_one)
    initial_backoff_s: float = attrs.field(default=0.5, validator=_positive)
    multiplier: float = attrs.field(default=2.0, validator=_positive)
    max_backoff_s: float = attrs.field(default=30.0, validator=_positive)
    jitter: float = attrs.field(default=0.5, validator=_between_0_and_1)
    deadline_s: float | None = attrs.field(default=120.0, validator=_positive)

    @staticmethod
    def retryable_status(status: int) -> bool:
        """Whether an HTTP status is worth retrying."""
        return status in _RETRY_STATUSES or status >= 500

    def backoff_s(self, attempt: int, rand: float) -> float:
        """The computed wait after failed attempt number ``attempt`` (1-based).

        Args:
            attempt: the attempt that just failed.
            rand: a number in ``[0, 1)`` (the jitter draw).

        Returns:
            Seconds to wait.
        """
        base = min(self.max_backoff_s, self.initial_backoff_s * self.multiplier ** (attempt - 1))
        return base * (1.0 - self.jitter * rand)

    def next_delay_s(
        self,
        *,
        attempt: int,
        elapsed_s: float,
        retry_after_s: float | None,
        rand: float,
    ) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` to give up.

        Args:
            attempt: the attempt that just failed (1-based).
            elapsed_s: time since the first attempt started.
            retry_after_s: the provider's ``Retry-After``, if any.
            rand: a number in ``[0, 1)`` for the jitter.

        Returns:
            The wait in seconds, or ``None`` when attempts or time ran out.
        """
        if attempt >= self.max_attempts:
            return None
        delay = (
            max(0.0, retry_after_s) if retry_after_s is not None else self.backoff_s(attempt, rand)
        )
        if self.deadline_s is not None and elapsed_s + delay >= self.deadline_s:
            return None
        return delay


def parse_retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Read a wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date).

    Args:
        headers: response headers (case-insensitive mapping, e.g. ``httpx.Headers``).
        now: the current wall-clock time (seconds since the epoch), for dates.

    Returns:
        Seconds to wait (never negative), or ``None`` when absent or unreadable.
    """
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def _body_retry_delay(body: bytes) -> float | None:
    """Gemini's ``google.rpc.RetryInfo`` ``retryDelay`` (``"31s"``) from an error body."""
    try:
        data = json.loads(body.decode("utf-8", "replace"))
    except ValueError:
        return None
    if isinstance(data, list) and data:
        data = data[0]
    err = data.get("error") if isinstance(data, dict) else None
    details = err.get("details") if isinstance(err, dict) else None
    for item in details if isinstance(details, list) else ():
        delay = item.get("retryDelay") if isinstance(item, dict) else None
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return max(0.0, float(delay[:-1]))
            except ValueError:
                return None
    return None


def _request_id(headers: Mapping[str, str]) -> str | None:
    for name in ("x-request-id", "request-id", "x-goog-request-id", "apim-request-id"):
        value = headers.get(name)
        if value:
            return value
    return None


def _error_message(body: bytes) -> str:
    """The provider's own message from an error body (OpenAI, Anthropic, Gemini shapes)."""
    try:
        data = json.loads(body.decode("utf-8", "replace"))
    except ValueError:
        text = body.decode("utf-8", "replace").strip()
        return text[:500] if text else "no error message"
    if isinstance(data, list) and data and isinstance(data[0], dict):
        data = data[0]  # Gemini sometimes wraps the error in a list
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            message = err.get("message")
            kind = err.get("type") or err.get("status") or err.get("code")
            if isinstance(message, str) and message:
                return f"{kind}: {message}" if isinstance(kind, str) and kind else message
        elif isinstance(err, str) and err:
            return err
        if isinstance(data.get("message"), str):
            return str(data["message"])
    return json.dumps(data)[:500]


def error_from_response(
    provider: str, status: int, headers: Mapping[str, str], body: bytes, now: float
) -> ProviderError:
    """Build the avl error for an HTTP error response (pure).

    Args:
        provider: the provider's name, for the message.
        status: the HTTP status (>= 400).
        headers: the response headers.
        body: the response body.
        now: wall-clock seconds since the epoch (to read a ``Retry-After`` date).

    Returns:
        :class:`~avl.errors.ProviderRateLimitError` for 429 (with ``retry_after_s``),
        :class:`~avl.errors.ProviderTimeoutError` for 408 and 504, else
        :class:`~avl.errors.ProviderError`; each names the provider, the status, the
        request id and the provider's message.
    """
    message = _error_message(body)
    request_id = _request_id(headers)
    if status == 429:
        retry_after = parse_retry_after(headers, now)
        if retry_after is None:
            retry_after = _body_retry_delay(body)
        return ProviderRateLimitError(
            f"{provider} rate limit: {message}",
            retry_after_s=retry_after,
            provider=provider,
            status=status,
            request_id=request_id,
        )
    cls = ProviderTimeoutError if status in (408, 504) else ProviderError
    return cls(
        f"{provider} request failed: {message}",
        provider=provider,
        status=status,
        request_id=request_id,
    )


@attrs.frozen(kw_only=True)
class RequestSpec:
    """One HTTP request to send (pure data, built by a provider's codec).

    Attributes:
        method: ``"POST"``.
        url: the absolute URL, without the query.
        params: query parameters.
        headers: request headers.
        json: the JSON body.
    """

    method: str = "POST"
    url: str
    params: Mapping[str, str] = attrs.field(factory=dict)
    headers: Mapping[str, str] = attrs.field(factory=dict)
    json: Mapping[str, Any] = attrs.field(factory=dict)


class _Failure(Exception):
    """Internal: an attempt failed with ``error``; ``retryable`` says whether to retry."""

    def __init__(
        self, error: ProviderError, *, retryable: bool, retry_after_s: float | None = None
    ) -> None:
        super().__init__(str(error))
        self.error = error
        self.retryable = retryable
        self.retry_after_s = retry_after_s


def _transport_failure(provider: str, exc: httpx.HTTPError) -> _Failure:
    if isinstance(exc, httpx.TimeoutException):
        return _Failure(
            ProviderTimeoutError(
                f"{provider} did not answer in time ({type(exc).__name__}: {exc})",
                provider=provider,
            ),
            retryable=True,
        )
    if isinstance(exc, httpx.UnsupportedProtocol):
        return _Failure(
            ProviderError(f"{provider} URL is not http(s): {exc}", provider=provider),
            retryable=False,
        )
    if isinstance(exc, httpx.TransportError):
        return _Failure(
            ProviderError(
                f"could not reach {provider} ({type(exc).__name__}: {exc})", provider=provider
            ),
            retryable=True,
        )
    return _Failure(
        ProviderError(
            f"{provider} request failed ({type(exc).__name__}: {exc})", provider=provider
        ),
        retryable=False,
    )


def _status_failure(provider: str, response: httpx.Response, body: bytes, now: float) -> _Failure:
    error = error_from_response(provider, response.status_code, response.headers, body, now)
    retry_after = parse_retry_after(response.headers, now)
    if retry_after is None and response.status_code == 429:
        retry_after = _body_retry_delay(body)
    return _Failure(
        error,
        retryable=RetryPolicy.retryable_status(response.status_code),
        retry_after_s=retry_after,
    )


def _final_error(failure: _Failure, attempts: int) -> ProviderError:
    error = failure.error
    error.attempts = attempts  # type: ignore[attr-defined]  # extra data for callers
    return error


def _decode_json(provider: str, response: httpx.Response, body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError as exc:
        raise ProviderError(
            f"{provider} sent a response that is not JSON: {body[:200]!r}",
            provider=provider,
            status=response.status_code,
            request_id=_request_id(response.headers),
        ) from exc


def _build_request(
    client: httpx.Client | httpx.AsyncClient, spec: RequestSpec, timeout_s: float
) -> httpx.Request:
    headers = dict(spec.headers)
    inject_context(headers)  # W3C traceparent of the current (client) span, if tracing
    return client.build_request(
        spec.method,
        spec.url,
        params=dict(spec.params),
        headers=headers,
        json=dict(spec.json),
        timeout=httpx.Timeout(timeout_s),
    )


def _attempt_span(
    provider: str, spec: RequestSpec, attempt: int
) -> contextlib.AbstractContextManager[Span]:
    """A client span for one HTTP attempt (semantic-convention attributes, no query)."""
    if not tracing_enabled():
        return contextlib.nullcontext(Span())
    url = httpx.URL(spec.url)
    port = url.port or (443 if url.scheme == "https" else 80)
    return start_span(
        spec.method,
        kind=SpanKind.CLIENT,
        tracer="avl.llm",
        attributes={
            "http.request.method": spec.method,
            "server.address": url.host,
            "server.port": port,
            "url.full": str(url.copy_with(query=None, fragment=None, username=None, password=None)),
            "gen_ai.provider.name": provider,
            "http.request.resend_count": attempt - 1 if attempt > 1 else None,
        },
    )


def _failed(span: Span, failure: _Failure) -> None:
    status = failure.error.status
    cause = failure.__cause__
    span.error(
        failure.error,
        record=False,
        error_type=str(status) if status else type(cause or failure.error).__name__,
    )


class _SenderBase:
    """The I/O-free part of a sender: configuration and the retry bookkeeping."""

    def __init__(
        self,
        *,
        provider: str,
        retry: RetryPolicy,
        timeout_s: float,
        clock: Clock | None,
        rng: random.Random | None,
    ) -> None:
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or timeout_s <= 0:
            raise ConfigError(f"timeout_s must be a positive number, got {timeout_s!r}")
        self.provider = provider
        self.retry = retry
        self.timeout_s = float(timeout_s)
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.rng = rng if rng is not None else random.Random()

    def _attempt_timeout(self, start: float) -> float:
        if self.retry.deadline_s is None:
            return self.timeout_s
        remaining = self.retry.deadline_s - (self.clock.monotonic() - start)
        if remaining <= 0:
            raise ProviderTimeoutError(
                f"{self.provider} call exceeded its deadline of {self.retry.deadline_s:g} s",
                provider=self.provider,
            )
        return min(self.timeout_s, remaining)

    def _delay(self, failure: _Failure, attempt: int, start: float) -> float | None:
        if not failure.retryable:
            return None
        return self.retry.next_delay_s(
            attempt=attempt,
            elapsed_s=self.clock.monotonic() - start,
            retry_after_s=failure.retry_after_s,
            rand=self.rng.random(),
        )

    def _check_stream_deadline(self, start: float) -> None:
        if self.retry.deadline_s is not None and (
            self.clock.monotonic() - start > self.retry.deadline_s
        ):
            raise ProviderTimeoutError(
                f"{self.provider} stream exceeded its deadline of {self.retry.deadline_s:g} s",
                provider=self.provider,
            )

    def _truncated(self, response: httpx.Response, exc: BaseException | None) -> ProviderError:
        why = f" ({type(exc).__name__}: {exc})" if exc is not None else ""
        return ProviderError(
            f"{self.provider} stream was truncated: the connection ended before the "
            f"final event{why}",
            provider=self.provider,
            status=response.status_code,
            request_id=_request_id(response.headers),
        )


class SyncSender(_SenderBase):
    """Sends provider requests over an ``httpx.Client`` with retries."""

    def __init__(
        self,
        *,
        provider: str,
        client: httpx.Client,
        retry: RetryPolicy,
        timeout_s: float,
        clock: Clock | None = None,
        sleep: Callable[[float], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(provider=provider, retry=retry, timeout_s=timeout_s, clock=clock, rng=rng)
        self.client = client
        self.sleep: Callable[[float], None] = sleep if sleep is not None else time.sleep

    def _open(self, spec: RequestSpec, *, stream: bool) -> tuple[httpx.Response, bytes, float]:
        start = self.clock.monotonic()
        attempt = 0
        while True:
            attempt += 1
            with _attempt_span(self.provider, spec, attempt) as span:
                try:
                    request = _build_request(self.client, spec, self._attempt_timeout(start))
                    try:
                        response = self.client.send(request, stream=stream)
                    except httpx.HTTPError as exc:
                        raise _transport_failure(self.provider, exc) from exc
                    span.set("http.response.status_code", response.status_code)
                    try:
                        if response.status_code >= 400 or not stream:
                            body = response.read()
                            response.close()
                        else:
                            body = b""
                    except httpx.HTTPError as exc:
                        response.close()
                        raise _transport_failure(self.provider, exc) from exc
                    if response.status_code >= 400:
                        raise _status_failure(self.provider, response, body, self.clock.now())
                    return response, body, start
                except _Failure as failure:
                    _failed(span, failure)
                    error = failure
            delay = self._delay(error, attempt, start)
            if delay is None:
                raise _final_error(error, attempt) from error.__cause__
            self.sleep(delay)

    def send_json(self, spec: RequestSpec) -> tuple[Any, httpx.Headers]:
        """Send ``spec`` (retrying) and return the decoded JSON body and headers.

        Raises:
            ProviderError: the provider failed (after retries), or sent bad JSON.
            ProviderRateLimitError: 429 and no retry left.
            ProviderTimeoutError: timeouts or the deadline.
        """
        response, body, _ = self._open(spec, stream=False)
        return _decode_json(self.provider, response, body), response.headers

    def stream_lines(self, spec: RequestSpec) -> Generator[str | httpx.Headers, None, None]:
        """Open a streamed request (retrying until it starts) and yield its lines.

        The first item is the response headers; then each line without its
        terminator.

        Raises:
            ProviderError: the provider failed, or the connection broke mid-stream.
        """
        response, _, start = self._open(spec, stream=True)
        try:
            yield response.headers
            try:
                for line in response.iter_lines():
                    self._check_stream_deadline(start)
                    yield line
            except httpx.HTTPError as exc:
                raise self._truncated(response, exc) from exc
        finally:
            with contextlib.suppress(httpx.HTTPError):
                response.close()

    def truncated(self, headers: httpx.Headers) -> ProviderError:
        """The error for a stream that ended before its final event."""
        return self._truncated(httpx.Response(200, headers=headers), None)


class AsyncSender(_SenderBase):
    """The asyncio twin of :class:`SyncSender` over an ``httpx.AsyncClient``."""

    def __init__(
        self,
        *,
        provider: str,
        client: httpx.AsyncClient,
        retry: RetryPolicy,
        timeout_s: float,
        clock: Clock | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(provider=provider, retry=retry, timeout_s=timeout_s, clock=clock, rng=rng)
        self.client = client
        self.sleep: Callable[[float], Awaitable[None]] = (
            sleep if sleep is not None else asyncio.sleep
        )

    async def _open(
        self, spec: RequestSpec, *, stream: bool
    ) -> tuple[httpx.Response, bytes, float]:
        start = self.clock.monotonic()
        attempt = 0
        while True:
            attempt += 1
            with _attempt_span(self.provider, spec, attempt) as span:
                try:
                    request = _build_request(self.client, spec, self._attempt_timeout(start))
                    try:
                        response = await self.client.send(request, stream=stream)
                    except httpx.HTTPError as exc:
                        raise _transport_failure(self.provider, exc) from exc
                    span.set("http.response.status_code", response.status_code)
                    try:
                        if response.status_code >= 400 or not stream:
                            body = await response.aread()
                            await response.aclose()
                        else:
                            body = b""
                    except httpx.HTTPError as exc:
                        await response.aclose()
                        raise _transport_failure(self.provider, exc) from exc
                    if response.status_code >= 400:
                        raise _status_failure(self.provider, response, body, self.clock.now())
                    return response, body, start
                except _Failure as failure:
                    _failed(span, failure)
                    error = failure
            delay = self._delay(error, attempt, start)
            if delay is None:
                raise _final_error(error, attempt) from error.__cause__
            await self.sleep(delay)

    async def send_json(self, spec: RequestSpec) -> tuple[Any, httpx.Headers]:
        """Async twin of :meth:`SyncSender.send_json`."""
        response, body, _ = await self._open(spec, stream=False)
        return _decode_json(self.provider, response, body), response.headers

    async def stream_lines(self, spec: RequestSpec) -> AsyncGenerator[str | httpx.Headers, None]:
        """Async twin of :meth:`SyncSender.stream_lines`."""
        response, _, start = await self._open(spec, stream=True)
        try:
            yield response.headers
            try:
                async for line in response.aiter_lines():
                    self._check_stream_deadline(start)
                    yield line
            except httpx.HTTPError as exc:
                raise self._truncated(response, exc) from exc
        finally:
            with contextlib.suppress(httpx.HTTPError):
                await response.aclose()

    def truncated(self, headers: httpx.Headers) -> ProviderError:
        """The error for a stream that ended before its final event."""
        return self._truncated(httpx.Response(200, headers=headers), None)
