"""The cost of an MCP ``check_sql`` tool call beside a direct ``SafeQuery.check``.

Both run in one process on the same statements and the same guard: the tool call
goes through the official SDK's in-process client and server (JSON-RPC messages,
validation of the input and the structured output), so the difference is what the
protocol adds. Run: ``python benches/bench_mcp.py [--n 2000]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client
from typing_extensions import TypedDict

from avl.assistant import create_demo_database
from avl.console import Console
from avl.mcp import create_server

STATEMENTS = [
    "SELECT name, city FROM customers WHERE city = 'Paris' ORDER BY name",
    "SELECT c.name, SUM(o.total) FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY c.name",
    "DELETE FROM orders",
    "SELECT COUNT(*) FROM products WHERE price > 10",
]


class Out(TypedDict):
    """The bare tool's output."""

    allowed: bool
    sql: str | None


def _bare_server(guard: object) -> object:
    """The SDK's floor: a tool that runs the same check on the event loop and returns a dict."""
    from mcp.server.mcpserver import MCPServer

    srv = MCPServer("bare")

    @srv.tool()
    def check_sql(sql: str) -> Out:
        v = guard.check(sql)  # type: ignore[attr-defined]
        return {"allowed": v.allowed, "sql": v.sql}

    return srv


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000, help="calls per round")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = create_demo_database(Path(tmp) / "shop.db")
        console = Console(db=f"sqlite:///{db}", history="", ratelimit="")
        guard = console.guard_for(None)
        server = create_server(console)
        bare = _bare_server(guard)
        direct: list[float] = []
        tool: list[float] = []
        floor: list[float] = []

        async def rounds() -> None:
            async with Client(server) as client:
                for _ in range(args.rounds):
                    t0 = time.perf_counter()
                    for i in range(args.n):
                        guard.check(STATEMENTS[i % len(STATEMENTS)])
                    direct.append((time.perf_counter() - t0) / args.n)
                    t0 = time.perf_counter()
                    for i in range(args.n):
                        await client.call_tool(
                            "check_sql", {"sql": STATEMENTS[i % len(STATEMENTS)]}
                        )
                    tool.append((time.perf_counter() - t0) / args.n)
            async with Client(bare) as client:
                for _ in range(args.rounds):
                    t0 = time.perf_counter()
                    for i in range(args.n):
                        await client.call_tool(
                            "check_sql", {"sql": STATEMENTS[i % len(STATEMENTS)]}
                        )
                    floor.append((time.perf_counter() - t0) / args.n)

        anyio.run(rounds)
        console.close()
    d, t, f = min(direct), min(tool), min(floor)
    print(
        f"direct SafeQuery.check (cached): best {d * 1e6:8.1f} us  median {statistics.median(direct) * 1e6:8.1f} us"
    )
    print(
        f"MCP check_sql tool call:         best {t * 1e6:8.1f} us  median {statistics.median(tool) * 1e6:8.1f} us"
    )
    print(
        f"bare SDK tool (same check, sync, no avl): best {f * 1e6:8.1f} us  median {statistics.median(floor) * 1e6:8.1f} us"
    )
    print(f"avl's share above the bare SDK tool: {(t - f) * 1e6:.1f} us per call ({t / f:.2f}x)")
    print(
        f"overhead of the tool call: {(t - d) * 1e6:.1f} us per call ({t / d:.0f}x the direct check)"
    )


if __name__ == "__main__":
    main()
