"""Redis storage against real servers: exactness across processes, failures,
round trips, script reloads, server time, asyncio, and parity with memory."""

from __future__ import annotations

import asyncio
import logging
import math
import multiprocessing
import random
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis

from avl.errors import BackendError, BackendUnavailableError, ConfigError
from avl.ratelimit import AsyncRateLimiter, MemoryStorage, Rate, RateLimiter
from avl.ratelimit.backends.redis import AsyncRedisStorage, RedisStorage
from avl.testing import FakeClock
from tests.ratelimit._workers import hammer
from tests.ratelimit.conftest import RedisServer, free_port

pytestmark = pytest.mark.redis


def test_evaluation_call(redis_url: str, prefix: str) -> None:
    key = prefix + "user-1"
    limiter = RateLimiter("100/second", storage=redis_url)
    assert limiter.hit(key, cost=1).allowed is True
    never = limiter.hit(key, cost=101)
    assert (never.allowed, never.retry_after) == (False, math.inf)
    limiter.reset(key)
    # Exact counts with a window long enough that the test's own time cannot refill it.
    hourly = RateLimiter("100/hour", storage=redis_url)
    assert hourly.hit(key, cost=99).remaining == 1
    assert hourly.hit(key, cost=1).remaining == 0
    assert hourly.hit(key, cost=1).allowed is False
    hourly.reset(key)
    # The server-time fast path takes any string too (lone surrogates included).
    odd = [prefix + "\ud800", prefix + "用户", prefix + "\udfff"]
    assert [hourly.hit(k, cost=60).remaining for k in odd] == [40] * 3
    assert [hourly.hit(k, cost=41).allowed for k in odd] == [False] * 3
    for k in odd:
        hourly.reset(k)


@pytest.mark.parametrize("strategy", ["gcra", "sliding_window"])
def test_eight_processes_allow_exactly_n(
    redis_url: str, cleanup_prefix: str, strategy: str
) -> None:
    limit = 300  # per day: one unit refills every 288 s, far longer than the test
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(8) as pool:
        results = pool.starmap(
            hammer,
            [(redis_url, cleanup_prefix, f"{limit}/day", strategy, 80, 20)] * 8,
        )
    assert sum(results) == limit  # 800 attempts, never N+1
    check = RateLimiter(
        f"{limit}/day", storage=RedisStorage(redis_url, prefix=cleanup_prefix), strategy=strategy
    )
    assert check.peek("shared").remaining == 0


def test_one_decision_is_one_round_trip(own_redis: RedisServer) -> None:
    limiter = RateLimiter("10/hour; 1000/day", storage=RedisStorage(own_redis.url, prefix="p:"))
    limiter.hit("warm-up")  # loads the script (NOSCRIPT, SCRIPT LOAD, EVALSHA)
    admin = redis.Redis.from_url(own_redis.url)
    admin.config_resetstat()
    decision = limiter.hit("user-1")
    stats = admin.info("commandstats")
    calls = {name.removeprefix("cmdstat_"): v["calls"] for name, v in stats.items()}
    calls.pop("config|resetstat", None)  # our own RESETSTAT
    # One EVALSHA from the client; GET, TIME and SET ran inside the script.
    assert calls == {"evalsha": 1, "get": 1, "time": 1, "set": 1}
    assert (decision.allowed, decision.remaining) == (True, 9)
    admin.config_resetstat()
    batch = limiter.hit_many([f"k{i}" for i in range(250)] + ["user-1"])
    stats = admin.info("commandstats")
    calls = {name.removeprefix("cmdstat_"): v["calls"] for name, v in stats.items()}
    calls.pop("config|resetstat", None)
    # 251 decisions: three script calls of up to 100 keys, pipelined together.
    assert calls == {"evalsha": 3, "get": 251, "time": 3, "set": 251}
    assert [d.remaining for d in batch[-2:]] == [9, 8]
    admin.close()


def test_noscript_recovery(own_redis: RedisServer) -> None:
    limiter = RateLimiter("5/hour", storage=RedisStorage(own_redis.url, prefix="p:"))
    assert limiter.hit("k").remaining == 4
    admin = redis.Redis.from_url(own_redis.url)
    admin.script_flush()
    assert limiter.hit("k").remaining == 3
    admin.script_flush()
    assert [d.remaining for d in limiter.hit_many(["k", "k", "other"])] == [2, 1, 4]
    admin.script_flush()
    alimiter = AsyncRateLimiter("5/hour", storage=AsyncRedisStorage(own_redis.url, prefix="p:"))
    assert asyncio.run(alimiter.hit("k")).remaining == 0
    admin.close()


def test_server_down_raises_then_recovers(
    own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    url = own_redis.url
    strict = RateLimiter("3/hour", storage=url, timeout_s=1.0)
    fail_open = RateLimiter("3/hour", storage=url, on_unavailable="allow", timeout_s=1.0)
    fail_closed = RateLimiter("3/hour", storage=url, on_unavailable="deny", timeout_s=1.0)
    assert strict.hit("k").remaining == 2
    own_redis.stop()
    with pytest.raises(
        BackendUnavailableError, match=r"Redis at redis://127\.0\.0\.1:\d+/0 is unavailable"
    ) as info:
        strict.hit("k")
    assert isinstance(info.value.__cause__, redis.ConnectionError)
    with pytest.raises(BackendUnavailableError):
        strict.hit_many(["a", "b"])
    with pytest.raises(BackendUnavailableError):
        strict.reset("k")
    with caplog.at_level(logging.WARNING, logger="avl.ratelimit"):
        opened = fail_open.hit("k")
        closed = fail_closed.hit("k")
    assert (opened.allowed, closed.allowed, closed.retry_after) == (True, False, 1.0)
    assert [r.getMessage().split(": Redis at")[0] for r in caplog.records] == [
        "rate-limit storage unavailable; failing open for key 'k'",
        "rate-limit storage unavailable; failing closed for key 'k'",
    ]
    assert [d.allowed for d in fail_closed.hit_many(["a", "b"])] == [False, False]
    own_redis.start()  # same port; empty (no persistence)
    assert strict.hit("k").remaining == 2
    assert fail_open.hit("k").remaining == 1
    assert fail_closed.hit("k").remaining == 0


def test_frozen_server_times_out_instead_of_hanging(own_redis: RedisServer) -> None:
    limiter = RateLimiter("3/hour", storage=own_redis.url, timeout_s=0.3)
    closed = RateLimiter("3/hour", storage=own_redis.url, timeout_s=0.3, on_unavailable="deny")
    alimiter = AsyncRateLimiter("3/hour", storage=own_redis.url, timeout_s=0.3)
    aopen = AsyncRateLimiter("3/hour", storage=own_redis.url, timeout_s=0.3, on_unavailable="allow")
    assert limiter.hit("k").remaining == 2
    loop = asyncio.new_event_loop()
    assert loop.run_until_complete(alimiter.hit("a")).remaining == 2  # connected
    assert own_redis.proc is not None
    own_redis.proc.send_signal(signal.SIGSTOP)  # accepts nothing, answers nothing
    try:
        with pytest.raises(BackendUnavailableError, match="is unavailable") as info:
            limiter.hit("k")
        assert isinstance(info.value.__cause__, redis.TimeoutError)
        assert closed.hit("k").allowed is False
        with pytest.raises(BackendUnavailableError, match="is unavailable"):
            loop.run_until_complete(alimiter.hit("a"))
        assert loop.run_until_complete(aopen.hit("a")).allowed is True
    finally:
        own_redis.proc.send_signal(signal.SIGCONT)
    # A timed-out hit may still be applied once the server resumes (it never
    # under-counts), so recovery is checked on a fresh key.
    assert limiter.hit("fresh").remaining == 2
    assert loop.run_until_complete(alimiter.hit("fresh")).remaining == 1
    loop.close()


def test_closed_port_is_a_clear_error() -> None:
    port = free_port()
    limiter = RateLimiter("1/second", storage=f"redis://127.0.0.1:{port}/0", timeout_s=0.3)
    with pytest.raises(BackendUnavailableError, match=f"127.0.0.1:{port}/0 is unavailable"):
        limiter.hit("k")
    alimiter = AsyncRateLimiter("1/second", storage=f"redis://127.0.0.1:{port}/0", timeout_s=0.3)
    with pytest.raises(BackendUnavailableError, match="is unavailable"):
        asyncio.run(alimiter.hit("k"))
    open_async = AsyncRateLimiter(
        "1/second", storage=f"redis://127.0.0.1:{port}/0", timeout_s=0.3, on_unavailable="allow"
    )
    assert asyncio.run(open_async.hit("k")).allowed is True


def test_redis_errors_are_wrapped(redis_url: str, cleanup_prefix: str) -> None:
    storage = RedisStorage(redis_url, prefix=cleanup_prefix)
    limiter = RateLimiter("1/hour", storage=storage)
    storage.client.lpush(cleanup_prefix + "g1/3600000000:k", "not a limiter state")
    with pytest.raises(BackendError, match="WRONGTYPE") as info:
        limiter.hit("k")
    assert isinstance(info.value.__cause__, redis.ResponseError)


def test_bad_urls_and_rates() -> None:
    with pytest.raises(ConfigError, match="expects a 'redis://' URL"):
        RedisStorage("http://127.0.0.1")
    with pytest.raises(ConfigError, match="bad Redis URL"):
        RedisStorage("redis://127.0.0.1:notaport/0")
    with pytest.raises(ConfigError, match="did you mean 'redis'"):
        RateLimiter("1/second", storage="rdis://127.0.0.1")
    with pytest.raises(ConfigError, match="too large for exact arithmetic in Redis"):
        RateLimiter(
            Rate(limit=10**10, period_s=1.000001), storage=RedisStorage("redis://127.0.0.1:1/0")
        )


def test_server_time_and_ttl(redis_url: str, cleanup_prefix: str) -> None:
    # Client clocks play no part: two instances, each with its own wildly skewed
    # client clock, share one exact budget because time comes from Redis TIME.
    a = RateLimiter(
        "3/hour", storage=RedisStorage(redis_url, prefix=cleanup_prefix), clock=FakeClock(start=0.0)
    )
    b = RateLimiter(
        "3/hour",
        storage=RedisStorage(redis_url, prefix=cleanup_prefix),
        clock=FakeClock(start=4_000_000_000.0),
    )
    assert [a.hit("k").allowed, b.hit("k").allowed, a.hit("k").allowed] == [True] * 3
    assert (b.hit("k").allowed, a.hit("k").allowed) == (False, False)
    client = redis.Redis.from_url(redis_url)
    ttl_ms = client.pttl(cleanup_prefix + "g3/3600000000:k")
    assert 3_000_000 < ttl_ms <= 3_600_001  # back to full after (almost) one hour
    t = RateLimiter("10/minute", storage=RedisStorage(redis_url, prefix=cleanup_prefix))
    t.hit("short")
    assert 0 < client.pttl(cleanup_prefix + "g10/60000000:short") <= 6_001  # 6 s of debt
    client.close()


def test_memory_and_redis_agree(redis_url: str, cleanup_prefix: str) -> None:
    """The Lua scripts mirror the Python algorithms: same inputs, same decisions."""
    rng = random.Random(20261125)
    for strategy in ("gcra", "sliding_window", "fixed_window"):
        for rates in (
            "7/minute",
            "3/second; 10/minute",
            "5 per 2 seconds; 1000/day",
            "4/second; 1000003/day",
        ):
            clock = FakeClock(start=1_700_000_000.0 + rng.randrange(60))
            mem = RateLimiter(rates, storage=MemoryStorage(clock=clock), strategy=strategy)
            red = RateLimiter(
                rates,
                storage=RedisStorage(redis_url, prefix=cleanup_prefix + strategy, clock=clock),
                strategy=strategy,
            )
            reservations: list[tuple[Any, Any]] = []
            for _ in range(120):
                key = rng.choice(["a", "b"])
                op = rng.random()
                if op < 0.15:
                    clock.advance(rng.randrange(0, 3_000_000) / 1_000_000)
                    continue
                if op < 0.55:
                    cost = rng.randrange(0, 4)
                    got = (mem.hit(key, cost=cost), red.hit(key, cost=cost))
                elif op < 0.65:
                    cost = rng.randrange(0, 12)
                    got = (mem.test(key, cost=cost), red.test(key, cost=cost))
                elif op < 0.75:
                    got = (mem.peek(key), red.peek(key))
                elif op < 0.85:
                    cost = rng.randrange(1, 5)
                    r1, r2 = mem.reserve(key, cost), red.reserve(key, cost)
                    got = (r1.decision, r2.decision)
                    if r1.allowed:
                        reservations.append((r1, r2))
                elif reservations:
                    r1, r2 = reservations.pop()
                    actual = rng.randrange(0, 8)
                    got = (mem.settle(r1, actual), red.settle(r2, actual))
                else:
                    got = (mem.peek(key), red.peek(key))
                assert got[0] == got[1], (strategy, rates)


def test_threads_share_one_storage_exactly(redis_url: str, cleanup_prefix: str) -> None:
    # The hot path keeps one connection per concurrent caller: 8 threads, one key.
    storage = RedisStorage(redis_url, prefix=cleanup_prefix, timeout_s=5.0)
    limiter = RateLimiter("150/day", storage=storage)
    barrier = threading.Barrier(8)

    def work() -> int:
        barrier.wait()
        return sum(limiter.hit("shared").allowed for _ in range(40))

    with ThreadPoolExecutor(8) as pool:
        results = [f.result() for f in [pool.submit(work) for _ in range(8)]]
    assert sum(results) == 150  # 320 attempts, never 151
    assert limiter.peek("shared").remaining == 0
    storage.close()


def test_broken_idle_connections_are_replaced_without_double_counting(
    own_redis: RedisServer,
) -> None:
    storage = RedisStorage(own_redis.url, prefix="p:")
    limiter = RateLimiter("100/hour", storage=storage)
    barrier = threading.Barrier(4)

    def work() -> int:
        barrier.wait()
        return sum(limiter.hit("k").allowed for _ in range(5))

    with ThreadPoolExecutor(4) as pool:
        assert sum(f.result() for f in [pool.submit(work) for _ in range(4)]) == 20
    admin = redis.Redis.from_url(own_redis.url)
    assert admin.client_kill_filter(_type="normal", skipme=True) >= 1
    # The server closed every idle connection: each is replaced once, the hit
    # counted once.
    assert [limiter.hit("k").remaining for _ in range(3)] == [79, 78, 77]
    admin.close()
    own_redis.stop()
    own_redis.start()  # same port, empty: no error, a fresh budget
    assert [limiter.hit("k").remaining for _ in range(2)] == [99, 98]
    storage.close()


def test_forked_children_do_not_share_the_parents_connection(own_redis: RedisServer) -> None:
    limiter = RateLimiter("1000/hour", storage=RedisStorage(own_redis.url, prefix="p:"))
    assert limiter.hit("k").remaining == 999  # the parent now holds a connection
    ctx = multiprocessing.get_context("fork")
    queue: Any = ctx.Queue()
    start = ctx.Barrier(4)

    def child() -> None:
        start.wait(timeout=30)
        queue.put([limiter.hit("k").remaining for _ in range(50)])

    children = [ctx.Process(target=child) for _ in range(3)]
    for p in children:
        p.start()
    start.wait(timeout=30)
    mine = [limiter.hit("k").remaining for _ in range(50)]
    seen = [queue.get(timeout=30) for _ in children]
    for p in children:
        p.join(timeout=30)
        assert p.exitcode == 0
    runs = [mine, *seen]
    for run in runs:
        assert run == sorted(run, reverse=True)
        assert len(set(run)) == 50
    # 1 + 200 hits, each counted once and answered with its own reply.
    assert sorted(r for run in runs for r in run)[::-1] == list(range(998, 798, -1))
    assert limiter.peek("k").remaining == 799
