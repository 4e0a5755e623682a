"""Serve the console over HTTP with API keys, on loopback.

    python examples/web_serve.py            # then open http://127.0.0.1:8000/

    curl -s -H 'X-API-Key: analyst-key-0123456789' -H 'content-type: application/json' \
         -d '{"sql": "SELECT name FROM customers"}' http://127.0.0.1:8000/v1/sql/check

Keys are stored hashed (``hash_api_key``); keep the plain keys out of the code in a
real deployment (e.g. read the hashes from a secrets store). Without an
authenticator, ``serve()`` only binds loopback addresses.
"""

from __future__ import annotations

from avl.console import Console
from avl.web import ApiKeyAuthenticator, Identity, hash_api_key, serve

KEYS = {
    hash_api_key("analyst-key-0123456789"): Identity(user="ann", role="analyst"),
    hash_api_key("admin-key-0123456789ab"): Identity(
        user="root", role="default", permissions={"train", "history:all", "sql:any-role"}
    ),
}

if __name__ == "__main__":
    console = Console.from_config(
        {
            "roles": {"analyst": {"denied_columns": ["customers.name"]}},
            "ratelimit": {"rates": "5/second; 1000/day"},
        }
    )
    try:
        serve(console, "127.0.0.1", 8000, authenticator=ApiKeyAuthenticator(KEYS))
    finally:
        console.close()
