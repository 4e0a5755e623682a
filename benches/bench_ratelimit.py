"""Rate limiter throughput: avl beside `limits` and `pyrate-limiter`, in one run.

Run: ``.venv/bin/python benches/bench_ratelimit.py [--rounds 5] [--no-redis]``
(optionally under ``taskset -c 0``). Prints a table of decisions per second.

Memory: 1,000 distinct keys, round-robin, a limit high enough that every decision
is "allowed" (the common case). Each contender runs ``--rounds`` times, interleaved,
and the best round is reported (the machine is shared and noisy). Memory figures
are decisions per second of this thread's CPU time (``time.thread_time``), so that
other processes stealing the CPU do not skew one contender more than another;
``--wall`` uses wall-clock time instead. Redis figures are always wall-clock.

Redis: single decisions (one round trip each) for avl GCRA and `limits`
``RedisStorage`` fixed window (``hit`` alone, and ``hit`` + ``get_window_stats``,
which is what `limits` needs to fill in remaining/reset headers), plus avl's
``hit_many``: 100 keys per script call, the calls of one batch pipelined in one
round trip. Keys use a unique prefix and are deleted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

N_KEYS = 1000
KEYS = [f"user-{i}" for i in range(N_KEYS)]
BIG = "1000000000/hour"


def measure(
    fn: Callable[[], int], seconds: float, clock: Callable[[], float] = time.perf_counter
) -> float:
    """Run ``fn`` (returns how many decisions it made) for ``seconds``; rate/s."""
    done = 0
    start = clock()
    while True:
        done += fn()
        elapsed = clock() - start
        if elapsed >= seconds:
            return done / elapsed


def memory_contenders() -> dict[str, Callable[[], int]]:
    import limits
    import pyrate_limiter as pr
    from limits.storage import MemoryStorage as LimitsMemory
    from limits.strategies import (
        FixedWindowRateLimiter,
        MovingWindowRateLimiter,
        SlidingWindowCounterRateLimiter,
    )

    from avl.ratelimit import RateLimiter

    out: dict[str, Callable[[], int]] = {}

    avl_limiter = RateLimiter(BIG, storage="memory://")
    avl_hit = avl_limiter.hit

    def avl_gcra() -> int:
        for k in KEYS:
            avl_hit(k)
        return N_KEYS

    out["avl GCRA hit()"] = avl_gcra

    def avl_batch() -> int:
        avl_limiter.hit_many(KEYS)
        return N_KEYS

    out["avl GCRA hit_many(1000 keys)"] = avl_batch

    two = RateLimiter("100000000/second; 1000000000/day")

    def avl_two_rates(h: Callable[..., Any] = two.hit) -> int:
        for k in KEYS:
            h(k)
        return N_KEYS

    out["avl GCRA, two rates (10/s; 1000/day shape) hit()"] = avl_two_rates

    for strategy in ("sliding_window", "fixed_window"):
        lim = RateLimiter(BIG, strategy=strategy)

        def run(h: Callable[..., Any] = lim.hit) -> int:
            for k in KEYS:
                h(k)
            return N_KEYS

        out[f"avl {strategy} hit()"] = run

    item = limits.parse("1000000000/hour")
    for name, cls in (
        ("limits FixedWindow", FixedWindowRateLimiter),
        ("limits MovingWindow", MovingWindowRateLimiter),
        ("limits SlidingWindowCounter", SlidingWindowCounterRateLimiter),
    ):
        strat = cls(LimitsMemory())

        def run_limits(h: Callable[..., bool] = strat.hit) -> int:
            for k in KEYS:
                h(item, k)
            return N_KEYS

        out[name] = run_limits

    rates = [pr.Rate(1_000_000_000, pr.Duration.HOUR)]

    class PerKeyFactory(pr.BucketFactory):  # type: ignore[misc]
        """One in-memory bucket per key (pyrate-limiter's documented routing hook)."""

        def __init__(self) -> None:
            self.clock = pr.MonotonicClock()
            self.buckets: dict[str, Any] = {}

        def wrap_item(self, name: str, weight: int = 1) -> Any:
            return pr.RateItem(name, self.clock.now(), weight=weight)

        def get(self, item: Any) -> Any:
            b = self.buckets.get(item.name)
            if b is None:
                b = self.buckets[item.name] = pr.InMemoryBucket(rates)
            return b

    pyrate = pr.Limiter(PerKeyFactory())

    def run_pyrate() -> int:
        acquire = pyrate.try_acquire
        for k in KEYS:
            acquire(k, blocking=False)
        return N_KEYS

    out["pyrate-limiter InMemoryBucket/key"] = run_pyrate

    # A bare dict-based GCRA loop: the floor of what Python can do.
    tats: dict[str, float] = {}
    interval = 3600.0 / 1_000_000_000
    tolerance = 3600.0

    def bare() -> int:
        now = time.monotonic()
        get = tats.get
        for k in KEYS:
            tat = get(k, now)
            if tat < now:
                tat = now
            new = tat + interval
            if new - now <= tolerance:
                tats[k] = new
        return N_KEYS

    out["bare dict GCRA loop (no lock, no result)"] = bare
    return out


def redis_contenders(url: str) -> tuple[dict[str, Callable[[], int]], Callable[[], None]]:
    import limits
    import redis
    from limits.storage import RedisStorage as LimitsRedis
    from limits.strategies import FixedWindowRateLimiter

    from avl.ratelimit import RateLimiter
    from avl.ratelimit.backends.redis import RedisStorage

    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    storage = RedisStorage(url, prefix=prefix + "avl:")
    avl_limiter = RateLimiter(BIG, storage=storage)
    avl_hit = avl_limiter.hit
    limits_storage = LimitsRedis(url, key_prefix=prefix + "limits")
    fixed = FixedWindowRateLimiter(limits_storage)
    item = limits.parse("1000000000/hour")
    few = KEYS[:200]
    out: dict[str, Callable[[], int]] = {}

    def avl_single() -> int:
        for k in few:
            avl_hit(k)
        return len(few)

    def limits_hit() -> int:
        for k in few:
            fixed.hit(item, k)
        return len(few)

    def limits_hit_stats() -> int:
        for k in few:
            fixed.hit(item, k)
            fixed.get_window_stats(item, k)
        return len(few)

    def avl_batch() -> int:
        for i in range(0, N_KEYS, 100):
            avl_limiter.hit_many(KEYS[i : i + 100])
        return N_KEYS

    def avl_batch_1000() -> int:
        avl_limiter.hit_many(KEYS)
        return N_KEYS

    out["redis: avl GCRA hit() (Decision with remaining/reset)"] = avl_single
    out["redis: limits FixedWindow hit()"] = limits_hit
    out["redis: limits FixedWindow hit() + get_window_stats()"] = limits_hit_stats
    out["redis: avl GCRA hit_many(100 keys)"] = avl_batch
    out["redis: avl GCRA hit_many(1000 keys, 10 scripts pipelined)"] = avl_batch_1000

    def cleanup() -> None:
        client = redis.Redis.from_url(url)
        for k in client.scan_iter(match=prefix + "*", count=1000):
            client.delete(k)
        client.close()

    return out, cleanup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.4)
    parser.add_argument("--no-redis", action="store_true")
    parser.add_argument("--wall", action="store_true", help="wall-clock time for memory too")
    parser.add_argument(
        "--redis-url", default=os.environ.get("AVL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    args = parser.parse_args()
    try:
        affinity = sorted(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        affinity = []
    print(f"python {sys.version.split()[0]}, CPUs allowed: {affinity}, load: {os.getloadavg()}")

    groups: list[tuple[str, dict[str, Callable[[], int]]]] = [("memory", memory_contenders())]
    cleanup = None
    if not args.no_redis:
        try:
            rc, cleanup = redis_contenders(args.redis_url)
            groups.append(("redis", rc))
        except Exception as exc:  # a bench may skip Redis when it is down
            print(f"redis skipped: {exc}")

    for title, contenders in groups:
        best: dict[str, float] = dict.fromkeys(contenders, 0.0)
        clock = time.perf_counter if (title == "redis" or args.wall) else time.thread_time
        for _ in range(args.rounds):
            for name, fn in contenders.items():  # interleaved rounds
                best[name] = max(best[name], measure(fn, args.seconds, clock))
        unit = "wall-clock" if clock is time.perf_counter else "thread CPU time"
        print(f"\n{title} (best of {args.rounds} interleaved rounds, {N_KEYS} keys, {unit})")
        print(f"{'contender':60s} {'decisions/s':>14s}")
        for name, rate in best.items():
            print(f"{name:60s} {rate:14,.0f}")
        if title == "memory":
            peers = {n: r for n, r in best.items() if n.startswith(("limits", "pyrate"))}
            fastest = max(peers, key=lambda n: peers[n])
            avl_rate = best["avl GCRA hit()"]
            print(f"\navl hit() / fastest peer ({fastest}): {avl_rate / peers[fastest]:.2f}x")
            print(
                f"avl hit_many / fastest peer: {best['avl GCRA hit_many(1000 keys)'] / peers[fastest]:.2f}x"
            )
            bare = best["bare dict GCRA loop (no lock, no result)"]
            print(f"avl hit() / bare dict loop: {avl_rate / bare:.2f}x")
        else:
            avl_rate = best["redis: avl GCRA hit() (Decision with remaining/reset)"]
            lim = best["redis: limits FixedWindow hit()"]
            lim2 = best["redis: limits FixedWindow hit() + get_window_stats()"]
            print(f"\navl single / limits hit(): {avl_rate / lim:.2f}x")
            print(f"avl single / limits hit()+stats: {avl_rate / lim2:.2f}x")
    if cleanup is not None:
        cleanup()


if __name__ == "__main__":
    main()
