"""One behaviour suite for every rate-limit storage.

Used by ``test_conformance.py`` through the ``backend`` fixture (memory and Redis,
both driven by one FakeClock). The clock starts at 1_700_000_000.0, which is 20 s
into a minute window and 3,200 s into an hour window (fixed and sliding windows
are aligned to the epoch).
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from avl.errors import InvalidInputError, RateLimitedError
from avl.testing import FakeClock

STRATEGIES = ["gcra", "sliding_window", "fixed_window"]
Backend = tuple[Any, FakeClock]


class StorageConformance:
    @pytest.mark.parametrize("strategy", STRATEGIES)
    def test_burst_up_to_the_limit_then_refused(self, backend: Backend, strategy: str) -> None:
        make, _ = backend
        limiter = make("5/minute", strategy=strategy)
        got = [limiter.hit("user-1") for _ in range(6)]
        assert [d.allowed for d in got] == [True] * 5 + [False]
        assert [d.remaining for d in got] == [4, 3, 2, 1, 0, 0]
        assert {d.limit for d in got} == {5}
        assert got[-1].retry_after > 0

    def test_gcra_exact_times(self, backend: Backend) -> None:
        make, clock = backend
        limiter = make("10/second")
        first = limiter.hit("k")
        assert (first.remaining, first.reset_after, first.retry_after) == (9, 0.1, 0.0)
        peek = limiter.peek("k")
        assert (peek.allowed, peek.remaining, peek.reset_after, peek.retry_after) == (
            True,
            9,
            0.1,
            0.0,
        )
        for _ in range(9):
            limiter.hit("k")
        refused = limiter.hit("k")
        assert (refused.allowed, refused.remaining) == (False, 0)
        assert refused.retry_after == 0.1
        assert refused.reset_after == 1.0
        full = limiter.peek("k")
        assert (full.allowed, full.remaining, full.reset_after, full.retry_after) == (
            False,
            0,
            1.0,
            0.1,
        )
        clock.advance(0.05)
        assert limiter.hit("k").allowed is False
        clock.advance(0.05)
        again = limiter.hit("k")
        assert (again.allowed, again.remaining, again.reset_after) == (True, 0, 1.0)

    def test_gcra_non_integer_interval_is_exact(self, backend: Backend) -> None:
        make, clock = backend
        limiter = make("3/second")  # T = 333,333.33 us
        assert [limiter.hit("k").allowed for _ in range(4)] == [True, True, True, False]
        clock.advance(0.333333)
        assert limiter.hit("k").allowed is False
        clock.advance(0.000001)
        assert limiter.hit("k").allowed is True

    def test_fixed_window_resets_at_the_boundary(self, backend: Backend) -> None:
        make, clock = backend
        limiter = make("3/minute", strategy="fixed_window")
        d = limiter.hit("k")
        assert d.reset_after == 40.0
        limiter.hit("k")
        limiter.hit("k")
        refused = limiter.hit("k")
        assert (refused.allowed, refused.retry_after, refused.reset_after) == (False, 40.0, 40.0)
        clock.advance(39.999999)
        assert limiter.hit("k").allowed is False
        clock.advance(0.000001)
        assert limiter.hit("k").remaining == 2

    def test_sliding_window_weights_the_previous_window(self, backend: Backend) -> None:
        make, clock = backend
        limiter = make("4/minute", strategy="sliding_window")
        assert [limiter.hit("k").allowed for _ in range(4)] == [True] * 4
        refused = limiter.hit("k")
        # 40 s to the next window, then 15 s until 4*(45/60) + 1 <= 4.
        assert (refused.allowed, refused.retry_after) == (False, 55.0)
        clock.advance(54.999999)
        assert limiter.hit("k").allowed is False
        clock.advance(0.000001)
        d = limiter.hit("k")
        assert (d.allowed, d.remaining) == (True, 0)

    @pytest.mark.parametrize("strategy", STRATEGIES)
    def test_test_does_not_consume(self, backend: Backend, strategy: str) -> None:
        make, _ = backend
        limiter = make("3/minute", strategy=strategy)
        for _ in range(5):
            t = limiter.test("k", cost=2)
            assert (t.allowed, t.remaining) == (True, 1)
        assert limiter.test("k", cost=4).allowed is False
        assert limiter.hit("k").remaining == 2

    @pytest.mark.parametrize("strategy", STRATEGIES)
    def test_peek_reports_without_consuming(self, backend: Backend, strategy: str) -> None:
        make, _ = backend
        limiter = make("2/minute", strategy=strategy)
        fresh = limiter.peek("k")
        assert (fresh.allowed, fresh.remaining, fresh.limit, fresh.retry_after) == (True, 2, 2, 0.0)
        limiter.hit("k")
        assert limiter.peek("k").remaining == 1
        limiter.hit("k")
        full = limiter.peek("k")
        assert (full.allowed, full.remaining) == (False, 0)
        assert full.retry_after > 0
        assert limiter.peek("k").remaining == 0

    @pytest.mark.parametrize("strategy", STRATEGIES)
    def test_reset_gives_the_limit_back(self, backend: Backend, strategy: str) -> None:
        make, _ = backend
        limiter = make("2/hour", strategy=strategy)
        limiter.hit("k")
        limiter.hit("k")
        assert limiter.hit("k").allowed is False
        limiter.reset("k")
        assert limiter.hit("k").remaining == 1

    @pytest.mark.parametrize("strategy", STRATEGIES)
    def test_weighted_cost(self, backend: Backend, strategy: str) -> None:
        make, _ = backend
        limiter = make("100/hour", strategy=strategy)
        assert limiter.hit("k", cost=60).remaining == 40
        refused = limiter.hit("k", cost=50)
        assert (refused.allowed, refused.remaining) == (False, 40)
        assert limiter.hit("k", cost=40).remaining == 0

    @pytest.mark.parametrize("strategy", STRATEGIES)
    @pytest.mark.parametrize("rate", ["1000003/day", "2000000000/second", "50000000/week"])
    def test_large_token_budgets_stay_exact(
        self, backend: Backend, strategy: str, rate: str
    ) -> None:
        make, _ = backend
        limiter = make(rate, strategy=strategy)
        limit = int(rate.split("/")[0])
        assert limiter.hit("k", cost=limit - 1).remaining == 1
        assert limiter.hit("k", cost=2).allowed is False
        last = limiter.hit("k", cost=1)
        assert (last.allowed, last.remaining, last.limit) == (True, 0, limit)
        assert limiter.hit("k", cost=1).allowed is False

    @pytest.mark.parametrize("strategy", STRATEGIES)
    def test_cost_above_the_limit_never_passes(self, backend: Backend, strategy: str) -> None:
        make, _ = backend
        limiter = make("10/hour", strategy=strategy)
        d = limiter.hit("k", cost=11)
        assert (d.allowed, d.remaining, d.retry_after) == (False, 10, math.inf)
        assert "Retry-After" not in d.headers()
        assert limiter.hit("k", cost=10).allowed is True

    @pytest.mark.parametrize("strategy", STRATEGIES)
    def test_several_rates_consume_all_or_nothing(self, backend: Backend, strategy: str) -> None:
        make, clock = backend
        limiter = make("2/second; 3/hour", strategy=strategy)
        a = limiter.hit("k")
        b = limiter.hit("k")
        assert (a.allowed, a.remaining, a.limit) == (True, 1, 2)
        assert (b.allowed, b.remaining, b.limit) == (True, 0, 2)
        for _ in range(3):  # refused by the per-second rate: the hour rate keeps 1 left
            refused = limiter.hit("k")
            assert (refused.allowed, refused.limit) == (False, 2)
        clock.advance(2.0)  # the per-second rate is fully back for every strategy
        c = limiter.hit("k")
        assert (c.allowed, c.remaining, c.limit) == (True, 0, 3)
        clock.advance(2.0)
        d = limiter.hit("k")
        assert (d.allowed, d.limit, d.remaining) == (False, 3, 0)
        assert d.retry_after > 1.0

    @pytest.mark.parametrize("strategy", STRATEGIES)
    def test_reserve_then_settle_refunds_the_difference(
        self, backend: Backend, strategy: str
    ) -> None:
        make, _ = backend
        tokens = make("10000/day", strategy=strategy)
        r = tokens.reserve("user-1", 2000)
        assert (r.allowed, r.decision.remaining) == (True, 8000)
        assert tokens.settle(r, 700).remaining == 9300
        assert tokens.hit("user-1", cost=9300).remaining == 0
        assert tokens.hit("user-1", cost=1).allowed is False

    @pytest.mark.parametrize("strategy", STRATEGIES)
    def test_settle_charges_the_extra(self, backend: Backend, strategy: str) -> None:
        make, _ = backend
        tokens = make("1000/day", strategy=strategy)
        r = tokens.reserve("u", 100)
        after = tokens.settle(r, 1500)
        assert (after.allowed, after.remaining) == (True, 0)
        over = tokens.hit("u", cost=1)
        assert (over.allowed, over.remaining) == (False, 0)
        assert tokens.peek("u").remaining == 0
        same = tokens.reserve("v", 10)
        assert tokens.settle(same, 10).remaining == 990

    def test_settle_refused_reservation_is_an_error(self, backend: Backend) -> None:
        make, _ = backend
        tokens = make("10/day")
        r = tokens.reserve("u", 11)
        assert r.allowed is False
        with pytest.raises(InvalidInputError, match="refused reservation"):
            tokens.settle(r, 5)

    @pytest.mark.parametrize("strategy", STRATEGIES)
    def test_hit_many_decides_each_key_in_order(self, backend: Backend, strategy: str) -> None:
        make, _ = backend
        limiter = make("1/minute", strategy=strategy)
        got = limiter.hit_many(["a", "b", "a", ("c", "x")])
        assert [d.allowed for d in got] == [True, True, False, True]
        assert limiter.hit("b").allowed is False
        assert limiter.hit_many([]) == []

    def test_keys_and_limiters_are_isolated(self, backend: Backend) -> None:
        make, _ = backend
        one = make("1/minute")
        two = make("2/minute")
        assert one.hit(("user-1", "/a")).allowed is True
        assert one.hit(("user-1", "/b")).allowed is True
        assert one.hit(("user-1", "/a")).allowed is False
        assert one.hit("user-1:/a").allowed is False  # same string key as the tuple
        assert two.hit(("user-1", "/a")).remaining == 1  # other rates, other namespace

    def test_any_string_is_a_key(self, backend: Backend) -> None:
        make, _ = backend
        limiter = make("2/minute")
        keys = ["\ud800", "\udfff", "用户-1", "a\x00b", "", " ", "x" * 5000]
        assert [limiter.hit(k).remaining for k in keys] == [1] * len(keys)
        assert [d.remaining for d in limiter.hit_many(keys)] == [0] * len(keys)
        assert [limiter.test(k).allowed for k in keys] == [False] * len(keys)
        limiter.reset("\ud800")
        assert [limiter.peek(k).remaining for k in keys[:2]] == [2, 0]

    def test_decorator_and_context_manager(self, backend: Backend) -> None:
        make, _ = backend
        limiter = make("2/minute")

        @limiter.limit(lambda user: ("ask", user))
        def ask(user: str) -> str:
            return f"hello {user}"

        assert ask("u1") == "hello u1"
        assert ask("u1") == "hello u1"
        with pytest.raises(RateLimitedError) as info:
            ask("u1")
        assert info.value.retry_after_s == 30.0
        assert info.value.decision.allowed is False
        with limiter.acquire("other") as decision:
            assert decision.remaining == 1
