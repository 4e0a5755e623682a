"""Locust users for avl's endpoints and the bare Starlette peer.

Each class hits one endpoint, so the runner can load them one at a time (interleaved)
and report each beside the objectives. Hosts come from the environment the runner sets:
``AVL_LOAD_AVL`` (``avl serve``) and ``AVL_LOAD_BARE`` (the bare Starlette app).

``AVL_LOAD_REQUESTS_PER_USER``, when set, makes each user stop after that many requests
(the spike scenario: 1,000 requests from 100 users arriving at once).
``AVL_LOAD_PACING_S``, when set, paces each user to one request per that many seconds
(the load scenario: 100 users offer 100 requests/s); without it users send back to back
(saturation: the stress scenario).
"""

from __future__ import annotations

import itertools
import os

from locust import FastHttpUser, constant, constant_pacing, task
from locust.exception import StopUser

AVL = os.environ.get("AVL_LOAD_AVL", "http://127.0.0.1:8100")
BARE = os.environ.get("AVL_LOAD_BARE", "http://127.0.0.1:8101")
PER_USER = int(os.environ.get("AVL_LOAD_REQUESTS_PER_USER", "0") or 0)
PACING_S = float(os.environ.get("AVL_LOAD_PACING_S", "0") or 0)
JSON = {"content-type": "application/json"}
_unique = itertools.count(1)


class _Base(FastHttpUser):
    abstract = True
    wait_time = constant_pacing(PACING_S) if PACING_S > 0 else constant(0)

    def on_start(self) -> None:
        self.sent = 0

    def counted(self) -> None:
        self.sent += 1
        if PER_USER and self.sent >= PER_USER:
            raise StopUser()


class Healthz(_Base):
    host = AVL

    @task
    def healthz(self) -> None:
        self.client.get("/healthz", name="avl GET /healthz")
        self.counted()


class CheckCached(_Base):
    host = AVL

    @task
    def check(self) -> None:
        self.client.post(
            "/v1/sql/check",
            data=b'{"sql": "SELECT name, city FROM customers WHERE city = \'Paris\' LIMIT 10"}',
            headers=JSON,
            name="avl POST /v1/sql/check (cached)",
        )
        self.counted()


class CheckUncached(_Base):
    host = AVL

    @task
    def check(self) -> None:
        n = next(_unique)
        sql = (
            f"SELECT c.name, COUNT(o.id) AS orders FROM customers c JOIN orders o "
            f"ON o.customer_id = c.id WHERE c.id > {n} GROUP BY c.name LIMIT 10"
        )
        self.client.post(
            "/v1/sql/check",
            json={"sql": sql},
            name="avl POST /v1/sql/check (uncached)",
        )
        self.counted()


class Ask(_Base):
    """A different number in every question: the semantic cache never answers it
    (another value is never reused), so the offline model runs every time."""

    host = AVL

    @task
    def ask(self) -> None:
        q = f"How many orders has the customer with id {next(_unique) % 5000 + 1} placed?"
        self.client.post("/v1/ask", json={"question": q}, name="avl POST /v1/ask (offline)")
        self.counted()


class BareHealthz(_Base):
    host = BARE

    @task
    def healthz(self) -> None:
        self.client.get("/healthz", name="bare Starlette GET /healthz")
        self.counted()


class BareEcho(_Base):
    host = BARE

    @task
    def echo(self) -> None:
        self.client.post(
            "/echo",
            data=b'{"sql": "SELECT name, city FROM customers WHERE city = \'Paris\' LIMIT 10"}',
            headers=JSON,
            name="bare Starlette POST /echo (JSON)",
        )
        self.counted()
