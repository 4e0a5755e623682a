"""Accept tokens from an identity provider: RS256 keys from its JWKS URL.

Runs on its own: it plays the provider too (an RSA key, a JWKS endpoint on a
loopback port, a signed token), then calls the console in process::

    python examples/web_identity_provider.py

With a real provider, only the ``JWTAuthenticator(...)`` part stays: its JWKS URL,
issuer and audience, and how its claims map to avl's identity.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from typing import Any

import httpx
import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from avl.console import Console
from avl.web import ClaimMapping, JWTAuthenticator, create_app

ISSUER = "https://idp.example/realms/acme"

# -- the provider's side -----------------------------------------------------------------
private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
jwk = {
    **RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True),
    "kid": "2026-12",
    "use": "sig",
}
JWKS = json.dumps({"keys": [jwk]}).encode()


async def jwks_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"application/json")],
    }
    await send(start)
    await send({"type": "http.response.body", "body": JWKS})


def serve_jwks() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    server = uvicorn.Server(uvicorn.Config(jwks_app, log_level="warning", lifespan="off"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    return f"http://127.0.0.1:{sock.getsockname()[1]}/protocol/openid-connect/certs"


def token_for(user: str, roles: list[str]) -> str:
    now = int(time.time())
    claims = {
        "sub": "f3b1c2",
        "preferred_username": user,
        "iss": ISSUER,
        "aud": "avl",
        "iat": now,
        "exp": now + 300,
        "realm_access": {"roles": roles},
        "scope": "openid email avl.audit",
    }
    return jwt.encode(claims, private_key, algorithm="RS256", headers={"kid": "2026-12"})


# -- avl's side --------------------------------------------------------------------------
async def main() -> None:
    auth = JWTAuthenticator(
        jwks_url=serve_jwks(),
        issuer=ISSUER,
        audience="avl",
        claims=ClaimMapping(
            user="preferred_username",
            role="realm_access.roles",
            roles={"db-admin": "default", "analyst": "analyst"},
            permissions="scope",
            permission_map={"avl.train": ["train"], "avl.audit": ["history:all"]},
        ),
    )
    console = Console.from_config({"roles": {"analyst": {"denied_columns": ["customers.name"]}}})
    try:
        app = create_app(console, authenticator=auth)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
            bearer = {"authorization": "Bearer " + token_for("ann", ["offline_access", "analyst"])}
            who = await c.get("/v1/ratelimit", headers=bearer)
            check = await c.post(
                "/v1/sql/check", json={"sql": "SELECT name FROM customers"}, headers=bearer
            )
            forged = await c.get("/v1/ratelimit", headers={"authorization": "Bearer x.y.z"})
        print("caller:", who.json()["key"])
        print("analyst may read customers.name:", check.json()["allowed"])
        print("a forged token:", forged.status_code, forged.json()["detail"])
    finally:
        console.close()


if __name__ == "__main__":
    asyncio.run(main())
