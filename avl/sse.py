"""Server-Sent Events (WHATWG HTML, "Server-sent events"), pure: no I/O.

Encoding:

- :func:`encode` turns one event into the bytes of the ``text/event-stream`` format.
  Multi-line data becomes several ``data:`` lines (``\\r\\n``, ``\\r`` and ``\\n`` all
  split lines); ``event`` and ``id`` may not contain a line break (and ``id`` no NUL).
- :func:`comment` makes a comment line, used as a heartbeat that keeps proxies from
  closing an idle stream; parsers ignore it.

Parsing follows the spec's "interpreting an event stream" algorithm:

- :class:`SSEParser` is incremental: :meth:`SSEParser.feed` takes chunks of ``str`` or
  UTF-8 ``bytes`` split anywhere (even inside a ``\\r\\n`` or a multi-byte character)
  and returns the events completed so far. A leading BOM is dropped; lines end at
  ``\\r\\n``, ``\\r`` or ``\\n``; a line without a colon is a field with an empty
  value; one space after the colon is removed; ``retry`` is kept only when it is all
  ASCII digits; an ``id`` containing NUL is ignored; an event is dispatched at a blank
  line (and only if it has data); an unterminated event at the end is discarded.
- :func:`parse` and :func:`aparse` wrap it for (async) iterables of chunks.

Example:
    >>> from avl.sse import encode, parse
    >>> raw = encode("line one\\nline two", event="note", id="7")
    >>> raw
    b'event: note\\nid: 7\\ndata: line one\\ndata: line two\\n\\n'
    >>> [(e.event, e.data, e.id) for e in parse([raw])]
    [('note', 'line one\\nline two', '7')]
"""

from __future__ import annotations

import codecs
import re
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator

import attrs

from avl.errors import InvalidInputError

__all__ = ["Event", "SSEParser", "aparse", "comment", "encode", "parse"]

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_BOM = "\ufeff"


@attrs.frozen(kw_only=True)
class Event:
    """One dispatched server-sent event.

    Attributes:
        data: the data, with the lines of several ``data:`` fields joined by ``\\n``.
        event: the event type; ``"message"`` when the stream named none.
        id: the last event id at dispatch time (it carries over from earlier events,
            as the spec says), or ``None`` if the stream never set one.
        retry: the reconnection time in milliseconds given in this event's block,
            if any.
    """

    data: str = ""
    event: str = "message"
    id: str | None = None
    retry: int | None = None

    def encode(self) -> bytes:
        """This event in the wire format (see :func:`encode`).

        Returns:
            UTF-8 bytes ending with a blank line.

        Raises:
            avl.errors.InvalidInputError: a field cannot be encoded.
        """
        return encode(
            self.data,
            event=None if self.event == "message" else self.event,
            id=self.id,
            retry=self.retry,
        )


def _check_single_line(name: str, value: str) -> None:
    if "\r" in value or "\n" in value:
        raise InvalidInputError(f"SSE {name} must not contain a line break, got {value!r}")


def encode(
    data: str,
    *,
    event: str | None = None,
    id: str | None = None,
    retry: int | None = None,
) -> bytes:
    """Encode one event as ``text/event-stream`` bytes.

    Args:
        data: the payload; every line (split at ``\\r\\n``, ``\\r`` or ``\\n``)
            becomes one ``data:`` line, so a parser gets the lines back joined by
            ``\\n``. An empty string is sent as one empty ``data:`` line (the event
            is still dispatched).
        event: the event type; ``None`` means the default, ``"message"``.
        id: the event id, which a reconnecting client sends back in
            ``Last-Event-ID``; no line break and no NUL.
        retry: the reconnection time in milliseconds (a non-negative integer).

    Returns:
        UTF-8 bytes, ending with the blank line that dispatches the event.

    Raises:
        avl.errors.InvalidInputError: ``event`` or ``id`` contains a line break,
            ``id`` contains NUL, ``retry`` is negative or not an integer, or
            ``data`` is not a string.

    Example:
        >>> encode("hi", retry=1500)
        b'retry: 1500\\ndata: hi\\n\\n'
    """
    if not isinstance(data, str):
        raise InvalidInputError(f"SSE data must be a str, got {type(data).__name__}")
    parts: list[str] = []
    if event is not None:
        _check_single_line("event", event)
        parts.append(f"event: {event}\n")
    if id is not None:
        _check_single_line("id", id)
        if "\0" in id:
            raise InvalidInputError(f"SSE id must not contain NUL, got {id!r}")
        parts.append(f"id: {id}\n")
    if retry is not None:
        if isinstance(retry, bool) or not isinstance(retry, int) or retry < 0:
            raise InvalidInputError(f"SSE retry must be a non-negative int, got {retry!r}")
        parts.append(f"retry: {retry}\n")
    for line in _LINE_BREAK.split(data):
        parts.append(f"data: {line}\n")
    parts.append("\n")
    return "".join(parts).encode("utf-8")


def comment(text: str = "") -> bytes:
    """A comment block, ignored by parsers; used as a heartbeat.

    Args:
        text: the comment; each of its lines gets its own ``:`` line.

    Returns:
        UTF-8 bytes such as ``b": ping\\n\\n"``.

    Example:
        >>> comment("ping")
        b': ping\\n\\n'
    """
    lines = _LINE_BREAK.split(text)
    return ("".join(f": {line}\n" if line else ":\n" for line in lines) + "\n").encode("utf-8")


class SSEParser:
    """Incremental ``text/event-stream`` parser (the WHATWG algorithm).

    Feed it chunks as they arrive; it returns the events they complete. State kept
    between chunks: a partial line, a pending ``\\r`` (so ``\\r\\n`` split over two
    chunks is one line break), partial UTF-8 characters, and the spec's buffers.

    Attributes:
        last_event_id: the last event id buffer (what a client sends back in
            ``Last-Event-ID`` when it reconnects).
        retry: the latest valid ``retry`` value in milliseconds, or ``None``.

    Example:
        >>> p = SSEParser()
        >>> p.feed(b"data: a\\r")
        []
        >>> [e.data for e in p.feed(b"\\n\\r\\n")]
        ['a']
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._started = False
        self._partial = ""
        self._pending_cr = False
        self._data: list[str] = []
        self._event_type = ""
        self._block_retry: int | None = None
        self._id_set = False
        self.last_event_id: str | None = None
        self.retry: int | None = None

    def feed(self, chunk: str | bytes) -> list[Event]:
        """Consume a chunk and return the events it completes.

        Args:
            chunk: text, or UTF-8 bytes (split anywhere).

        Returns:
            The events dispatched by this chunk, in order (often empty).

        Raises:
            avl.errors.InvalidInputError: ``chunk`` is neither ``str`` nor ``bytes``.
        """
        if isinstance(chunk, (bytes, bytearray, memoryview)):
            text = self._decoder.decode(bytes(chunk))
        elif isinstance(chunk, str):
            text = chunk
        else:
            raise InvalidInputError(f"SSE chunks must be str or bytes, got {type(chunk).__name__}")
        if not text:
            return []
        if not self._started:
            self._started = True
            if text.startswith(_BOM):
                text = text[1:]
        if self._pending_cr:
            self._pending_cr = False
            if text.startswith("\n"):
                text = text[1:]
        events: list[Event] = []
        buffer = self._partial + text
        start = 0
        for match in _LINE_BREAK.finditer(buffer):
            if match.group() == "\r" and match.end() == len(buffer):
                # A CR at the very end may be the first half of a CRLF.
                self._pending_cr = True
            event = self._line(buffer[start : match.start()])
            if event is not None:
                events.append(event)
            start = match.end()
        self._partial = buffer[start:]
        return events

    def close(self) -> list[Event]:
        """End of stream: flush the decoder; an unterminated event is discarded.

        Returns:
            Always an empty list (kept for symmetry with :meth:`feed`).
        """
        self._decoder.decode(b"", final=True)
        self._partial = ""
        self._data = []
        self._event_type = ""
        self._block_retry = None
        return []

    def _line(self, line: str) -> Event | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event_type = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            if "\0" not in value:
                self.last_event_id = value
        elif name == "retry" and value and value.isascii() and value.isdigit():
            self.retry = int(value)
            self._block_retry = self.retry
        return None

    def _dispatch(self) -> Event | None:
        data, event_type, retry = self._data, self._event_type, self._block_retry
        self._data = []
        self._event_type = ""
        self._block_retry = None
        if not data:
            return None
        return Event(
            data="\n".join(data),
            event=event_type or "message",
            id=self.last_event_id,
            retry=retry,
        )


def parse(chunks: Iterable[str | bytes]) -> Iterator[Event]:
    """Parse an iterable of chunks (lines, byte blocks, a whole body) into events.

    Args:
        chunks: ``str`` or UTF-8 ``bytes`` pieces, split anywhere.

    Yields:
        Each dispatched :class:`Event`, as soon as its blank line arrives.

    Raises:
        avl.errors.InvalidInputError: a chunk is neither ``str`` nor ``bytes``.

    Example:
        >>> [e.data for e in parse(["data: 1\\n\\n", "data: 2\\n", "\\n"])]
        ['1', '2']
    """
    parser = SSEParser()
    for chunk in chunks:
        yield from parser.feed(chunk)
    parser.close()


async def aparse(chunks: AsyncIterable[str | bytes]) -> AsyncIterator[Event]:
    """Async twin of :func:`parse` (e.g. over ``httpx.Response.aiter_bytes()``).

    Args:
        chunks: an async iterable of ``str`` or UTF-8 ``bytes`` pieces.

    Yields:
        Each dispatched :class:`Event`.

    Raises:
        avl.errors.InvalidInputError: a chunk is neither ``str`` nor ``bytes``.
    """
    parser = SSEParser()
    async for chunk in chunks:
        for event in parser.feed(chunk):
            yield event
    parser.close()
