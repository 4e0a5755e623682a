"""Chaos: what a caller gets when a dependency fails, and recovery without a restart.

Each scenario runs against servers of the test's own (``own_redis``, ``own_postgres``)
that it stops and starts; the shared services are never touched. The documented
behaviour is in docs/operations.rst ("When a dependency fails").
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from avl.console import Console
from avl.costs import Budget, Budgets, RedisLedger
from avl.errors import (
    AvlError,
    BackendUnavailableError,
    ProviderTimeoutError,
    QueryError,
)
from avl.llm import OpenAIChatModel, RetryPolicy
from avl.ratelimit import RateLimiter
from avl.web import create_app
from tests.ops.conftest import OwnPostgres, OwnRedis

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "llm" / "openai"


def request(app: Any, method: str, path: str, body: Any = None) -> httpx.Response:
    """One request to the ASGI app from a loopback client (the local developer)."""

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            return await c.request(method, path, json=body, timeout=30)

    return asyncio.run(go())


# -- Redis down -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "status_down"),
    [("raise", 503), ("allow", 200), ("deny", 429)],
)
def test_redis_down_rate_limiter(
    own_redis: OwnRedis, mode: str, status_down: int, caplog: pytest.LogCaptureFixture
) -> None:
    limiter = RateLimiter("1000/second", storage=own_redis.url, on_unavailable=mode, timeout_s=0.2)
    with Console(limiter=limiter, ratelimit={"rates": "1000/second"}) as console:
        app = create_app(console)
        ok = request(app, "POST", "/v1/ask", {"question": "How many customers are there?"})
        assert ok.status_code == 200, ok.text
        own_redis.stop()
        with caplog.at_level(logging.WARNING, logger="avl.ratelimit"):
            down = request(app, "POST", "/v1/ask", {"question": "How many customers are there?"})
        assert down.status_code == status_down, down.text
        if mode == "raise":  # fails closed with a clear, retryable error
            problem = down.json()
            assert problem["type"] == "urn:avl:problem:backend-unavailable"
            assert "Redis" in problem["detail"]
            assert "Traceback" not in down.text
        else:  # fail open / closed, and say so in the log
            assert f"failing {'open' if mode == 'allow' else 'closed'}" in caplog.text
        own_redis.start()
        again = request(app, "POST", "/v1/ask", {"question": "How many orders are there?"})
        assert again.status_code == 200, again.text  # no restart of avl


def test_redis_down_budget_ledger(own_redis: OwnRedis) -> None:
    ledger = RedisLedger(own_redis.url, prefix=f"avl:chaos:{uuid.uuid4().hex}:", timeout_s=0.2)
    budgets = Budgets([Budget(scope="user", name="*", limit_usd=1.0)], ledger=ledger)
    r = budgets.reserve(0.1, user="ann")
    own_redis.stop()
    with pytest.raises(BackendUnavailableError, match="budget ledger"):
        budgets.reserve(0.1, user="ann")
    with pytest.raises(BackendUnavailableError):
        budgets.settle(r, 0.05)
    own_redis.start()  # an empty Redis: what was spent is gone with the old process
    r2 = budgets.reserve(0.1, user="ann")
    assert [s.spent_usd for s in r2.statuses] == [pytest.approx(0.1)]
    ledger.close()


# -- PostgreSQL restarted mid-request --------------------------------------------------


@pytest.fixture
def pg_table(own_postgres: OwnPostgres) -> Iterator[str]:
    name = f"chaos_{uuid.uuid4().hex[:8]}"
    own_postgres.psql(f"CREATE TABLE {name} (id int PRIMARY KEY, v int)")
    own_postgres.psql(f"INSERT INTO {name} SELECT g, g % 97 FROM generate_series(1, 3000) g")
    yield name
    own_postgres.psql(f"DROP TABLE IF EXISTS {name}")


def test_postgres_restarted_mid_query(own_postgres: OwnPostgres, pg_table: str) -> None:
    console = Console(db=own_postgres.uri, history="memory://", assistant={"timeout_s": 30.0})
    try:
        db = console.assistant.db
        assert db.execute(f"SELECT count(*) FROM {pg_table}").rows == ((3000,),)
        errors: list[BaseException] = []
        started = threading.Event()

        def slow() -> None:
            started.set()
            try:
                # a self-join that takes seconds: the restart lands in the middle of it
                db.execute(
                    f"SELECT count(*) FROM {pg_table} a JOIN {pg_table} b ON a.v <> b.v "
                    f"JOIN {pg_table} c ON c.v = a.v"
                )
            except BaseException as exc:
                errors.append(exc)

        worker = threading.Thread(target=slow)
        worker.start()
        started.wait()
        _wait_for_query(own_postgres, "JOIN")
        own_postgres.stop_fast()
        own_postgres.start()
        worker.join(timeout=60)
        assert not worker.is_alive()
        (err,) = errors
        # the caller gets an avl error, never a psycopg one
        assert isinstance(err, AvlError), repr(err)
        assert isinstance(err, (QueryError, BackendUnavailableError)), repr(err)
        assert "psycopg" not in type(err).__module__
        # recovery without restarting avl: the next queries work (at most one more
        # failure while a pooled connection that died is found out)
        results = []
        for _ in range(3):
            try:
                results.append(db.execute(f"SELECT count(*) FROM {pg_table}").rows)
            except (QueryError, BackendUnavailableError) as exc:
                results.append(repr(exc))
        assert results[-1] == ((3000,),), results
        assert sum(1 for r in results if r != ((3000,),)) <= 1, results
        # and through the web adapter
        app = create_app(console)
        ran = request(app, "POST", "/v1/sql/run", {"sql": f"SELECT count(*) FROM {pg_table}"})
        assert ran.status_code == 200, ran.text
        assert ran.json()["rows"] == [[3000]]
    finally:
        console.close()


def _wait_for_query(pg: OwnPostgres, marker: str) -> None:
    import time

    import psycopg

    with psycopg.connect(pg.uri, autocommit=True) as conn:
        for _ in range(200):
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                "AND query LIKE %s AND pid <> pg_backend_pid()",
                (f"%{marker}%",),
            ).fetchone()
            if row and row[0] > 0:
                return
            time.sleep(0.05)
    raise AssertionError("the slow query never started")


def test_history_on_postgres_comes_back(own_postgres: OwnPostgres) -> None:
    table = f"h_{uuid.uuid4().hex[:8]}"
    history_url = own_postgres.uri + f"&table={table}"
    with Console(history=history_url) as console:
        app = create_app(console)
        first = request(app, "POST", "/v1/ask", {"question": "How many customers are there?"})
        assert first.status_code == 200, first.text
        own_postgres.stop_fast()
        try:
            down = request(app, "POST", "/v1/ask", {"question": "How many orders are there?"})
            # the answer cannot be recorded: the caller is told, with a 5xx problem
            assert down.status_code in (502, 503), down.text
            assert down.headers["content-type"].startswith("application/problem+json")
        finally:
            own_postgres.start()
        again = request(app, "POST", "/v1/ask", {"question": "How many products are there?"})
        assert again.status_code == 200, again.text
        assert console.history.verify().ok


# -- a model that stalls --------------------------------------------------------------


class StallingProvider:
    """A TCP server speaking just enough HTTP: it reads a request and then, while
    ``stall`` is set, never answers; otherwise it answers with a completion in OpenAI's
    wire format (server-sent events when the request asked for a stream)."""

    def __init__(self, sql: str) -> None:
        self.sql = sql
        self.stall = threading.Event()
        self.stall.set()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.requests = 0
        self.closed = False
        self.conns: list[socket.socket] = []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        while len(rest) < length:
            rest += conn.recv(65536)
        self.requests += 1
        if self.stall.is_set():
            return  # keep the connection open, answer nothing
        stream = bool(json.loads(rest[:length] or b"{}").get("stream"))
        body, ctype = (
            (_events(self.sql), b"text/event-stream")
            if stream
            else (
                _completion(self.sql),
                b"application/json",
            )
        )
        conn.sendall(
            b"HTTP/1.1 200 OK\r\ncontent-type: "
            + ctype
            + b"\r\n"
            + f"content-length: {len(body)}\r\n\r\n".encode()
            + body
        )

    def close(self) -> None:
        self.closed = True
        self.sock.close()
        for c in self.conns:
            c.close()


def _completion(sql: str) -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-chaos",
            "object": "chat.completion",
            "created": 1764058300,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": sql},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 400, "completion_tokens": 12, "total_tokens": 412},
        }
    ).encode()


def _events(sql: str) -> bytes:
    base = {
        "id": "chatcmpl-chaos",
        "object": "chat.completion.chunk",
        "created": 1764058300,
        "model": "gpt-4o-mini-2024-07-18",
    }
    chunks = [
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": sql}}]},
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {
            **base,
            "choices": [],
            "usage": {"prompt_tokens": 400, "completion_tokens": 12, "total_tokens": 412},
        },
    ]
    out = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks)
    return out + b"data: [DONE]\n\n"


def test_a_model_that_stalls(caplog: pytest.LogCaptureFixture) -> None:
    provider = StallingProvider("SELECT COUNT(*) FROM customers")
    model = OpenAIChatModel(
        "gpt-4o-mini",
        api_key="sk-chaos-test",
        base_url=f"http://127.0.0.1:{provider.port}/v1",
        timeout_s=0.3,
        retry=RetryPolicy(max_attempts=2, initial_backoff_s=0.01, jitter=0.0, deadline_s=5.0),
    )
    try:
        with Console(model=model, history="memory://") as console:
            app = create_app(console)
            stalled = request(app, "POST", "/v1/ask", {"question": "How many customers are there?"})
            assert stalled.status_code == 504, stalled.text
            problem = stalled.json()
            assert problem["type"] == "urn:avl:problem:provider-timeout"
            assert "sk-chaos-test" not in stalled.text
            assert provider.requests == 2  # the first attempt and one retry, then it gave up
            (entry,) = [e for e in console.history.search(limit=10) if str(e.outcome) != "pending"]
            assert str(entry.outcome) == "llm_error"
            # the provider recovers: the next question is answered, avl was not restarted
            provider.stall.clear()
            ok = request(app, "POST", "/v1/ask", {"question": "How many customers are there?"})
            assert ok.status_code == 200, ok.text
            assert ok.json()["rows"] == [[12]]
    finally:
        provider.close()


def test_a_stalled_model_raises_a_timeout_from_python() -> None:
    provider = StallingProvider("SELECT 1")
    model = OpenAIChatModel(
        "gpt-4o-mini",
        api_key="sk-chaos-test",
        base_url=f"http://127.0.0.1:{provider.port}/v1",
        timeout_s=0.2,
        retry=RetryPolicy(max_attempts=1),
    )
    try:
        with Console(model=model) as console, pytest.raises(ProviderTimeoutError):
            console.assistant.ask("How many customers are there?")
    finally:
        provider.close()


# -- a slow database -------------------------------------------------------------------


def test_a_slow_database_times_out_and_the_connection_survives(
    own_postgres: OwnPostgres, pg_table: str
) -> None:
    console = Console(db=own_postgres.uri, history="memory://", assistant={"timeout_s": 0.5})
    try:
        app = create_app(console)
        slow_sql = (
            f"SELECT count(*) FROM {pg_table} a JOIN {pg_table} b ON a.v <> b.v "
            f"JOIN {pg_table} c ON c.v = a.v"
        )
        slow = request(app, "POST", "/v1/sql/run", {"sql": slow_sql})
        assert slow.status_code == 504, slow.text
        assert slow.json()["type"] == "urn:avl:problem:query-timeout"
        # the same console answers the next query at once (the session was not poisoned)
        fast = request(app, "POST", "/v1/sql/run", {"sql": f"SELECT count(*) FROM {pg_table}"})
        assert fast.status_code == 200, fast.text
        assert fast.json()["rows"] == [[3000]]
        # nothing is left running on the server
        import psycopg

        with psycopg.connect(own_postgres.uri, autocommit=True) as conn:
            (running,) = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                "AND query LIKE '%a.v <> b.v%' AND pid <> pg_backend_pid()"
            ).fetchone()
        assert running == 0
    finally:
        console.close()
