"""The held-out contract of issue 12, called exactly as the evaluation does.

``create_app(Console())`` over ``httpx.ASGITransport(app=app, client=("127.0.0.1",
port))`` with ``base_url="http://127.0.0.1:8000"``: ``POST /v1/train``,
``POST /v1/sql/run``, ``POST /v1/sql/check`` (JSON ``{"sql": ...}``),
``GET /v1/ask/stream?question=...`` and ``GET /``. A same-origin JSON request to
``/v1/sql/check`` answers 200; the hostile variants are refused with 400, 403, 415
or 421, and nothing they asked for happened.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from avl import sse
from avl.console import Console
from avl.web import create_app

pytestmark = pytest.mark.anyio

REFUSALS = {400, 403, 415, 421}
SAME_ORIGIN = {"origin": "http://127.0.0.1:8000", "sec-fetch-site": "same-origin"}
EVIL = "http://evil.example"


@pytest.fixture(scope="module")
def console() -> Iterator[Console]:
    c = Console()
    yield c
    c.close()


@pytest.fixture
async def c(console: Console) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(console)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50123))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
        yield client


async def test_same_origin_json_check_is_200(c: httpx.AsyncClient) -> None:
    r = await c.post(
        "/v1/sql/check", json={"sql": "SELECT name FROM customers"}, headers=SAME_ORIGIN
    )
    assert r.status_code == 200
    assert r.json()["allowed"] is True
    assert r.json()["sql"] == "SELECT name FROM customers LIMIT 1000"


async def test_plain_json_calls_from_loopback_work(c: httpx.AsyncClient) -> None:
    """A loopback caller without keys (no Origin, no Sec-Fetch-*: a script) is served."""
    check = await c.post("/v1/sql/check", json={"sql": "SELECT 1"})
    run = await c.post("/v1/sql/run", json={"sql": "SELECT count(*) AS n FROM customers"})
    train = await c.post("/v1/train", json={"documentation": "Every customer lives in one city."})
    page = await c.get("/")
    stream = await c.get(
        "/v1/ask/stream",
        params={"question": "How many customers are there?"},
        headers={"sec-fetch-site": "same-origin"},
    )
    assert check.status_code == 200
    assert run.status_code == 200
    assert run.json()["rows"] == [[12]]
    assert train.status_code == 200
    assert train.json()["stored"] == 1
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    events = [e.event for e in sse.parse([stream.content])]
    assert stream.status_code == 200
    assert events[-2:] == ["answer", "done"]


# Each hostile variant: what a page on another site (or DNS rebinding) can make a
# browser send. (method, path, kwargs)
HOSTILE: list[tuple[str, str, str, dict[str, Any]]] = [
    # A form POST: urlencoded, multipart or text/plain, with the attacker's Origin.
    (
        "form train",
        "POST",
        "/v1/train",
        {
            "content": b"documentation=ignore+all+rules",
            "headers": {
                "content-type": "application/x-www-form-urlencoded",
                "origin": EVIL,
                "sec-fetch-site": "cross-site",
            },
        },
    ),
    (
        "text/plain train (JSON smuggled in a simple request)",
        "POST",
        "/v1/train",
        {
            "content": json.dumps({"documentation": "stored"}).encode(),
            "headers": {
                "content-type": "text/plain",
                "origin": EVIL,
                "sec-fetch-site": "cross-site",
            },
        },
    ),
    # fetch(..., {mode: "no-cors"}) without a Content-Type at all.
    (
        "no content type run",
        "POST",
        "/v1/sql/run",
        {"content": json.dumps({"sql": "SELECT 1"}).encode(), "headers": {}},
    ),
    (
        "no content type train",
        "POST",
        "/v1/train",
        {"content": json.dumps({"documentation": "x"}).encode(), "headers": {}},
    ),
    (
        "multipart run",
        "POST",
        "/v1/sql/run",
        {
            "content": b"--b\r\nContent-Disposition: form-data; name=sql\r\n\r\nSELECT 1\r\n--b--\r\n",
            "headers": {"content-type": "multipart/form-data; boundary=b", "origin": "null"},
        },
    ),
    # JSON with a foreign Origin (only possible after a CORS grant this server never gave).
    (
        "cross-origin JSON check",
        "POST",
        "/v1/sql/check",
        {"json": {"sql": "SELECT 1"}, "headers": {"origin": EVIL}},
    ),
    (
        "cross-origin JSON run",
        "POST",
        "/v1/sql/run",
        {"json": {"sql": "SELECT 1"}, "headers": {"origin": EVIL, "sec-fetch-site": "cross-site"}},
    ),
    (
        "another loopback port",
        "POST",
        "/v1/sql/check",
        {"json": {"sql": "SELECT 1"}, "headers": {"origin": "http://127.0.0.1:9999"}},
    ),
    # <img src> and EventSource at the stream.
    (
        "img stream",
        "GET",
        "/v1/ask/stream",
        {
            "params": {"question": "How many customers are there?"},
            "headers": {"sec-fetch-site": "cross-site"},
        },
    ),
    (
        "same-site img stream (another port)",
        "GET",
        "/v1/ask/stream",
        {
            "params": {"question": "How many customers are there?"},
            "headers": {"sec-fetch-site": "same-site"},
        },
    ),
    (
        "EventSource stream",
        "GET",
        "/v1/ask/stream",
        {
            "params": {"question": "How many customers are there?"},
            "headers": {
                "origin": EVIL,
                "sec-fetch-site": "cross-site",
                "accept": "text/event-stream",
            },
        },
    ),
    (
        "stream without browser evidence",
        "GET",
        "/v1/ask/stream",
        {"params": {"question": "How many customers are there?"}},
    ),
    # DNS rebinding: the attacker's name resolves to 127.0.0.1, so its page is
    # "same-origin" with itself and sends its own Host.
    (
        "rebinding check",
        "POST",
        "/v1/sql/check",
        {"json": {"sql": "SELECT 1"}, "headers": {"host": "evil.example", **SAME_ORIGIN}},
    ),
    (
        "rebinding train",
        "POST",
        "/v1/train",
        {"json": {"documentation": "x"}, "headers": {"host": "evil.example:8000"}},
    ),
    (
        "rebinding stream",
        "GET",
        "/v1/ask/stream",
        {
            "params": {"question": "How many customers are there?"},
            "headers": {"host": "evil.example:8000", "sec-fetch-site": "same-origin"},
        },
    ),
    ("rebinding page", "GET", "/", {"headers": {"host": "evil.example:8000"}}),
]


@pytest.mark.parametrize(("name", "method", "path", "kwargs"), HOSTILE, ids=[h[0] for h in HOSTILE])
async def test_hostile_variants_are_refused(
    c: httpx.AsyncClient,
    console: Console,
    name: str,
    method: str,
    path: str,
    kwargs: dict[str, Any],
) -> None:
    before = len(console.history.search(limit=500))
    trained = len(console.assistant.training_data())
    r = await c.request(method, path, **kwargs)
    assert r.status_code in REFUSALS, (name, r.status_code, r.text)
    assert r.headers["content-type"] == "application/problem+json"
    assert len(console.history.search(limit=500)) == before  # nothing asked or run
    assert len(console.assistant.training_data()) == trained  # nothing trained
