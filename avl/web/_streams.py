"""SSE streaming of the Assistant's events: resumable buffers, heartbeats, and
cancellation when the client goes away.

Design:

- Every stream gets an id; each event's SSE ``id`` is ``<stream>:<n>``.
- A :class:`StreamRecord` keeps the last ``resume_events`` encoded events; the
  :class:`StreamHub` keeps the last ``resume_streams`` records. A request carrying
  ``Last-Event-ID: <stream>:<n>`` replays what follows ``n`` and then follows the
  stream live if it is still running.
- The Assistant's (synchronous) generator runs in a worker thread. When the client
  disconnects, the ``cancel`` event given to ``Assistant.stream`` is set and the
  request stops waiting. A query that is running is stopped in the database (SQLite
  is interrupted by its progress handler, PostgreSQL gets a cancel request,
  MySQL/MariaDB a ``KILL QUERY``); a streamed model call is closed at
  its next chunk (``GeneratorExit`` closes the model's HTTP stream). History records
  the request as ``cancelled``.
"""

from __future__ import annotations

import inspect
import json
import logging
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
from starlette.types import Message, Receive, Scope, Send

from avl import sse
from avl.errors import AvlError, NotFoundError
from avl.web._auth import Identity
from avl.web._jsonschema import encode_value
from avl.web._problems import problem_for
from avl.web._schemas import answer_out, verdict_out

__all__ = ["StreamHub", "StreamRecord", "event_payload", "sse_response"]

log = logging.getLogger("avl.web")


class StreamRecord:
    """The buffered events of one stream."""

    def __init__(self, stream_id: str, user: str, max_events: int) -> None:
        self.stream_id = stream_id
        self.user = user
        self.events: deque[tuple[int, bytes]] = deque(maxlen=max_events)
        self.next_seq = 0
        self.done = False
        self.changed = anyio.Event()

    def append(self, kind: str, data: str) -> None:
        """Add one event (on the event loop)."""
        if self.done:
            return
        seq = self.next_seq
        self.next_seq += 1
        payload = sse.encode(data, event=kind, id=f"{self.stream_id}:{seq}")
        self.events.append((seq, payload))
        self._notify()

    def finish(self) -> None:
        """Mark the stream finished (on the event loop)."""
        self.done = True
        self._notify()

    def _notify(self) -> None:
        changed, self.changed = self.changed, anyio.Event()
        changed.set()

    def since(self, after: int) -> list[tuple[int, bytes]]:
        """Buffered events with a sequence number greater than ``after``."""
        return [item for item in self.events if item[0] > after]


class StreamHub:
    """The resumable streams of one app (bounded)."""

    def __init__(self, max_streams: int, max_events: int) -> None:
        self._records: OrderedDict[str, StreamRecord] = OrderedDict()
        self._max_streams = max_streams
        self._max_events = max_events

    def open(self, stream_id: str, user: str) -> StreamRecord:
        """Register a new stream."""
        record = StreamRecord(stream_id, user, self._max_events)
        self._records[stream_id] = record
        while len(self._records) > self._max_streams:
            self._records.popitem(last=False)
        return record

    def resume(self, last_event_id: str, user: str) -> tuple[StreamRecord, int]:
        """The record and position a ``Last-Event-ID`` points at.

        Raises:
            avl.errors.NotFoundError: unknown, expired or someone else's stream.
        """
        stream_id, _, seq = last_event_id.strip().rpartition(":")
        record = self._records.get(stream_id)
        if record is None or record.user != user or not seq.isdigit():
            raise NotFoundError(f"no stream to resume for Last-Event-ID {last_event_id!r}")
        return record, int(seq)


def _kind(event: object) -> str:
    for attr in ("kind", "type", "event"):
        value = getattr(event, attr, None)
        if isinstance(value, str) and value:
            return value
        inner = getattr(value, "value", None)
        if isinstance(inner, str) and inner:
            return inner
    name = type(event).__name__
    if name.endswith("Event") and len(name) > 5:
        name = name[:-5]
    return name.lower()


def event_payload(event: object, question: str, role: str) -> tuple[str, dict[str, Any]]:
    """The SSE event name and JSON data for one Assistant event.

    An event with a ``data`` mapping (the Assistant's :class:`~avl.assistant.Event`)
    is sent as that mapping; ``answer`` events carry the API's answer shape (the
    same as ``POST /v1/ask`` returns as JSON). Other objects are sent field by field.
    """
    kind = _kind(event)
    raw = getattr(event, "data", None)
    data = encode_value(raw) if isinstance(raw, Mapping) else encode_value(event)
    if not isinstance(data, dict):
        data = {"value": data}
    data.pop("kind", None)
    verdict = getattr(event, "verdict", None)
    if verdict is not None and hasattr(verdict, "allowed"):
        data["verdict"] = encode_value(verdict_out(verdict, role))
    answer = getattr(event, "answer", None)
    if answer is not None and not isinstance(answer, str):
        data = encode_value(answer_out(answer, question, role))
    return kind, data


def _dumps(data: object) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str)


def _start_stream(
    assistant: Any, question: str, identity: Identity, cancel: threading.Event
) -> Iterator[Any]:
    stream = assistant.stream
    kwargs: dict[str, Any] = {"user": identity.user, "role": identity.role}
    accepted: Mapping[str, Any]
    try:
        accepted = inspect.signature(stream).parameters
    except (TypeError, ValueError):
        accepted = {}
    if "cancel" in accepted:
        kwargs["cancel"] = cancel
    if "context" in accepted and identity.context:
        kwargs["context"] = dict(identity.context)
    return iter(stream(question, **kwargs))


def _run_worker(
    assistant: Any,
    question: str,
    identity: Identity,
    record: StreamRecord,
    cancel: threading.Event,
) -> None:
    """Runs in a worker thread: iterate the Assistant's generator into the record."""

    def post(fn: Callable[..., None], *args: Any) -> bool:
        try:
            anyio.from_thread.run_sync(fn, *args)
            return True
        except RuntimeError:  # the event loop is gone
            return False

    gen: Iterator[Any] | None = None
    saw_done = False
    try:
        gen = _start_stream(assistant, question, identity, cancel)
        for event in gen:
            if cancel.is_set():
                break
            kind, data = event_payload(event, question, identity.role)
            saw_done = saw_done or kind == "done"
            if not post(record.append, kind, _dumps(data)):
                break
            if cancel.is_set():
                break
    except Exception as exc:  # reported to the client as an `error` event, then ended
        if not isinstance(exc, AvlError):
            log.exception("assistant stream failed")
        problem, _ = problem_for(exc)
        post(record.append, "error", _dumps(encode_value(problem)))
    finally:
        close = getattr(gen, "close", None)
        if callable(close):
            close()
        if not saw_done and not cancel.is_set():
            post(record.append, "done", "{}")
        post(record.finish)


async def _follow(record: StreamRecord, after: int, send: Send, heartbeat_s: float) -> None:
    while True:
        for seq, payload in record.since(after):
            await send({"type": "http.response.body", "body": payload, "more_body": True})
            after = seq
        if record.done:
            return
        changed = record.changed
        with anyio.move_on_after(heartbeat_s) as scope:
            await changed.wait()
        if scope.cancelled_caught:
            await send(
                {"type": "http.response.body", "body": sse.comment("ping"), "more_body": True}
            )


def sse_response(
    *,
    hub: StreamHub,
    assistant: Any,
    question: str | None,
    identity: Identity,
    last_event_id: str | None,
    stream_id: str,
    heartbeat_s: float,
    headers: dict[str, str],
) -> Callable[[Scope, Receive, Send], Any]:
    """An ASGI app answering one SSE request (a new stream or a resume).

    Raises:
        avl.errors.NotFoundError: ``last_event_id`` names no resumable stream.
    """
    if last_event_id:
        record, after = hub.resume(last_event_id, identity.user)
        start_worker = False
    else:
        record, after = hub.open(stream_id, identity.user), -1
        start_worker = True

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        cancel = threading.Event()
        response_headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-cache"),
            (b"x-accel-buffering", b"no"),
            (b"x-avl-stream", record.stream_id.encode("ascii")),
        ]
        response_headers += [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()
        ]
        await send({"type": "http.response.start", "status": 200, "headers": response_headers})
        await send({"type": "http.response.body", "body": b"retry: 2000\n\n", "more_body": True})
        async with anyio.create_task_group() as tg:

            async def watch_disconnect() -> None:
                while True:
                    message: Message = await receive()
                    if message["type"] == "http.disconnect":
                        cancel.set()
                        tg.cancel_scope.cancel()
                        return

            async def produce() -> None:
                await anyio.to_thread.run_sync(
                    _run_worker,
                    assistant,
                    question or "",
                    identity,
                    record,
                    cancel,
                    abandon_on_cancel=True,
                )

            async def consume() -> None:
                try:
                    await _follow(record, after, send, heartbeat_s)
                except OSError:  # the client went away mid-send
                    cancel.set()
                tg.cancel_scope.cancel()

            tg.start_soon(watch_disconnect)
            if start_worker:
                tg.start_soon(produce)
            tg.start_soon(consume)
        if cancel.is_set():
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return app
