"""The held-out evaluation's MCP calls, exactly: ``avl mcp --db sqlite:///shop.db``
(the demo shop in the working directory) driven by ``mcp.ClientSession`` over
``mcp.client.stdio.stdio_client``, through the installed ``avl`` command."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import anyio

from avl.assistant import create_demo_database
from tests.conftest import need_module

mcp = need_module("mcp", reason="the mcp extra is not installed")
from mcp import ClientSession, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _avl_command() -> str:
    beside = Path(sys.executable).with_name("avl")
    found = str(beside) if beside.exists() else shutil.which("avl")
    assert found, "the avl command is not installed (pip install -e .)"
    return found


def _json(result: Any) -> dict[str, Any]:
    if result.structured_content is not None:
        return dict(result.structured_content)
    for block in result.content:
        try:
            return dict(json.loads(block.text))
        except (AttributeError, ValueError):
            continue
    raise AssertionError(f"no JSON in {result!r}")


def test_the_evaluations_calls(tmp_path: Path) -> None:
    create_demo_database(tmp_path / "shop.db")
    params = StdioServerParameters(
        command=_avl_command(),
        args=["mcp", "--db", "sqlite:///shop.db"],
        cwd=str(tmp_path),
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )

    async def go() -> None:
        with anyio.fail_after(120):
            async with stdio_client(params) as (read, write), ClientSession(read, write) as s:
                await s.initialize()
                names = {t.name for t in (await s.list_tools()).tools}
                assert {"ask", "check_sql", "run_sql", "list_tables"} <= names

                answer = _json(await s.call_tool("ask", {"question": "How many orders are there?"}))
                assert answer["rows"] == [[40]]

                drop = await s.call_tool("check_sql", {"sql": "DROP TABLE customers"})
                assert _json(drop)["allowed"] is False

                delete = await s.call_tool("run_sql", {"sql": "DELETE FROM orders"})
                assert delete.is_error is True or _json(delete)["allowed"] is False

                tables = _json(await s.call_tool("list_tables", {}))
                assert tables["tables"] == ["customers", "order_items", "orders", "products"]

                count = _json(await s.call_tool("run_sql", {"sql": "SELECT COUNT(*) FROM orders"}))
                assert count["rows"] == [[40]]  # the DELETE did not run

    anyio.run(go)
