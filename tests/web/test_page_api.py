"""What the console page needs from the HTTP side: the chart spec in the answer and
the icon at the path browsers probe."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from avl.console import Console
from avl.web import create_app
from avl.web._schemas import answer_out, chart_out

from .conftest import TinyConsole, client

pytestmark = pytest.mark.anyio


@pytest.fixture
def demo() -> Iterator[Console]:
    console = Console()
    yield console
    console.close()


async def test_the_answer_carries_the_chart_spec(demo: Console) -> None:
    async with client(create_app(demo)) as c:
        r = await c.post(
            "/v1/ask", json={"question": "How many customers are there in each country?"}
        )
        one = await c.post("/v1/ask", json={"question": "How many customers are there?"})
    body = r.json()
    spec = body["chart"]
    assert spec["mark"] == "bar"
    assert spec["encoding"]["x"]["field"] == body["columns"][0]
    assert spec["encoding"]["y"] == {"field": body["columns"][1], "type": "quantitative"}
    assert [list(v.values()) for v in spec["data"]["values"]] == body["rows"]
    assert "chart" not in body["details"]
    assert one.status_code == 200
    assert one.json()["chart"] is None


async def test_the_stream_answer_carries_the_chart_spec(demo: Console) -> None:
    async with client(create_app(demo)) as c:
        r = await c.post(
            "/v1/ask",
            json={"question": "How many customers are there in each country?"},
            headers={"accept": "text/event-stream"},
        )
    blocks = [b for b in r.text.split("\n\n") if "event: answer" in b]
    assert len(blocks) == 1
    assert '"chart":{"$schema":"https://vega.github.io/schema/vega-lite/v5.json"' in blocks[0]


class _Wrapped:
    """A chart object that carries its spec (as a notebook-drawable chart would)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec


class _Dictish:
    def to_dict(self) -> dict[str, Any]:
        return {"mark": "line"}


class _Answer:
    def __init__(self, chart: Any) -> None:
        self._chart = chart
        self.question = "q"

    def chart(self) -> Any:
        return self._chart


def test_chart_out_reads_a_dict_or_an_object_carrying_one() -> None:
    assert chart_out(_Answer({"mark": "bar"})) == {"mark": "bar"}
    assert chart_out(_Answer(_Wrapped({"mark": "point"}))) == {"mark": "point"}
    assert chart_out(_Answer(_Dictish())) == {"mark": "line"}
    assert chart_out(_Answer(None)) is None
    assert chart_out(_Answer("not a spec")) is None
    assert chart_out(object()) is None  # an answer without chart()
    assert answer_out(object(), "q", "default").chart is None


async def test_the_favicon_is_an_svg_at_both_paths(console: TinyConsole) -> None:
    async with client(create_app(console)) as c:
        ico = await c.get("/favicon.ico")
        svg = await c.get("/static/favicon.svg")
        page = await c.get("/")
    for r in (ico, svg):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("image/svg+xml")
        assert r.content == svg.content
        assert "content-security-policy" in r.headers  # a page file: the page's headers
    assert 'rel="icon" href="static/favicon.svg"' in page.text
    assert b"<script" not in ico.content


async def test_the_favicon_is_public_and_served_only_to_allowed_hosts(
    console: TinyConsole,
) -> None:
    from avl.web import ApiKeyAuthenticator, Identity

    auth = ApiKeyAuthenticator.from_keys({"k" * 24: Identity(user="u")})
    async with client(create_app(console, authenticator=auth), host="10.0.0.9") as c:
        public = await c.get("/favicon.ico")
        rebound = await c.get("/favicon.ico", headers={"host": "evil.example"})
        posted = await c.post("/favicon.ico", json={})
    assert public.status_code == 200
    assert rebound.status_code in (400, 421)
    assert posted.status_code == 405
