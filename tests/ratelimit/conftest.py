"""Fixtures for the rate-limit tests: storages and a private redis-server."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from avl.ratelimit import MemoryStorage, RateLimiter
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


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> Iterator[tuple[MakeLimiter, FakeClock]]:
    """Limiters over each storage, all driven by one FakeClock.

    The Redis storage gets the clock injected (its scripts then take ``now`` from
    the client instead of ``TIME``), so the same exact assertions hold for both.
    """
    clock = FakeClock(start=1_700_000_000.0)
    if request.param == "memory":
        storage: Any = MemoryStorage(clock=clock)

        def make(rates: str, **kw: Any) -> RateLimiter:
            return RateLimiter(rates, storage=storage, **kw)

        yield make, clock
        return
    redis_url = request.getfixturevalue("redis_url")
    prefix = request.getfixturevalue("cleanup_prefix")
    from avl.ratelimit.backends.redis import RedisStorage

    rstorage = RedisStorage(redis_url, prefix=prefix, clock=clock)

    def make_redis(rates: str, **kw: Any) -> RateLimiter:
        return RateLimiter(rates, storage=rstorage, **kw)

    yield make_redis, clock
    rstorage.close()
