"""In-process rate-limit storage: ``memory://``.

Thread-safe (one lock per limiter namespace, taken once per decision or batch),
bounded (keys that are back to "fresh" are swept at most once per longest period,
and a ``max_keys`` bound evicts the oldest keys first), with an injected clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from avl._args import describe
from avl._clock import Clock, SystemClock
from avl.errors import ConfigError
from avl.ratelimit._decision import Decision, make_decision
from avl.ratelimit._keys import MAX_COST, _check_cost, make_key
from avl.ratelimit._strategies import Op, Plan, Strategy, evaluate, expired, sliding_retry

__all__ = ["MemoryStorage"]

_new = object.__new__
_set = object.__setattr__


class MemoryStorage:
    """Rate-limit state in a dict in this process.

    Args:
        url: ``"memory://"`` (accepted for symmetry with the other storages).
        clock: the time source (``monotonic()`` is used); defaults to the system
            clock. Pass :class:`avl.testing.FakeClock` for exact tests.
        max_keys: the most keys kept per limiter namespace; when exceeded, keys that
            are back to full capacity are dropped first, then the oldest keys (an
            evicted key starts again with its full limit).

    Raises:
        ConfigError: ``max_keys`` is not a positive integer or the URL is not
            ``memory://``.

    Example:
        >>> from avl.testing import FakeClock
        >>> from avl.ratelimit import RateLimiter, MemoryStorage
        >>> storage = MemoryStorage(clock=FakeClock())
        >>> RateLimiter("1/minute", storage=storage).hit("k").allowed
        True
    """

    def __init__(
        self, url: str = "memory://", *, clock: Clock | None = None, max_keys: int = 1_000_000
    ) -> None:
        if not isinstance(url, str) or not url.lower().startswith("memory://"):
            raise ConfigError(f"MemoryStorage expects a 'memory://' URL, got {describe(url)}")
        if type(max_keys) is not int or max_keys < 1:
            raise ConfigError(f"max_keys must be a positive integer, got {describe(max_keys)}")
        self._clock = clock if clock is not None else SystemClock()
        self._max_keys = max_keys
        self._lock = threading.Lock()
        self._bindings: dict[str, _MemoryBinding] = {}

    @property
    def clock(self) -> Clock:
        """The clock this storage reads."""
        return self._clock

    def bind(self, plan: Plan) -> _MemoryBinding:
        """Return the state table for ``plan`` (shared by limiters with equal plans)."""
        with self._lock:
            binding = self._bindings.get(plan.namespace)
            if binding is None:
                binding = _MemoryBinding(plan, self._clock, self._max_keys)
                self._bindings[plan.namespace] = binding
            return binding

    def __len__(self) -> int:
        """The number of keys held, over all namespaces."""
        return sum(len(b.table) for b in self._bindings.values())

    def close(self) -> None:
        """Drop every key."""
        with self._lock:
            for b in self._bindings.values():
                b.clear()

    def __repr__(self) -> str:
        return f"MemoryStorage(clock={self._clock!r}, max_keys={self._max_keys})"


def _micros(clock: Clock) -> Callable[[], int]:
    """A function returning the clock's monotonic time in integer microseconds."""
    if type(clock) is SystemClock:
        ns = time.monotonic_ns

        def system() -> int:
            return ns() // 1000

        return system
    mono = clock.monotonic

    def other() -> int:
        return round(mono() * 1_000_000)

    return other


class _MemoryBinding:
    """The keys of one namespace and the decision functions over them."""

    def __init__(self, plan: Plan, clock: Clock, max_keys: int) -> None:
        self.plan = plan
        self.table: dict[str, Any] = {}
        self.lock = threading.Lock()
        self.max_keys = max_keys
        self.clock = clock
        self.now_us: Callable[[], int] = _micros(clock)
        self.sweep_every_us = max(s.period_us for s in plan.specs)
        self.next_sweep_us = 0
        # With one rate a key's value is that rate's state itself (not a list).
        self.scalar = len(plan.specs) == 1
        self.validates = False  # whether hit() checks key and cost itself
        self.fresh: tuple[None, ...] = (None,) * len(plan.specs)
        self.hit: Callable[[str, int], Decision] = self._generic_hit
        self.hit_many: Callable[[Sequence[str], int], list[Decision]] | None = None
        if self.scalar and plan.strategy is Strategy.GCRA:
            self.hit, self.hit_many = self._make_gcra()
            self.validates = True
        elif self.scalar and plan.strategy is Strategy.FIXED_WINDOW:
            self.hit = self._make_fixed()
            self.validates = True
        elif self.scalar:
            self.hit = self._make_sliding()
            self.validates = True
        elif plan.strategy is Strategy.GCRA:
            self.hit = self._make_gcra_multi()
            self.validates = True

    # -- maintenance -----------------------------------------------------------

    def clear(self) -> None:
        with self.lock:
            self.table.clear()

    def _sweep(self, now_us: int) -> None:
        """Drop fresh keys, then the oldest ones if still too many (lock held)."""
        self.next_sweep_us = now_us + self.sweep_every_us
        table = self.table
        plan = self.plan
        if self.scalar and plan.strategy is Strategy.GCRA:
            now_s = now_us // plan.specs[0].unit * plan.specs[0].b
            dead = [k for k, tat in table.items() if tat <= now_s]
        elif self.scalar:
            dead = [k for k, st in table.items() if expired(plan, (st,), now_us)]
        else:
            dead = [k for k, st in table.items() if expired(plan, st, now_us)]
        for k in dead:
            del table[k]
        if len(table) >= self.max_keys:
            excess = len(table) - (self.max_keys * 9) // 10
            for k in list(table)[: max(excess, 1)]:
                del table[k]

    # -- decisions -------------------------------------------------------------

    def _make_gcra(
        self,
    ) -> tuple[Callable[[str, int], Decision], Callable[[Sequence[str], int], list[Decision]]]:
        spec = self.plan.specs[0]
        a, b, cap, bm, limit, unit = spec.a, spec.b, spec.cap, spec.bm, spec.limit, spec.unit
        rate, rates = spec.rate, self.plan.rates
        table = self.table
        get = table.get
        lock = self.lock
        acquire = lock.acquire
        release = lock.release
        now_of = self.now_us
        max_keys = self.max_keys
        sweep = self._sweep
        binding = self
        inf = float("inf")
        system = type(self.clock) is SystemClock
        ns = time.monotonic_ns

        def hit(key: Any, cost: int = 1) -> Decision:
            if key.__class__ is not str:
                key = make_key(key)
            if cost.__class__ is not int or not 0 <= cost <= MAX_COST:
                _check_cost(cost)
            now_us = ns() // 1000 if system else now_of()
            now = now_us // unit * b
            acquire()
            try:
                tat = get(key)
                if tat is None:
                    if len(table) >= max_keys or now_us >= binding.next_sweep_us:
                        sweep(now_us)
                    tat = now
                elif tat < now:
                    tat = now
                debt = tat - now + cost * a
                if debt <= cap:
                    table[key] = now + debt
                    ok = True
                else:
                    ok = False
            finally:
                release()
            d: Any = _new(Decision)
            if ok:
                _set(
                    d,
                    "__dict__",
                    {
                        "allowed": True,
                        "remaining": (cap - debt) // a,
                        "limit": limit,
                        "reset_after": debt / bm,
                        "retry_after": 0.0,
                        "rate": rate,
                        "rates": rates,
                    },
                )
            else:
                held = tat - now
                _set(
                    d,
                    "__dict__",
                    {
                        "allowed": False,
                        "remaining": max(0, (cap - held) // a),
                        "limit": limit,
                        "reset_after": held / bm,
                        "retry_after": inf if cost * a > cap else (debt - cap) / bm,
                        "rate": rate,
                        "rates": rates,
                    },
                )
            result: Decision = d
            return result

        def hit_many(keys: Sequence[str], cost: int) -> list[Decision]:
            now_us = now_of()
            now = now_us // unit * b
            ca = cost * a
            never = ca > cap
            out: list[Decision] = []
            append = out.append
            with lock:
                for key in keys:
                    tat = get(key)
                    if tat is None:
                        if len(table) >= max_keys or now_us >= binding.next_sweep_us:
                            sweep(now_us)
                        tat = now
                    elif tat < now:
                        tat = now
                    debt = tat - now + ca
                    d: Any = _new(Decision)
                    if debt <= cap:
                        table[key] = now + debt
                        _set(
                            d,
                            "__dict__",
                            {
                                "allowed": True,
                                "remaining": (cap - debt) // a,
                                "limit": limit,
                                "reset_after": debt / bm,
                                "retry_after": 0.0,
                                "rate": rate,
                                "rates": rates,
                            },
                        )
                    else:
                        held = tat - now
                        _set(
                            d,
                            "__dict__",
                            {
                                "allowed": False,
                                "remaining": max(0, (cap - held) // a),
                                "limit": limit,
                                "reset_after": held / bm,
                                "retry_after": inf if never else (debt - cap) / bm,
                                "rate": rate,
                                "rates": rates,
                            },
                        )
                    append(d)
            return out

        return hit, hit_many

    def _make_gcra_multi(self) -> Callable[[str, int], Decision]:
        """``hit`` for GCRA with several rates (all or none consumed)."""
        specs = tuple((s.a, s.b, s.cap, s.bm, s.unit, s.limit, s.rate) for s in self.plan.specs)
        rates = self.plan.rates
        table = self.table
        get = table.get
        lock = self.lock
        acquire = lock.acquire
        release = lock.release
        now_of = self.now_us
        max_keys = self.max_keys
        sweep = self._sweep
        binding = self
        inf = float("inf")
        system = type(self.clock) is SystemClock
        ns = time.monotonic_ns

        def hit(key: Any, cost: int = 1) -> Decision:
            if key.__class__ is not str:
                key = make_key(key)
            if cost.__class__ is not int or not 0 <= cost <= MAX_COST:
                _check_cost(cost)
            now_us = ns() // 1000 if system else now_of()
            ok_all = True
            best = -1
            best_rem = 0
            best_reset = 0.0
            bad = -1
            bad_retry = -1.0
            bad_rem = 0
            bad_reset = 0.0
            news: list[int] = []
            acquire()
            try:
                st = get(key)
                if st is None and (len(table) >= max_keys or now_us >= binding.next_sweep_us):
                    sweep(now_us)
                for i, (a, b, cap, bm, unit, _limit, _rate) in enumerate(specs):
                    now = now_us // unit * b
                    tat = now if st is None else st[i]
                    if tat < now:
                        tat = now
                    debt = tat - now + cost * a
                    if debt <= cap:
                        news.append(now + debt)
                        rem = (cap - debt) // a
                        reset = debt / bm
                        if best < 0 or rem < best_rem or (rem == best_rem and reset > best_reset):
                            best, best_rem, best_reset = i, rem, reset
                    else:
                        ok_all = False
                        retry = inf if cost * a > cap else (debt - cap) / bm
                        if bad < 0 or retry > bad_retry:
                            held = tat - now
                            bad, bad_retry = i, retry
                            bad_rem, bad_reset = max(0, (cap - held) // a), held / bm
                if ok_all:
                    table[key] = news
            finally:
                release()
            if ok_all:
                spec = specs[best]
                return make_decision(True, best_rem, spec[5], best_reset, 0.0, spec[6], rates)
            spec = specs[bad]
            return make_decision(False, bad_rem, spec[5], bad_reset, bad_retry, spec[6], rates)

        return hit

    def _make_fixed(self) -> Callable[[str, int], Decision]:
        """``hit`` for a single fixed-window rate; the state is ``(window, count)``."""
        spec = self.plan.specs[0]
        n, p, unit, per_s, rate = spec.limit, spec.p, spec.unit, spec.per_s, spec.rate
        rates = self.plan.rates
        table = self.table
        get = table.get
        lock = self.lock
        acquire = lock.acquire
        release = lock.release
        now_of = self.now_us
        max_keys = self.max_keys
        sweep = self._sweep
        binding = self
        inf = float("inf")
        system = type(self.clock) is SystemClock
        ns = time.monotonic_ns

        def hit(key: Any, cost: int = 1) -> Decision:
            if key.__class__ is not str:
                key = make_key(key)
            if cost.__class__ is not int or not 0 <= cost <= MAX_COST:
                _check_cost(cost)
            acquire()
            try:
                # Read the clock under the lock: a stale window index must never
                # overwrite a newer window's count.
                now_us = ns() // 1000 if system else now_of()
                now = now_us // unit
                w = now // p
                st = get(key)
                if st is None:
                    if len(table) >= max_keys or now_us >= binding.next_sweep_us:
                        sweep(now_us)
                    count = 0
                else:
                    count = st[1] if st[0] == w else 0
                new = count + cost
                ok = new <= n
                if ok:
                    table[key] = (w, new)
            finally:
                release()
            reset = ((w + 1) * p - now) / per_s
            if ok:
                return make_decision(True, n - new, n, reset, 0.0, rate, rates)
            return make_decision(
                False, max(0, n - count), n, reset, inf if cost > n else reset, rate, rates
            )

        return hit

    def _make_sliding(self) -> Callable[[str, int], Decision]:
        """``hit`` for a single weighted-counter rate; state ``(window, curr, prev)``."""
        spec = self.plan.specs[0]
        n, p, unit, per_s, rate = spec.limit, spec.p, spec.unit, spec.per_s, spec.rate
        cap = n * p
        rates = self.plan.rates
        table = self.table
        get = table.get
        lock = self.lock
        acquire = lock.acquire
        release = lock.release
        now_of = self.now_us
        max_keys = self.max_keys
        sweep = self._sweep
        binding = self
        system = type(self.clock) is SystemClock
        ns = time.monotonic_ns

        def hit(key: Any, cost: int = 1) -> Decision:
            if key.__class__ is not str:
                key = make_key(key)
            if cost.__class__ is not int or not 0 <= cost <= MAX_COST:
                _check_cost(cost)
            acquire()
            try:
                now_us = ns() // 1000 if system else now_of()  # under the lock (see above)
                now = now_us // unit
                w = now // p
                elapsed = now - w * p
                st = get(key)
                if st is None:
                    if len(table) >= max_keys or now_us >= binding.next_sweep_us:
                        sweep(now_us)
                    curr = prev = 0
                elif st[0] == w:
                    curr, prev = st[1], st[2]
                elif st[0] == w - 1:
                    curr, prev = 0, st[1]
                else:
                    curr = prev = 0
                carried = prev * (p - elapsed)
                new = curr + cost
                ok = carried + new * p <= cap
                if ok:
                    table[key] = (w, new, prev)
            finally:
                release()
            c = new if ok else curr
            if c > 0:
                reset = (2 * p - elapsed) / per_s
            else:
                reset = (p - elapsed) / per_s if prev > 0 else 0.0
            remaining = max(0, (cap - carried - c * p) // p)
            if ok:
                return make_decision(True, remaining, n, reset, 0.0, rate, rates)
            retry = sliding_retry(p, n, elapsed, curr, prev, cost, per_s)
            return make_decision(False, remaining, n, reset, retry, rate, rates)

        return hit

    def _generic_hit(self, key: str, cost: int) -> Decision:
        return self.apply(key, cost, Op.HIT)

    def _apply_locked(self, key: str, cost: int, op: Op, now_us: int) -> Decision:
        table = self.table
        st = table.get(key)
        if st is None:
            if (op == Op.HIT or op == Op.FORCE) and (
                len(table) >= self.max_keys or now_us >= self.next_sweep_us
            ):
                self._sweep(now_us)
            states: Sequence[Any] = self.fresh
        else:
            states = (st,) if self.scalar else st
        new_states, decision = evaluate(self.plan, states, now_us, cost, op)
        if new_states is not None:
            table[key] = new_states[0] if self.scalar else new_states
        return decision

    def apply(self, key: str, cost: int, op: Op) -> Decision:
        """Run ``op`` for one key."""
        with self.lock:
            return self._apply_locked(key, cost, op, self.now_us())

    def apply_many(self, keys: Sequence[str], cost: int, op: Op) -> list[Decision]:
        """Run ``op`` for many keys under one lock and one clock reading."""
        if op == Op.HIT and self.hit_many is not None:
            return self.hit_many(keys, cost)
        with self.lock:
            now_us = self.now_us()
            return [self._apply_locked(k, cost, op, now_us) for k in keys]

    def reset(self, key: str) -> None:
        """Forget ``key``: it starts again with its full limit."""
        with self.lock:
            self.table.pop(key, None)
