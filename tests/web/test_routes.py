"""Every route, success and error, through httpx's ASGI transport."""

from __future__ import annotations

import json
from typing import Any

import pytest

from avl import sse
from avl.ratelimit import RateLimiter
from avl.testing import FakeClock
from avl.web import ApiKeyAuthenticator, Identity, create_app

from .conftest import TinyConsole, client

pytestmark = pytest.mark.anyio

# What a browser sends for a request of the console page itself.
SAME_ORIGIN = {"sec-fetch-site": "same-origin"}


async def test_sql_check_allowed(app: Any) -> None:
    async with client(app) as c:
        r = await c.post("/v1/sql/check", json={"sql": "SELECT name FROM customers"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["allowed"] is True
    assert body["violations"] == []
    assert body["kind"] == "select"
    assert body["tables"] == ["customers"]
    assert body["sql"] == "SELECT name FROM customers LIMIT 100"
    assert body["role"] == "default"


async def test_sql_check_refused_is_200_with_violations(app: Any) -> None:
    async with client(app) as c:
        r = await c.post("/v1/sql/check", json={"sql": "DELETE FROM customers"})
    assert r.status_code == 200
    body = r.json()
    assert body["allowed"] is False
    assert body["sql"] is None
    assert [v["code"] for v in body["violations"]] == ["statement_kind"]
    # a whole statement is refused from its first word
    assert body["violations"][0]["position"] == {"line": 1, "col": 1, "offset": 0}


async def test_sql_check_cached_answer_is_identical(console: TinyConsole, clock: FakeClock) -> None:
    console.limiter = RateLimiter("100/minute", clock=clock)
    key = {"x-api-key": "ann-key-0123456789"}
    app = create_app(
        console,
        authenticator=ApiKeyAuthenticator.from_keys({key["x-api-key"]: Identity(user="ann")}),
    )
    body = b'{"sql": "SELECT id FROM orders"}'
    json_ct = {"content-type": "application/json", **key}

    async def chunked():  # type: ignore[no-untyped-def]
        yield body[:7]
        yield body[7:]

    async with client(app) as c:
        first = await c.post("/v1/sql/check", content=body, headers=json_ct)
        second = await c.post("/v1/sql/check", content=body, headers=json_ct)  # from the cache
        split = await c.post("/v1/sql/check", content=chunked(), headers=json_ct)
        charset = await c.post(
            "/v1/sql/check",
            content=body,
            headers={"content-type": "application/json; charset=utf-8", **key},
        )
        wrong_type = await c.post(
            "/v1/sql/check", content=body, headers={"content-type": "text/plain", **key}
        )
    assert first.json()["allowed"] is True
    for r in (second, split, charset):
        assert r.status_code == 200
        assert r.content == first.content
        assert r.headers["content-type"] == "application/json"
        assert r.headers["content-length"] == str(len(first.content))
        # The cached answer carries the rate-limit headers like any other.
        assert r.headers["x-ratelimit-limit"] == first.headers["x-ratelimit-limit"]
        assert r.headers["ratelimit-policy"] == first.headers["ratelimit-policy"]
    assert int(second.headers["x-ratelimit-remaining"]) == (
        int(first.headers["x-ratelimit-remaining"]) - 1
    )
    assert wrong_type.status_code == 415  # a cached body does not skip the media type check


@pytest.mark.parametrize(
    ("body", "headers", "status", "detail"),
    [
        (b"{not json", {"content-type": "application/json"}, 400, "not valid JSON"),
        (b"{}", {"content-type": "application/json"}, 422, "sql: required"),
        (
            b'{"sql": 3}',
            {"content-type": "application/json"},
            422,
            "sql: expected a string, got integer",
        ),
        (
            b'{"sql": ""}',
            {"content-type": "application/json"},
            422,
            "sql: must be at least 1 characters",
        ),
        (
            b'{"sql": "SELECT 1", "x": 1}',
            {"content-type": "application/json"},
            422,
            "unknown field(s) ['x']",
        ),
        (
            b"[1]",
            {"content-type": "application/json"},
            422,
            "body: expected a JSON object, got array",
        ),
        (
            b'{"sql": "SELECT 1", "params": {"a": [1]}}',
            {"content-type": "application/json"},
            422,
            "params",
        ),
        (
            b"sql=1",
            {"content-type": "application/x-www-form-urlencoded"},
            415,
            "the body must be application/json",
        ),
    ],
)
async def test_sql_check_bad_bodies(
    app: Any, body: bytes, headers: dict[str, str], status: int, detail: str
) -> None:
    async with client(app) as c:
        r = await c.post("/v1/sql/check", content=body, headers=headers)
    assert r.status_code == status
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["status"] == status
    assert problem["type"].startswith("urn:avl:problem:")
    assert detail in problem["detail"]
    assert problem["instance"] == "/v1/sql/check"
    assert "Traceback" not in r.text


async def test_body_limit_413(console: TinyConsole) -> None:
    app = create_app(console, max_body_bytes=100)
    async with client(app) as c:
        r = await c.post("/v1/sql/check", json={"sql": "SELECT " + "1," * 100 + "1"})
    assert r.status_code == 413
    assert r.json()["title"] == "Request too large"


@pytest.mark.parametrize("path", ["/v1/sql/check", "/v1/sql/run", "/v1/ask"])
async def test_body_limit_413_without_content_length(
    console: TinyConsole, clock: FakeClock, path: str
) -> None:
    console.limiter = RateLimiter("100/minute", clock=clock)
    app = create_app(console, max_body_bytes=100, limit_local=True)

    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(10):
            yield b'{"sql": "SELECT 1111111111111111111"}'

    async with client(app) as c:
        r = await c.post(path, content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["detail"] == "request body over 100 bytes"
    assert r.headers["x-ratelimit-remaining"] == "99"  # counted, and said so


async def test_check_under_other_role(console: TinyConsole) -> None:
    user = Identity(user="ann", role="default")
    admin = Identity(user="root", role="admin", permissions={"sql:any-role"})
    auth = ApiKeyAuthenticator.from_keys({"ann-key-0123456789": user, "root-key-0123456789": admin})
    app = create_app(console, authenticator=auth)
    async with client(app) as c:
        denied = await c.post(
            "/v1/sql/check",
            json={"sql": "SELECT 1", "role": "admin"},
            headers={"x-api-key": "ann-key-0123456789"},
        )
        own = await c.post(
            "/v1/sql/check",
            json={"sql": "SELECT id FROM orders", "role": "default"},
            headers={"x-api-key": "ann-key-0123456789"},
        )
        other = await c.post(
            "/v1/sql/check",
            json={"sql": "SELECT id FROM orders", "role": "default"},
            headers={"x-api-key": "root-key-0123456789"},
        )
        unknown = await c.post(
            "/v1/sql/check",
            json={"sql": "SELECT 1", "role": "nobody"},
            headers={"x-api-key": "root-key-0123456789"},
        )
    assert denied.status_code == 403
    assert "sql:any-role" in denied.json()["detail"]
    assert own.json()["sql"] == "SELECT id FROM orders LIMIT 100"
    assert other.json()["role"] == "default"
    assert other.json()["sql"] == "SELECT id FROM orders LIMIT 100"
    assert unknown.status_code == 404


async def test_row_filter_context_from_identity_wins(console: TinyConsole) -> None:
    tenant = Identity(user="t1", role="tenant", context={"cid": 1})
    auth = ApiKeyAuthenticator.from_keys({"tenant-key-0123456789": tenant})
    app = create_app(console, authenticator=auth)
    async with client(app, headers={"x-api-key": "tenant-key-0123456789"}) as c:
        r = await c.post(
            "/v1/sql/run",
            json={"sql": "SELECT id, total FROM orders ORDER BY id", "params": {"cid": 2}},
        )
    assert r.status_code == 200, r.text
    assert r.json()["rows"] == [[1, 10.0], [2, 5.5]]


async def test_sql_run_allowed_and_refused(console: TinyConsole, app: Any) -> None:
    async with client(app) as c:
        ok = await c.post("/v1/sql/run", json={"sql": "SELECT id, name FROM customers ORDER BY id"})
        bad = await c.post("/v1/sql/run", json={"sql": "DROP TABLE customers"})
        broken = await c.post("/v1/sql/run", json={"sql": "SELECT nope FROM customers"})
    assert ok.status_code == 200
    body = ok.json()
    assert body["columns"] == ["id", "name"]
    assert body["rows"] == [[1, "Ada"], [2, "Bo"], [3, "Cy"]]
    assert body["row_count"] == 3
    assert body["verdict"]["allowed"] is True
    assert bad.status_code == 422
    assert bad.json()["type"] == "urn:avl:problem:unsafe-query"
    assert [v["code"] for v in bad.json()["violations"]] == ["statement_kind"]
    entries = console.history.search(limit=10)
    assert [(e.sql, e.outcome.value, e.row_count, e.violations, e.tags) for e in entries] == [
        ("DROP TABLE customers", "rejected", None, ("statement_kind",), ("via:web-sql",)),
        ("SELECT id, name FROM customers ORDER BY id LIMIT 100", "ok", 3, (), ("via:web-sql",)),
    ]
    assert broken.status_code == 500  # sqlite3.OperationalError from the test double: opaque
    assert broken.json() == {
        "type": "urn:avl:problem:internal",
        "title": "Internal error",
        "status": 500,
        "detail": "",
        "instance": "/v1/sql/run",
    }


async def test_ask_json(app: Any) -> None:
    async with client(app) as c:
        r = await c.post("/v1/ask", json={"question": "customer names"})
    assert r.status_code == 200
    body = r.json()
    assert body["question"] == "customer names"
    assert body["sql"] == "SELECT name FROM customers ORDER BY id LIMIT 100"
    assert body["columns"] == ["name"]
    assert body["rows"] == [["Ada"], ["Bo"], ["Cy"]]
    assert body["verdict"]["allowed"] is True
    assert body["error"] is None


async def test_ask_json_error_maps_to_problem(app: Any) -> None:
    async with client(app) as c:
        r = await c.post("/v1/ask", json={"question": "unknown question"})
    assert r.status_code == 404
    assert r.json()["detail"] == "no scripted SQL for 'unknown question'"


async def test_ask_sse_stream(app: Any) -> None:
    async with client(app) as c:
        r = await c.post(
            "/v1/ask",
            json={"question": "how many customers"},
            headers={"accept": "text/event-stream"},
        )
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/event-stream; charset=utf-8"
    stream_id = r.headers["x-avl-stream"]
    events = list(sse.parse([r.content]))
    assert [e.event for e in events] == ["retrieved", "sql", "verdict", "rows", "answer", "done"]
    assert [e.id for e in events] == [f"{stream_id}:{i}" for i in range(6)]
    assert json.loads(events[3].data) == {"columns": ["n"], "rows": [[3]]}
    answer = json.loads(events[4].data)
    assert answer["rows"] == [[3]]
    assert answer["verdict"]["allowed"] is True


async def test_ask_sse_error_event(app: Any) -> None:
    async with client(app) as c:
        r = await c.get(
            "/v1/ask/stream", params={"question": "nothing scripted"}, headers=SAME_ORIGIN
        )
    events = list(sse.parse([r.content]))
    assert [e.event for e in events] == ["retrieved", "error", "done"]
    assert json.loads(events[1].data)["status"] == 404


async def test_ask_stream_get_and_validation(app: Any) -> None:
    async with client(app) as c:
        ok = await c.get(
            "/v1/ask/stream", params={"question": "customer names"}, headers=SAME_ORIGIN
        )
        missing = await c.get("/v1/ask/stream", headers=SAME_ORIGIN)
        bad = await c.post("/v1/ask", json={"question": ""})
    assert [e.event for e in sse.parse([ok.content])][-1] == "done"
    assert missing.status_code == 422
    assert bad.status_code == 422


async def test_train_needs_permission_and_safe_sql(console: TinyConsole) -> None:
    auth = ApiKeyAuthenticator.from_keys(
        {
            "plain-key-0123456789": Identity(user="ann"),
            "train-key-0123456789": Identity(user="tr", permissions={"train"}),
        }
    )
    app = create_app(console, authenticator=auth)
    async with client(app) as c:
        denied = await c.post(
            "/v1/train",
            json={"ddl": "CREATE TABLE t (a INT)"},
            headers={"x-api-key": "plain-key-0123456789"},
        )
        unsafe = await c.post(
            "/v1/train",
            json={"question": "wipe", "sql": "DELETE FROM customers"},
            headers={"x-api-key": "train-key-0123456789"},
        )
        empty = await c.post("/v1/train", json={}, headers={"x-api-key": "train-key-0123456789"})
        ok = await c.post(
            "/v1/train",
            json={"question": "count", "sql": "SELECT count(*) FROM customers"},
            headers={"x-api-key": "train-key-0123456789"},
        )
    assert denied.status_code == 403
    assert unsafe.status_code == 422
    assert unsafe.json()["violations"][0]["code"] == "statement_kind"
    assert empty.status_code == 422
    assert ok.status_code == 200
    assert ok.json() == {"stored": 1, "ids": ["item-1"]}
    assert console.assistant.trained == [
        {"question": "count", "sql": "SELECT count(*) FROM customers"}
    ]


async def test_ops_routes(app: Any) -> None:
    async with client(app) as c:
        health = await c.get("/healthz")
        ready = await c.get("/readyz")
        metrics = await c.get("/metrics")
        spec = await c.get("/openapi.json")
        page = await c.get("/")
        js = await c.get("/static/console.js")
        css = await c.get("/static/console.css")
        nofile = await c.get("/static/nope.js")
        traversal = await c.get("/static/..%2f__init__.py")
        missing = await c.get("/nope")
        method = await c.get("/v1/sql/check")
    assert health.json() == {"status": "ok"}
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "checks": {"history": "ok", "database": "ok"}}
    assert metrics.status_code == 404  # no metrics configured on this console
    assert spec.json()["openapi"] == "3.1.0"
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert '<textarea id="question"' in page.text
    assert "sseEvents" in js.text
    assert css.headers["content-type"] == "text/css; charset=utf-8"
    assert nofile.status_code == 404
    assert traversal.status_code == 404
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert method.status_code == 405
    assert method.json()["status"] == 405


class _Metrics:
    def prometheus_text(self) -> str:
        return "# TYPE avl_requests_total counter\navl_requests_total 3\n"


async def test_metrics_exposition(console: TinyConsole) -> None:
    console.metrics = _Metrics()  # type: ignore[assignment]
    async with client(create_app(console)) as c:
        r = await c.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert r.text == "# TYPE avl_requests_total counter\navl_requests_total 3\n"


async def test_rate_limit_headers_and_429(console: TinyConsole) -> None:
    clock = FakeClock()
    console.limiter = RateLimiter("3/minute", clock=clock)
    app = create_app(console, limit_local=True)
    async with client(app) as c:
        statuses = []
        for _ in range(4):
            r = await c.post("/v1/sql/check", json={"sql": "SELECT 1"})
            statuses.append(r.status_code)
        assert statuses == [200, 200, 200, 429]
        assert r.headers["retry-after"] == "20"
        assert r.json()["type"] == "urn:avl:problem:rate-limited"
        assert r.json()["retry_after"] == pytest.approx(20.0)
        assert r.headers["x-ratelimit-remaining"] == "0"
        clock.advance(20)
        status = await c.get("/v1/ratelimit")
        health = await c.get("/healthz")
    assert status.status_code == 200
    body = status.json()
    assert body["key"] == "web:local"
    assert body["limited"] is True
    assert body["allowed"] is True
    assert body["remaining"] == 0
    assert body["limit"] == 3
    assert status.headers["x-ratelimit-limit"] == "3"
    assert "x-ratelimit-limit" not in health.headers  # ops routes are not counted


async def test_rate_limit_per_user(console: TinyConsole) -> None:
    console.limiter = RateLimiter("1/minute", clock=FakeClock())
    auth = ApiKeyAuthenticator.from_keys(
        {"a-key-0123456789abcd": Identity(user="a"), "b-key-0123456789abcd": Identity(user="b")}
    )
    app = create_app(console, authenticator=auth)
    async with client(app) as c:
        a1 = await c.get("/v1/ratelimit", headers={"x-api-key": "a-key-0123456789abcd"})
        a2 = await c.get("/v1/ratelimit", headers={"x-api-key": "a-key-0123456789abcd"})
        b1 = await c.get("/v1/ratelimit", headers={"x-api-key": "b-key-0123456789abcd"})
    assert (a1.status_code, a2.status_code, b1.status_code) == (200, 429, 200)


async def test_ratelimit_status_without_limiter(app: Any) -> None:
    async with client(app) as c:
        r = await c.get("/v1/ratelimit")
    assert r.json() == {
        "key": "web:local",
        "limited": False,
        "allowed": True,
        "remaining": None,
        "limit": None,
        "reset_after": None,
        "retry_after": None,
        "headers": {},
    }


async def test_cors_off_by_default_and_configurable(console: TinyConsole) -> None:
    async with client(create_app(console)) as c:
        off = await c.get("/healthz", headers={"origin": "https://app.example"})
    async with client(create_app(console, cors_origins=["https://app.example"])) as c:
        on = await c.get("/healthz", headers={"origin": "https://app.example"})
        pre = await c.options(
            "/v1/sql/check",
            headers={"origin": "https://app.example", "access-control-request-method": "POST"},
        )
    assert "access-control-allow-origin" not in off.headers
    assert on.headers["access-control-allow-origin"] == "https://app.example"
    assert pre.status_code == 200


async def test_unexpected_error_is_opaque(console: TinyConsole) -> None:
    def boom(role: str) -> Any:
        raise RuntimeError("secret internal detail /etc/passwd")

    console.guard_for = boom  # type: ignore[method-assign]
    async with client(create_app(console)) as c:
        r = await c.post("/v1/sql/check", json={"sql": "SELECT 1"})
    assert r.status_code == 500
    assert "secret" not in r.text
    assert "Traceback" not in r.text


class _DownHistory:
    def search(self, **kw: Any) -> Any:
        from avl.errors import BackendUnavailableError

        raise BackendUnavailableError("history database unreachable")


async def test_readyz_503_when_a_backend_is_down(console: TinyConsole) -> None:
    real = console.history
    console.history = _DownHistory()  # type: ignore[assignment]
    try:
        async with client(create_app(console)) as c:
            r = await c.get("/readyz")
    finally:
        console.history = real
    assert r.status_code == 503
    assert r.json() == {
        "status": "unavailable",
        "checks": {"history": "unavailable", "database": "ok"},
    }


async def test_mounts_inside_another_starlette_app(console: TinyConsole) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    host = Starlette(routes=[Mount("/avl", app=create_app(console))])
    async with client(host, host="10.0.0.9") as c:
        health = await c.get("/avl/healthz")  # public inside the mount
        check = await c.post("/avl/v1/sql/check", json={"sql": "SELECT 1"})
    async with client(host) as c:
        page = await c.get("/avl/")
        local = await c.post("/avl/v1/sql/check", json={"sql": "SELECT 1"})
    assert health.json() == {"status": "ok"}
    assert check.status_code == 401
    assert check.json()["instance"] == "/avl/v1/sql/check"
    assert 'href="static/console.css"' in page.text
    assert local.json()["allowed"] is True


def test_create_app_rejects_unknown_settings(console: TinyConsole) -> None:
    from avl.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown web setting"):
        create_app(console, bogus=1)
    with pytest.raises(ConfigError, match="max_body_bytes must be positive"):
        create_app(console, max_body_bytes=0)


def test_import_is_lazy_and_missing_starlette_is_explained() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import avl\n"
        "assert 'avl.web' not in sys.modules and 'avl.sse' not in sys.modules\n"
        "import avl.sse, avl.web\n"
        "assert 'starlette' not in sys.modules, 'starlette imported eagerly'\n"
        "sys.modules['starlette'] = None\n"
        "from avl.errors import MissingDependencyError\n"
        "try:\n"
        "    avl.web.create_app(object())\n"
        "except MissingDependencyError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == (
        "'starlette' is required for this feature but is not installed; "
        "install it with: pip install 'avl[web]'"
    )


async def test_check_cache_never_lends_permissions(console: TinyConsole) -> None:
    auth = ApiKeyAuthenticator.from_keys(
        {
            "boss-key-0123456789": Identity(user="boss", permissions={"sql:any-role"}),
            "pleb-key-0123456789": Identity(user="pleb"),
        }
    )
    app = create_app(console, authenticator=auth)
    body = {"sql": "SELECT id FROM orders", "role": "admin"}
    async with client(app) as c:
        boss = await c.post(
            "/v1/sql/check", json=body, headers={"x-api-key": "boss-key-0123456789"}
        )
        pleb = await c.post(
            "/v1/sql/check", json=body, headers={"x-api-key": "pleb-key-0123456789"}
        )
        again = await c.post(
            "/v1/sql/check", json=body, headers={"x-api-key": "boss-key-0123456789"}
        )
    assert boss.status_code == 200
    assert boss.json()["sql"] == "SELECT id FROM orders LIMIT 1000"
    assert pleb.status_code == 403
    assert again.content == boss.content


@pytest.mark.parametrize("path", ["/v1/sql/check", "/v1/sql/run", "/v1/ask", "/v1/train"])
@pytest.mark.parametrize("opener", [b"[", b'{"a":'])
async def test_deeply_nested_json_is_400(app: Any, path: str, opener: bytes) -> None:
    body = opener * 100_000
    async with client(app) as c:
        r = await c.post(path, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json()["detail"] == "the request body is nested too deeply"


@pytest.mark.parametrize(
    "cursor",
    [
        "czk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OQ",  # "s99999999999999999999999999"
        "czkyMjMzNzIwMzY4NTQ3NzU4MDg",  # "s9223372036854775808" (2**63)
        "cy0x",  # "s-1"
        "%%%",
        "czE" * 3000,
    ],
)
async def test_bad_history_cursor_is_422(app: Any, cursor: str) -> None:
    async with client(app) as c:
        r = await c.get("/v1/history", params={"cursor": cursor})
    assert r.status_code == 422
    assert r.json()["detail"].startswith("invalid cursor")


async def test_an_unknown_role_is_403(console: TinyConsole) -> None:
    """A console refuses a role it does not configure (UnknownRoleError): 403."""
    from avl.errors import UnknownRoleError

    def guard_for(role: str) -> Any:
        if role not in console.policies:
            raise UnknownRoleError(role, sorted(console.policies))
        return TinyConsole.guard_for(console, role)

    console.guard_for = guard_for  # type: ignore[method-assign]
    auth = ApiKeyAuthenticator.from_keys({"ghost-key-0123456789": Identity(user="g", role="ghost")})
    app = create_app(console, authenticator=auth)
    async with client(app, headers={"x-api-key": "ghost-key-0123456789"}) as c:
        check = await c.post("/v1/sql/check", json={"sql": "SELECT 1"})
        run = await c.post("/v1/sql/run", json={"sql": "SELECT 1"})
        stream = await c.post(
            "/v1/ask", json={"question": "customer names"}, headers={"accept": "text/event-stream"}
        )
        get_stream = await c.get("/v1/ask/stream", params={"question": "customer names"})
    assert console.assistant.started.is_set() is False  # no pipeline ran
    for r in (check, run, stream, get_stream):
        assert r.status_code == 403
        assert r.json()["type"] == "urn:avl:problem:unknown-role"
        assert r.json()["title"] == "Role not configured"
        assert r.json()["detail"] == "no policy is configured for role 'ghost'"
        assert "tenant" not in r.text  # the configured roles are not listed
