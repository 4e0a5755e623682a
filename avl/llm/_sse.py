"""The providers' view of ``text/event-stream``: lines in, events out (pure, private).

The parsing itself is :class:`avl.sse.SSEParser` (the WHATWG algorithm); this
adapter feeds it one line at a time, without its line terminator (as
``httpx.Response.iter_lines`` yields them), and tells whether an event was left
unfinished when the stream ended (a truncated stream).
"""

from __future__ import annotations

import attrs

from avl.sse import SSEParser

__all__ = ["SSEDecoder", "SSEEvent"]


@attrs.frozen(kw_only=True)
class SSEEvent:
    """One server-sent event.

    Attributes:
        event: the event type (``"message"`` when the server sent none).
        data: the data lines joined with ``\\n``.
        id: the last event id seen, if any.
    """

    event: str = "message"
    data: str = ""
    id: str | None = None


class SSEDecoder:
    """Turns lines into :class:`SSEEvent` values (over :class:`avl.sse.SSEParser`).

    ``feed(line)`` returns the completed event when ``line`` is blank and an event
    with data was pending, else ``None``. ``pending`` tells whether fields were read
    since the last blank line (an incomplete event when the stream ended).
    """

    __slots__ = ("_parser", "_pending")

    def __init__(self) -> None:
        self._parser = SSEParser()
        self._pending = False

    @property
    def pending(self) -> bool:
        """Whether fields were read since the last blank line."""
        return self._pending

    def feed(self, line: str) -> SSEEvent | None:
        """Read one line; return an event when ``line`` completes one."""
        line = line.rstrip("\r\n")
        if not line:
            self._pending = False
        elif not line.startswith(":") and line.partition(":")[0] in ("data", "event", "id"):
            self._pending = True
        events = self._parser.feed(line + "\n")
        if not events:
            return None
        event = events[-1]
        return SSEEvent(event=event.event, data=event.data, id=event.id)
