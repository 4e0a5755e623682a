"""OpenAI-compatible ``/embeddings`` clients over httpx (sync and async twins).

The request/response logic is shared and I/O-free (:class:`_OpenAIProtocol`); the
twins add only the HTTP calls, the concurrency and the sleeps between retries.

Batching: each request carries as many texts as the API allows, up to
``batch_size`` inputs (OpenAI: 2,048) and ``max_batch_tokens`` tokens summed over
its inputs (OpenAI: 300,000). Tokens are bounded by UTF-8 bytes (a byte-level BPE
token is at least one byte), so a request never exceeds the token limit whatever
the tokenizer. Up to ``max_concurrency`` requests are in flight at once (threads
for the sync client, tasks for the async one); the vectors come back in input
order whatever order the requests finish in.

Retries cover 429, 408 and 5xx answers and transport errors, honour
``Retry-After`` / ``retry-after-ms``, and back off exponentially otherwise; the
sleep function is injected so tests never sleep.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import math
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from types import TracebackType
from typing import Any

import httpx
import numpy as np

from avl._args import describe
from avl.embeddings._base import FloatMatrix
from avl.embeddings._hashing import _check_texts
from avl.embeddings._progress import ProgressCallback
from avl.errors import (
    ConfigError,
    ProviderError,
    ProviderRateLimitError,
    ProviderTimeoutError,
)

__all__ = ["KNOWN_DIMS", "AsyncOpenAIEmbedder", "OpenAIEmbedder"]

KNOWN_DIMS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
_RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
_MAX_DELAY_S = 60.0
_MAX_INPUTS = 2048  # OpenAI's limit on inputs per request
_MAX_TOKENS = 300_000  # OpenAI's limit on tokens summed over one request's inputs
_FORMATS = ("float", "base64")


class _Retry(Exception):
    """Internal: this attempt failed in a retryable way."""

    def __init__(self, error: ProviderError, delay_s: float | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.delay_s = delay_s


class _OpenAIProtocol:
    """The I/O-free part: settings, request bodies, response parsing, retry policy."""

    provider = "openai"

    def __init__(
        self,
        model: str,
        *,
        base_url: str,
        api_key: str | None,
        dim: int | None,
        dimensions: int | None,
        batch_size: int,
        max_batch_tokens: int,
        max_concurrency: int,
        encoding_format: str,
        max_retries: int,
        backoff_s: float,
        timeout_s: float,
        progress: ProgressCallback | None,
    ) -> None:
        if not model:
            raise ConfigError("model must be a non-empty string")
        if batch_size <= 0 or batch_size > _MAX_INPUTS:
            raise ConfigError(f"batch_size must be in 1..{_MAX_INPUTS}, got {batch_size}")
        if max_batch_tokens <= 0:
            raise ConfigError(f"max_batch_tokens must be positive, got {max_batch_tokens}")
        if max_concurrency <= 0:
            raise ConfigError(f"max_concurrency must be positive, got {max_concurrency}")
        if encoding_format not in _FORMATS:
            raise ConfigError(
                f"encoding_format must be one of {', '.join(_FORMATS)}, got {encoding_format!r}"
            )
        if max_retries < 0:
            raise ConfigError(f"max_retries must be >= 0, got {max_retries}")
        for name, given in (("dim", dim), ("dimensions", dimensions)):
            if given is not None and (
                isinstance(given, bool) or not isinstance(given, int) or given <= 0
            ):
                raise ConfigError(f"{name} must be a positive int, got {describe(given)}")
        resolved = dimensions or dim or KNOWN_DIMS.get(model)
        if resolved is None:  # (a given dim/dimensions was checked positive above)
            raise ConfigError(
                f"unknown dimension for model {model!r}: pass dim= (known models: "
                f"{', '.join(sorted(KNOWN_DIMS))})"
            )
        if dim and dimensions and dim != dimensions:
            raise ConfigError(f"dim={dim} contradicts dimensions={dimensions}")
        self._model = model
        self._url = base_url.rstrip("/") + "/embeddings"
        self._api_key = api_key
        self._dim = int(resolved)
        self._dimensions = dimensions
        self._batch_size = batch_size
        self._max_batch_tokens = max_batch_tokens
        self._max_concurrency = max_concurrency
        self._encoding_format = encoding_format
        self._max_retries = max_retries
        self._backoff_s = backoff_s
        self._timeout_s = timeout_s
        self._progress = progress

    @property
    def name(self) -> str:
        """``openai:<model>[:<dimensions>]@<url>``: identifies the vectors (cache keys)."""
        suffix = f":{self._dimensions}" if self._dimensions else ""
        return f"openai:{self._model}{suffix}@{self._url}"

    @property
    def dim(self) -> int:
        """The vector dimension."""
        return self._dim

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def _body(self, batch: Sequence[str]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self._model,
            "input": list(batch),
            "encoding_format": self._encoding_format,
        }
        if self._dimensions:
            body["dimensions"] = self._dimensions
        return body

    def _batches(self, texts: Sequence[str]) -> list[Sequence[str]]:
        """Consecutive slices of ``texts``, each within the input and token limits
        (a text longer than the token limit alone goes in a batch of its own, and
        the server's answer decides)."""
        size, limit = self._batch_size, self._max_batch_tokens
        out: list[Sequence[str]] = []
        start = 0
        n = len(texts)
        while start < n:
            end = start
            tokens = 0
            stop = min(n, start + size)
            while end < stop:
                # UTF-8 bytes bound the tokens; len() is a cheaper bound for ASCII
                text = texts[end]
                cost = len(text) if text.isascii() else len(text.encode("utf-8"))
                if end > start and tokens + cost > limit:
                    break
                tokens += cost
                end += 1
            out.append(texts[start:end])
            start = end
        return out

    def _delay(self, attempt: int, hinted: float | None) -> float:
        if hinted is not None:
            return min(max(hinted, 0.0), _MAX_DELAY_S)
        return float(min(self._backoff_s * 2.0**attempt, _MAX_DELAY_S))

    @staticmethod
    def _retry_after(response: httpx.Response) -> float | None:
        ms = response.headers.get("retry-after-ms")
        if ms is not None:
            try:
                return float(ms) / 1000.0
            except ValueError:
                pass
        value = response.headers.get("retry-after")
        if value is not None:
            try:
                seconds = float(value)
            except ValueError:
                return None
            return seconds if math.isfinite(seconds) else None
        return None

    def _error_message(self, response: httpx.Response) -> str:
        try:
            payload = response.json()
            message = payload["error"]["message"]
            if isinstance(message, str):
                return message
        except (ValueError, KeyError, TypeError):
            pass
        return response.text[:200] or response.reason_phrase

    def _check(self, response: httpx.Response, batch: Sequence[str]) -> FloatMatrix:
        """Turn a response into vectors, or raise ``_Retry``/``ProviderError``."""
        rid = response.headers.get("x-request-id")
        status = response.status_code
        if status != 200:
            message = self._error_message(response)
            if status == 429:
                err: ProviderError = ProviderRateLimitError(
                    f"rate limited: {message}",
                    retry_after_s=self._retry_after(response),
                    provider=self.provider,
                    status=status,
                    request_id=rid,
                )
            else:
                err = ProviderError(
                    f"embeddings request failed: {message}",
                    provider=self.provider,
                    status=status,
                    request_id=rid,
                )
            if status in _RETRY_STATUS:
                raise _Retry(err, self._retry_after(response))
            raise err
        try:
            payload = response.json()
            data = payload["data"]
            if any(int(d["index"]) != i for i, d in enumerate(data)):
                data = sorted(data, key=lambda d: int(d["index"]))
            rows = [d["embedding"] for d in data]
            if rows and isinstance(rows[0], str):
                vectors = self._from_base64(rows)
            else:
                vectors = np.asarray(rows, dtype=np.float32)
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise ProviderError(
                f"malformed embeddings response: {exc}",
                provider=self.provider,
                status=status,
                request_id=rid,
            ) from exc
        if vectors.shape != (len(batch), self._dim) or not np.isfinite(vectors).all():
            raise ProviderError(
                f"embeddings response has shape {vectors.shape}, expected ({len(batch)}, {self._dim})",
                provider=self.provider,
                status=status,
                request_id=rid,
            )
        return vectors

    def _from_base64(self, rows: list[Any]) -> FloatMatrix:
        """Decode ``encoding_format="base64"`` rows (little-endian float32 each)."""
        width = 4 * self._dim
        raw = [base64.b64decode(r, validate=True) for r in rows]
        bad = [len(r) for r in raw if len(r) != width]
        if bad:
            raise ValueError(f"a base64 embedding holds {bad[0]} bytes, expected {width}")
        return np.frombuffer(b"".join(raw), dtype="<f4").astype(np.float32).reshape(len(raw), -1)

    def _transport_error(self, exc: httpx.HTTPError) -> _Retry:
        if isinstance(exc, httpx.TimeoutException):
            return _Retry(
                ProviderTimeoutError(
                    f"embeddings request timed out: {exc}", provider=self.provider
                ),
                None,
            )
        return _Retry(
            ProviderError(f"embeddings request failed: {exc}", provider=self.provider), None
        )

    def _report(self, done: int, total: int) -> None:
        if self._progress is not None:
            self._progress(done, total)

    def _finish(self, parts: Sequence[FloatMatrix | None]) -> FloatMatrix:
        ready = [p for p in parts if p is not None]
        if len(ready) != len(parts):  # pragma: no cover - every part is set or raised
            raise ProviderError("an embeddings request was lost", provider=self.provider)
        if not ready:
            return np.empty((0, self._dim), dtype=np.float32)
        if len(ready) == 1:
            return np.ascontiguousarray(ready[0], dtype=np.float32)
        return np.ascontiguousarray(np.concatenate(ready), dtype=np.float32)


class OpenAIEmbedder(_OpenAIProtocol):
    """Embeddings from any OpenAI-compatible ``/v1/embeddings`` endpoint.

    Texts are sent in as few requests as the API allows (at most ``batch_size``
    inputs and ``max_batch_tokens`` tokens each), ``max_concurrency`` of them in
    flight at once on worker threads (``httpx.Client`` is thread-safe). Each request
    is retried up to ``max_retries`` times on 408/409/429/5xx and transport errors,
    waiting for the server's ``Retry-After`` (or ``retry-after-ms``) when given, else
    ``backoff_s * 2**attempt`` (capped at 60 s). When a request finally fails, the
    requests not yet sent are dropped and its error is raised.

    Args:
        model: the model name.
        base_url: the API root, e.g. ``"https://api.openai.com/v1"`` or a local server.
        api_key: sent as ``Authorization: Bearer ...`` (``None``: no header).
        dim: the vector dimension (needed for models not in :data:`KNOWN_DIMS`).
        dimensions: ask the server for shorter vectors (``text-embedding-3-*``).
        http_client: an ``httpx.Client`` to use (not closed by :meth:`close`);
            by default one is created.
        batch_size: most texts per request (1..2048; OpenAI allows 2,048).
        max_batch_tokens: most tokens per request, summed over its texts and
            bounded by their UTF-8 bytes (OpenAI allows 300,000).
        max_concurrency: requests in flight at once (1: one after another).
        encoding_format: ``"float"`` (JSON numbers, understood by every
            compatible server) or ``"base64"`` (little-endian float32, about a
            fifth of the bytes and much cheaper to parse; OpenAI's own client uses it).
        max_retries: retries per request.
        backoff_s: the first backoff delay.
        timeout_s: the request timeout of the default client.
        sleep: how to wait between retries (inject a fake in tests).
        progress: optional ``callback(done, total)`` after each request, in the
            calling thread (``done`` counts the texts embedded so far).

    Raises:
        ConfigError: unknown dimension or bad settings.

    Example:
        >>> import httpx
        >>> def handler(request: httpx.Request) -> httpx.Response:
        ...     return httpx.Response(200, json={"object": "list", "data": [
        ...         {"object": "embedding", "index": 0, "embedding": [0.6, 0.8]}],
        ...         "model": "m", "usage": {"prompt_tokens": 1, "total_tokens": 1}})
        >>> emb = OpenAIEmbedder("m", dim=2, http_client=httpx.Client(transport=httpx.MockTransport(handler)))
        >>> emb.embed(["hi"]).tolist()
        [[0.6000000238418579, 0.800000011920929]]
    """

    def __init__(
        self,
        model: str = "text-embedding-3-small",
        *,
        base_url: str = "https://api.openai.com/v1",
        api_key: str | None = None,
        dim: int | None = None,
        dimensions: int | None = None,
        http_client: httpx.Client | None = None,
        batch_size: int = _MAX_INPUTS,
        max_batch_tokens: int = _MAX_TOKENS,
        max_concurrency: int = 4,
        encoding_format: str = "float",
        max_retries: int = 4,
        backoff_s: float = 0.5,
        timeout_s: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        progress: ProgressCallback | None = None,
    ) -> None:
        super().__init__(
            model,
            base_url=base_url,
            api_key=api_key,
            dim=dim,
            dimensions=dimensions,
            batch_size=batch_size,
            max_batch_tokens=max_batch_tokens,
            max_concurrency=max_concurrency,
            encoding_format=encoding_format,
            max_retries=max_retries,
            backoff_s=backoff_s,
            timeout_s=timeout_s,
            progress=progress,
        )
        self._owns_client = http_client is None
        self._client = http_client if http_client is not None else httpx.Client(timeout=timeout_s)
        self._sleep = sleep

    def embed(self, texts: Sequence[str]) -> FloatMatrix:
        """Embed ``texts``.

        Args:
            texts: the texts.

        Returns:
            float32 ``(len(texts), dim)`` in input order.

        Raises:
            InvalidInputError: ``texts`` is a string or holds a non-string.
            ProviderRateLimitError: still 429 after the retries.
            ProviderTimeoutError: still timing out after the retries.
            ProviderError: any other failure (status and request id attached).
        """
        items = _check_texts(texts)
        batches = self._batches(items)
        parts: list[FloatMatrix | None] = [None] * len(batches)
        workers = min(self._max_concurrency, len(batches))
        if workers <= 1:
            done = 0
            for j, batch in enumerate(batches):
                parts[j] = self._one_batch(batch)
                done += len(batch)
                self._report(done, len(items))
            return self._finish(parts)
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="avl-embed")
        stop = threading.Event()  # set on failure: running requests stop retrying
        try:
            pending: dict[Future[FloatMatrix], int] = {}
            queue = iter(enumerate(batches))
            for j, batch in queue:
                pending[pool.submit(self._one_batch, batch, stop)] = j
                if len(pending) >= workers:
                    break
            done = 0
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    j = pending.pop(future)
                    parts[j] = future.result()  # raises the request's error
                    done += len(batches[j])
                    self._report(done, len(items))
                    nxt = next(queue, None)
                    if nxt is not None:
                        pending[pool.submit(self._one_batch, nxt[1], stop)] = nxt[0]
        finally:
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
        return self._finish(parts)

    def _one_batch(self, batch: Sequence[str], stop: threading.Event | None = None) -> FloatMatrix:
        attempt = 0
        while True:
            try:
                try:
                    response = self._client.post(
                        self._url, json=self._body(batch), headers=self._headers()
                    )
                except httpx.HTTPError as exc:
                    raise self._transport_error(exc) from exc
                return self._check(response, batch)
            except _Retry as retry:
                if attempt >= self._max_retries or (stop is not None and stop.is_set()):
                    raise retry.error from retry.__cause__
                self._sleep(self._delay(attempt, retry.delay_s))
                attempt += 1

    def close(self) -> None:
        """Close the HTTP client if this embedder created it."""
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> OpenAIEmbedder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncOpenAIEmbedder(_OpenAIProtocol):
    """The asyncio twin of :class:`OpenAIEmbedder` (same arguments and errors).

    Args:
        model: the model name.
        base_url: the API root.
        api_key: the bearer token (``None``: no header).
        dim: the vector dimension (for unknown models).
        dimensions: ask for shorter vectors.
        http_client: an ``httpx.AsyncClient`` (not closed by :meth:`aclose`).
        batch_size: most texts per request.
        max_batch_tokens: most tokens per request.
        max_concurrency: requests in flight at once (tasks on the event loop).
        encoding_format: ``"float"`` or ``"base64"``.
        max_retries: retries per request.
        backoff_s: the first backoff delay.
        timeout_s: the request timeout of the default client.
        sleep: an async sleep (inject a fake in tests).
        progress: optional ``callback(done, total)`` after each request, in the
            calling thread (``done`` counts the texts embedded so far).

    Raises:
        ConfigError: unknown dimension or bad settings.
    """

    def __init__(
        self,
        model: str = "text-embedding-3-small",
        *,
        base_url: str = "https://api.openai.com/v1",
        api_key: str | None = None,
        dim: int | None = None,
        dimensions: int | None = None,
        http_client: httpx.AsyncClient | None = None,
        batch_size: int = _MAX_INPUTS,
        max_batch_tokens: int = _MAX_TOKENS,
        max_concurrency: int = 4,
        encoding_format: str = "float",
        max_retries: int = 4,
        backoff_s: float = 0.5,
        timeout_s: float = 60.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        progress: ProgressCallback | None = None,
    ) -> None:
        super().__init__(
            model,
            base_url=base_url,
            api_key=api_key,
            dim=dim,
            dimensions=dimensions,
            batch_size=batch_size,
            max_batch_tokens=max_batch_tokens,
            max_concurrency=max_concurrency,
            encoding_format=encoding_format,
            max_retries=max_retries,
            backoff_s=backoff_s,
            timeout_s=timeout_s,
            progress=progress,
        )
        self._owns_client = http_client is None
        self._client = (
            http_client if http_client is not None else httpx.AsyncClient(timeout=timeout_s)
        )
        self._sleep = sleep

    async def embed(self, texts: Sequence[str]) -> FloatMatrix:
        """Embed ``texts`` (see :meth:`OpenAIEmbedder.embed`).

        Args:
            texts: the texts.

        Returns:
            float32 ``(len(texts), dim)`` in input order.

        Raises:
            InvalidInputError: ``texts`` is a string or holds a non-string.
            ProviderRateLimitError: still 429 after the retries.
            ProviderTimeoutError: still timing out after the retries.
            ProviderError: any other failure.
        """
        items = _check_texts(texts)
        batches = self._batches(items)
        parts: list[FloatMatrix | None] = [None] * len(batches)
        queue = iter(enumerate(batches))
        pending: dict[asyncio.Task[FloatMatrix], int] = {}

        def submit() -> None:
            nxt = next(queue, None)
            if nxt is not None:
                pending[asyncio.ensure_future(self._one_batch(nxt[1]))] = nxt[0]

        for _ in range(min(self._max_concurrency, len(batches))):
            submit()
        done = 0
        try:
            while pending:
                finished, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in finished:
                    j = pending.pop(task)
                    parts[j] = task.result()  # raises the request's error
                    done += len(batches[j])
                    self._report(done, len(items))
                    submit()
        finally:
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        return self._finish(parts)

    async def _one_batch(self, batch: Sequence[str]) -> FloatMatrix:
        attempt = 0
        while True:
            try:
                try:
                    response = await self._client.post(
                        self._url, json=self._body(batch), headers=self._headers()
                    )
                except httpx.HTTPError as exc:
                    raise self._transport_error(exc) from exc
                return self._check(response, batch)
            except _Retry as retry:
                if attempt >= self._max_retries:
                    raise retry.error from retry.__cause__
                await self._sleep(self._delay(attempt, retry.delay_s))
                attempt += 1

    async def aclose(self) -> None:
        """Close the HTTP client if this embedder created it."""
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> AsyncOpenAIEmbedder:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
