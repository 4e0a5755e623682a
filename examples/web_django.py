"""Serve the avl app beside a Django project, from one ASGI application.

Django's ASGI handler has no ``mount``; a few lines of ASGI send ``/avl/...`` to
avl (with ``root_path`` set, so its links and OpenAPI paths stay right) and
everything else to Django. Run it under any ASGI server::

    uvicorn examples.web_django:application --host 127.0.0.1

``python examples/web_django.py`` calls both apps in-process and prints what they
answer.
"""

from __future__ import annotations

from typing import Any

import django
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.urls import path

from avl.console import Console
from avl.web import create_app


def home(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"app": "my django site", "path": request.path})


urlpatterns = [path("", home)]

if not settings.configured:
    settings.configure(
        DEBUG=False,
        ROOT_URLCONF=__name__,
        ALLOWED_HOSTS=["127.0.0.1", "localhost", "testserver"],
        SECRET_KEY="example-only-not-secret",
        INSTALLED_APPS=[],
        MIDDLEWARE=[],
    )
    django.setup()

from django.core.asgi import get_asgi_application  # noqa: E402 (needs the settings)


def mount(prefix: str, inner: Any, outer: Any) -> Any:
    """An ASGI app sending ``prefix`` and below to ``inner``, the rest to ``outer``."""

    async def application(scope: Any, receive: Any, send: Any) -> None:
        path_ = scope.get("path", "")
        if scope["type"] == "http" and (path_ == prefix or path_.startswith(prefix + "/")):
            scope = {**scope, "root_path": scope.get("root_path", "") + prefix}
            await inner(scope, receive, send)
        else:
            await outer(scope, receive, send)

    return application


console = Console()
application = mount("/avl", create_app(console), get_asgi_application())


async def _demo() -> None:
    import httpx

    transport = httpx.ASGITransport(app=application, client=("127.0.0.1", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        print((await client.get("/")).json())
        print((await client.get("/avl/healthz")).json())
        check = await client.post("/avl/v1/sql/check", json={"sql": "SELECT city FROM customers"})
        print(check.status_code, check.json()["allowed"], check.json()["sql"])
        page = await client.get("/avl/")
        print(page.status_code, page.headers["content-type"], "avl console" in page.text)
        print((await client.get("/avl/v1/nowhere")).json()["status"])


if __name__ == "__main__":
    import asyncio

    try:
        asyncio.run(_demo())
    finally:
        console.close()
