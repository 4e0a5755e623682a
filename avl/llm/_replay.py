"""Replay recorded HTTP responses through ``httpx.MockTransport`` (for tests).

A recording is a raw HTTP response as it came over the wire: the status line, the
headers, a blank line and the body, exactly (a JSON document, or a
``text/event-stream`` with its blank lines)::

    HTTP/1.1 429 Too Many Requests
    content-type: application/json
    retry-after: 2

    {"error": {"message": "Rate limit reached", "type": "requests"}}

Re-exported by :mod:`avl.testing`.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from os import PathLike
from pathlib import Path

import attrs
import httpx

__all__ = ["RecordedTransport", "Recording", "load_recording", "recorded_transport"]

_DROPPED_HEADERS = frozenset({"content-length", "transfer-encoding", "content-encoding"})


@attrs.frozen(kw_only=True)
class Recording:
    """One expected request and the response to replay for it.

    Attributes:
        method: the expected HTTP method.
        path: the expected URL path (``"/v1/chat/completions"``).
        params: expected query parameters (each must be present with this value).
        status: the response status.
        headers: the response headers.
        body: the response body, byte for byte.
        error: raise this (an ``httpx`` transport error such as
            ``httpx.ConnectTimeout``) instead of answering.
        cut_after: send only this many body bytes, then fail the connection with
            ``httpx.RemoteProtocolError`` (a stream cut mid-way).
    """

    method: str = "POST"
    path: str
    params: Mapping[str, str] = attrs.field(factory=dict)
    status: int = 200
    headers: Mapping[str, str] = attrs.field(factory=dict)
    body: bytes = b""
    error: Exception | None = None
    cut_after: int | None = None


def load_recording(
    file: str | PathLike[str],
    *,
    path: str,
    method: str = "POST",
    params: Mapping[str, str] | None = None,
    cut_after: int | None = None,
) -> Recording:
    """Read a raw HTTP response file into a :class:`Recording`.

    Args:
        file: the file (status line, headers, blank line, body).
        path: the URL path the request must have.
        method: the method the request must have.
        params: query parameters the request must have.
        cut_after: see :attr:`Recording.cut_after`.

    Returns:
        The recording.

    Raises:
        ValueError: the file is not a raw HTTP response.
    """
    data = Path(file).read_bytes()
    for separator in (b"\r\n\r\n", b"\n\n"):
        head, found, body = data.partition(separator)
        if found:
            break
    else:
        raise ValueError(f"{file}: no blank line between the headers and the body")
    lines = head.decode("latin-1").splitlines()
    status_line = lines[0].split(maxsplit=2)
    if len(status_line) < 2 or not status_line[0].startswith("HTTP/"):
        raise ValueError(f"{file}: the first line is not an HTTP status line: {lines[0]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"{file}: bad header line {line!r}")
        if name.strip().lower() not in _DROPPED_HEADERS:
            headers[name.strip().lower()] = value.strip()
    return Recording(
        method=method,
        path=path,
        params=dict(params or {}),
        status=int(status_line[1]),
        headers=headers,
        body=body,
        cut_after=cut_after,
    )


class _CutStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body that stops after ``size`` bytes with a broken connection."""

    def __init__(self, body: bytes, size: int) -> None:
        self._body = body[:size]

    def _chunks(self) -> Iterator[bytes]:
        for start in range(0, len(self._body), 16):
            yield self._body[start : start + 16]

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks()
        raise httpx.RemoteProtocolError("peer closed connection without sending complete body")

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks():
            yield chunk
        raise httpx.RemoteProtocolError("peer closed connection without sending complete body")


class RecordedTransport(httpx.MockTransport):
    """An ``httpx.MockTransport`` that answers requests with recordings, in order.

    Works with ``httpx.Client`` and ``httpx.AsyncClient``. A request whose method,
    path or parameters differ from the next recording, or one more than recorded,
    raises ``AssertionError`` (not an ``httpx`` error, so it is not retried or
    translated). Every request is kept in :attr:`requests`.
    """

    def __init__(self, recordings: list[Recording]) -> None:
        self._recordings = list(recordings)
        self._lock = threading.Lock()
        self.requests: list[httpx.Request] = []
        handler: Callable[[httpx.Request], httpx.Response] = self._answer
        super().__init__(handler)

    @property
    def remaining(self) -> int:
        """How many recordings have not been replayed yet."""
        return len(self._recordings) - len(self.requests)

    def assert_all_used(self) -> None:
        """Raise ``AssertionError`` if some recordings were not replayed."""
        if self.remaining:
            raise AssertionError(
                f"{self.remaining} recorded response(s) were not requested "
                f"(got {len(self.requests)} request(s))"
            )

    def _answer(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            index = len(self.requests)
            self.requests.append(request)
        if index >= len(self._recordings):
            raise AssertionError(
                f"unexpected request #{index + 1}: {request.method} {request.url} "
                f"(only {len(self._recordings)} recorded)"
            )
        recording = self._recordings[index]
        if request.method != recording.method or request.url.path != recording.path:
            raise AssertionError(
                f"request #{index + 1} was {request.method} {request.url.path}, "
                f"expected {recording.method} {recording.path}"
            )
        for name, value in recording.params.items():
            got = request.url.params.get(name)
            if got != value:
                raise AssertionError(
                    f"request #{index + 1}: query parameter {name}={got!r}, expected {value!r}"
                )
        if recording.error is not None:
            raise recording.error
        if recording.cut_after is not None:
            return httpx.Response(
                recording.status,
                headers=dict(recording.headers),
                stream=_CutStream(recording.body, recording.cut_after),
            )
        return httpx.Response(
            recording.status, headers=dict(recording.headers), content=recording.body
        )


def recorded_transport(
    *recordings: Recording | tuple[str, str, str | PathLike[str]],
    base_dir: str | PathLike[str] | None = None,
) -> RecordedTransport:
    """Build a transport that replays recorded responses in order.

    Args:
        *recordings: :class:`Recording` values, or ``(method, path, file)`` tuples
            naming raw HTTP response files (see :func:`load_recording`).
        base_dir: where relative file names are read from.

    Returns:
        The transport; pass it as ``transport=`` (or to an ``httpx`` client) and
        inspect :attr:`RecordedTransport.requests` afterwards.

    Raises:
        ValueError: a file is not a raw HTTP response.

    Example:
        >>> import httpx
        >>> t = recorded_transport(Recording(method="GET", path="/ping", body=b"pong"))
        >>> httpx.Client(transport=t).get("http://x/ping").text
        'pong'
        >>> t.requests[0].url.path
        '/ping'
    """
    loaded: list[Recording] = []
    for item in recordings:
        if isinstance(item, Recording):
            loaded.append(item)
            continue
        method, path, file = item
        location = Path(file)
        if base_dir is not None and not location.is_absolute():
            location = Path(base_dir) / location
        loaded.append(load_recording(location, path=path, method=method))
    return RecordedTransport(loaded)
