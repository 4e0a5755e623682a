"""A small incremental parser for ``text/event-stream`` lines (pure, private).

Only what the chat providers need: ``event``, ``data`` (multi-line joined with
``\\n``) and ``id`` fields; comments (lines starting with ``:``) are skipped; an
event is dispatched on a blank line. Lines are fed one at a time, without their
line terminator (as ``httpx.Response.iter_lines`` yields them).
"""

from __future__ import annotations

import attrs

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
    """Turns lines into :class:`SSEEvent` values.

    ``feed(line)`` returns the completed event when ``line`` is blank and an event
    was pending, else ``None``. ``pending`` tells whether an incomplete event was
    left when the stream ended (a truncated stream).
    """

    __slots__ = ("_data", "_event", "_has_fields", "_id")

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None
        self._has_fields = False

    @property
    def pending(self) -> bool:
        """Whether fields were read since the last dispatched event."""
        return self._has_fields

    def feed(self, line: str) -> SSEEvent | None:
        """Read one line; return an event when ``line`` completes one."""
        line = line.rstrip("\r\n")
        if not line:
            if not self._has_fields:
                return None
            event = SSEEvent(
                event=self._event or "message", data="\n".join(self._data), id=self._id
            )
            self._event = ""
            self._data = []
            self._has_fields = False
            return event
        if line.startswith(":"):
            return None
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            self._id = value
        else:
            return None  # "retry" and unknown fields carry nothing we use
        self._has_fields = True
        return None
