"""Mount the avl app inside another Starlette (or FastAPI) application.

python examples/web_mount.py
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from avl.console import Console
from avl.web import create_app


async def home(request: Request) -> JSONResponse:
    return JSONResponse({"app": "my service"})


if __name__ == "__main__":
    console = Console()
    try:
        app = Starlette(routes=[Route("/", home), Mount("/avl", app=create_app(console))])
        with TestClient(app) as client:
            print(client.get("/").json())
            print(client.get("/avl/healthz").json())
            verdict = client.post("/avl/v1/sql/check", json={"sql": "SELECT city FROM customers"})
            print(verdict.json()["allowed"], verdict.json()["sql"])
    finally:
        console.close()
