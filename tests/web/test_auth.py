"""Authentication, secure defaults and tenancy."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from avl.errors import AuthenticationError, ConfigError
from avl.history import Entry
from avl.web import (
    ApiKeyAuthenticator,
    ChainAuthenticator,
    Identity,
    JWTAuthenticator,
    create_app,
    hash_api_key,
    is_loopback,
    serve,
)

from .conftest import TinyConsole, client

SECRET = b"0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("127.9.8.7", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("testclient", True),
        (None, True),
        ("::ffff:127.0.0.1", True),
        ("10.0.0.1", False),
        ("0.0.0.0", False),
        ("192.168.1.2", False),
        ("example.com", False),
    ],
)
def test_is_loopback(host: str | None, expected: bool) -> None:
    assert is_loopback(host) is expected


def test_api_keys_hashed_and_checked() -> None:
    ann = Identity(user="ann", role="analyst")
    auth = ApiKeyAuthenticator({hash_api_key("ann-key-0123456789"): ann})
    assert auth.authenticate({"x-api-key": "ann-key-0123456789"}, None) == ann
    assert auth.authenticate({"authorization": "Bearer ann-key-0123456789"}, None) == ann
    assert auth.authenticate({}, None) is None
    with pytest.raises(AuthenticationError, match="invalid API key"):
        auth.authenticate({"x-api-key": "ann-key-0123456780"}, None)
    assert (
        hash_api_key("ann-key-0123456789")
        == "8b166d3af66cd7682b8319627d847cd916324737125f4387fd4c7bd4e8fb8be1"
    )
    with pytest.raises(ConfigError, match="at least 16"):
        hash_api_key("short")
    with pytest.raises(ConfigError, match="64 hex"):
        ApiKeyAuthenticator({"abc": ann})


def test_identity_validation() -> None:
    with pytest.raises(ConfigError, match="unknown permission"):
        Identity(user="x", permissions={"root"})
    with pytest.raises(ValueError, match="user"):
        Identity(user="")
    assert Identity(user="x", permissions={"train"}).can("train") is True
    assert Identity(user="x").can("train") is False


def _tamper(token: str, **claims: Any) -> str:
    header, payload, sig = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data.update(claims)
    new = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return f"{header}.{new}.{sig}"


def test_chain_tries_in_order() -> None:
    jwt = JWTAuthenticator(SECRET)
    keys = ApiKeyAuthenticator.from_keys({"key-aaaaaaaaaaaaaaaa": Identity(user="k")})
    chain = ChainAuthenticator([jwt, keys])
    assert chain.authenticate({"x-api-key": "key-aaaaaaaaaaaaaaaa"}, None) == Identity(user="k")
    token = jwt.issue({"sub": "j"})
    assert chain.authenticate({"authorization": f"Bearer {token}"}, None) == Identity(user="j")
    assert chain.authenticate({}, None) is None


@pytest.mark.anyio
async def test_no_authenticator_serves_loopback_only(console: TinyConsole) -> None:
    app = create_app(console)
    async with client(app, host="10.1.2.3") as c:
        remote = await c.post("/v1/sql/check", json={"sql": "SELECT 1"})
        health = await c.get("/healthz")
    async with client(app, host="::1") as c:
        local6 = await c.post("/v1/sql/check", json={"sql": "SELECT 1"})
    assert remote.status_code == 401
    assert remote.headers["www-authenticate"] == 'Bearer realm="avl"'
    assert remote.json()["type"] == "urn:avl:problem:unauthenticated"
    assert health.status_code == 200
    assert local6.status_code == 200


@pytest.mark.anyio
async def test_starlette_testclient_is_served_as_local(console: TinyConsole) -> None:
    from starlette.testclient import TestClient

    with TestClient(create_app(console), base_url="http://localhost") as tc:
        r = tc.post("/v1/sql/check", json={"sql": "SELECT 1"})
    with TestClient(create_app(console)) as tc:  # its default Host, testserver, is not ours
        refused = tc.post("/v1/sql/check", json={"sql": "SELECT 1"})
    assert r.status_code == 200
    assert r.json()["allowed"] is True
    assert refused.status_code == 421


@pytest.mark.anyio
async def test_authenticator_required_even_on_loopback(console: TinyConsole) -> None:
    auth = ApiKeyAuthenticator.from_keys({"ann-key-0123456789": Identity(user="ann")})
    jwt = JWTAuthenticator(SECRET)
    app = create_app(console, authenticator=ChainAuthenticator([auth, jwt]))
    async with client(app) as c:
        anon = await c.post("/v1/sql/check", json={"sql": "SELECT 1"})
        bad = await c.post(
            "/v1/sql/check", json={"sql": "SELECT 1"}, headers={"x-api-key": "x" * 20}
        )
        good = await c.post(
            "/v1/sql/check", json={"sql": "SELECT 1"}, headers={"x-api-key": "ann-key-0123456789"}
        )
        token = jwt.issue({"sub": "bob"})
        bearer = await c.get("/v1/ratelimit", headers={"authorization": f"Bearer {token}"})
        forged = await c.get(
            "/v1/ratelimit", headers={"authorization": "Bearer " + _tamper(token, sub="root")}
        )
    assert (anon.status_code, bad.status_code, good.status_code) == (401, 401, 200)
    assert anon.json()["detail"] == "credentials required (X-API-Key or Authorization: Bearer)"
    assert bad.json()["detail"] == "invalid API key"
    assert bearer.json()["key"] == "web:bob"
    assert forged.status_code == 401


def test_serve_refuses_open_public_bind(console: TinyConsole) -> None:
    with pytest.raises(
        ConfigError, match=r"refusing to serve on '0\.0\.0\.0' without an authenticator"
    ):
        serve(console, host="0.0.0.0", port=1)
    for host in ("::", "10.0.0.5", "example.com", "testclient"):
        with pytest.raises(ConfigError, match="refusing to serve"):
            serve(console, host=host, port=1)


def test_serve_binds_loopback_for_host_none(
    console: TinyConsole, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``host=None`` (or empty) binds 127.0.0.1, never every interface."""
    import uvicorn

    calls: list[dict[str, Any]] = []
    monkeypatch.delenv("AVL_API_KEYS_FILE", raising=False)
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append(kw))
    serve(console, host=None, port=8123)
    serve(console, host="", port=8124)
    serve(console, port=8125)
    assert [(c["host"], c["port"]) for c in calls] == [
        ("127.0.0.1", 8123),
        ("127.0.0.1", 8124),
        ("127.0.0.1", 8125),
    ]
    with pytest.raises(ConfigError, match="port must be"):
        serve(console, port=99999)


def test_serve_public_bind_with_keys_allows_the_bound_address(
    console: TinyConsole, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    apps: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: apps.append((app, kw)))
    auth = ApiKeyAuthenticator.from_keys({"srv-key-0123456789": Identity(user="ann")})
    monkeypatch.setenv("AVL_ALLOWED_HOSTS", "avl.avl.svc, 172.16.0.0/12")
    serve(console, host="10.0.0.5", port=8126, authenticator=auth, allowed_hosts=["api.example"])
    app, kw = apps[0]
    assert kw["host"] == "10.0.0.5"
    settings = app.handlers.settings
    assert settings.allowed_hosts == ("api.example", "avl.avl.svc", "172.16.0.0/12", "10.0.0.5")
    monkeypatch.setenv("AVL_ALLOWED_HOSTS", "http://bad.example")
    with pytest.raises(ConfigError, match="allowed_hosts"):
        serve(console, host="10.0.0.5", port=8126, authenticator=auth)


def _seed(console: TinyConsole) -> dict[str, str]:
    ids = {}
    for user in ("ann", "bob"):
        entry = console.history.record(
            Entry(
                user=user,
                role="default",
                question=f"{user} question",
                sql="SELECT 1",
                allowed=True,
                outcome="ok",
                row_count=1,
            )
        )
        ids[user] = str(entry.id)
    return ids


@pytest.mark.anyio
async def test_tenancy_history(console: TinyConsole) -> None:
    ids = _seed(console)
    auth = ApiKeyAuthenticator.from_keys(
        {
            "ann-key-0123456789": Identity(user="ann"),
            "bob-key-0123456789": Identity(user="bob"),
            "aud-key-0123456789": Identity(user="auditor", permissions={"history:all"}),
        }
    )
    app = create_app(console, authenticator=auth)
    ann = {"x-api-key": "ann-key-0123456789"}
    aud = {"x-api-key": "aud-key-0123456789"}
    async with client(app) as c:
        own = await c.get("/v1/history", headers=ann)
        others = await c.get("/v1/history", params={"user": "bob"}, headers=ann)
        get_own = await c.get(f"/v1/history/{ids['ann']}", headers=ann)
        get_other = await c.get(f"/v1/history/{ids['bob']}", headers=ann)
        missing = await c.get("/v1/history/nope", headers=ann)
        verify_denied = await c.get("/v1/history/verify", headers=ann)
        all_ = await c.get("/v1/history", headers=aud)
        bob_for_aud = await c.get("/v1/history", params={"user": "bob"}, headers=aud)
        get_for_aud = await c.get(f"/v1/history/{ids['bob']}", headers=aud)
        verify = await c.get("/v1/history/verify", headers=aud)
        search = await c.get("/v1/history", params={"q": "ann"}, headers=aud)
        bad_limit = await c.get("/v1/history", params={"limit": "0"}, headers=aud)
        bad_since = await c.get("/v1/history", params={"since": "x"}, headers=aud)
        bad_param = await c.get("/v1/history", params={"evil": "1"}, headers=aud)
    assert [e["user"] for e in own.json()["items"]] == ["ann"]
    assert own.json()["items"][0]["question"] == "ann question"
    assert others.status_code == 403
    assert get_own.json()["id"] == ids["ann"]
    assert get_other.status_code == 404  # indistinguishable from a missing entry
    assert missing.status_code == 404
    assert verify_denied.status_code == 403
    assert [e["user"] for e in all_.json()["items"]] == ["bob", "ann"]
    assert [e["user"] for e in bob_for_aud.json()["items"]] == ["bob"]
    assert get_for_aud.json()["user"] == "bob"
    assert verify.json() == {
        "ok": True,
        "checked": 2,
        "problem": None,
        "entry_id": None,
        "message": "",
    }
    assert [e["user"] for e in search.json()["items"]] == ["ann"]
    assert (bad_limit.status_code, bad_since.status_code, bad_param.status_code) == (422, 422, 422)


def test_api_keys_from_file(tmp_path: Any) -> None:
    digest = hash_api_key("file-key-0123456789")
    toml = tmp_path / "keys.toml"
    toml.write_text(
        f'[[keys]]\nsha256 = "{digest}"\nuser = "ann"\nrole = "analyst"\n'
        'permissions = ["train"]\ncontext = { tenant_id = 7 }\n'
    )
    auth = ApiKeyAuthenticator.from_file(toml)
    assert auth.authenticate({"x-api-key": "file-key-0123456789"}, None) == Identity(
        user="ann", role="analyst", permissions={"train"}, context={"tenant_id": 7}
    )
    js = tmp_path / "keys.json"
    js.write_text(json.dumps({"keys": [{"sha256": digest, "user": "bob"}]}))
    assert ApiKeyAuthenticator.from_file(js).authenticate(
        {"x-api-key": "file-key-0123456789"}, None
    ) == Identity(user="bob")
    bad = tmp_path / "bad.json"
    for content, message in [
        ("{", "is not valid JSON"),
        ('{"keys": 3}', "expected a list 'keys'"),
        ('{"keys": [{"user": "x"}]}', r"keys\[0\] needs a 'sha256' string"),
        (json.dumps({"keys": [{"sha256": digest, "user": "x", "admin": True}]}), "unknown field"),
        (
            json.dumps({"keys": [{"sha256": digest, "user": "x", "permissions": ["god"]}]}),
            "unknown permission",
        ),
    ]:
        bad.write_text(content)
        with pytest.raises(ConfigError, match=message):
            ApiKeyAuthenticator.from_file(bad)
    with pytest.raises(ConfigError, match="cannot read API keys file"):
        ApiKeyAuthenticator.from_file(tmp_path / "missing.json")


def test_serve_reads_api_keys_file_from_env(
    console: TinyConsole, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "keys.json"
    bad.write_text('{"keys": "nope"}')
    monkeypatch.setenv("AVL_API_KEYS_FILE", str(bad))
    with pytest.raises(ConfigError, match="expected a list 'keys'"):
        serve(console, host="0.0.0.0", port=1)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"x-forwarded-for": "203.0.113.7"}, 401),
        ({"x-forwarded-for": "127.0.0.1, 198.51.100.2"}, 401),
        ({"x-real-ip": "10.0.0.9"}, 401),
        ({"forwarded": 'for="[2001:db8::1]:4711";proto=https'}, 401),
        ({"forwarded": "for=unknown"}, 401),
        ({"x-forwarded-for": ""}, 401),
        ({"x-forwarded-for": "127.0.0.1"}, 200),
        ({"forwarded": 'for="[::1]:8080", for=127.0.0.1:9'}, 200),
        ({}, 200),
    ],
)
async def test_proxied_remote_caller_is_not_local(
    console: TinyConsole, headers: dict[str, str], expected: int
) -> None:
    """A reverse proxy on loopback does not turn a remote caller into the local user."""
    app = create_app(console)
    async with client(app) as c:
        r = await c.post("/v1/sql/check", json={"sql": "SELECT 1"}, headers=headers)
    assert r.status_code == expected
    if expected == 401:
        assert r.json()["detail"] == (
            "this server has no authenticator configured and serves loopback callers only"
        )
