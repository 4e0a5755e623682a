"""The peer: a bare Starlette app with the same shapes as avl's cheapest endpoints.

``GET /healthz`` answers the same 15 bytes of JSON as avl's; ``POST /echo`` parses a
JSON body and answers JSON (what any JSON API pays before doing its own work).

Run: ``uvicorn benches.load.bare_app:app --port 8101`` (the load runner does it).
"""

from __future__ import annotations

import json

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def healthz(request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


async def echo(request: Request) -> Response:
    data = json.loads(await request.body())
    return Response(
        json.dumps({"allowed": True, "sql": data.get("sql", "")}).encode(),
        media_type="application/json",
    )


app = Starlette(routes=[Route("/healthz", healthz), Route("/echo", echo, methods=["POST"])])
