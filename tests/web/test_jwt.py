"""JWTs from identity providers: RS256, ES256 and EdDSA keys served by a real JWKS
endpoint on loopback (uvicorn, fetched with httpx), key rotation, and every refusal:
wrong issuer/audience, expired, ``alg: none``, HS/RS confusion, malformed claims."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from avl.errors import AuthenticationError, BackendUnavailableError, ConfigError
from avl.testing import FakeClock
from avl.web import ClaimMapping, Identity, JWKSCache, JWTAuthenticator, create_app

from .conftest import LiveServer, TinyConsole, client

ISS = "https://idp.example"
AUD = "avl-api"
T0 = 1_800_000_000.0
SECRET = b"0123456789abcdef0123456789abcdef"


class Key:
    """A signing key pair and its public JWK."""

    def __init__(self, kind: str, kid: str) -> None:
        self.kid = kid
        if kind == "RS256":
            self.private: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            jwk = RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        elif kind == "ES256":
            self.private = ec.generate_private_key(ec.SECP256R1())
            jwk = ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        else:
            self.private = ed25519.Ed25519PrivateKey.generate()
            jwk = OKPAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        self.alg = kind
        self.jwk = {**jwk, "kid": kid, "use": "sig"}

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        return pyjwt.encode(
            claims, self.private, algorithm=self.alg, headers={"kid": self.kid, **header}
        )

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(  # type: ignore[no-any-return]
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


class JwksServer:
    """A JWKS endpoint on a loopback port whose document can be swapped (rotation)."""

    def __init__(self) -> None:
        self.document: Any = {"keys": []}
        self.status = 200
        self.hits = 0
        self.lock = threading.Lock()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                return
            with self.lock:
                self.hits += 1
                body = (
                    self.document
                    if isinstance(self.document, bytes)
                    else json.dumps(self.document).encode()
                )
                status = self.status
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})

        self.server = LiveServer(app)
        self.url = self.server.url + "/.well-known/jwks.json"

    def publish(self, *keys: Key, extra: list[dict[str, Any]] | None = None) -> None:
        with self.lock:
            self.document = {"keys": [k.jwk for k in keys] + (extra or [])}


@pytest.fixture(scope="module")
def keys() -> dict[str, Key]:
    return {
        "rsa1": Key("RS256", "rsa-1"),
        "rsa2": Key("RS256", "rsa-2"),
        "ec1": Key("ES256", "ec-1"),
        "ed1": Key("EdDSA", "ed-1"),
    }


@pytest.fixture(scope="module")
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    with server.server:
        yield server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=T0)


def claims(**extra: Any) -> dict[str, Any]:
    return {"sub": "ann", "iss": ISS, "aud": AUD, "iat": int(T0), "exp": int(T0) + 300, **extra}


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def provider(url: str, clock: FakeClock, **kw: Any) -> JWTAuthenticator:
    return JWTAuthenticator(jwks_url=url, issuer=ISS, audience=AUD, leeway_s=10, clock=clock, **kw)


@pytest.mark.parametrize("name", ["rsa1", "ec1", "ed1"])
def test_asymmetric_tokens_from_a_loopback_jwks(
    jwks_server: JwksServer, keys: dict[str, Key], clock: FakeClock, name: str
) -> None:
    jwks_server.publish(keys["rsa1"], keys["ec1"], keys["ed1"])
    auth = provider(jwks_server.url, clock)
    token = keys[name].sign(claims(role="tenant", perms=["train"], ctx={"cid": 1}))
    assert auth.authenticate(bearer(token), None) == Identity(
        user="ann", role="tenant", permissions={"train"}, context={"cid": 1}
    )
    assert auth.jwks is not None
    assert auth.jwks.fetches == 1


def test_rotation_refreshes_on_unknown_kid_but_bounded(
    jwks_server: JwksServer, keys: dict[str, Key], clock: FakeClock
) -> None:
    rsa1, rsa2 = keys["rsa1"], keys["rsa2"]
    jwks_server.publish(rsa1)
    auth = provider(jwks_server.url, clock)
    jwks = auth.jwks
    assert jwks is not None
    assert auth.authenticate(bearer(rsa1.sign(claims())), None).user == "ann"
    # The provider rotates: rsa-2 replaces rsa-1.
    jwks_server.publish(rsa2)
    new = rsa2.sign(claims(sub="bob"))
    clock.advance(31)  # past min_interval_s (30 s): an unknown kid may fetch again
    assert auth.authenticate(bearer(new), None).user == "bob"
    assert jwks.fetches == 2
    # The retired key is gone after the refresh.
    with pytest.raises(AuthenticationError, match="unknown signing key 'rsa-1'"):
        auth.authenticate(bearer(rsa1.sign(claims())), None)
    # Made-up key ids cannot make avl hammer the provider: one fetch per interval.
    for i in range(20):
        forged = rsa2.sign(claims(), kid=f"made-up-{i}")
        with pytest.raises(AuthenticationError, match="unknown signing key"):
            auth.authenticate(bearer(forged), None)
    assert jwks.fetches == 2
    clock.advance(301)  # past ttl_s: the next token refreshes once
    assert (
        auth.authenticate(bearer(rsa2.sign(claims(exp=int(clock.now()) + 60))), None).user == "ann"
    )
    assert jwks.fetches == 3


def test_refusals(jwks_server: JwksServer, keys: dict[str, Key], clock: FakeClock) -> None:
    rsa1, ec1 = keys["rsa1"], keys["ec1"]
    jwks_server.publish(rsa1, ec1)
    auth = provider(jwks_server.url, clock)

    def refused(token: str, match: str) -> None:
        with pytest.raises(AuthenticationError, match=match):
            auth.authenticate(bearer(token), None)

    refused(rsa1.sign(claims(iss="https://other.example")), "wrong token issuer")
    refused(rsa1.sign({k: v for k, v in claims().items() if k != "iss"}), "wrong token issuer")
    refused(rsa1.sign(claims(aud="someone-else")), "wrong token audience")
    refused(rsa1.sign({k: v for k, v in claims().items() if k != "aud"}), "wrong token audience")
    refused(rsa1.sign(claims(exp=int(T0) - 11)), "token expired")
    refused(rsa1.sign(claims(nbf=int(T0) + 60)), "not yet valid")
    refused(rsa1.sign(claims(iat=int(T0) + 60)), "issued in the future")
    refused(rsa1.sign({k: v for k, v in claims().items() if k != "exp"}), r"no expiry \(exp\)")
    refused(rsa1.sign(claims(exp="tomorrow")), "exp must be a number")
    assert auth.authenticate(bearer(rsa1.sign(claims(exp=int(T0) - 5))), None) is not None  # skew
    # alg: none, unsigned.
    head = (
        base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT","kid":"rsa-1"}').rstrip(b"=").decode()
    )
    body = base64.urlsafe_b64encode(json.dumps(claims()).encode()).rstrip(b"=").decode()
    refused(f"{head}.{body}.", "unsupported token algorithm 'none'")
    # HS/RS confusion: an HS256 token "signed" with the RSA public key as the secret.
    confused = pyjwt.encode(
        claims(), rsa1.public_pem().decode()[:64] * 4, algorithm="HS256", headers={"kid": "rsa-1"}
    )
    refused(confused, "unsupported token algorithm 'HS256'")
    # An RS256 header naming the EC key: the key's type decides, not the header.
    wrong = rsa1.sign(claims(), kid="ec-1")
    refused(wrong, "does not match its key")
    # A forged payload under a real signature.
    token = rsa1.sign(claims())
    h, _, s = token.split(".")
    forged = base64.urlsafe_b64encode(json.dumps(claims(sub="root")).encode()).rstrip(b"=").decode()
    refused(f"{h}.{forged}.{s}", "bad token signature")
    refused("a.b.c", "malformed token")
    refused("x" * 20_000 + ".a.b", "token too long")
    deep = base64.urlsafe_b64encode(b"[" * 10_000).rstrip(b"=").decode()
    refused(f"{deep}.e30.", "malformed token")


def test_hs256_keeps_working_beside_jwks(
    jwks_server: JwksServer, keys: dict[str, Key], clock: FakeClock
) -> None:
    jwks_server.publish(keys["rsa1"])
    both = JWTAuthenticator(SECRET, jwks_url=jwks_server.url, clock=clock)
    hs = both.issue({"sub": "local-app", "role": "analyst"})
    assert both.authenticate(bearer(hs), None) == Identity(user="local-app", role="analyst")
    assert both.authenticate(bearer(keys["rsa1"].sign(claims())), None).user == "ann"
    # An HS256 token keyed with the public key is a bad signature, never accepted.
    pem = keys["rsa1"].public_pem()
    confused = pyjwt.encode({"sub": "root"}, pem[:64], algorithm="HS256")
    with pytest.raises(AuthenticationError, match="bad token signature"):
        both.authenticate(bearer(confused), None)
    only_hs = JWTAuthenticator(SECRET, clock=clock)
    with pytest.raises(AuthenticationError, match="unsupported token algorithm 'RS256'"):
        only_hs.authenticate(bearer(keys["rsa1"].sign(claims())), None)
    assert only_hs.authenticate({}, None) is None
    assert only_hs.authenticate({"x-api-key": "k" * 20}, None) is None


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ({"sub": "ann", "perms": "train history:all"}, None),  # an OAuth-style string is fine
        ({"sub": "ann", "perms": {"train": True}}, "perms"),
        ({"sub": "ann", "perms": [1, 2]}, "perms"),
        ({"sub": "ann", "perms": [["train"]]}, "perms"),
        ({"sub": "ann", "perms": ["root"]}, "unknown permission"),
        ({"sub": "ann", "role": ["a", "b"]}, "exactly one role"),
        ({"sub": "ann", "role": {"x": 1}}, "role"),
        ({"sub": "ann", "ctx": ["cid", 1]}, "ctx"),
        ({"sub": "ann", "ctx": {"cid": {"nested": 1}}}, "ctx"),
        ({"sub": 7}, "subject"),
        ({"role": "admin"}, "subject"),
        ({"sub": ""}, "subject"),
    ],
)
def test_claim_shapes(payload: dict[str, Any], match: str | None) -> None:
    auth = JWTAuthenticator(SECRET)
    token = auth.issue(payload)
    if match is None:
        assert auth.authenticate(bearer(token), None).permissions == {"train", "history:all"}
    else:
        with pytest.raises(AuthenticationError, match=match):
            auth.authenticate(bearer(token), None)


def test_claim_mapping_for_real_providers() -> None:
    mapping = ClaimMapping(
        user="email",
        role="realm_access.roles",
        roles={"db-admin": "admin", "analyst": "analyst"},
        permissions="scope",
        permission_map={"avl.train": ["train"], "avl.audit": ["history:all"]},
        context=None,
        context_claims={"tenant_id": "https://example.com/tenant"},
    )
    who = mapping.identity(
        {
            "email": "ann@example.com",
            "realm_access": {"roles": ["offline_access", "analyst", "db-admin"]},
            "scope": "openid email avl.train",
            "https://example.com/tenant": 42,
        }
    )
    assert who == Identity(
        user="ann@example.com", role="admin", permissions={"train"}, context={"tenant_id": 42}
    )
    with pytest.raises(AuthenticationError, match="no role this server maps"):
        mapping.identity(
            {"email": "x@y", "realm_access": {"roles": ["guest"]}, "https://example.com/tenant": 1}
        )
    with pytest.raises(AuthenticationError, match="lacks a usable"):
        mapping.identity({"email": "x@y", "realm_access": {"roles": ["analyst"]}})
    with pytest.raises(ConfigError, match="unknown permission"):
        ClaimMapping(permission_map={"x": ["root"]})


def test_configuration_errors(jwks_server: JwksServer) -> None:
    with pytest.raises(ConfigError, match="needs a secret"):
        JWTAuthenticator()
    with pytest.raises(ConfigError, match="32 bytes"):
        JWTAuthenticator(b"short")
    with pytest.raises(ConfigError, match="unsupported JWT algorithm"):
        JWTAuthenticator(SECRET, algorithms=["none"])
    with pytest.raises(ConfigError, match="need JWKS keys"):
        JWTAuthenticator(SECRET, algorithms=["RS256"])
    with pytest.raises(ConfigError, match="HS\\* algorithms need a secret"):
        JWTAuthenticator(jwks_url=jwks_server.url, algorithms=["HS256"])
    with pytest.raises(ConfigError, match="http"):
        JWTAuthenticator(jwks_url="file:///etc/passwd")


def test_jwks_endpoint_failures(
    jwks_server: JwksServer, keys: dict[str, Key], clock: FakeClock
) -> None:
    rsa1 = keys["rsa1"]
    try:
        jwks_server.status = 503
        auth = provider(jwks_server.url, clock)
        with pytest.raises(BackendUnavailableError, match="answered 503"):
            auth.authenticate(bearer(rsa1.sign(claims())), None)
        jwks_server.status = 200
        jwks_server.publish(
            rsa1,
            extra=[
                {"kty": "oct", "k": "c2VjcmV0", "kid": "shared"},
                {"kty": "RSA", "kid": "broken", "n": "x", "e": "y"},
                "junk",
            ],
        )  # type: ignore[list-item]
        clock.advance(31)
        assert auth.authenticate(bearer(rsa1.sign(claims())), None).user == "ann"
        # A shared-secret key in a JWKS is never used (HS with a public document).
        hs = pyjwt.encode(claims(), "s" * 32, algorithm="HS256", headers={"kid": "shared"})
        with pytest.raises(AuthenticationError, match="unsupported token algorithm"):
            auth.authenticate(bearer(hs), None)
        # The provider goes down: the keys held keep working.
        jwks_server.status = 500
        clock.advance(400)
        assert (
            auth.authenticate(bearer(rsa1.sign(claims(exp=int(clock.now()) + 60))), None).user
            == "ann"
        )
        jwks_server.status = 200
        jwks_server.document = b"x" * 300_000
        small = JWKSCache(jwks_server.url, clock=clock, max_bytes=1000)
        with pytest.raises(BackendUnavailableError, match="over 1000 bytes"):
            small.key("rsa-1")
        jwks_server.document = b"{not json"
        with pytest.raises(BackendUnavailableError, match="not valid JSON"):
            JWKSCache(jwks_server.url, clock=clock).key("rsa-1")
    finally:
        jwks_server.status = 200
    closed = JWKSCache("http://127.0.0.1:9/jwks.json", clock=clock, http=httpx.Client(timeout=2))
    with pytest.raises(BackendUnavailableError, match="cannot fetch the JWKS"):
        closed.key("rsa-1")


@pytest.mark.anyio
async def test_through_the_app(
    jwks_server: JwksServer, keys: dict[str, Key], console: TinyConsole
) -> None:
    """The app awaits the JWKS fetch off the event loop; bad tokens are 401, never 500."""
    clock = FakeClock(start=T0)
    jwks_server.publish(keys["ec1"], keys["ed1"])
    auth = provider(jwks_server.url, clock)
    hs = JWTAuthenticator(SECRET)
    app = create_app(console, authenticator=auth)
    hs_app = create_app(console, authenticator=hs)
    async with client(app) as c:
        ok = await c.get("/v1/ratelimit", headers=bearer(keys["ec1"].sign(claims(sub="eve"))))
        ed = await c.post(
            "/v1/sql/check", json={"sql": "SELECT 1"}, headers=bearer(keys["ed1"].sign(claims()))
        )
        expired = await c.get(
            "/v1/ratelimit", headers=bearer(keys["ec1"].sign(claims(exp=int(T0) - 100)))
        )
        none = await c.get("/v1/ratelimit", headers=bearer("eyJhbGciOiJub25lIn0.e30."))
        role = await c.get(
            "/v1/ratelimit", headers=bearer(keys["ec1"].sign(claims(role=["a", "b"])))
        )
    async with client(hs_app) as c:
        perms = await c.get(
            "/v1/ratelimit", headers=bearer(hs.issue({"sub": "x", "perms": {"a": 1}}))
        )
        perms_items = await c.get(
            "/v1/ratelimit", headers=bearer(hs.issue({"sub": "x", "perms": [{"a": 1}]}))
        )
    assert ok.status_code == 200
    assert ok.json()["key"] == "web:eve"
    assert ed.status_code == 200
    for r in (expired, none, role, perms, perms_items):
        assert r.status_code == 401, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.headers["www-authenticate"] == 'Bearer realm="avl"'
