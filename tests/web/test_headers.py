"""Browser security headers, the page without inline script, and headers built per
response (the CORS bug: a shared header list grew ``Vary`` and leaked
``Access-Control-Allow-Origin`` onto later answers)."""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

import pytest

from avl.ratelimit import RateLimiter
from avl.testing import FakeClock
from avl.web import DEFAULT_PAGE_CSP, create_app

from .conftest import TinyConsole, client

pytestmark = pytest.mark.anyio

PAGE = {
    "content-security-policy": DEFAULT_PAGE_CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-resource-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
}
API = {
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
}


async def test_page_and_files_get_the_page_policy(app: Any) -> None:
    async with client(app) as c:
        answers = [await c.get(p) for p in ("/", "/static/console.js", "/static/console.css")]
    for r in answers:
        assert r.status_code == 200
        for name, value in PAGE.items():
            assert r.headers[name] == value, (r.url, name)
    csp = answers[0].headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert "default-src 'self'" in csp
    assert "'unsafe-inline'" not in csp
    assert "'unsafe-eval'" not in csp


@pytest.mark.parametrize(
    ("method", "path", "kw"),
    [
        ("GET", "/healthz", {}),
        ("GET", "/readyz", {}),
        ("GET", "/openapi.json", {}),
        ("GET", "/v1/history", {}),
        ("POST", "/v1/sql/check", {"json": {"sql": "SELECT 1"}}),
        ("POST", "/v1/sql/check", {"content": b"x", "headers": {"content-type": "text/plain"}}),
        ("GET", "/nope", {}),
        ("GET", "/healthz", {"headers": {"host": "evil.example"}}),
        (
            "GET",
            "/v1/ask/stream",
            {
                "params": {"question": "how many customers"},
                "headers": {"sec-fetch-site": "same-origin"},
            },
        ),
    ],
)
async def test_api_answers_are_not_cached_or_sniffed(
    app: Any, method: str, path: str, kw: dict[str, Any]
) -> None:
    async with client(app) as c:
        r = await c.request(method, path, **kw)
    for name, value in API.items():
        assert r.headers[name] == value, (path, name)
    assert len(r.headers.get_list("cache-control")) == 1


def test_page_has_no_inline_script_or_style() -> None:
    html = resources.files("avl.web").joinpath("static/index.html").read_text()
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html) is None  # every script is a file
    assert "<style" not in html
    assert re.search(r"\sstyle=", html) is None
    assert re.search(r"\son[a-z]+=", html) is None  # no inline event handlers
    assert "javascript:" not in html


async def test_cors_headers_are_built_per_response(console: TinyConsole) -> None:
    console.limiter = RateLimiter("1000/minute", clock=FakeClock())
    app = create_app(console, cors_origins=["https://app.example"], limit_local=True)
    origin = {"origin": "https://app.example"}
    async with client(app) as c:
        first = [await c.get("/healthz", headers=origin) for _ in range(3)]
        plain = await c.get("/healthz")
        checks = [
            await c.post("/v1/sql/check", json={"sql": "SELECT 1"}, headers=origin)
            for _ in range(3)
        ]
        cached_plain = await c.post("/v1/sql/check", json={"sql": "SELECT 1"})
        problem = [await c.get("/nope", headers=origin) for _ in range(2)]
        problem_plain = await c.get("/nope")
    for r in (*first, *checks, *problem):
        assert r.headers["access-control-allow-origin"] == "https://app.example"
        assert r.headers.get_list("vary") == ["Origin"]
    for r in (plain, cached_plain, problem_plain):
        assert "access-control-allow-origin" not in r.headers
        assert r.headers.get_list("vary") in ([], ["Origin"])  # never "Origin, Origin, ..."
    assert checks[1].content == checks[0].content  # the cached answer, same headers


async def test_cors_preflight_and_foreign_origin(console: TinyConsole) -> None:
    app = create_app(console, cors_origins=["https://app.example"])
    async with client(app) as c:
        pre = await c.options(
            "/v1/sql/check",
            headers={
                "origin": "https://app.example",
                "access-control-request-method": "POST",
                "access-control-request-headers": "content-type",
            },
        )
        granted = await c.post(
            "/v1/sql/check",
            json={"sql": "SELECT 1"},
            headers={"origin": "https://app.example", "sec-fetch-site": "cross-site"},
        )
        foreign_pre = await c.options(
            "/v1/sql/check",
            headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
        )
        foreign = await c.post(
            "/v1/sql/check", json={"sql": "SELECT 1"}, headers={"origin": "https://evil.example"}
        )
    assert pre.status_code == 200
    assert pre.headers["access-control-allow-origin"] == "https://app.example"
    assert granted.status_code == 200
    assert foreign_pre.status_code == 400
    assert "access-control-allow-origin" not in foreign_pre.headers
    assert foreign.status_code == 403
