"""``avl mcp`` over stdio, driven by the official SDK's client in a real subprocess."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from avl.assistant import create_demo_database
from tests.conftest import need_module

mcp = need_module("mcp", reason="the mcp extra is not installed")
from mcp import ClientSession, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@asynccontextmanager
async def session(*args: str, cwd: Path) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "avl.cli", "mcp", *args],
        cwd=str(cwd),
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    async with stdio_client(params) as (r, w), ClientSession(r, w) as s:
        await s.initialize()
        yield s


def payload(result: Any) -> dict[str, Any]:
    """The tool's JSON: the structured content, or the JSON text block."""
    if result.structured_content is not None:
        return dict(result.structured_content)
    return dict(json.loads(result.content[0].text))


def run(fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
    async def bounded() -> None:
        with anyio.fail_after(120):
            await fn()

    anyio.run(bounded)


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    return create_demo_database(tmp_path / "shop.db")


def test_tools_listed_with_schemas(shop: Path, tmp_path: Path) -> None:
    async def go() -> None:
        async with session("--db", f"sqlite:///{shop}", cwd=tmp_path) as s:
            tools = {t.name: t for t in (await s.list_tools()).tools}
            assert set(tools) == {
                "ask",
                "check_sql",
                "run_sql",
                "list_tables",
                "describe_table",
                "search_history",
                "explain",
            }
            assert tools["check_sql"].input_schema["required"] == ["sql"]
            out = tools["check_sql"].output_schema
            assert out is not None
            assert {"allowed", "violations", "sql"} <= set(out["properties"])
            assert tools["run_sql"].annotations is not None
            assert tools["run_sql"].annotations.read_only_hint is True

    run(go)


def test_ask_check_run_and_tables(shop: Path, tmp_path: Path) -> None:
    async def go() -> None:
        async with session("--db", f"sqlite:///{shop}", cwd=tmp_path) as s:
            tables = payload(await s.call_tool("list_tables", {}))
            assert tables == {"tables": ["customers", "order_items", "orders", "products"]}

            answer = payload(
                await s.call_tool("ask", {"question": "How many customers are there?"})
            )
            assert answer["rows"] == [[12]]
            assert answer["verdict"]["allowed"] is True
            assert answer["error"] is None

            verdict = payload(await s.call_tool("check_sql", {"sql": "DROP TABLE customers"}))
            assert verdict["allowed"] is False
            assert [v["code"] for v in verdict["violations"]] == ["statement_kind"]

            refused = await s.call_tool("run_sql", {"sql": "DELETE FROM orders"})
            assert refused.is_error is True
            body = payload(refused)
            assert body["allowed"] is False
            assert body["violations"][0]["code"] == "statement_kind"

            ran = payload(await s.call_tool("run_sql", {"sql": "SELECT COUNT(*) FROM orders"}))
            assert ran["rows"] == [[40]]
            assert ran["verdict"]["allowed"] is True

            # the DELETE did not run
            again = payload(await s.call_tool("run_sql", {"sql": "SELECT COUNT(*) FROM orders"}))
            assert again["rows"] == [[40]]

    run(go)


def test_policy_view_role_and_context_from_a_config(shop: Path, tmp_path: Path) -> None:
    config = tmp_path / "avl.toml"
    config.write_text(
        f'db = "sqlite:///{shop}"\nhistory = "sqlite:///{tmp_path}/h.db"\n'
        "[roles.support]\n"
        'allowed_tables = ["customers", "orders"]\n'
        'denied_columns = ["customers.email"]\n'
        'row_filters = { orders = "customer_id = :cid" }\n'
    )

    async def go() -> None:
        args = (
            "--config",
            str(config),
            "--role",
            "support",
            "--user",
            "agent",
            "--context",
            "cid=3",
        )
        async with session(*args, cwd=tmp_path) as s:
            assert payload(await s.call_tool("list_tables", {})) == {
                "tables": ["customers", "orders"]
            }
            customers = payload(await s.call_tool("describe_table", {"name": "customers"}))
            assert "email" not in [c["name"] for c in customers["columns"]]
            assert customers["row_filtered"] is False
            orders = payload(await s.call_tool("describe_table", {"name": "orders"}))
            assert orders["row_filtered"] is True
            hidden = await s.call_tool("describe_table", {"name": "products"})
            assert hidden.is_error is True
            assert "no table 'products' that you may read" in payload(hidden)["message"]

            email = await s.call_tool("run_sql", {"sql": "SELECT email FROM customers"})
            assert email.is_error is True
            mine = payload(
                await s.call_tool("run_sql", {"sql": "SELECT DISTINCT customer_id FROM orders"})
            )
            assert mine["rows"] == [[3]]

            schema = await s.read_resource("avl://schema")
            text = schema.contents[0].text
            assert "CREATE TABLE customers" in text
            assert "email" not in text
            assert "products" not in text

            history = payload(await s.call_tool("search_history", {"text": "", "limit": 10}))
            outcomes = [e["outcome"] for e in history["entries"]]
            assert outcomes == ["ok", "rejected"]

    run(go)


def test_unknown_role_is_refused_at_start(shop: Path, tmp_path: Path) -> None:
    import subprocess

    config = tmp_path / "avl.toml"
    config.write_text(f'db = "sqlite:///{shop}"\n[roles.analyst]\nmax_rows = 10\n')
    proc = subprocess.run(
        [sys.executable, "-m", "avl.cli", "mcp", "--config", str(config), "--role", "analsyt"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert proc.returncode == 2
    assert "no policy is configured for role 'analsyt'" in proc.stderr
