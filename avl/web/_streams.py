"""SSE streaming of the Assistant's events: a bounded pipeline pool, caps per user
and in total, resumable buffers, heartbeats, and cancellation when the client goes
away.

Design:

- The Assistant's pipeline is blocking (a generator of events; model calls and
  queries block). Its steps run on a :class:`PipelineRunner`: a thread pool of
  its own (``pipeline_threads``), apart from the threads that serve every other
  request, so open streams cannot starve them. A stream holds no thread between
  events: each ``next()`` on the generator is one job, and the job that produced
  an event queues the next one, so the pool is shared fairly among streams.
- The runner admits at most ``max_streams`` pipeline runs at once, and at most
  ``max_streams_per_user`` per user (a JSON ask counts too: it runs the same
  pipeline); over either cap the answer is 429 with ``Retry-After``. A run keeps
  its place until the pipeline has really ended, not merely until its client
  disconnected.
- Every stream gets an id; each event's SSE ``id`` is ``<stream>:<n>``. A
  :class:`StreamRecord` keeps the last ``resume_events`` encoded events; the
  :class:`StreamHub` keeps the last ``resume_streams`` records. A request carrying
  ``Last-Event-ID: <stream>:<n>`` replays what follows ``n`` and then follows the
  stream live if it is still running.
- When the client disconnects, the ``cancel`` event given to ``Assistant.stream``
  is set and the request ends at once. The job running (or the next one) closes
  the generator: a query that is running is stopped in the database (SQLite is
  interrupted by its progress handler, PostgreSQL gets a cancel request,
  MySQL/MariaDB a ``KILL QUERY``); a streamed model call is closed at its next
  chunk. History records the request as ``cancelled``.
- Each run's jobs execute in a copy of the request's context (``contextvars``), so
  spans the pipeline opens are children of the request's server span.
"""

from __future__ import annotations

import contextvars
import json
import logging
import threading
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import anyio
import anyio.from_thread
import anyio.lowlevel
from starlette.types import Message, Receive, Scope, Send

from avl import sse
from avl.errors import AvlError, NotFoundError
from avl.web._auth import Identity
from avl.web._jsonschema import encode_value
from avl.web._problems import TooManyStreamsError, problem_for
from avl.web._protocols import AssistantLike
from avl.web._schemas import answer_out, verdict_out

__all__ = [
    "PipelineRunner",
    "StreamHub",
    "StreamRecord",
    "Ticket",
    "event_payload",
    "sse_response",
]

log = logging.getLogger("avl.web")

T = TypeVar("T")


class StreamRecord:
    """The buffered events of one stream (touched on the event loop only)."""

    def __init__(self, stream_id: str, user: str, max_events: int) -> None:
        self.stream_id = stream_id
        self.user = user
        self.events: deque[tuple[int, bytes]] = deque(maxlen=max_events)
        self.next_seq = 0
        self.done = False
        self.changed = anyio.Event()

    def append(self, kind: str, data: str) -> None:
        """Add one event."""
        if self.done:
            return
        seq = self.next_seq
        self.next_seq += 1
        payload = sse.encode(data, event=kind, id=f"{self.stream_id}:{seq}")
        self.events.append((seq, payload))
        self._notify()

    def finish(self) -> None:
        """Mark the stream finished."""
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


class Ticket:
    """One admitted pipeline run; :meth:`release` gives its place back (once)."""

    def __init__(self, runner: PipelineRunner, user: str) -> None:
        self._runner = runner
        self.user = user
        self._released = False

    def release(self) -> None:
        """Give the place back (idempotent, thread-safe)."""
        self._runner._release(self)


class PipelineRunner:
    """Runs the Assistant's blocking steps on a bounded pool of its own, with caps.

    Args:
        threads: pool size.
        max_runs: runs admitted at once in total.
        max_runs_per_user: runs admitted at once per user.
        retry_after_s: ``Retry-After`` of a refusal.
    """

    def __init__(
        self, *, threads: int, max_runs: int, max_runs_per_user: int, retry_after_s: float
    ) -> None:
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="avl-pipeline")
        self._finalizer = weakref.finalize(self, self._executor.shutdown, wait=False)
        self._lock = threading.Lock()
        self._total = 0
        self._per_user: dict[str, int] = {}
        self.max_runs = max_runs
        self.max_runs_per_user = max_runs_per_user
        self.retry_after_s = retry_after_s

    @property
    def running(self) -> int:
        """Runs admitted and not yet ended."""
        return self._total

    def running_for(self, user: str) -> int:
        """Runs of ``user`` admitted and not yet ended."""
        return self._per_user.get(user, 0)

    def admit(self, user: str) -> Ticket:
        """A place for one run of ``user``.

        Raises:
            TooManyStreamsError: over the user's cap or the total cap (429).
        """
        with self._lock:
            mine = self._per_user.get(user, 0)
            if mine >= self.max_runs_per_user:
                raise TooManyStreamsError(
                    f"{user!r} already has {mine} questions running (at most "
                    f"{self.max_runs_per_user} at once); retry when one ends",
                    retry_after_s=self.retry_after_s,
                )
            if self._total >= self.max_runs:
                raise TooManyStreamsError(
                    f"the server is answering {self._total} questions (at most "
                    f"{self.max_runs} at once); retry shortly",
                    retry_after_s=self.retry_after_s,
                )
            self._total += 1
            self._per_user[user] = mine + 1
        return Ticket(self, user)

    def _release(self, ticket: Ticket) -> None:
        with self._lock:
            if ticket._released:
                return
            ticket._released = True
            self._total -= 1
            left = self._per_user[ticket.user] - 1
            if left:
                self._per_user[ticket.user] = left
            else:
                del self._per_user[ticket.user]

    def submit(self, fn: Callable[[], Any]) -> Future[Any]:
        """Queue ``fn`` on the pool.

        Raises:
            RuntimeError: the pool was shut down.
        """
        return self._executor.submit(fn)

    async def call(self, ticket: Ticket, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the pool in this context and wait for it; the ticket is
        released when ``fn`` ends (also if the caller stopped waiting)."""
        ctx = contextvars.copy_context()

        def job() -> T:
            try:
                return ctx.run(fn)
            finally:
                ticket.release()

        try:
            future = self.submit(job)
        except BaseException:
            ticket.release()
            raise
        return await _wait(future)

    def close(self) -> None:
        """Stop taking jobs (running ones finish)."""
        self._finalizer()


async def _wait(future: Future[T]) -> T:
    """Wait for a pool job without blocking the event loop or holding a thread."""
    done = anyio.Event()
    token = anyio.lowlevel.current_token()
    loop_thread = threading.get_ident()

    def wake(_: Future[T]) -> None:
        if threading.get_ident() == loop_thread:
            done.set()
            return
        try:
            anyio.from_thread.run_sync(done.set, token=token)
        except RuntimeError:  # the event loop is gone: nobody is waiting any more
            pass

    future.add_done_callback(wake)
    await done.wait()
    return future.result()


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


_END = object()


class _Run:
    """One stream's pipeline, advanced one event per pool job."""

    def __init__(
        self,
        *,
        runner: PipelineRunner,
        ticket: Ticket,
        assistant: AssistantLike,
        question: str,
        identity: Identity,
        record: StreamRecord,
        cancel: threading.Event,
        session: str | None = None,
    ) -> None:
        self.session = session
        self.runner = runner
        self.ticket = ticket
        self.assistant = assistant
        self.question = question
        self.identity = identity
        self.record = record
        self.cancel = cancel
        self.token = anyio.lowlevel.current_token()
        self.ctx = contextvars.copy_context()
        self.lock = threading.Lock()
        self.gen: Iterator[Any] | None = None
        self.saw_done = False
        self.ended = False

    def start(self) -> None:
        """Queue the first step (on the event loop)."""
        try:
            self.runner.submit(self.step)
        except RuntimeError:
            self.ticket.release()
            self.record.finish()

    def post(self, fn: Callable[..., None], *args: Any) -> bool:
        """Run ``fn`` on the event loop; ``False`` when the loop is gone."""
        try:
            anyio.from_thread.run_sync(fn, *args, token=self.token)
            return True
        except RuntimeError:
            return False

    def step(self) -> None:
        """One pool job: produce the next event, then queue the next job."""
        with self.lock:
            if self.ended:
                return
            if self.cancel.is_set():
                self.end(finished=False)
                return
            try:
                event = self.ctx.run(self._next)
            except Exception as exc:  # reported to the client as an `error` event
                if not isinstance(exc, AvlError):
                    log.exception("assistant stream failed")
                problem, _ = problem_for(exc)
                self.post(self.record.append, "error", _dumps(encode_value(problem)))
                self.end(finished=True)
                return
            if event is _END:
                self.end(finished=True)
                return
            if self.cancel.is_set():
                self.end(finished=False)
                return
            kind, data = event_payload(event, self.question, self.identity.role)
            self.saw_done = self.saw_done or kind == "done"
            if not self.post(self.record.append, kind, _dumps(data)):
                self.cancel.set()
                self.end(finished=False)
                return
        try:
            self.runner.submit(self.step)
        except RuntimeError:  # the pool was shut down
            with self.lock:
                self.cancel.set()
                self.end(finished=False)

    def _next(self) -> Any:
        if self.gen is None:
            ident = self.identity
            extra = {"session": self.session} if self.session else {}
            self.gen = iter(
                self.assistant.stream(
                    self.question,
                    user=ident.user,
                    role=ident.role,
                    context=dict(ident.context) or None,
                    cancel=self.cancel,
                    **extra,
                )
            )
        return next(self.gen, _END)

    def end(self, *, finished: bool) -> None:
        """Close the generator (records ``cancelled`` if it did not finish) and
        give the place back. Called with ``lock`` held."""
        self.ended = True
        try:
            close = getattr(self.gen, "close", None)
            if close is not None:
                self.ctx.run(close)
        except Exception:
            log.exception("closing the assistant stream failed")
        finally:
            self.ticket.release()
        if finished and not self.saw_done:
            self.post(self.record.append, "done", "{}")
        self.post(self.record.finish)


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
    runner: PipelineRunner,
    assistant: AssistantLike,
    question: str | None,
    identity: Identity,
    last_event_id: str | None,
    stream_id: str,
    heartbeat_s: float,
    session: str | None = None,
) -> Callable[[Scope, Receive, Send], Any]:
    """An ASGI app answering one SSE request (a new stream or a resume).

    Raises:
        avl.errors.NotFoundError: ``last_event_id`` names no resumable stream.
        TooManyStreamsError: over a stream cap (429).
    """
    ticket: Ticket | None = None
    if last_event_id:
        record, after = hub.resume(last_event_id, identity.user)
    else:
        ticket = runner.admit(identity.user)
        record, after = hub.open(stream_id, identity.user), -1

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        cancel = threading.Event()
        started = False
        try:
            headers = [
                (b"content-type", b"text/event-stream; charset=utf-8"),
                (b"x-accel-buffering", b"no"),
                (b"x-avl-stream", record.stream_id.encode("ascii")),
            ]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send(
                {"type": "http.response.body", "body": b"retry: 2000\n\n", "more_body": True}
            )
            if ticket is not None:
                run = _Run(
                    runner=runner,
                    ticket=ticket,
                    assistant=assistant,
                    question=question or "",
                    identity=identity,
                    record=record,
                    cancel=cancel,
                    session=session,
                )
                started = True
                run.start()
            async with anyio.create_task_group() as tg:

                async def watch_disconnect() -> None:
                    while True:
                        message: Message = await receive()
                        if message["type"] == "http.disconnect":
                            cancel.set()
                            tg.cancel_scope.cancel()
                            return

                async def consume() -> None:
                    try:
                        await _follow(record, after, send, heartbeat_s)
                    except OSError:  # the client went away mid-send
                        cancel.set()
                    tg.cancel_scope.cancel()

                tg.start_soon(watch_disconnect)
                tg.start_soon(consume)
        finally:
            if ticket is not None and not started:
                ticket.release()
                record.finish()
        if cancel.is_set():
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return app
