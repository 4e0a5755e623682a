"""The app over the real :class:`avl.console.Console` (the documented entry point)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from avl import sse
from avl.console import Console
from avl.web import create_app

from .conftest import client


@pytest.fixture(scope="module")
def console() -> Iterator[Console]:
    c = Console(ratelimit={"rates": "1000/second"})
    yield c
    c.close()


@pytest.fixture(scope="module")
def app(console: Console) -> Any:
    return create_app(console)


def test_check_with_testclient_and_default_console() -> None:
    from starlette.testclient import TestClient

    console = Console()
    try:
        with TestClient(create_app(console)) as tc:
            spec = tc.get("/openapi.json")
            ok = tc.post("/v1/sql/check", json={"sql": "SELECT name FROM customers"})
            bad = tc.post("/v1/sql/check", json={"sql": "DROP TABLE customers"})
    finally:
        console.close()
    assert spec.status_code == 200
    assert spec.json()["openapi"] == "3.1.0"
    assert ok.status_code == 200
    assert ok.json()["allowed"] is True
    assert ok.json()["sql"] == "SELECT name FROM customers LIMIT 1000"
    assert "ratelimit-policy" in ok.headers
    assert bad.status_code == 200
    assert bad.json()["allowed"] is False
    assert [v["code"] for v in bad.json()["violations"]] == ["statement_kind"]


@pytest.mark.anyio
async def test_check_with_asgi_transport_default_client(app: Any) -> None:
    # httpx's ASGITransport reports client ("127.0.0.1", 123) by default.
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        r = await c.post("/v1/sql/check", json={"sql": "SELECT count(*) FROM orders"})
    assert r.status_code == 200
    assert r.json()["allowed"] is True
    assert r.json()["tables"] == ["orders"]


def test_from_config_roles() -> None:
    console = Console.from_config(
        {"roles": {"analyst": {"denied_columns": ["customers.name"]}}, "metrics": False}
    )
    try:
        from avl.web import ApiKeyAuthenticator, Identity

        auth = ApiKeyAuthenticator.from_keys(
            {"analyst-key-0123456789": Identity(user="ann", role="analyst")}
        )
        from starlette.testclient import TestClient

        with TestClient(create_app(console, authenticator=auth)) as tc:
            h = {"x-api-key": "analyst-key-0123456789"}
            denied = tc.post("/v1/sql/check", json={"sql": "SELECT name FROM customers"}, headers=h)
            fine = tc.post("/v1/sql/check", json={"sql": "SELECT city FROM customers"}, headers=h)
            metrics = tc.get("/metrics", headers=h)
    finally:
        console.close()
    assert denied.json()["allowed"] is False
    assert denied.json()["role"] == "analyst"
    assert [v["code"] for v in denied.json()["violations"]] == ["column_denied"]
    assert fine.json()["allowed"] is True
    assert metrics.status_code == 404


@pytest.mark.anyio
async def test_ask_stream_with_the_real_assistant(app: Any) -> None:
    async with client(app) as c:
        r = await c.post(
            "/v1/ask",
            json={"question": "How many customers are there?"},
            headers={"accept": "text/event-stream"},
        )
        page = await c.get("/v1/history", params={"q": "customers"})
        metrics = await c.get("/metrics")
    events = list(sse.parse([r.content]))
    kinds = [e.event for e in events]
    assert kinds[0] == "retrieved"
    assert kinds[-2:] == ["answer", "done"]
    assert "verdict" in kinds
    answer = json.loads(events[-2].data)
    assert answer["rows"] == [[12]]
    assert answer["verdict"]["allowed"] is True
    assert page.json()["items"][0]["question"] == "How many customers are there?"
    assert page.json()["items"][0]["user"] == "local"
    assert metrics.status_code == 200
    assert "avl_stage_duration_seconds" in metrics.text


@pytest.mark.anyio
async def test_run_and_ready_with_the_real_console(app: Any) -> None:
    async with client(app) as c:
        run = await c.post("/v1/sql/run", json={"sql": "SELECT count(*) AS n FROM customers"})
        refused = await c.post("/v1/sql/run", json={"sql": "UPDATE customers SET name = 'x'"})
        ready = await c.get("/readyz")
        train = await c.post(
            "/v1/train", json={"documentation": "Customers are people who ordered at least once."}
        )
    assert run.json()["rows"] == [[12]]
    assert run.json()["columns"] == ["n"]
    assert refused.status_code == 422
    assert ready.json() == {
        "status": "ok",
        "checks": {"history": "ok", "limiter": "ok", "database": "ok"},
    }
    assert train.status_code == 200
    assert train.json()["stored"] == 1
    assert train.json()["ids"][0].startswith("documentation:")


@pytest.mark.anyio
async def test_run_database_error_is_422_and_recorded(app: Any, console: Console) -> None:
    sql = "SELECT json_extract(name, 1) FROM customers"  # passes SafeQuery, fails in SQLite
    async with client(app) as c:
        r = await c.post("/v1/sql/run", json={"sql": sql})
    assert r.status_code == 422
    assert r.json()["type"] == "urn:avl:problem:query-failed"
    assert r.json()["detail"] == "the database rejected the query: malformed JSON"
    entry = console.history.search(limit=1)[0]
    assert (entry.sql, entry.outcome.value, entry.allowed) == (
        f"{sql} LIMIT 1000",
        "db_error",
        True,
    )
    assert entry.error == "the database rejected the query: malformed JSON"


def test_local_caller_counted_only_when_limits_are_configured() -> None:
    from starlette.testclient import TestClient

    default = Console()
    explicit = Console.from_config({"ratelimit": {"rates": "3/minute"}})
    try:
        with TestClient(create_app(default)) as tc:
            many = [tc.post("/v1/sql/check", json={"sql": "SELECT 1"}) for _ in range(25)]
        with TestClient(create_app(explicit)) as tc:
            few = [tc.post("/v1/sql/check", json={"sql": "SELECT 1"}) for _ in range(4)]
    finally:
        default.close()
        explicit.close()
    assert {r.status_code for r in many} == {200}
    assert many[-1].headers["x-ratelimit-limit"] == "10"  # headers from a peek
    assert [r.status_code for r in few] == [200, 200, 200, 429]
    assert few[-1].headers["retry-after"] == "20"
    assert few[-1].json()["type"] == "urn:avl:problem:rate-limited"
