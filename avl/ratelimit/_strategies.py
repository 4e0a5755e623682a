"""Rate-limiting algorithms as pure functions on ``(state, now, cost)``.

Time is an integer number of microseconds; all arithmetic is on integers, so the
memory storage and the Redis Lua scripts (which mirror these functions line by
line) decide exactly the same way.

- **GCRA** (default): one number per key and rate, the *theoretical arrival time*
  (TAT). A rate of ``N`` per ``P`` emits one unit every ``T = P/N``; a request of
  cost ``c`` passes when ``max(TAT, now) + c*T - now <= P``. To stay exact when
  ``T`` is not a whole number of microseconds, time is scaled by ``b = N/gcd(P, N)``
  so that ``T`` becomes the integer ``a = P/gcd(P, N)``.
- **Sliding window** (weighted counter): per key and rate, the counts of the current
  and previous fixed windows; the previous one is weighted by how much of it still
  overlaps the sliding window. It is exact inside each aligned window and an
  approximation across the boundary (it assumes the previous window's hits were
  spread evenly), with O(1) state instead of a log of every hit.
- **Fixed window**: a counter per aligned window (``now // P``); exact per window,
  but up to ``2N`` can pass around a boundary.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Sequence
from typing import Any

from avl.errors import ConfigError
from avl.ratelimit._decision import Decision, make_decision
from avl.ratelimit._rates import Rate

__all__ = ["Op", "Plan", "Spec", "Strategy", "decide", "evaluate"]

INF = math.inf
EXACT_LIMIT = 2**50


class Strategy(str, enum.Enum):
    """The rate-limiting algorithm of a :class:`~avl.ratelimit.RateLimiter`."""

    GCRA = "gcra"
    SLIDING_WINDOW = "sliding_window"
    FIXED_WINDOW = "fixed_window"


class Op(enum.IntEnum):
    """What a storage call does (internal)."""

    HIT = 0
    TEST = 1
    PEEK = 2
    REFUND = 3
    FORCE = 4


class Spec:
    """Precomputed integer constants of one rate (internal)."""

    __slots__ = ("a", "b", "bm", "cap", "limit", "p", "per_s", "period_us", "rate", "unit")

    def __init__(self, rate: Rate) -> None:
        self.rate = rate
        self.limit = rate.limit
        self.period_us = rate.period_us
        # The time unit (microsecond, millisecond or second; it must divide the
        # period) is the finest that keeps limit * period below 2**50, so that the
        # Lua scripts (doubles) stay exact. Time is floored to this unit.
        unit = 1
        for u in (1, 1_000, 1_000_000):
            if self.period_us % u:
                break
            unit = u
            if rate.limit * (self.period_us // u) <= EXACT_LIMIT:
                break
        self.unit = unit
        self.p = p = self.period_us // unit  # the period, in units
        self.per_s = 1_000_000 // unit  # units per second
        g = math.gcd(p, rate.limit)
        self.a = p // g  # GCRA emission interval, in 1/b units
        self.b = rate.limit // g
        self.cap = rate.limit * self.a  # == p * b
        self.bm = self.b * self.per_s  # GCRA scaled units per second


class Plan:
    """The compiled rates and strategy of one limiter (internal).

    Attributes:
        strategy: the algorithm.
        rates: the rates, in order.
        specs: their integer constants.
        namespace: a stable string naming strategy and rates, used in storage keys so
            that limiters with different rates never share state.
    """

    __slots__ = ("namespace", "rates", "specs", "strategy")

    def __init__(self, rates: Sequence[Rate], strategy: Strategy) -> None:
        if not rates:
            raise ConfigError("a rate limiter needs at least one rate")
        self.strategy = strategy
        self.rates = tuple(rates)
        self.specs = tuple(Spec(r) for r in self.rates)
        short = {"gcra": "g", "sliding_window": "s", "fixed_window": "f"}[strategy.value]
        self.namespace = short + "_".join(f"{s.limit}/{s.period_us}" for s in self.specs)


def _ceil_div(n: int, d: int) -> int:
    return -(-n // d)


# ---------------------------------------------------------------------------
# Per-rate steps. Each returns (ok, new_state, remaining, reset_s, retry_s); the
# seconds are one correctly rounded division of an integer (so every storage gets
# the same float); retry_s is INF when the cost can never pass.


def gcra_step(s: Spec, tat: int | None, now_us: int, cost: int, op: Op) -> tuple[Any, ...]:
    """One GCRA step for one rate. ``tat`` is in units of ``1/s.b`` of ``s.unit``."""
    now = now_us // s.unit * s.b
    debt = 0 if tat is None or tat < now else tat - now
    a = s.a
    cap = s.cap
    if op == Op.PEEK:
        ok = debt + a <= cap
        return (
            ok,
            tat,
            max(0, (cap - debt) // a),
            debt / s.bm,
            (0.0 if ok else (INF if a > cap else (debt + a - cap) / s.bm)),
        )
    if op == Op.REFUND:
        new = max(0, debt - cost * a)
        return True, now + new, max(0, (cap - new) // a), new / s.bm, 0.0
    new = debt + cost * a
    if new <= cap or op == Op.FORCE:
        return True, now + new, max(0, (cap - new) // a), new / s.bm, 0.0
    retry = INF if cost * a > cap else (new - cap) / s.bm
    return False, tat, max(0, (cap - debt) // a), debt / s.bm, retry


def fixed_step(
    s: Spec, state: tuple[int, int] | None, now_us: int, cost: int, op: Op
) -> tuple[Any, ...]:
    """One fixed-window step for one rate. ``state`` is ``(window, count)``."""
    p = s.p
    now = now_us // s.unit
    w = now // p
    count = state[1] if state is not None and state[0] == w else 0
    reset = ((w + 1) * p - now) / s.per_s
    n = s.limit
    if op == Op.PEEK:
        ok = count + 1 <= n
        return ok, state, max(0, n - count), reset, 0.0 if ok else (INF if n < 1 else reset)
    if op == Op.REFUND:
        new = max(0, count - cost)
        return True, (w, new), max(0, n - new), reset, 0.0
    new = count + cost
    if new <= n or op == Op.FORCE:
        return True, (w, new), max(0, n - new), reset, 0.0
    return False, state, max(0, n - count), reset, INF if cost > n else reset


def sliding_retry(
    p: int, n: int, elapsed: int, curr: int, prev: int, cost: int, per_s: int
) -> float:
    """Seconds until ``cost`` fits (weighted counter); INF if it never can."""
    if cost > n:
        return INF
    return _sliding_retry_units(p, n, elapsed, curr, prev, cost) / per_s


def _sliding_retry_units(p: int, n: int, elapsed: int, curr: int, prev: int, cost: int) -> int:
    # Still in this window: prev*(p - elapsed - t) + (curr + cost - n)*p <= 0.
    if curr + cost <= n and prev > 0:
        t = _ceil_div(prev * (p - elapsed) + (curr + cost - n) * p, prev)
        if t <= p - elapsed:
            return max(t, 0)
    # Next window: curr becomes the previous count.
    rest = p - elapsed
    if curr > 0:
        t2 = _ceil_div((curr + cost - n) * p, curr)
        return rest + min(max(t2, 0), p)
    return rest


def sliding_step(
    s: Spec, state: tuple[int, int, int] | None, now_us: int, cost: int, op: Op
) -> tuple[Any, ...]:
    """One weighted-counter step for one rate. ``state`` is ``(window, curr, prev)``."""
    p = s.p
    n = s.limit
    per_s = s.per_s
    now = now_us // s.unit
    w = now // p
    elapsed = now - w * p
    if state is None:
        curr = prev = 0
    elif state[0] == w:
        curr, prev = state[1], state[2]
    elif state[0] == w - 1:
        curr, prev = 0, state[1]
    else:
        curr = prev = 0
    carried = prev * (p - elapsed)  # weighted previous count, times p
    cap = n * p

    def reset_of(c: int) -> float:
        if c > 0:
            return (2 * p - elapsed) / per_s
        return (p - elapsed) / per_s if prev > 0 else 0.0

    if op == Op.PEEK:
        used = carried + curr * p
        ok = used + p <= cap
        retry = 0.0 if ok else sliding_retry(p, n, elapsed, curr, prev, 1, per_s)
        return ok, state, max(0, (cap - used) // p), reset_of(curr), retry
    if op == Op.REFUND:
        new = max(0, curr - cost)
        return True, (w, new, prev), max(0, (cap - carried - new * p) // p), reset_of(new), 0.0
    new = curr + cost
    if carried + new * p <= cap or op == Op.FORCE:
        return True, (w, new, prev), max(0, (cap - carried - new * p) // p), reset_of(new), 0.0
    retry = sliding_retry(p, n, elapsed, curr, prev, cost, per_s)
    return False, state, max(0, (cap - carried - curr * p) // p), reset_of(curr), retry


STEPS: dict[Strategy, Callable[[Spec, Any, int, int, Op], tuple[Any, ...]]] = {
    Strategy.GCRA: gcra_step,
    Strategy.SLIDING_WINDOW: sliding_step,
    Strategy.FIXED_WINDOW: fixed_step,
}


def combine(plan: Plan, results: Sequence[tuple[bool, int, float, float]]) -> tuple[bool, Decision]:
    """Merge per-rate ``(ok, remaining, reset_us, retry_us)`` into one decision.

    All rates must pass. When they do, the rate with the fewest units left is
    reported (ties: the one that takes longest to reset); otherwise the refused rate
    with the longest wait.
    """
    ok_all = True
    for r in results:
        if not r[0]:
            ok_all = False
            break
    best = -1
    if ok_all:
        for i, r in enumerate(results):
            if (
                best < 0
                or r[1] < results[best][1]
                or (r[1] == results[best][1] and r[2] > results[best][2])
            ):
                best = i
        retry = 0.0
    else:
        for i, r in enumerate(results):
            if not r[0] and (best < 0 or r[3] > results[best][3]):
                best = i
        retry = results[best][3]
    spec = plan.specs[best]
    r = results[best]
    return ok_all, make_decision(ok_all, r[1], spec.limit, r[2], retry, spec.rate, plan.rates)


def evaluate(
    plan: Plan, states: Sequence[Any], now_us: int, cost: int, op: Op
) -> tuple[list[Any] | None, Decision]:
    """Apply ``op`` to every rate's state at ``now_us``.

    Args:
        plan: the compiled limiter.
        states: one state per rate (``None`` for a fresh key).
        now_us: the time in integer microseconds.
        cost: units to consume (or to refund for ``Op.REFUND``).
        op: what to do.

    Returns:
        ``(new_states, decision)``; ``new_states`` is ``None`` when nothing must be
        written (refused, test, peek).
    """
    step = STEPS[plan.strategy]
    new_states: list[Any] = []
    results: list[tuple[bool, int, float, float]] = []
    for spec, state in zip(plan.specs, states, strict=True):
        ok, new, remaining, reset_us, retry_us = step(spec, state, now_us, cost, op)
        new_states.append(new)
        results.append((ok, remaining, reset_us, retry_us))
    ok_all, decision = combine(plan, results)
    if not ok_all or op == Op.TEST or op == Op.PEEK:
        return None, decision
    return new_states, decision


def decide(plan: Plan, states: Sequence[Any], now_us: int, cost: int, op: Op) -> Decision:
    """Like :func:`evaluate` but only the decision."""
    return evaluate(plan, states, now_us, cost, op)[1]


def expired(plan: Plan, states: Sequence[Any], now_us: int) -> bool:
    """Whether a key's states are all back to "fresh" (safe to forget)."""
    strategy = plan.strategy
    for spec, st in zip(plan.specs, states, strict=True):
        if st is None:
            continue
        if strategy is Strategy.GCRA:
            if st > now_us // spec.unit * spec.b:
                return False
        elif strategy is Strategy.FIXED_WINDOW:
            if st[0] >= now_us // spec.period_us and st[1] > 0:  # same window index
                return False
        elif st[0] >= now_us // spec.period_us - 1 and (st[1] > 0 or st[2] > 0):
            return False
    return True
