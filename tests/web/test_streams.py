"""SSE streams: resume from Last-Event-ID, heartbeats, disconnect cancels."""

from __future__ import annotations

import itertools
import json
import threading
from typing import Any

import anyio
import anyio.to_thread
import pytest

from avl import sse
from avl.web import ApiKeyAuthenticator, Identity, create_app

from .conftest import TinyConsole, client

pytestmark = pytest.mark.anyio

SSE = {"accept": "text/event-stream"}


def _ids() -> Any:
    counter = itertools.count(1)
    return lambda: f"s{next(counter)}"


async def test_resume_replays_after_last_event_id(console: TinyConsole) -> None:
    app = create_app(console, stream_ids=_ids())
    async with client(app) as c:
        first = await c.post("/v1/ask", json={"question": "customer names"}, headers=SSE)
        resumed = await c.post("/v1/ask", headers={**SSE, "last-event-id": "s1:2"})
        via_get = await c.get("/v1/ask/stream", headers={**SSE, "last-event-id": "s1:4"})
        unknown = await c.post("/v1/ask", headers={**SSE, "last-event-id": "zz:1"})
        garbage = await c.post("/v1/ask", headers={**SSE, "last-event-id": "s1:x"})
    full = list(sse.parse([first.content]))
    assert [e.id for e in full] == [f"s1:{i}" for i in range(6)]
    again = list(sse.parse([resumed.content]))
    assert again == full[3:]
    assert [e.event for e in sse.parse([via_get.content])] == ["done"]
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == "no stream to resume for Last-Event-ID 'zz:1'"
    assert garbage.status_code == 404


async def test_resume_is_per_user(console: TinyConsole) -> None:
    auth = ApiKeyAuthenticator.from_keys(
        {"ann-key-0123456789": Identity(user="ann"), "bob-key-0123456789": Identity(user="bob")}
    )
    app = create_app(console, authenticator=auth, stream_ids=_ids())
    async with client(app) as c:
        await c.post(
            "/v1/ask",
            json={"question": "customer names"},
            headers={**SSE, "x-api-key": "ann-key-0123456789"},
        )
        stolen = await c.post(
            "/v1/ask", headers={**SSE, "x-api-key": "bob-key-0123456789", "last-event-id": "s1:0"}
        )
    assert stolen.status_code == 404


async def test_resume_buffer_is_bounded(console: TinyConsole) -> None:
    app = create_app(console, stream_ids=_ids(), resume_events=2, resume_streams=1)
    async with client(app) as c:
        await c.post("/v1/ask", json={"question": "customer names"}, headers=SSE)
        tail = await c.post("/v1/ask", headers={**SSE, "last-event-id": "s1:0"})
        await c.post("/v1/ask", json={"question": "customer names"}, headers=SSE)
        evicted = await c.post("/v1/ask", headers={**SSE, "last-event-id": "s1:0"})
    assert [e.id for e in sse.parse([tail.content])] == ["s1:4", "s1:5"]
    assert evicted.status_code == 404


class _Wire:
    """Drive the ASGI app by hand: a request body, then a disconnect on demand."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.sent: list[bytes] = []
        self.status: int | None = None
        self.headers: dict[bytes, bytes] = {}
        self.disconnect = anyio.Event()
        self.got_data = anyio.Event()
        self._first = True

    async def receive(self) -> dict[str, Any]:
        if self._first:
            self._first = False
            return {"type": "http.request", "body": self.body, "more_body": False}
        await self.disconnect.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = dict(message["headers"])
        elif message["type"] == "http.response.body":
            self.sent.append(message.get("body", b""))
            self.got_data.set()
            self.got_data = anyio.Event()

    def text(self) -> bytes:
        return b"".join(self.sent)


def _scope(path: str = "/v1/ask") -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"accept", b"text/event-stream")],
        "client": ("127.0.0.1", 5555),
        "server": ("127.0.0.1", 80),
    }


async def _wait_for(wire: _Wire, needle: bytes) -> None:
    while needle not in wire.text():
        await wire.got_data.wait()


async def test_heartbeat_while_the_model_is_slow(console: TinyConsole) -> None:
    assistant = console.assistant
    assistant.gate = threading.Event()
    app = create_app(console, heartbeat_s=0.01, stream_ids=_ids())
    wire = _Wire(json.dumps({"question": "how many customers"}).encode())
    async with anyio.create_task_group() as tg:
        tg.start_soon(app, _scope(), wire.receive, wire.send)
        with anyio.fail_after(20):
            await _wait_for(wire, b": ping\n\n")
        assistant.gate.set()
    events = list(sse.parse(wire.sent))
    assert [e.event for e in events] == ["retrieved", "sql", "verdict", "rows", "answer", "done"]
    assert wire.status == 200
    assert wire.sent[0] == b"retry: 2000\n\n"
    assert wire.sent[-1] == b""  # the stream was ended properly


async def test_disconnect_cancels_the_assistant(console: TinyConsole) -> None:
    assistant = console.assistant
    assistant.gate = threading.Event()
    app = create_app(console, heartbeat_s=30, stream_ids=_ids())
    wire = _Wire(json.dumps({"question": "how many customers"}).encode())
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(app, _scope(), wire.receive, wire.send)
            await _wait_for(wire, b"event: retrieved")
            wire.disconnect.set()  # the client goes away while the model "thinks"
        # The request has ended; the worker notices at the Assistant's next step.
        assistant.gate.set()
        assert await anyio.to_thread.run_sync(assistant.closed.wait, 10) is True
    events = list(sse.parse(wire.sent))
    assert [e.event for e in events] == ["retrieved"]  # nothing after the disconnect
    assert console.history.search(limit=10) == []  # the query never ran to completion
