"""Garbage into RateLimiter: only avl errors, no hang, no change after a failure.

Each test draws arguments from :mod:`tests.fuzz._harness` (wrong types, huge and
non-finite numbers, NUL and lone surrogates, ragged and deep containers, NumPy arrays
of every shape, objects whose dunders raise) and calls one public method through
:func:`~tests.fuzz._harness.call`, which fails on any exception that is not an
:class:`~avl.errors.AvlError` and on any call running past its alarm. When a call
fails, the stored data it could have touched is compared with a snapshot taken
before it.

Bounded for CI (derandomised, a few hundred examples per test); set
``AVL_FUZZ_EXAMPLES`` (and ``AVL_FUZZ_RANDOM=1``) for a longer, random run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from avl.ratelimit import RateLimiter
from avl.testing import FakeClock
from tests.fuzz._harness import EXAMPLES, atom, call, fuzz, garbage, text

# ---------------------------------------------------------------------- RateLimiter
RATE_TEXT = st.sampled_from(["10/second", "5/minute; 100/day", "1/hour", "3 per 2 seconds"])


@fuzz
@given(
    rates=RATE_TEXT | text | garbage,
    storage=st.sampled_from(["memory://"]) | atom,
    strategy=st.sampled_from(["gcra", "sliding_window", "fixed_window"]) | garbage,
    on_unavailable=st.sampled_from(["raise", "allow", "deny"]) | garbage,
    timeout_s=st.sampled_from([0.5]) | garbage,
)
def test_ratelimiter_constructor(
    rates: Any, storage: Any, strategy: Any, on_unavailable: Any, timeout_s: Any
) -> None:
    if isinstance(storage, str) and storage.startswith(("redis", "postgresql")):
        storage = "memory://"  # the network storages are fuzzed below, on a real server
    call(
        "RateLimiter",
        RateLimiter,
        rates,
        storage=storage,
        strategy=strategy,
        on_unavailable=on_unavailable,
        timeout_s=timeout_s,
    )


LIMITER_OPS = ["hit", "test", "peek", "reset", "hit_many", "reserve", "settle", "acquire"]


def _limiter_state(limiter: RateLimiter, keys: list[str]) -> list[tuple[int, float]]:
    return [(d.remaining, d.retry_after) for d in (limiter.peek(k) for k in keys)]


def _limiter_calls(limiter: RateLimiter, op: str, key: Any, cost: Any) -> None:
    keys = ["victim", *([key] if isinstance(key, str) and "\x00" not in key else [])]
    limiter.hit("victim", 1)
    before = _limiter_state(limiter, keys)
    fn: Any
    if op == "hit_many":
        ok, _ = call("RateLimiter.hit_many", limiter.hit_many, key, cost)
    elif op == "peek" or op == "reset":
        ok, _ = call(f"RateLimiter.{op}", getattr(limiter, op), key)
    elif op == "settle":
        ok, _ = call("RateLimiter.settle", limiter.settle, key, cost)
    elif op == "acquire":

        def fn(k: Any, c: Any) -> None:
            with limiter.acquire(k, c):
                pass

        ok, _ = call("RateLimiter.acquire", fn, key, cost)
    else:
        ok, _ = call(f"RateLimiter.{op}", getattr(limiter, op), key, cost)
    if not ok:
        assert _limiter_state(limiter, keys) == before, f"{op} changed state and failed"


@fuzz
@given(
    op=st.sampled_from(LIMITER_OPS),
    key=st.sampled_from(["k", ("user", 1)]) | text | garbage,
    cost=st.integers(-3, 30) | garbage,
)
def test_ratelimiter_calls(op: str, key: Any, cost: Any) -> None:
    limiter = RateLimiter("20/minute; 100/day", clock=FakeClock())
    _limiter_calls(limiter, op, key, cost)


@pytest.fixture(scope="module")
def redis_limiter(redis_url: str) -> Iterator[RateLimiter]:
    import uuid

    from avl.ratelimit.backends.redis import RedisStorage

    prefix = f"avltest:fuzz:{uuid.uuid4().hex[:8]}:"
    storage = RedisStorage(redis_url, prefix=prefix, clock=FakeClock())
    yield RateLimiter("20/minute; 100/day", storage=storage)
    client = storage.client
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        client.delete(*keys)
    storage.close()


@settings(fuzz, max_examples=max(50, EXAMPLES // 3))
@given(
    op=st.sampled_from(LIMITER_OPS),
    key=st.sampled_from(["k", ("user", 1)]) | text | garbage,
    cost=st.integers(-3, 30) | garbage,
)
def test_ratelimiter_calls_on_redis(
    redis_limiter: RateLimiter, op: str, key: Any, cost: Any
) -> None:
    _limiter_calls(redis_limiter, op, key, cost)
