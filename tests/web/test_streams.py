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

from .conftest import TinyConsole, Wire, client, wait_for
from .conftest import asgi_scope as _scope

pytestmark = pytest.mark.anyio

SSE = {"accept": "text/event-stream"}
# A resume carries no body, but a POST is JSON or nothing (cross-site guard).
RESUME = {**SSE, "content-type": "application/json"}


def _ids() -> Any:
    counter = itertools.count(1)
    return lambda: f"s{next(counter)}"


async def test_resume_replays_after_last_event_id(console: TinyConsole) -> None:
    app = create_app(console, stream_ids=_ids())
    async with client(app) as c:
        first = await c.post("/v1/ask", json={"question": "customer names"}, headers=SSE)
        resumed = await c.post("/v1/ask", headers={**RESUME, "last-event-id": "s1:2"})
        via_get = await c.get(
            "/v1/ask/stream",
            headers={**SSE, "last-event-id": "s1:4", "sec-fetch-site": "same-origin"},
        )
        unknown = await c.post("/v1/ask", headers={**RESUME, "last-event-id": "zz:1"})
        garbage = await c.post("/v1/ask", headers={**RESUME, "last-event-id": "s1:x"})
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
            "/v1/ask",
            headers={**RESUME, "x-api-key": "bob-key-0123456789", "last-event-id": "s1:0"},
        )
    assert stolen.status_code == 404


async def test_resume_buffer_is_bounded(console: TinyConsole) -> None:
    app = create_app(console, stream_ids=_ids(), resume_events=2, resume_streams=1)
    async with client(app) as c:
        await c.post("/v1/ask", json={"question": "customer names"}, headers=SSE)
        tail = await c.post("/v1/ask", headers={**RESUME, "last-event-id": "s1:0"})
        await c.post("/v1/ask", json={"question": "customer names"}, headers=SSE)
        evicted = await c.post("/v1/ask", headers={**RESUME, "last-event-id": "s1:0"})
    assert [e.id for e in sse.parse([tail.content])] == ["s1:4", "s1:5"]
    assert evicted.status_code == 404


async def test_heartbeat_while_the_model_is_slow(console: TinyConsole) -> None:
    assistant = console.assistant
    assistant.gate = threading.Event()
    app = create_app(console, heartbeat_s=0.01, stream_ids=_ids())
    wire = Wire(json.dumps({"question": "how many customers"}).encode())
    async with anyio.create_task_group() as tg:
        tg.start_soon(app, _scope(), wire.receive, wire.send)
        with anyio.fail_after(20):
            await wait_for(wire, b": ping\n\n")
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
    wire = Wire(json.dumps({"question": "how many customers"}).encode())
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(app, _scope(), wire.receive, wire.send)
            await wait_for(wire, b"event: retrieved")
            wire.disconnect.set()  # the client goes away while the model "thinks"
        # The request has ended; the worker notices at the Assistant's next step.
        assistant.gate.set()
        assert await anyio.to_thread.run_sync(assistant.closed.wait, 10) is True
    events = list(sse.parse(wire.sent))
    assert [e.event for e in events] == ["retrieved"]  # nothing after the disconnect
    assert console.history.search(limit=10) == []  # the query never ran to completion


class GatedModel:
    """A ChatModel whose stream stops mid-answer until ``gate`` is set."""

    name = "gated"

    def __init__(self, sql: str) -> None:
        self.sql = sql
        self.gate = threading.Event()
        self.started = threading.Event()
        self.closed = threading.Event()

    def complete(self, messages: Any, **kw: Any) -> Any:
        from avl.llm import Completion

        self.gate.wait(30)
        return Completion(text=self.sql, model=self.name)

    def stream(self, messages: Any, **kw: Any) -> Any:
        from avl.llm import Delta

        try:
            self.started.set()
            yield Delta(text=self.sql[:7])
            self.gate.wait(30)
            yield Delta(text=self.sql[7:])
            yield Delta(text="", done=True)
        finally:
            self.closed.set()


class SignallingHistory:
    """A real History that sets ``recorded`` once a request's outcome is recorded (the
    entry after the pending one written before the model is called)."""

    def __init__(self) -> None:
        from avl.history import History

        self.inner = History("memory://")
        self.recorded = threading.Event()

    def record(self, entry: Any) -> Any:
        stored = self.inner.record(entry)
        if str(entry.outcome) != "pending":
            self.recorded.set()
        return stored

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_disconnect_cancels_the_real_assistant_and_is_recorded() -> None:
    from avl.console import Console

    model = GatedModel("SELECT count(*) FROM customers")
    history = SignallingHistory()
    console = Console(
        model=model, history=history, ratelimit={"rates": ""}, assistant={"cache_threshold": None}
    )
    try:
        app = create_app(console, heartbeat_s=30, stream_ids=_ids())
        wire = Wire(json.dumps({"question": "a question nobody trained"}).encode())
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(app, _scope(), wire.receive, wire.send)
                await wait_for(wire, b"event: token")
                wire.disconnect.set()
            model.gate.set()
            assert await anyio.to_thread.run_sync(model.closed.wait, 20) is True
            assert await anyio.to_thread.run_sync(history.recorded.wait, 20) is True
        kinds = [e.event for e in sse.parse(wire.sent)]
        assert kinds == ["retrieved", "prompt", "token"]
        # The Assistant saw the stream closed: the model's stream was closed and the
        # ask is in the history as cancelled, with no rows.
        entries = await anyio.to_thread.run_sync(lambda: console.history.search(limit=5))
        entries = [e for e in entries if e.outcome.value != "pending"]
        assert [(e.outcome.value, e.row_count) for e in entries] == [("cancelled", None)]
    finally:
        console.close()


async def test_resume_follows_a_live_stream(console: TinyConsole) -> None:
    assistant = console.assistant
    assistant.gate = threading.Event()
    app = create_app(console, heartbeat_s=30, stream_ids=_ids())
    first = Wire(json.dumps({"question": "customer names"}).encode())
    second = Wire(b"")
    resume_scope = _scope()
    resume_scope["headers"] = [*resume_scope["headers"], (b"last-event-id", b"s1:0")]
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(app, _scope(), first.receive, first.send)
            await wait_for(first, b"event: retrieved")
            tg.start_soon(app, resume_scope, second.receive, second.send)
            await wait_for(second, b"retry: 2000")
            assistant.gate.set()  # the model answers; both connections see the rest
    one = list(sse.parse(first.sent))
    two = list(sse.parse(second.sent))
    assert [e.event for e in one] == ["retrieved", "sql", "verdict", "rows", "answer", "done"]
    assert two == one[1:]


SLOW_SQL = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000000000) "
    "SELECT count(*) AS n FROM c"
)


MYSQL_TABLE = "avl_web_cancel_digits"
# 10^12 rows to count (a nested-loop join that streams: no memory to fill).
MYSQL_SLOW_SQL = (
    f"SELECT count(*) AS n FROM {MYSQL_TABLE} a, {MYSQL_TABLE} b, {MYSQL_TABLE} c, "
    f"{MYSQL_TABLE} d WHERE a.d + b.d + c.d + d.d >= 0"
)


def _mysql_table(url: str) -> None:
    from urllib.parse import urlsplit

    import pymysql

    parts = urlsplit(url)
    con = pymysql.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=parts.username or "root",
        password=parts.password or "",
        database=parts.path.lstrip("/") or "test",
    )
    try:
        with con.cursor() as cur:
            cur.execute(f"CREATE TABLE IF NOT EXISTS {MYSQL_TABLE} (d INT)")
            cur.execute(f"SELECT count(*) FROM {MYSQL_TABLE}")
            if cur.fetchone()[0] != 1000:
                cur.execute(f"DELETE FROM {MYSQL_TABLE}")
                cur.executemany(
                    f"INSERT INTO {MYSQL_TABLE} VALUES (%s)", [(i,) for i in range(1000)]
                )
        con.commit()
    finally:
        con.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mysql"])
async def test_disconnect_interrupts_the_running_database_query(
    backend: str, request: pytest.FixtureRequest
) -> None:
    """A client that goes away while the SQL runs stops the query in the database.

    The statement timeout is an hour and the query counts to 1e11: the history entry
    can only be written (and the worker freed) because the query was interrupted.
    """
    from avl.console import Console
    from avl.testing import FakeChatModel

    history = SignallingHistory()
    kw: dict[str, Any] = {}
    sql = SLOW_SQL
    if backend == "postgresql":
        kw = {"db": request.getfixturevalue("postgres_dsn"), "train_from_database": False}
    elif backend == "mysql":
        url = request.getfixturevalue("mysql_url")
        kw = {"db": url, "train_from_database": False}
        await anyio.to_thread.run_sync(_mysql_table, url)
        sql = MYSQL_SLOW_SQL
    console = Console(
        model=FakeChatModel([sql]),
        history=history,
        ratelimit={"rates": ""},
        assistant={"cache_threshold": None, "timeout_s": 3600.0},
        # SafeQuery refuses these deliberately huge queries by default (a counter up to
        # 1e11, a 4-way cartesian product): this deployment widens its resource bounds
        policy={"max_generated_rows": 10**12, "max_cartesian": 4},
        **kw,
    )
    db = console.assistant.db
    running = threading.Event()
    execute = db.execute

    def signalling_execute(*args: Any, **kwargs: Any) -> Any:
        running.set()
        return execute(*args, **kwargs)

    db.execute = signalling_execute
    try:
        app = create_app(console, heartbeat_s=30, stream_ids=_ids())
        wire = Wire(json.dumps({"question": "count to a very large number"}).encode())
        with anyio.fail_after(120):  # a guard against a hang, not a timing assertion
            async with anyio.create_task_group() as tg:
                tg.start_soon(app, _scope(), wire.receive, wire.send)
                assert await anyio.to_thread.run_sync(running.wait, 100) is True
                wire.disconnect.set()  # the client goes away while the query runs
            assert await anyio.to_thread.run_sync(history.recorded.wait, 100) is True
        kinds = [e.event for e in sse.parse(wire.sent)]
        assert kinds[-2:] == ["sql", "verdict"]
        entries = await anyio.to_thread.run_sync(lambda: console.history.search(limit=5))
        entries = [e for e in entries if e.outcome.value != "pending"]
        assert [(e.outcome.value, e.row_count, e.error) for e in entries] == [
            ("cancelled", None, "the caller cancelled the request")
        ]
        # The connection is usable again and left no transaction open.
        assert not db.in_transaction()
        assert db.execute("SELECT 1 AS one").rows == ((1,),)
    finally:
        console.close()
