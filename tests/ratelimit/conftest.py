"""Fixtures for the rate-limit tests: storages and a private redis-server."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from avl.ratelimit import AsyncRateLimiter, MemoryStorage, RateLimiter
from avl.testing import FakeClock
from tests.conftest import unavailable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A redis-server of our own on a free port (so a test may stop it)."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            unavailable("redis-server is not installed")
        proc = subprocess.Popen(
            [
                str(exe),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(self.tmp),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.proc = proc
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:  # the server logs "Ready to accept connections"
            seen.append(line)
            if b"Ready to accept connections" in line:
                break
        else:
            raise RuntimeError(f"own redis-server did not start: {b''.join(seen)!r}")
        # Keep draining its log so it never blocks on a full pipe.
        threading.Thread(target=proc.stdout.read, daemon=True).start()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh redis-server on a free port, killed at the end."""
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def prefix() -> str:
    """A key prefix unique to this test (others share the Redis server)."""
    return f"avltest:rl:{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def cleanup_prefix(redis_url: str, prefix: str) -> Iterator[str]:
    yield prefix
    import redis

    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


# A limiter factory: make(rates, strategy=...) -> RateLimiter, plus its FakeClock.
MakeLimiter = Callable[..., RateLimiter]


class SyncFacade:
    """Runs an :class:`AsyncRateLimiter` on one event loop behind the sync API, so
    the conformance suite checks the async twin with the same exact assertions."""

    def __init__(self, limiter: AsyncRateLimiter, loop: asyncio.AbstractEventLoop) -> None:
        self._l = limiter
        self._run = loop.run_until_complete

    def hit(self, key: Any, cost: int = 1) -> Any:
        return self._run(self._l.hit(key, cost))

    def test(self, key: Any, cost: int = 1) -> Any:
        return self._run(self._l.test(key, cost))

    def peek(self, key: Any) -> Any:
        return self._run(self._l.peek(key))

    def reset(self, key: Any) -> None:
        self._run(self._l.reset(key))

    def hit_many(self, keys: Any, cost: int = 1) -> Any:
        return self._run(self._l.hit_many(keys, cost))

    def reserve(self, key: Any, cost: int) -> Any:
        return self._run(self._l.reserve(key, cost))

    def settle(self, reservation: Any, actual_cost: int) -> Any:
        return self._run(self._l.settle(reservation, actual_cost))

    def limit(self, key: Any, cost: int = 1) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
            @self._l.limit(key, cost)
            async def afn(*args: Any, **kwargs: Any) -> Any:
                return fn(*args, **kwargs)

            def wrapper(*args: Any, **kwargs: Any) -> Any:
                return self._run(afn(*args, **kwargs))

            return wrapper

        return decorate

    @contextlib.contextmanager
    def acquire(self, key: Any, cost: int = 1) -> Iterator[Any]:
        cm = self._l.acquire(key, cost)
        decision = self._run(cm.__aenter__())
        try:
            yield decision
        finally:
            self._run(cm.__aexit__(None, None, None))


@pytest.fixture(params=["memory", "redis", "memory-async", "redis-async"])
def backend(request: pytest.FixtureRequest) -> Iterator[tuple[MakeLimiter, FakeClock]]:
    """Limiters over each storage (and the async twins), driven by one FakeClock.

    The Redis storages get the clock injected (their scripts then take ``now`` from
    the client instead of ``TIME``), so the same exact assertions hold for all.
    """
    clock = FakeClock(start=1_700_000_000.0)
    kind = request.param
    if kind == "memory":
        storage: Any = MemoryStorage(clock=clock)

        def make(rates: str, **kw: Any) -> Any:
            return RateLimiter(rates, storage=storage, **kw)

        yield make, clock
        return
    if kind == "memory-async":
        astorage: Any = MemoryStorage(clock=clock)
        loop = asyncio.new_event_loop()

        def make_am(rates: str, **kw: Any) -> Any:
            return SyncFacade(AsyncRateLimiter(rates, storage=astorage, **kw), loop)

        yield make_am, clock
        loop.close()
        return
    redis_url = request.getfixturevalue("redis_url")
    prefix = request.getfixturevalue("cleanup_prefix")
    from avl.ratelimit.backends.redis import AsyncRedisStorage, RedisStorage

    if kind == "redis":
        rstorage = RedisStorage(redis_url, prefix=prefix, clock=clock)

        def make_redis(rates: str, **kw: Any) -> Any:
            return RateLimiter(rates, storage=rstorage, **kw)

        yield make_redis, clock
        rstorage.close()
        return
    loop = asyncio.new_event_loop()
    arstorage = AsyncRedisStorage(redis_url, prefix=prefix, clock=clock)

    def make_ar(rates: str, **kw: Any) -> Any:
        return SyncFacade(AsyncRateLimiter(rates, storage=arstorage, **kw), loop)

    yield make_ar, clock
    loop.run_until_complete(arstorage.aclose())
    loop.close()
