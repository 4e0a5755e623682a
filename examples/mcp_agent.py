"""An agent asking a database through avl's MCP server, with the SDK's own client.

Starts ``avl mcp`` on the demo shop database as a subprocess (what Claude Desktop or
an IDE does with examples/mcp_client.json), lists the tools, asks a question, and
shows that a destructive statement is refused.

Run: ``python examples/mcp_agent.py`` (needs ``pip install 'avl[mcp]'``).
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from avl.assistant import create_demo_database


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = create_demo_database(Path(tmp) / "shop.db")
        params = StdioServerParameters(
            command=sys.executable, args=["-m", "avl.cli", "mcp", "--db", f"sqlite:///{db}"]
        )
        async with stdio_client(params) as (r, w), ClientSession(r, w) as session:
            await session.initialize()
            tools = await session.list_tools()
            print("tools:", ", ".join(t.name for t in tools.tools))
            answer = await session.call_tool("ask", {"question": "How many orders are there?"})
            print("ask:", json.dumps(answer.structured_content))
            refused = await session.call_tool("run_sql", {"sql": "DROP TABLE orders"})
            print("run_sql DROP -> error:", refused.is_error, refused.content[0].text)


if __name__ == "__main__":
    asyncio.run(main())
