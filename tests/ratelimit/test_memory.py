"""Memory storage: exactness under threads, a reference model, bounded memory."""

from __future__ import annotations

import math
import sys
import threading
from collections.abc import Iterator
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from avl.errors import ConfigError
from avl.ratelimit import MemoryStorage, RateLimiter, parse_rates
from avl.testing import FakeClock


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Switch threads as often as possible so races would show."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(old)


@pytest.mark.usefixtures("fast_switching")
@pytest.mark.parametrize(
    ("rates", "strategy"),
    [
        ("500/day", "gcra"),
        ("500/day; 100000/week", "gcra"),
        ("500/day", "sliding_window"),
        ("500/day", "fixed_window"),
    ],
)
def test_threads_allow_exactly_n(rates: str, strategy: str) -> None:
    limiter = RateLimiter(rates, strategy=strategy)  # real clock; nothing refills in 173 s
    allowed = [0] * 8
    start = threading.Barrier(8)

    def worker(i: int) -> None:
        start.wait()
        for _ in range(150):
            if limiter.hit("shared").allowed:
                allowed[i] += 1
        for d in limiter.hit_many(["shared"] * 20):
            allowed[i] += d.allowed

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(allowed) == 500
    assert limiter.peek("shared").remaining == 0


class ReferenceGCRA:
    """GCRA written plainly with exact fractions (seconds)."""

    def __init__(self, limit: int, period_s: Fraction) -> None:
        self.limit = limit
        self.period = period_s
        self.interval = period_s / limit
        self.tat: dict[str, Fraction] = {}

    def hit(self, key: str, now: Fraction, cost: int) -> tuple[bool, int, float, float]:
        tat = max(self.tat.get(key, now), now)
        new_tat = tat + cost * self.interval
        if new_tat - now <= self.period:
            self.tat[key] = new_tat
            left = self.period - (new_tat - now)
            return True, int(left // self.interval), float(new_tat - now), 0.0
        left = self.period - (tat - now)
        retry = float(new_tat - self.period - now) if cost <= self.limit else float("inf")
        return False, int(left // self.interval), float(tat - now), retry


RATES = ["100/second", "3/second", "7/minute", "5 per 2 seconds", "1/second", "60/hour"]

steps = st.lists(
    st.one_of(
        st.tuples(
            st.just("hit"), st.sampled_from(["a", "b"]), st.integers(min_value=0, max_value=9)
        ),
        st.tuples(st.just("advance"), st.integers(min_value=0, max_value=3_000_000)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(rate_text=st.sampled_from(RATES), script=steps)
def test_memory_gcra_matches_the_reference_model(
    rate_text: str, script: list[tuple[object, ...]]
) -> None:
    (rate,) = parse_rates(rate_text)
    clock = FakeClock(start=1000.0)
    limiter = RateLimiter(rate, storage=MemoryStorage(clock=clock))
    ref = ReferenceGCRA(rate.limit, Fraction(rate.period_us, 1_000_000))
    now_us = 1_000_000_000
    for step in script:
        if step[0] == "advance":
            delta = int(step[1])  # type: ignore[call-overload]
            now_us += delta
            clock.advance(delta / 1_000_000)
            continue
        key, cost = str(step[1]), int(step[2])  # type: ignore[call-overload]
        got = limiter.hit(key, cost=cost)
        want = ref.hit(key, Fraction(now_us, 1_000_000), cost)
        assert (got.allowed, got.remaining, got.reset_after, got.retry_after) == want


class ReferenceMulti:
    """Several plain GCRA rates: all must allow, all or none consume; report the
    fewest remaining (ties: longest reset) when allowed, else the longest wait."""

    def __init__(self, rates: list[tuple[int, Fraction]]) -> None:
        self.refs = [ReferenceGCRA(n, p) for n, p in rates]

    def hit(self, key: str, now: Fraction, cost: int) -> tuple[bool, int, int, float, float]:
        saved = [dict(r.tat) for r in self.refs]
        got = [r.hit(key, now, cost) for r in self.refs]
        if all(g[0] for g in got):
            i = min(range(len(got)), key=lambda j: (got[j][1], -got[j][2]))
            return True, got[i][1], self.refs[i].limit, got[i][2], 0.0
        for r, tat in zip(self.refs, saved, strict=True):
            r.tat = tat  # nothing is consumed
        refused = [j for j in range(len(got)) if not got[j][0]]
        i = max(refused, key=lambda j: (got[j][3], -j))
        return False, got[i][1], self.refs[i].limit, got[i][2], got[i][3]


@settings(max_examples=200, deadline=None)
@given(
    rate_text=st.sampled_from(["3/second; 10/minute", "5 per 2 seconds; 7/minute; 100/hour"]),
    script=steps,
)
def test_memory_multi_rate_gcra_matches_the_reference_model(
    rate_text: str, script: list[tuple[object, ...]]
) -> None:
    rates = parse_rates(rate_text)
    clock = FakeClock(start=1000.0)
    limiter = RateLimiter(rates, storage=MemoryStorage(clock=clock))
    ref = ReferenceMulti([(r.limit, Fraction(r.period_us, 1_000_000)) for r in rates])
    now_us = 1_000_000_000
    for step in script:
        if step[0] == "advance":
            delta = int(step[1])  # type: ignore[call-overload]
            now_us += delta
            clock.advance(delta / 1_000_000)
            continue
        key, cost = str(step[1]), int(step[2])  # type: ignore[call-overload]
        got = limiter.hit(key, cost=cost)
        want = ref.hit(key, Fraction(now_us, 1_000_000), cost)
        assert (got.allowed, got.remaining, got.limit, got.reset_after, got.retry_after) == want


def test_expired_keys_are_swept() -> None:
    clock = FakeClock()
    storage = MemoryStorage(clock=clock)
    limiter = RateLimiter("1/second", storage=storage)
    for i in range(50):
        limiter.hit(f"k{i}")
    assert len(storage) == 50
    clock.advance(1.0)  # every key is back to full; the next sweep is due
    limiter.hit("new")
    assert len(storage) == 1


def test_max_keys_bounds_memory() -> None:
    clock = FakeClock()
    storage = MemoryStorage(clock=clock, max_keys=100)
    limiter = RateLimiter("1/hour; 5/day", storage=storage)
    sizes = []
    for i in range(300):
        limiter.hit(f"k{i}")
        sizes.append(len(storage))
    assert max(sizes) == 100
    assert sizes[-1] <= 100
    assert limiter.hit("k299").allowed is False  # the newest keys are kept
    single = RateLimiter("1/hour", storage=MemoryStorage(clock=clock, max_keys=10))
    for i in range(25):
        single.hit(f"k{i}")
    assert len(single.storage) <= 10  # type: ignore[arg-type]
    assert single.hit("k24").allowed is False


def test_bad_options() -> None:
    with pytest.raises(ConfigError, match="max_keys must be a positive integer"):
        MemoryStorage(max_keys=0)
    with pytest.raises(ConfigError, match="expects a 'memory://' URL"):
        MemoryStorage("redis://x")


def test_close_forgets_everything() -> None:
    storage = MemoryStorage(clock=FakeClock())
    limiter = RateLimiter("1/hour", storage=storage)
    limiter.hit("a")
    storage.close()
    assert len(storage) == 0
    assert limiter.hit("a").allowed is True


class ReferenceWindows:
    """Fixed window and weighted sliding window, written plainly with fractions."""

    def __init__(self, limit: int, period: Fraction, sliding: bool) -> None:
        self.n = limit
        self.p = period
        self.sliding = sliding
        self.counts: dict[tuple[str, int], int] = {}

    def hit(self, key: str, now: Fraction, cost: int) -> tuple[bool, int, float, float]:
        n, p = self.n, self.p
        w = math.floor(now / p)
        elapsed = now - w * p
        curr = self.counts.get((key, w), 0)
        prev = self.counts.get((key, w - 1), 0) if self.sliding else 0
        carried = prev * (p - elapsed) / p
        ok = carried + curr + cost <= n
        if ok:
            self.counts[(key, w)] = curr + cost
            curr += cost
        remaining = max(0, math.floor(n - carried - curr))
        if not self.sliding:
            reset = p - elapsed
            retry = Fraction(0) if ok else reset
        else:
            reset = 2 * p - elapsed if curr > 0 else (p - elapsed if prev > 0 else Fraction(0))
            retry = Fraction(0) if ok else self._sliding_wait(elapsed, curr, prev, cost)
        if not ok and cost > n:
            return False, remaining, _us(reset), math.inf
        return ok, remaining, _us(reset), _us(retry)

    def _sliding_wait(self, elapsed: Fraction, curr: int, prev: int, cost: int) -> Fraction:
        n, p = self.n, self.p
        if curr + cost <= n and prev > 0:  # later in this window, as prev decays
            t = (prev * (p - elapsed) / p + curr + cost - n) * p / prev
            if t <= p - elapsed:
                return max(t, Fraction(0))
        if curr == 0:
            return p - elapsed
        t2 = (curr + cost - n) * p / curr  # in the next window, as curr decays
        return p - elapsed + min(max(t2, Fraction(0)), p)


def _us(seconds: Fraction) -> float:
    """Round up to a whole microsecond, as the storages do."""
    return math.ceil(seconds * 1_000_000) / 1_000_000


@settings(max_examples=200, deadline=None)
@given(
    rate_text=st.sampled_from(["3/second", "7/minute", "5 per 2 seconds", "10/second"]),
    strategy=st.sampled_from(["fixed_window", "sliding_window"]),
    script=steps,
)
def test_memory_windows_match_the_reference_model(
    rate_text: str, strategy: str, script: list[tuple[object, ...]]
) -> None:
    (rate,) = parse_rates(rate_text)
    clock = FakeClock(start=1000.0)
    limiter = RateLimiter(rate, storage=MemoryStorage(clock=clock), strategy=strategy)
    ref = ReferenceWindows(
        rate.limit, Fraction(rate.period_us, 1_000_000), strategy == "sliding_window"
    )
    now_us = 1_000_000_000
    for step in script:
        if step[0] == "advance":
            delta = int(step[1])  # type: ignore[call-overload]
            now_us += delta
            clock.advance(delta / 1_000_000)
            continue
        key, cost = str(step[1]), int(step[2])  # type: ignore[call-overload]
        got = limiter.hit(key, cost=cost)
        want = ref.hit(key, Fraction(now_us, 1_000_000), cost)
        assert (got.allowed, got.remaining, got.reset_after, got.retry_after) == want
