"""MCP over streamable HTTP at ``/mcp`` in the web app, with the SDK's own client.

The endpoint sits behind the same middlewares as the REST routes: the caller is
the authenticated identity (its role, context and history), a hostile browser
request is refused before it reaches MCP, and a wrong API key gets 401.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from avl.assistant import create_demo_database
from avl.console import Console
from avl.web import ApiKeyAuthenticator, Identity, WebSettings, create_app
from tests.conftest import need_module

mcp = need_module("mcp", reason="the mcp extra is not installed")
httpx2 = need_module("httpx2", reason="the mcp SDK's HTTP client")
from mcp import ClientSession  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

BASE = "http://127.0.0.1:8000"


def payload(result: Any) -> dict[str, Any]:
    if result.structured_content is not None:
        return dict(result.structured_content)
    return dict(json.loads(result.content[0].text))


def run(fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
    async def bounded() -> None:
        with anyio.fail_after(120):
            await fn()

    anyio.run(bounded)


@pytest.fixture
def console(tmp_path: Path) -> Any:
    db = create_demo_database(tmp_path / "shop.db")
    c = Console(
        db=f"sqlite:///{db}",
        history="memory://",
        roles={
            "support": {
                "allowed_tables": ["customers", "orders"],
                "denied_columns": ["customers.email"],
                "row_filters": {"orders": "customer_id = :cid"},
            }
        },
    )
    yield c
    c.close()


def _client(app: Any, headers: dict[str, str] | None = None) -> Any:
    transport = httpx2.ASGITransport(app=app, client=("127.0.0.1", 50000))
    return httpx2.AsyncClient(transport=transport, base_url=BASE, headers=headers or {})


def test_tools_over_http_as_the_local_caller(tmp_path: Path) -> None:
    db = create_demo_database(tmp_path / "local.db")
    console = Console(db=f"sqlite:///{db}", history="memory://")  # no roles: the default
    app = create_app(console)

    async def go() -> None:
        async with (
            _client(app) as http,
            streamable_http_client(f"{BASE}/mcp", http_client=http) as (r, w),
            ClientSession(r, w) as s,
        ):
            await s.initialize()
            names = {t.name for t in (await s.list_tools()).tools}
            assert {"ask", "check_sql", "run_sql", "list_tables"} <= names
            answer = payload(
                await s.call_tool("ask", {"question": "How many customers are there?"})
            )
            assert answer["rows"] == [[12]]
            drop = payload(await s.call_tool("check_sql", {"sql": "DROP TABLE orders"}))
            assert drop["allowed"] is False
            delete = await s.call_tool("run_sql", {"sql": "DELETE FROM orders"})
            assert delete.is_error is True

    try:
        run(go)
    finally:
        console.close()


def test_the_local_caller_gets_no_default_when_only_roles_are_configured(console: Any) -> None:
    async def go() -> None:
        async with (
            _client(create_app(console)) as http,
            streamable_http_client(f"{BASE}/mcp", http_client=http) as (r, w),
            ClientSession(r, w) as s,
        ):
            await s.initialize()
            refused = await s.call_tool("list_tables", {})
            assert refused.is_error is True
            assert payload(refused)["error"] == "UnknownRoleError"

    run(go)


def test_the_identity_of_the_api_key_scopes_every_tool(console: Any) -> None:
    auth = ApiKeyAuthenticator.from_keys(
        {"k-support-0123456789": Identity(user="sam", role="support", context={"cid": 3})}
    )
    app = create_app(console, settings=WebSettings(authenticator=auth))

    async def go() -> None:
        async with (
            _client(app, {"X-API-Key": "k-support-0123456789"}) as http,
            streamable_http_client(f"{BASE}/mcp", http_client=http) as (r, w),
            ClientSession(r, w) as s,
        ):
            await s.initialize()
            tables = payload(await s.call_tool("list_tables", {}))
            assert tables == {"tables": ["customers", "orders"]}
            mine = payload(
                await s.call_tool("run_sql", {"sql": "SELECT DISTINCT customer_id FROM orders"})
            )
            assert mine["rows"] == [[3]]
            email = await s.call_tool("run_sql", {"sql": "SELECT email FROM customers"})
            assert email.is_error is True
            schema = (await s.read_resource("avl://schema")).contents[0].text
            assert "email" not in schema
            assert "products" not in schema
        entries = console.history.search(user="sam", limit=10).entries
        assert [str(e.outcome) for e in entries] == ["rejected", "ok"]
        assert {e.role for e in entries} == {"support"}

    run(go)


def test_refused_before_mcp_without_credentials_or_from_another_site(console: Any) -> None:
    auth = ApiKeyAuthenticator.from_keys({"k-0123456789abcdef": Identity(user="sam")})
    app = create_app(console, settings=WebSettings(authenticator=auth))
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    }
    headers = {"Accept": "application/json, text/event-stream"}

    async def go() -> None:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as c:
            no_key = await c.post("/mcp", json=init, headers=headers)
            assert no_key.status_code == 401
            cross = await c.post(
                "/mcp",
                json=init,
                headers={
                    **headers,
                    "X-API-Key": "k-0123456789abcdef",
                    "Origin": "https://evil.example",
                },
            )
            assert cross.status_code == 403
            form = await c.post(
                "/mcp",
                content=json.dumps(init),
                headers={
                    **headers,
                    "X-API-Key": "k-0123456789abcdef",
                    "Content-Type": "text/plain",
                },
            )
            assert form.status_code == 415
            rebound = await c.post(
                "/mcp",
                json=init,
                headers={**headers, "X-API-Key": "k-0123456789abcdef", "Host": "evil.example"},
            )
            assert rebound.status_code in (400, 421)
            ok = await c.post(
                "/mcp", json=init, headers={**headers, "X-API-Key": "k-0123456789abcdef"}
            )
            assert ok.status_code == 200
            assert ok.json()["result"]["serverInfo"]["name"] == "avl"
        assert list(console.history.search(limit=10).entries) == []

    run(go)


def test_mcp_is_not_in_the_openapi_document(console: Any) -> None:
    async def go() -> None:
        transport = httpx.ASGITransport(app=create_app(console), client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as c:
            spec = (await c.get("/openapi.json")).json()
            assert "/mcp" not in spec["paths"]
            assert (await c.get("/mcp")).status_code == 405

    run(go)


def test_building_the_app_leaves_the_applications_logging_alone(
    console: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The SDK's server calls logging.basicConfig when the root logger has no handler
    # (as in an application that has not configured logging): every record of every
    # logger would then be written, the access log's one per request among them.
    import logging

    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", logging.WARNING)
    create_app(console)
    assert (root.handlers, root.level) == ([], logging.WARNING)
