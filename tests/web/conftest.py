"""A small console built from the real primitives, for the web tests.

The Assistant double is scripted: it maps a question to SQL, checks it with the
console's real SafeQuery and runs it on a real SQLite file, yielding the same
event kinds as :class:`avl.assistant.Assistant`.
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import anyio
import attrs
import httpx
import pytest

from avl.console import Console
from avl.errors import NotFoundError
from avl.history import Entry, History
from avl.ratelimit import RateLimiter
from avl.safety import Policy, SafeQuery
from avl.testing import FakeClock
from avl.web import create_app
from tests.conftest import unavailable


@attrs.frozen(kw_only=True)
class Ev:
    kind: str
    data: Mapping[str, Any] = attrs.field(factory=dict)
    answer: Any = None


@attrs.frozen(kw_only=True)
class Ans:
    question: str
    sql: str = ""
    verdict: Any = None
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[Any, ...], ...] = ()
    error: str = ""
    history_id: str | None = None


@attrs.frozen(kw_only=True)
class Result:
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]


class ScriptedAssistant:
    """question -> SQL from a script; real SafeQuery; real SQLite."""

    def __init__(self, db: Path, console: TinyConsole, script: Mapping[str, str]) -> None:
        self.db = self  # the Database shape: execute(sql)
        self.path = db
        self.console = console
        self.script = dict(script)
        self.trained: list[dict[str, str]] = []
        self.gate: threading.Event | None = None  # when set, stream waits on it before SQL
        self.closed = threading.Event()
        self.started = threading.Event()

    def execute(self, sql: str) -> Result:
        con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        try:
            cur = con.execute(sql)
            cols = tuple(d[0] for d in cur.description or ())
            return Result(columns=cols, rows=tuple(cur.fetchall()))
        finally:
            con.close()

    def _record(self, user: str, role: str, question: str, sql: str, allowed: bool, n: int) -> str:
        h = self.console.history
        entry = h.record(
            Entry(
                user=user,
                role=role,
                question=question,
                sql=sql,
                allowed=allowed,
                outcome="ok" if allowed else "refused",
                row_count=n if allowed else None,
            )
        )
        return str(entry.id)

    def stream(
        self,
        question: str,
        *,
        user: str = "",
        role: str | None = "default",
        context: Any = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[Ev]:
        self.started.set()
        try:
            yield Ev(kind="retrieved", data={"items": []})
            if self.gate is not None:
                self.gate.wait(timeout=30)
            sql = self.script.get(question)
            if sql is None:
                raise NotFoundError(f"no scripted SQL for {question!r}")
            yield Ev(kind="sql", data={"sql": sql, "attempt": 1})
            verdict = self.console.guard_for(role or "default").check(sql)
            yield Ev(
                kind="verdict",
                data={
                    "allowed": verdict.allowed,
                    "violations": [v.code.value for v in verdict.violations],
                },
            )
            result = Result(columns=(), rows=())
            if verdict.allowed:
                result = self.execute(verdict.sql)
                yield Ev(
                    kind="rows",
                    data={"columns": list(result.columns), "rows": [list(r) for r in result.rows]},
                )
            hid = self._record(
                user, role or "default", question, sql, verdict.allowed, len(result.rows)
            )
            answer = Ans(
                question=question,
                sql=verdict.sql or sql,
                verdict=verdict,
                columns=result.columns,
                rows=result.rows,
                history_id=hid,
                error="" if verdict.allowed else "refused",
            )
            yield Ev(kind="answer", data={}, answer=answer)
            yield Ev(kind="done", data={"outcome": "ok" if verdict.allowed else "refused"})
        finally:
            self.closed.set()

    def ask(
        self, question: str, *, user: str = "", role: str | None = "default", context: Any = None
    ) -> Ans:
        answer = None
        for ev in self.stream(question, user=user, role=role):
            if ev.answer is not None:
                answer = ev.answer
        assert answer is not None
        return answer

    def train(self, **kwargs: str) -> list[str]:
        self.trained.append(kwargs)
        return [f"item-{len(self.trained)}"]


class TinyConsole:
    """The Console's shape: assistant, limiter, history, metrics, guard_for."""

    def __init__(self, db: Path, *, limiter: RateLimiter | None = None) -> None:
        self.policies = {
            "default": Policy(dialect="sqlite", max_rows=100),
            "admin": Policy(dialect="sqlite", max_rows=1000),
            "tenant": Policy(dialect="sqlite", row_filters={"orders": "customer_id = :cid"}),
        }
        self.history: Any = History("memory://")
        self.limiter: Any = limiter
        self.metrics: Any = None
        self.config: dict[str, Any] = {}
        self.assistant = ScriptedAssistant(
            db,
            self,
            {
                "how many customers": "SELECT count(*) AS n FROM customers",
                "customer names": "SELECT name FROM customers ORDER BY id",
                "drop everything": "DROP TABLE customers",
            },
        )

    def policy_for(self, role: str) -> Policy:
        try:
            return self.policies[role]
        except KeyError:
            raise NotFoundError(f"no policy for role {role!r}") from None

    def guard_for(self, role: str) -> SafeQuery:
        return SafeQuery(self.policy_for(role))

    def close(self) -> None:
        self.history.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "shop.db"
    con = sqlite3.connect(path)
    con.executescript(
        """
        CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, country TEXT);
        INSERT INTO customers VALUES (1, 'Ada', 'UK'), (2, 'Bo', 'SE'), (3, 'Cy', 'FR');
        CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, total REAL);
        INSERT INTO orders VALUES (1, 1, 10.0), (2, 1, 5.5), (3, 2, 7.25);
        """
    )
    con.commit()
    con.close()
    return path


@pytest.fixture
def console(db_path: Path) -> Iterator[TinyConsole]:
    c = TinyConsole(db_path)
    yield c
    c.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


BASE_URL = "http://127.0.0.1:8000"


def client(
    app: Any, host: str = "127.0.0.1", *, base_url: str = BASE_URL, **kw: Any
) -> httpx.AsyncClient:
    """An httpx client calling ``app`` in process, from ``host``, for ``base_url``."""
    transport = httpx.ASGITransport(app=app, client=(host, 4321))
    return httpx.AsyncClient(transport=transport, base_url=base_url, **kw)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def app(console: TinyConsole) -> Any:
    return create_app(console)


class LiveServer:
    """uvicorn serving an app on a free loopback port, in a thread.

    The listening socket is bound before the thread starts, so clients may connect
    at once (the kernel queues them until uvicorn accepts): no waiting needed.
    """

    def __init__(self, app: Any) -> None:
        import socket

        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> LiveServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()


class Wire:
    """Drive the ASGI app by hand: a request body, then a disconnect on demand."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.sent: list[bytes] = []
        self.status: int | None = None
        self.headers: dict[bytes, bytes] = {}
        self.disconnect = anyio.Event()
        self.got_data = anyio.Event()
        self._first = True

    async def receive(self) -> dict[str, Any]:
        if self._first:
            self._first = False
            return {"type": "http.request", "body": self.body, "more_body": False}
        await self.disconnect.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = dict(message["headers"])
        elif message["type"] == "http.response.body":
            self.sent.append(message.get("body", b""))
            self.got_data.set()
            self.got_data = anyio.Event()

    def text(self) -> bytes:
        return b"".join(self.sent)


def asgi_scope(
    path: str = "/v1/ask", headers: list[tuple[bytes, bytes]] | None = None
) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", b"application/json"),
            (b"accept", b"text/event-stream"),
            *(headers or []),
        ],
        "client": ("127.0.0.1", 5555),
        "server": ("127.0.0.1", 80),
    }


async def wait_for(wire: Wire, needle: bytes) -> None:
    while needle not in wire.text():
        await wire.got_data.wait()


# -- the browser tests: Debian's Chromium driven by Playwright ---------------------

#: Chromium's flags for headless runs in a container, with nothing fetched.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    """Playwright, or the test is unavailable (skipped; a failure under ``CI``)."""
    if shutil.which("chromium") is None:
        unavailable("chromium is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed")
    with sync_playwright() as p:
        yield p


def chromium(playwright: Any, *extra: str) -> Iterator[Any]:
    """Headless Debian Chromium with :data:`CHROMIUM_ARGS` and ``extra`` flags,
    closed when the generator ends (for module-scoped browser fixtures)."""
    b = playwright.chromium.launch(
        executable_path=shutil.which("chromium"), headless=True, args=[*CHROMIUM_ARGS, *extra]
    )
    yield b
    b.close()


@pytest.fixture(scope="module")
def browser(playwright: Any) -> Iterator[Any]:
    """Headless Chromium with :data:`CHROMIUM_ARGS`."""
    yield from chromium(playwright)


@pytest.fixture(scope="module")
def demo_url() -> Iterator[str]:
    """The page of a real demo :class:`~avl.console.Console` on a live server."""
    console = Console(ratelimit={"rates": "1000/second"})
    try:
        with LiveServer(create_app(console)) as server:
            yield server.url + "/"
    finally:
        console.close()


def expect(locator: Any) -> Any:
    """Playwright's ``expect`` (it waits on locators without evaluating script strings
    in the page, which the page's CSP would refuse)."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)
