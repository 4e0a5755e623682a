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
        with TestClient(create_app(console), base_url="http://localhost") as tc:
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
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost:8000") as c:
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

        with TestClient(create_app(console, authenticator=auth), base_url="http://localhost") as tc:
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
        with TestClient(create_app(default), base_url="http://localhost") as tc:
            many = [tc.post("/v1/sql/check", json={"sql": "SELECT 1"}) for _ in range(25)]
        with TestClient(create_app(explicit), base_url="http://localhost") as tc:
            few = [tc.post("/v1/sql/check", json={"sql": "SELECT 1"}) for _ in range(4)]
    finally:
        default.close()
        explicit.close()
    assert {r.status_code for r in many} == {200}
    assert many[-1].headers["x-ratelimit-limit"] == "10"  # headers from a peek
    assert [r.status_code for r in few] == [200, 200, 200, 429]
    assert few[-1].headers["retry-after"] == "20"
    assert few[-1].json()["type"] == "urn:avl:problem:rate-limited"


def _inputs(spec: dict[str, Any]) -> dict[str, set[str]]:
    """Every name a client can send, per operation: parameters and body properties."""
    schemas = spec["components"]["schemas"]
    out: dict[str, set[str]] = {}
    for path, item in spec["paths"].items():
        for method, op in item.items():
            names = {p["name"] for p in op.get("parameters", [])}
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None:
                ref = body["schema"]["$ref"].rsplit("/", 1)[-1]
                names |= set(schemas[ref]["properties"])
            out[f"{method.upper()} {path}"] = names
    return out


def test_no_input_names_a_url_or_a_database() -> None:
    """SSRF: no endpoint takes a URL, a host or a database to open."""
    from avl.web import openapi_spec

    inputs = _inputs(openapi_spec())
    assert {k: v for k, v in inputs.items() if v} == {
        "POST /v1/sql/check": {"sql", "role", "params"},
        "POST /v1/ask": {"question", "session", "Last-Event-ID"},
        "GET /v1/ask/stream": {"question", "session", "Last-Event-ID"},
        "POST /v1/sql/run": {"sql", "params"},
        "POST /v1/train": {"question", "sql", "ddl", "documentation"},
        "GET /v1/history": {"q", "user", "outcome", "since", "until", "limit", "cursor"},
        "GET /v1/history/{entry_id}": {"entry_id"},
    }


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/sql/check", {"sql": "SELECT 1"}),
        ("/v1/sql/run", {"sql": "SELECT 1"}),
        ("/v1/ask", {"question": "How many customers are there?"}),
        ("/v1/train", {"documentation": "Customers buy things."}),
    ],
)
async def test_a_database_url_in_a_body_is_refused(
    app: Any, path: str, body: dict[str, Any]
) -> None:
    async with client(app) as c:
        r = await c.post(path, json={**body, "db": "postgresql://10.0.0.1/prod"})
    assert r.status_code == 422
    assert r.json()["detail"] == "body: unknown field(s) ['db']"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("sql", "code"),
    [
        ("ATTACH DATABASE '/tmp/other.db' AS other", "statement_kind"),
        ("SELECT load_extension('/tmp/evil.so')", "function_denied"),
        ("SELECT readfile('/etc/passwd')", "function_denied"),
        ("SELECT * FROM read_csv_auto('http://169.254.169.254/latest')", "function_denied"),
    ],
)
async def test_sql_that_reaches_out_is_refused_on_run_and_train(
    app: Any, sql: str, code: str
) -> None:
    async with client(app) as c:
        run = await c.post("/v1/sql/run", json={"sql": sql})
        train = await c.post("/v1/train", json={"question": "anything", "sql": sql})
    for r in (run, train):
        assert r.status_code == 422
        assert r.headers["content-type"] == "application/problem+json"
        assert [v["code"] for v in r.json()["violations"]][:1] == [code]


@pytest.mark.anyio
async def test_an_unknown_role_is_403_with_the_real_console() -> None:
    """A mistyped role in an identity gets 403 on every route, never the default policy."""
    from avl.web import ApiKeyAuthenticator, Identity

    console = Console.from_config({"roles": {"analyst": {"denied_columns": ["customers.name"]}}})
    key = "typo-key-0123456789"
    auth = ApiKeyAuthenticator.from_keys({key: Identity(user="t", role="analsyt")})
    try:
        async with client(create_app(console, authenticator=auth), headers={"x-api-key": key}) as c:
            answers = [
                await c.post("/v1/sql/check", json={"sql": "SELECT name FROM customers"}),
                await c.post("/v1/sql/run", json={"sql": "SELECT name FROM customers"}),
                await c.post("/v1/ask", json={"question": "customer names"}),
                await c.post(
                    "/v1/ask",
                    json={"question": "customer names"},
                    headers={"accept": "text/event-stream"},
                ),
            ]
    finally:
        console.close()
    for r in answers:
        assert r.status_code == 403, r.text
        assert r.json()["type"] == "urn:avl:problem:unknown-role"
        assert "analyst" not in r.text  # the configured roles are not listed
