"""Streams cannot starve the server: one user's open streams hold no request thread,
per-user and global caps answer 429 with Retry-After, and a place is only given back
when the pipeline has really ended.

Bounded in time (``fail_after`` guards against a hang); no test asserts a duration.
The latency figure (p95 of another user's requests with 120 streams open) is
measured by ``benches/bench_web.py --starvation``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from avl import sse
from avl.web import ApiKeyAuthenticator, Identity, create_app

from .conftest import TinyConsole, Wire, asgi_scope, client, wait_for

pytestmark = pytest.mark.anyio

HOG = "hog-key-0123456789abcd"
OTHER = "other-key-0123456789ab"


class GatedAssistant:
    """An Assistant whose every stream blocks in its pipeline until ``gate`` is set
    (a slow model), counting the streams inside the blocking step."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.db = real.db
        self.gate = threading.Event()
        self.lock = threading.Lock()
        self.inside = 0
        self.finished = 0

    def stream(self, question: str, **kw: Any) -> Iterator[Any]:
        from .conftest import Ev

        yield Ev(kind="retrieved", data={"items": []})
        with self.lock:
            self.inside += 1
        try:
            self.gate.wait(60)
        finally:
            with self.lock:
                self.inside -= 1
        yield Ev(kind="sql", data={"sql": "SELECT 1"})
        with self.lock:
            self.finished += 1
        yield Ev(kind="done", data={"outcome": "ok"})

    def ask(self, question: str, **kw: Any) -> Any:
        for _ in self.stream(question, **kw):
            pass
        return self.real.ask("how many customers")

    def train(self, **kw: Any) -> Any:
        return self.real.train(**kw)


def _app(console: TinyConsole, **settings: Any) -> Any:
    auth = ApiKeyAuthenticator.from_keys({HOG: Identity(user="hog"), OTHER: Identity(user="other")})
    return create_app(console, authenticator=auth, heartbeat_s=30, **settings)


def _stream_wire(key: str) -> tuple[dict[str, Any], Wire]:
    scope = asgi_scope(headers=[(b"x-api-key", key.encode())])
    return scope, Wire(json.dumps({"question": "how many customers"}).encode())


async def test_120_open_streams_do_not_starve_another_user(console: TinyConsole) -> None:
    gated = GatedAssistant(console.assistant)
    console.assistant = gated  # type: ignore[assignment]
    app = _app(console, max_streams=200, max_streams_per_user=200, pipeline_threads=8)
    runner = app.handlers.runner
    wires: list[Wire] = []
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for _ in range(120):
                scope, wire = _stream_wire(HOG)
                wires.append(wire)
                tg.start_soon(app, scope, wire.receive, wire.send)
            for wire in wires:
                await wait_for(wire, b"retry: 2000")
            # 120 streams are open; the pool's 8 threads sit in the slow step.
            while gated.inside < 8:
                await anyio.sleep(0.01)
            assert runner.running == 120
            assert runner.running_for("hog") == 120
            statuses = []
            async with client(app, headers={"x-api-key": OTHER}) as c:
                for i in range(30):
                    statuses.append((await c.get("/v1/history")).status_code)
                    statuses.append(
                        (await c.post("/v1/sql/check", json={"sql": f"SELECT {i}"})).status_code
                    )
                    statuses.append((await c.get("/v1/ratelimit")).status_code)
            assert statuses == [200] * 90  # served while every pipeline thread is busy
            assert gated.finished == 0  # and the streams are still open
            assert gated.inside == 8  # no more threads than the pool has
            gated.gate.set()
    assert all(w.status == 200 for w in wires)
    kinds = [[e.event for e in sse.parse(w.sent)] for w in wires]
    assert kinds == [["retrieved", "sql", "done"]] * 120
    assert gated.finished == 120
    assert runner.running == 0


async def test_caps_answer_429_with_retry_after(console: TinyConsole) -> None:
    gated = GatedAssistant(console.assistant)
    console.assistant = gated  # type: ignore[assignment]
    app = _app(console, max_streams=6, max_streams_per_user=4, stream_retry_after_s=2.5)
    runner = app.handlers.runner
    wires: list[Wire] = []
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for _ in range(4):
                scope, wire = _stream_wire(HOG)
                wires.append(wire)
                tg.start_soon(app, scope, wire.receive, wire.send)
            for wire in wires:
                await wait_for(wire, b"retry: 2000")
            async with client(app) as c:
                hog = {"x-api-key": HOG}
                fifth = await c.post(
                    "/v1/ask",
                    json={"question": "q"},
                    headers={**hog, "accept": "text/event-stream"},
                )
                get = await c.get("/v1/ask/stream", params={"question": "q"}, headers=hog)
                json_ask = await c.post("/v1/ask", json={"question": "q"}, headers=hog)
                # The other user still gets a place...
                scope, wire = _stream_wire(OTHER)
                wires.append(wire)
                tg.start_soon(app, scope, wire.receive, wire.send)
                await wait_for(wire, b"retry: 2000")
                scope, wire = _stream_wire(OTHER)
                wires.append(wire)
                tg.start_soon(app, scope, wire.receive, wire.send)
                await wait_for(wire, b"retry: 2000")
                # ... until the server's total cap (6) is reached.
                full = await c.post(
                    "/v1/ask",
                    json={"question": "q"},
                    headers={"x-api-key": OTHER, "accept": "text/event-stream"},
                )
            assert runner.running == 6
            gated.gate.set()
    for r in (fifth, get, json_ask):
        assert r.status_code == 429
        assert r.headers["retry-after"] == "3"
        assert r.json()["type"] == "urn:avl:problem:too-many-streams"
        assert "'hog' already has 4 questions running" in r.json()["detail"]
    assert full.status_code == 429
    assert "the server is answering 6 questions" in full.json()["detail"]
    assert all([e.event for e in sse.parse(w.sent)][-1] == "done" for w in wires)
    assert runner.running == 0


async def test_a_disconnected_stream_keeps_its_place_until_the_pipeline_ends(
    console: TinyConsole,
) -> None:
    gated = GatedAssistant(console.assistant)
    console.assistant = gated  # type: ignore[assignment]
    app = _app(console, max_streams_per_user=1)
    runner = app.handlers.runner
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            scope, wire = _stream_wire(HOG)
            tg.start_soon(app, scope, wire.receive, wire.send)
            while gated.inside < 1:
                await anyio.sleep(0.01)
            wire.disconnect.set()  # the client goes away; the model still "thinks"
        assert runner.running_for("hog") == 1
        async with client(app, headers={"x-api-key": HOG}) as c:
            again = await c.post(
                "/v1/ask", json={"question": "q"}, headers={"accept": "text/event-stream"}
            )
        assert again.status_code == 429
        gated.gate.set()
        while runner.running_for("hog"):
            await anyio.sleep(0.01)
    assert gated.finished == 0  # cancelled at the next step: nothing after the gate ran
