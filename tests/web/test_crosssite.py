"""The cross-site matrix: every route x Host x Origin x Sec-Fetch-Site x content type x
method, over httpx's ASGI transport, against an oracle written from the rules (not
from the code):

- a Host that is not served: 421; a missing or malformed one: 400 -- on every route;
- a method the route does not serve: 405 (nothing runs);
- public routes (page, files, health, spec) are served whatever the Origin;
- on the others, a foreign Origin is 403, and so is a browser's ``Sec-Fetch-Site:
  cross-site``/``same-site`` without an allowed Origin;
- a POST without ``application/json`` is 415;
- a GET stream without ``Sec-Fetch-Site: same-origin``/``none``, an allowed Origin or
  credentials is 403;
- anything else is served exactly as the plain request is.
"""

from __future__ import annotations

from typing import Any

import pytest

from avl.web import ApiKeyAuthenticator, Identity, create_app
from avl.web._routes import FAVICON, ROUTES, STATIC, RouteSpec

from .conftest import TinyConsole, client

pytestmark = pytest.mark.anyio

OWN = "127.0.0.1:8000"
CORS = "https://app.example"

# A valid request for each route: (path, json body or None, query params).
REQUESTS: dict[str, tuple[str, Any, dict[str, str]]] = {
    "sql_check": ("/v1/sql/check", {"sql": "SELECT name FROM customers"}, {}),
    "healthz": ("/healthz", None, {}),
    "ask": ("/v1/ask", {"question": "how many customers"}, {}),
    "ask_stream": ("/v1/ask/stream", None, {"question": "how many customers"}),
    "sql_run": ("/v1/sql/run", {"sql": "SELECT id FROM customers"}, {}),
    "train": ("/v1/train", {"documentation": "Customers buy things."}, {}),
    "history_search": ("/v1/history", None, {}),
    "history_verify": ("/v1/history/verify", None, {}),
    "history_get": ("/v1/history/nope", None, {}),
    "ratelimit_status": ("/v1/ratelimit", None, {}),
    "readyz": ("/readyz", None, {}),
    "metrics": ("/metrics", None, {}),
    "openapi": ("/openapi.json", None, {}),
    "page": ("/", None, {}),
    "static": ("/static/console.js", None, {}),
    "favicon": ("/favicon.ico", None, {}),
}
ALL_ROUTES: list[RouteSpec] = [*ROUTES, STATIC, FAVICON]
assert set(REQUESTS) == {r.name for r in ALL_ROUTES}  # every route is in the matrix

HOSTS = {
    OWN: None,
    "localhost": None,
    "[::1]:8000": None,
    "LOCALHOST:1": None,
    "evil.example": 421,
    "127.0.0.1.nip.io:8000": 421,
    "127.0.0.2": 421,
    "": 400,
    "a b": 400,
    "[::1": 400,
}
ORIGINS = [
    None,
    f"http://{OWN}",
    f"https://{OWN}",
    CORS,
    "http://evil.example",
    "null",
    f"http://{OWN.split(':')[0]}:9999",
]
SITES = [None, "same-origin", "none", "same-site", "cross-site"]
CTYPES = [
    "application/json",
    "application/json; charset=utf-8",
    None,
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/jsonx",
]
REFUSED = {400, 403, 405, 415, 421}


def _origin_allowed(origin: str | None) -> bool:
    return origin is not None and (origin in (f"http://{OWN}", f"https://{OWN}", CORS))


def oracle(
    route: RouteSpec,
    method: str,
    *,
    origin: str | None = None,
    site: str | None = None,
    ctype: str | None = "application/json",
    credentials: bool = False,
) -> int | None:
    """The refusal status the rules demand, or ``None`` for "served as usual"."""
    if method != route.method:
        return 405
    if route.public:
        return None
    allowed = _origin_allowed(origin)
    if origin is not None and not allowed:
        return 403
    if site in ("cross-site", "same-site") and not allowed:
        return 403
    if method == "POST":
        if ctype is None or ctype.split(";")[0].strip() != "application/json":
            return 415
    elif route.stream and not (allowed or credentials or site in ("same-origin", "none")):
        return 403
    return None


def _request(
    route: RouteSpec, method: str, headers: dict[str, str], ctype: str | None
) -> dict[str, Any]:
    path, body, params = REQUESTS[route.name]
    kw: dict[str, Any] = {"params": params, "headers": dict(headers)}
    if method != "GET":
        kw["content"] = b"" if body is None else __import__("json").dumps(body).encode()
        if ctype is not None:
            kw["headers"]["content-type"] = ctype
    return {"method": method, "url": path, **kw}


async def _baseline(c: Any, route: RouteSpec) -> int:
    headers = {"sec-fetch-site": "same-origin"} if route.stream else {}
    r = await c.request(**_request(route, route.method, headers, "application/json"))
    assert r.status_code not in REFUSED, (route.name, r.status_code, r.text)
    return int(r.status_code)


@pytest.mark.parametrize("route", ALL_ROUTES, ids=[r.name for r in ALL_ROUTES])
async def test_cross_site_matrix(console: TinyConsole, route: RouteSpec) -> None:
    app = create_app(console, cors_origins=[CORS])
    checked = 0
    async with client(app) as c:
        served = await _baseline(c, route)

        async def expect(
            want: int | None, method: str, headers: dict[str, str], ctype: str | None, label: str
        ) -> None:
            nonlocal checked
            r = await c.request(**_request(route, method, headers, ctype))
            got = r.status_code
            if want is None:
                assert got == served, (route.name, label, got, r.text)
            else:
                assert got == want, (route.name, label, got, r.text)
                assert r.headers["content-type"] == "application/problem+json"
            checked += 1

        base = {"sec-fetch-site": "same-origin"} if route.stream else {}
        for host, status in HOSTS.items():
            await expect(
                status, route.method, {**base, "host": host}, "application/json", f"host={host!r}"
            )
        for origin in ORIGINS:
            for site in SITES:
                headers = {}
                if origin is not None:
                    headers["origin"] = origin
                if site is not None:
                    headers["sec-fetch-site"] = site
                want = oracle(route, route.method, origin=origin, site=site)
                await expect(
                    want, route.method, headers, "application/json", f"origin={origin} site={site}"
                )
        if route.method == "POST":
            for ctype in CTYPES:
                for origin in (None, f"http://{OWN}"):
                    headers = {"origin": origin} if origin else {}
                    want = oracle(route, "POST", origin=origin, ctype=ctype)
                    await expect(want, "POST", headers, ctype, f"ctype={ctype} origin={origin}")
        for method in ("GET", "POST", "PUT", "DELETE", "PATCH"):
            if method != route.method:
                await expect(
                    405, method, {"origin": "http://evil.example"}, "text/plain", f"method={method}"
                )
    assert checked >= len(HOSTS) + len(ORIGINS) * len(SITES) + 4


@pytest.mark.parametrize(
    "route", [r for r in ALL_ROUTES if r.stream and r.method == "GET"], ids=lambda r: r.name
)
async def test_get_stream_with_credentials_needs_no_fetch_metadata(
    console: TinyConsole, route: RouteSpec
) -> None:
    """No other page can attach X-API-Key or a bearer token without a CORS grant."""
    key = "stream-key-0123456789"
    auth = ApiKeyAuthenticator.from_keys({key: Identity(user="ann")})
    app = create_app(console, authenticator=auth)
    async with client(app) as c:
        with_key = await c.request(**_request(route, "GET", {"x-api-key": key}, None))
        bearer = await c.request(**_request(route, "GET", {"authorization": f"Bearer {key}"}, None))
        bare = await c.request(**_request(route, "GET", {}, None))
        cross = await c.request(
            **_request(route, "GET", {"x-api-key": key, "sec-fetch-site": "cross-site"}, None)
        )
    assert oracle(route, "GET", credentials=True) is None
    assert (with_key.status_code, bearer.status_code, bare.status_code, cross.status_code) == (
        200,
        200,
        403,
        403,
    )


async def test_head_is_guarded_like_get(console: TinyConsole) -> None:
    app = create_app(console)
    async with client(app) as c:
        ok = await c.head("/v1/history")
        evil = await c.head("/v1/history", headers={"origin": "http://evil.example"})
        stream = await c.head("/v1/ask/stream", params={"question": "how many customers"})
    assert (ok.status_code, evil.status_code, stream.status_code) == (200, 403, 403)


@pytest.mark.parametrize(
    ("allowed", "host", "status"),
    [
        (["api.example.com"], "api.example.com", 200),
        (["api.example.com"], "API.EXAMPLE.COM:443", 200),
        (["api.example.com"], "evil.api.example.com", 421),
        (["api.example.com:8443"], "api.example.com:8443", 200),
        (["api.example.com:8443"], "api.example.com", 421),
        (["api.example.com:8443"], "api.example.com:8444", 421),
        (["*.example.com"], "a.example.com", 200),
        (["*.example.com"], "example.com", 421),
        (["*.example.com"], "aexample.com", 421),
        (["10.0.0.5"], "10.0.0.5:8000", 200),
        (["2001:db8::1"], "[2001:db8::1]:8000", 200),
        (["*"], "anything.example", 200),
        (["10.0.0.0/8"], "10.1.2.3:8000", 200),
        (["10.0.0.0/8"], "11.0.0.1", 421),
        (["10.0.0.0/8"], "10.evil.example", 421),
        (["fd00::/8"], "[fd00::5]:8000", 200),
        ([], "localhost.", 200),
        ([], "127.0.0.1:1", 200),
    ],
)
async def test_allowed_hosts(
    console: TinyConsole, allowed: list[str], host: str, status: int
) -> None:
    app = create_app(console, allowed_hosts=allowed)
    async with client(app) as c:
        r = await c.get("/healthz", headers={"host": host})
    assert r.status_code == status


async def test_a_repeated_host_is_refused(console: TinyConsole) -> None:
    # RFC 9112: more than one Host is a 400, whichever of them is served.
    app = create_app(console)
    async with client(app) as c:
        for hosts in (["127.0.0.1:8000", "evil.example"], ["evil.example", "127.0.0.1:8000"]):
            r = await c.get("/v1/history", headers=[("host", h) for h in hosts])
            assert r.status_code == 400
        same = await c.get("/v1/history", headers=[("host", "localhost"), ("host", "localhost")])
        assert same.status_code == 400
        ok = await c.get("/v1/history", headers=[("host", "localhost"), ("x-a", "1"), ("x-a", "2")])
        assert ok.status_code == 200  # other headers may repeat


def test_allowed_hosts_are_validated(console: TinyConsole) -> None:
    from avl.errors import ConfigError

    for bad in (
        "http://a.example",
        "a.example/path",
        "*",
        "a.*.example",
        "*.example.com:80",
        "",
        "10.0.0.0/33",
    ):
        if bad == "*":
            create_app(console, allowed_hosts=[bad])  # allowed: turns the check off
            continue
        with pytest.raises(ConfigError, match="allowed_hosts"):
            create_app(console, allowed_hosts=[bad])
    with pytest.raises(ConfigError, match="cors_origins"):
        create_app(console, cors_origins=["app.example"])
