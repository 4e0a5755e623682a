"""RateLimiter / AsyncRateLimiter API: keys, costs, options, helpers, asyncio."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys

import pytest

import avl.ratelimit as rl
from avl.errors import ConfigError, InvalidInputError, RateLimitedError
from avl.ratelimit import (
    AsyncRateLimiter,
    MemoryStorage,
    RateLimiter,
    Strategy,
    key_from_request,
    make_key,
)
from avl.testing import FakeClock


def test_public_names() -> None:
    assert sorted(rl.__all__) == [
        "AsyncRateLimiter",
        "AsyncStorage",
        "Decision",
        "Key",
        "MemoryStorage",
        "OnUnavailable",
        "Rate",
        "RateLimiter",
        "Reservation",
        "Storage",
        "Strategy",
        "apply_headers",
        "key_from_request",
        "make_key",
        "parse_rates",
    ]
    for name in rl.__all__:
        assert getattr(rl, name) is not None


def test_import_avl_ratelimit_loads_no_driver() -> None:
    code = (
        "import sys, avl, avl.ratelimit; "
        "from avl.ratelimit import RateLimiter; RateLimiter('1/second').hit('k'); "
        "print(sorted(m for m in ('redis', 'limits', 'pyrate_limiter') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("user-1", "user-1"),
        (("user-1", "/v1/ask"), "user-1:/v1/ask"),
        (("a:b", "c"), "a\\:b:c"),
        (("a", "b:c"), "a:b\\:c"),
        (("team", 7), "team:7"),
        (("back\\slash",), "back\\\\slash"),
    ],
)
def test_make_key(key: rl.Key, expected: str) -> None:
    assert make_key(key) == expected


@pytest.mark.parametrize("bad", [(), 5, None, ("a", 1.5), ("a", True), ["a"]])
def test_bad_keys(bad: object) -> None:
    with pytest.raises(InvalidInputError, match="key"):
        make_key(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        RateLimiter("1/second").hit(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("cost", [-1, 1.5, "2", True, None])
def test_bad_costs(cost: object) -> None:
    limiter = RateLimiter("1/second")
    with pytest.raises(
        InvalidInputError, match=f"cost must be a non-negative integer, got {cost!r}"
    ):
        limiter.hit("k", cost=cost)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        limiter.test("k", cost=cost)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        limiter.hit_many(["k"], cost=cost)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"strategy": "leaky"},
            "unknown strategy 'leaky' (known: gcra, sliding_window, fixed_window)",
        ),
        ({"on_unavailable": "ignore"}, "unknown on_unavailable 'ignore'"),
        ({"timeout_s": 0}, "timeout_s must be a positive number"),
        ({"storage": "memcached://x"}, "unknown rate-limit storage scheme 'memcached'"),
        ({"storage": "memory"}, "has no scheme"),
        ({"storage": 42}, "storage must be a URL or a storage object"),
    ],
)
def test_bad_options(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        RateLimiter("1/second", **kwargs)  # type: ignore[arg-type]


def test_repr_and_properties() -> None:
    limiter = RateLimiter("10/second; 1000/day", strategy=Strategy.SLIDING_WINDOW)
    assert repr(limiter) == "RateLimiter('10/second; 1000/day', strategy='sliding_window')"
    assert [r.limit for r in limiter.rates] == [10, 1000]
    assert limiter.strategy is Strategy.SLIDING_WINDOW
    assert isinstance(limiter.storage, MemoryStorage)


def test_evaluation_call_memory() -> None:
    # The exact call of the held-out evaluation, then its exact counts.
    assert RateLimiter("100/second", storage="memory://").hit("user-1", cost=1).allowed is True
    clock = FakeClock()
    limiter = RateLimiter("100/second", storage="memory://", clock=clock)
    decisions = [limiter.hit("user-1", cost=1) for _ in range(101)]
    assert [d.allowed for d in decisions] == [True] * 100 + [False]
    assert (decisions[0].remaining, decisions[99].remaining, decisions[100].retry_after) == (
        99,
        0,
        0.01,
    )
    assert limiter.hit("user-2", cost=1).allowed is True  # keys are independent
    clock.advance(0.01)
    assert limiter.hit("user-1", cost=1).allowed is True


def test_clock_is_used_by_a_memory_url() -> None:
    clock = FakeClock()
    limiter = RateLimiter("1/minute", storage="memory://", clock=clock)
    assert limiter.hit("k").allowed is True
    assert limiter.hit("k").retry_after == 60.0
    clock.advance(60)
    assert limiter.hit("k").allowed is True


def test_limiters_can_share_a_storage_object() -> None:
    storage = MemoryStorage(clock=FakeClock())
    a = RateLimiter("2/minute", storage=storage)
    b = RateLimiter("2/minute", storage=storage)
    a.hit("k")
    assert b.hit("k").remaining == 0


def test_decorator_on_async_function_and_fixed_key() -> None:
    limiter = RateLimiter("1/minute", storage=MemoryStorage(clock=FakeClock()))

    @limiter.limit("global", cost=1)
    async def work() -> int:
        return 42

    assert asyncio.run(work()) == 42
    with pytest.raises(RateLimitedError, match="rate limit exceeded for 'global'") as info:
        asyncio.run(work())
    assert info.value.retry_after_s == 60.0


def test_context_manager_refusal() -> None:
    limiter = RateLimiter("1/minute", storage=MemoryStorage(clock=FakeClock()))
    with limiter.acquire(("u", "/x")):
        pass
    with pytest.raises(RateLimitedError) as info, limiter.acquire(("u", "/x")):
        pass
    assert info.value.decision.remaining == 0


def test_async_limiter_over_memory() -> None:
    clock = FakeClock()

    async def scenario() -> list[object]:
        limiter = AsyncRateLimiter("3/minute", storage="memory://", clock=clock)
        out: list[object] = []
        out.append((await limiter.hit("k")).remaining)
        out.append((await limiter.test("k", cost=2)).allowed)
        out.append((await limiter.peek("k")).remaining)
        out.append([d.allowed for d in await limiter.hit_many(["k", "k", "k"])])
        await limiter.reset("k")
        r = await limiter.reserve("k", 3)
        out.append((await limiter.settle(r, 1)).remaining)
        async with limiter.acquire("k") as d:
            out.append(d.remaining)

        @limiter.limit(lambda x: ("f", x))
        async def f(x: int) -> int:
            return x * 2

        out.append(await f(4))
        return out

    assert asyncio.run(scenario()) == [2, True, 2, [True, True, False], 2, 1, 8]


def test_async_limit_rejects_sync_functions() -> None:
    limiter = AsyncRateLimiter("1/second")
    with pytest.raises(ConfigError, match="async functions only"):
        limiter.limit("k")(lambda: 1)  # type: ignore[arg-type, return-value]


def test_key_from_request() -> None:
    digest = hashlib.sha256(b"secret").hexdigest()[:32]
    assert key_from_request({"X-API-Key": "secret"}, "203.0.113.5") == f"key:{digest}"
    assert key_from_request({"Authorization": "t"}, "203.0.113.5") == "ip:203.0.113.5"
    assert key_from_request({"authorization": "t"}, None, header="Authorization") == (
        "key:" + hashlib.sha256(b"t").hexdigest()[:32]
    )
    fwd = {"X-Forwarded-For": "198.51.100.7, 10.0.0.1"}
    assert key_from_request(fwd, "10.0.0.1") == "ip:10.0.0.1"
    assert key_from_request(fwd, "10.0.0.1", trust_forwarded=True) == "ip:198.51.100.7"
    assert key_from_request({}, None) == "anonymous"
    odd = key_from_request({"X-API-Key": "\ud800"})  # any str, never a codec error
    assert odd.startswith("key:")
    assert len(odd) == 36
    assert key_from_request({}, "::1", route="/v1/ask") == "ip\\:\\:\\:1:/v1/ask"


def test_subclass_hit_override_is_respected() -> None:
    calls: list[str] = []

    class Counting(RateLimiter):
        def hit(self, key: rl.Key, cost: int = 1) -> rl.Decision:
            calls.append(make_key(key))
            return super().hit(key, cost)

    limiter = Counting("2/minute", storage=MemoryStorage(clock=FakeClock()))
    assert [limiter.hit("a").remaining, limiter.hit(("b", 1)).remaining] == [1, 1]
    assert calls == ["a", "b:1"]
