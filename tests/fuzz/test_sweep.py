"""Every garbage value in every argument position of every target, deterministically.

The Hypothesis tests beside this one combine values at random; this sweep makes sure
each hostile value (an int of 5,001 digits, NaN, a lone surrogate, a list nested 5,000
deep, an object whose dunders raise, an exhausted iterator, NumPy arrays of every
shape...) reaches each argument on every CI run, alone and wrapped in a list, a tuple
and a dict. Only avl errors may come out, and a failed call changes nothing stored.
"""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from avl.history import Entry, History
from avl.ratelimit import RateLimiter
from avl.safety import Policy, SafeQuery
from avl.testing import FakeClock
from avl.vectors import VectorStore
from tests.fuzz._harness import ATOMS, _exhausted, call

SWEEP: list[Any] = [v for a in ATOMS for v in (a, [a], (a, a), {"k": a})]


def _values() -> Iterator[Any]:
    yield from SWEEP
    yield _exhausted()


def sweep(target: str, fn: Callable[[Any], Any], state: Callable[[], Any] | None = None) -> None:
    """Call ``fn(value)`` for every garbage value; compare ``state()`` after failures."""
    before = state() if state is not None else None
    for value in _values():
        ok, _ = call(target, fn, value)
        if state is not None:
            after = state()
            if ok:
                before = after
            else:
                assert after == before, f"a failed {target} changed the stored data"


# ---------------------------------------------------------------------- SafeQuery
@pytest.mark.parametrize("field", [a.name for a in Policy.__attrs_attrs__ if a.init])  # type: ignore[attr-defined]
def test_policy_fields(field: str) -> None:
    sweep("Policy", lambda v: Policy(**{field: v}))


def test_safequery_check() -> None:
    guard = SafeQuery(Policy(max_rows=10))
    sweep("SafeQuery.check", guard.check)
    sweep("SafeQuery.check", lambda v: guard.check("SELECT 1 WHERE 1 = :p", v))
    sweep("SafeQuery.check", lambda v: guard.check("SELECT 1 WHERE 1 = :p", {"p": v}))


# ---------------------------------------------------------------------- RateLimiter
@pytest.mark.parametrize(
    "arg", ["rates", "storage", "strategy", "on_unavailable", "timeout_s", "clock"]
)
def test_ratelimiter_constructor(arg: str) -> None:
    base: dict[str, Any] = {"rates": "5/second", "storage": "memory://"}

    def make(v: Any) -> RateLimiter:
        return RateLimiter(**{**base, arg: v})

    sweep("RateLimiter", make)


def test_ratelimiter_methods() -> None:
    limiter = RateLimiter("20/minute; 100/day", clock=FakeClock())
    limiter.hit("victim", 3)
    reservation = limiter.reserve("victim", 2)

    def state() -> Any:
        d = limiter.peek("victim")
        return d.remaining, d.retry_after

    sweep("RateLimiter.hit", limiter.hit, state)
    sweep("RateLimiter.hit", lambda v: limiter.hit("victim", v), state)
    sweep("RateLimiter.test", lambda v: limiter.test("victim", v), state)
    sweep("RateLimiter.peek", limiter.peek, state)
    sweep("RateLimiter.hit_many", limiter.hit_many, state)
    sweep("RateLimiter.hit_many", lambda v: limiter.hit_many(["victim"], v), state)
    sweep("RateLimiter.reserve", lambda v: limiter.reserve("victim", v), state)
    sweep("RateLimiter.settle", lambda v: limiter.settle(v, 1), state)
    sweep("RateLimiter.settle", lambda v: limiter.settle(reservation, v), state)


# ---------------------------------------------------------------------- VectorStore
@pytest.mark.parametrize("arg", ["dim", "metric", "backend"])
def test_vector_store_constructor(arg: str) -> None:
    base: dict[str, Any] = {"dim": 4, "metric": "cosine", "backend": "memory://"}

    def make(v: Any) -> None:
        if arg == "backend" and isinstance(v, str) and v.startswith(("file", "annoy", "hnsw")):
            v = "memory://"  # the sweep creates no directories
        VectorStore(**{**base, arg: v}).close()

    sweep("VectorStore", make)


@pytest.fixture(params=["memory", "file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    url = "memory://" if request.param == "memory" else f"file://{tmp_path}/s"
    s = VectorStore(dim=4, metric="cosine", backend=url)
    s.add(["a", "b"], np.eye(4, dtype=np.float32)[:2], metadata=[{"k": 1}, None])
    yield s
    s.close()


def test_vector_store_methods(store: VectorStore) -> None:
    def state() -> Any:
        return sorted(
            (r.id, r.vector.tobytes(), sorted(r.metadata.items())) for r in store.get(["a", "b"])
        ), len(store)

    vec = np.ones(4, dtype=np.float32)

    def undo(added: Any) -> None:
        for extra in {"x", "y"} & {i for i in ("x", "y") if i in store}:
            store.delete(extra)

    for op in ("add", "upsert"):
        fn = getattr(store, op)
        sweep(f"VectorStore.{op}", lambda v, fn=fn: (fn(v, vec), undo(v)), state)
        sweep(f"VectorStore.{op}", lambda v, fn=fn: (fn("x", v), undo(v)), state)
        sweep(f"VectorStore.{op}", lambda v, fn=fn: (fn("x", vec, v), undo(v)), state)
    sweep("VectorStore.search", store.search, state)
    sweep("VectorStore.search", lambda v: store.search(vec, k=v), state)
    sweep("VectorStore.search", lambda v: store.search(vec, where=v), state)
    sweep("VectorStore.search_many", store.search_many, state)
    sweep("VectorStore.get", store.get, state)


# ---------------------------------------------------------------------- History
@pytest.fixture(params=["memory", "sqlite"])
def history(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[History]:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/h.db"
    h = History(url, clock=FakeClock(), hmac_key="k")
    h.record(Entry(user="ann", question="q", sql="SELECT 1"))
    yield h
    h.close()


def test_history_record(history: History) -> None:
    def state() -> Any:
        return history.backend.head()  # any append moves it; verify() checks the rest

    for field in [a.name for a in Entry.__attrs_attrs__]:  # type: ignore[attr-defined]
        sweep("History.record", lambda v, f=field: history.record(Entry(**{f: v})), state)
    sweep("History.record", history.record, state)
    sweep("History.record_many", history.record_many, state)
    assert history.verify().ok


def test_history_reads(history: History) -> None:
    def state() -> Any:
        return history.backend.head()  # any append moves it; verify() checks the rest

    for arg in (
        "text",
        "user",
        "since",
        "until",
        "outcome",
        "tags",
        "similar_to",
        "limit",
        "cursor",
    ):
        sweep("History.search", lambda v, a=arg: history.search(**{a: v}), state)
    sweep("History.get", history.get, state)
    sweep("History.stats", lambda v: history.stats(user=v), state)
    sweep("History.prune", history.prune, state)
    sweep("History.verify", history.verify, state)
    sweep(
        "History.anchor", lambda v: history.anchor(to=v if not isinstance(v, str) else None), state
    )
    sweep("History.export", lambda v: history.export(io.StringIO(), format=v), state)


@pytest.mark.parametrize("arg", ["url", "hmac_key", "clock", "table_prefix", "create", "retain"])
def test_history_constructor(arg: str) -> None:
    def make(v: Any) -> None:
        if arg == "url" and isinstance(v, str) and not v.startswith(("memory", "postgresql")):
            v = "memory://"  # the sweep creates no files
        History(**{arg: v}).close()

    sweep("History", make)


# ---------------------------------------------------------------------- Assistant
@pytest.fixture(scope="module")
def assistant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from avl.assistant import Assistant
    from avl.testing import FakeChatModel

    path = tmp_path_factory.mktemp("shop") / "shop.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT);"
        "INSERT INTO customers(name) VALUES ('Ann'), ('Bob');"
    )
    conn.commit()
    conn.close()
    a = Assistant(
        db=f"sqlite:///{path}",
        model=FakeChatModel(default="SELECT count(*) FROM customers"),
        history=History("memory://"),
        cache_threshold=None,
    )
    a.path = path
    yield a
    a.close()


@pytest.mark.parametrize("arg", ["question", "user", "role", "context", "session"])
def test_assistant_ask(assistant: Any, arg: str) -> None:
    base: dict[str, Any] = {"question": "How many customers?", "user": "ann"}

    def rows() -> Any:
        conn = sqlite3.connect(assistant.path)
        try:
            return conn.execute("SELECT * FROM customers").fetchall()
        finally:
            conn.close()

    def ask(v: Any) -> Any:
        kw = {**base, arg: v}
        return assistant.ask(kw.pop("question"), **kw)

    before = rows()
    for value in ATOMS:  # alone (each ask runs the pipeline)
        call("Assistant.ask", ask, value)
    assert rows() == before
    assert assistant.history.verify().ok
