"""Watch an answer arrive: the SSE stream of POST /v1/ask, parsed with avl.sse.

Runs in-process (httpx's ASGI transport), so no server is needed::

    python examples/web_stream.py "How many customers are there?"
"""

from __future__ import annotations

import asyncio
import json
import sys

import httpx

from avl import sse
from avl.console import Console
from avl.web import create_app


async def main(question: str) -> None:
    console = Console()
    try:
        app = create_app(console)
        transport = httpx.ASGITransport(app=app)  # client address 127.0.0.1: served locally
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            async with client.stream(
                "POST",
                "/v1/ask",
                json={"question": question},
                headers={"accept": "text/event-stream"},
            ) as response:
                async for event in sse.aparse(response.aiter_bytes()):
                    data = json.loads(event.data)
                    if event.event == "sql":
                        print(f"[{event.id}] sql:     {data['sql']}")
                    elif event.event == "verdict":
                        print(f"[{event.id}] allowed: {data['allowed']}")
                    elif event.event == "rows":
                        print(f"[{event.id}] rows:    {data['columns']} {data['rows'][:5]}")
                    else:
                        print(f"[{event.id}] {event.event}")
            check = await client.post("/v1/sql/check", json={"sql": "DELETE FROM customers"})
            print(
                "check DELETE:",
                check.json()["allowed"],
                [v["code"] for v in check.json()["violations"]],
            )
    finally:
        console.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "How many customers are there?"))
