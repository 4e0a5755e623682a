"""``RateLimiter`` and ``AsyncRateLimiter`` over a storage, plus app helpers."""

from __future__ import annotations

import contextlib
import enum
import functools
import hashlib
import inspect
import logging
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    MutableMapping,
    Sequence,
)
from typing import Any, Protocol, TypeVar, cast, runtime_checkable

import attrs

from avl._args import check_clock, describe, type_error
from avl._clock import Clock
from avl._registry import Registry
from avl.errors import (
    BackendUnavailableError,
    ConfigError,
    InvalidInputError,
    RateLimitedError,
)
from avl.ratelimit._decision import Decision, make_decision
from avl.ratelimit._keys import MAX_COST, Key, _check_cost, make_key
from avl.ratelimit._rates import Rate, parse_rates
from avl.ratelimit._strategies import Op, Plan, Strategy

__all__ = [
    "AsyncRateLimiter",
    "AsyncStorage",
    "OnUnavailable",
    "RateLimiter",
    "Reservation",
    "Storage",
    "apply_headers",
    "key_from_request",
]

log = logging.getLogger("avl.ratelimit")


F = TypeVar("F", bound=Callable[..., Any])

_STORAGES = Registry(
    kind="rate-limit storage",
    entries={
        "memory": "avl.ratelimit.backends.memory:MemoryStorage",
        "redis": "avl.ratelimit.backends.redis:RedisStorage",
    },
    extras={"redis": "redis"},
)
_ASYNC_STORAGES = Registry(
    kind="rate-limit storage",
    entries={
        "memory": "avl.ratelimit.backends.memory:MemoryStorage",
        "redis": "avl.ratelimit.backends.redis:AsyncRedisStorage",
    },
    extras={"redis": "redis"},
)


class OnUnavailable(str, enum.Enum):
    """What a limiter does when its storage cannot be reached."""

    RAISE = "raise"
    """Raise :class:`~avl.errors.BackendUnavailableError` (the default)."""
    ALLOW = "allow"
    """Fail open: allow the request and log a warning."""
    DENY = "deny"
    """Fail closed: refuse the request and log a warning."""


class Binding(Protocol):
    """A storage bound to one limiter's rates and strategy (see :class:`Storage`)."""

    def hit(self, key: str, cost: int) -> Decision:
        """Consume ``cost`` from ``key`` if every rate allows it."""
        ...

    def apply(self, key: str, cost: int, op: Op) -> Decision:
        """Run one operation for ``key``."""
        ...

    def apply_many(self, keys: Sequence[str], cost: int, op: Op) -> list[Decision]:
        """Run one operation for each key, in order."""
        ...

    def reset(self, key: str) -> None:
        """Forget ``key``."""
        ...


class AsyncBinding(Protocol):
    """The asyncio twin of :class:`Binding`."""

    async def hit(self, key: str, cost: int) -> Decision:
        """Consume ``cost`` from ``key`` if every rate allows it."""
        ...

    async def apply(self, key: str, cost: int, op: Op) -> Decision:
        """Run one operation for ``key``."""
        ...

    async def apply_many(self, keys: Sequence[str], cost: int, op: Op) -> list[Decision]:
        """Run one operation for each key, in order."""
        ...

    async def reset(self, key: str) -> None:
        """Forget ``key``."""
        ...


@runtime_checkable
class Storage(Protocol):
    """Where a :class:`RateLimiter` keeps its state.

    ``bind(plan)`` returns an object with ``hit``, ``apply``, ``apply_many`` and
    ``reset`` for one limiter's rates and strategy. ``MemoryStorage`` and
    ``RedisStorage`` implement it.
    """

    def bind(self, plan: Plan) -> Binding:
        """Return the storage's view for one limiter."""
        ...


@runtime_checkable
class AsyncStorage(Protocol):
    """Where an :class:`AsyncRateLimiter` keeps its state (``AsyncRedisStorage``)."""

    def bind_async(self, plan: Plan) -> AsyncBinding:
        """Return the storage's asyncio view for one limiter."""
        ...


def key_from_request(
    headers: Mapping[str, str],
    client: str | None = None,
    *,
    header: str = "x-api-key",
    trust_forwarded: bool = False,
    route: str | None = None,
) -> str:
    """Derive a rate-limit key from an HTTP request (pure; for web adapters).

    The key is ``"key:<digest>"`` when the ``header`` (an API key, compared
    case-insensitively by name) is present, so secrets are never stored; otherwise
    ``"ip:<address>"`` from ``X-Forwarded-For`` (only when ``trust_forwarded``) or
    from ``client``; otherwise ``"anonymous"``. With ``route`` the key becomes the
    composite ``(key, route)``.

    Args:
        headers: the request headers (any mapping; names matched case-insensitively).
        client: the peer address, e.g. ``"203.0.113.5"``.
        header: the header holding the caller's API key.
        trust_forwarded: read the first ``X-Forwarded-For`` address (only behind a
            proxy you control).
        route: an optional route or endpoint to limit separately.

    Returns:
        The string key.

    Example:
        >>> key_from_request({"X-Api-Key": "secret"})[:4]
        'key:'
        >>> key_from_request({}, "203.0.113.5", route="/v1/ask")
        'ip\\\\:203.0.113.5:/v1/ask'
    """
    lower = {str(k).lower(): v for k, v in headers.items()}
    api_key = lower.get(header.lower())
    if api_key:
        secret = str(api_key).encode("utf-8", "surrogatepass")
        base = "key:" + hashlib.sha256(secret).hexdigest()[:32]
    else:
        addr = None
        if trust_forwarded:
            fwd = lower.get("x-forwarded-for")
            if fwd:
                addr = fwd.split(",")[0].strip() or None
        addr = addr or client
        base = f"ip:{addr}" if addr else "anonymous"
    return base if route is None else make_key((base, route))


def apply_headers(
    decision: Decision, headers: MutableMapping[str, str]
) -> MutableMapping[str, str]:
    """Merge :meth:`Decision.headers` into a response's headers and return them.

    Args:
        decision: the limiter's decision for this request.
        headers: a mutable mapping of response headers (a dict, Starlette's
            ``MutableHeaders``...).

    Returns:
        ``headers``, updated in place.

    Example:
        >>> from avl.ratelimit import RateLimiter
        >>> apply_headers(RateLimiter("5/minute").hit("k"), {})["X-RateLimit-Remaining"]
        '4'
    """
    for name, value in decision.headers().items():
        headers[name] = value
    return headers


def _charged_default(self: Reservation) -> int:
    return self.cost if self.decision.allowed else 0


@attrs.frozen(kw_only=True)
class Reservation:
    """Units taken ahead of a call whose real cost is known only afterwards.

    Attributes:
        key: the storage key.
        cost: the units reserved.
        decision: the decision of the reservation.
        charged: the units the storage really took: ``cost`` when the reservation
            was allowed by the storage, ``0`` when it was refused or granted while
            failing open (``on_unavailable="allow"``: the storage was down, nothing
            was taken). :meth:`RateLimiter.settle` refunds at most this much.
    """

    key: str
    cost: int
    decision: Decision
    charged: int = attrs.field(default=attrs.Factory(_charged_default, takes_self=True))

    @property
    def allowed(self) -> bool:
        """Whether the units were reserved."""
        return self.decision.allowed


def _refused(decision: Decision, key: str) -> RateLimitedError:
    return RateLimitedError(
        f"rate limit exceeded for {describe(key)}: {decision.limit} per "
        f"{decision.rate.period_s if decision.rate else '?'}s; retry after "
        f"{decision.retry_after:.3f}s",
        retry_after_s=decision.retry_after,
        decision=decision,
    )


def _check_clock(clock: object) -> None:
    if clock is not None:
        check_clock("clock", clock, methods=("now", "monotonic"))


def _keys_of(keys: object) -> list[Key]:
    """The caller's keys as a list (a string is refused: not a list of one-letter keys)."""
    if isinstance(keys, (str, bytes, Mapping)) or not isinstance(keys, Iterable):
        type_error("keys", "an iterable of keys", keys)
    try:
        return list(keys)
    except Exception as exc:  # the caller's own iterable failed
        raise InvalidInputError(f"keys could not be iterated: {describe(exc)}") from exc


def _settle_diff(reservation: Reservation, actual_cost: int) -> int:
    """Units to charge (positive) or refund (negative): never a refund beyond the charge."""
    if not isinstance(reservation, Reservation):
        raise InvalidInputError(
            f"reservation must be what reserve() returned, got {type(reservation).__name__}"
        )
    _check_cost(actual_cost, "actual_cost")
    if not reservation.allowed:
        raise InvalidInputError("cannot settle a refused reservation (nothing was taken)")
    charged = reservation.charged
    if type(charged) is not int or not 0 <= charged <= reservation.cost:
        raise InvalidInputError(
            f"reservation.charged must be within 0..cost, got {describe(charged)}"
        )
    return actual_cost - charged


class _BaseLimiter:
    """The I/O-free part shared by the twins."""

    def __init__(
        self,
        rates: str | Rate | Iterable[str | Rate],
        strategy: str | Strategy,
        on_unavailable: str | OnUnavailable,
        timeout_s: float,
    ) -> None:
        self._rates = parse_rates(rates)
        try:
            if not isinstance(strategy, str):
                raise ValueError(strategy)
            self._strategy = Strategy(strategy)
        except ValueError:
            known = ", ".join(s.value for s in Strategy)
            raise ConfigError(f"unknown strategy {describe(strategy)} (known: {known})") from None
        try:
            if not isinstance(on_unavailable, str):
                raise ValueError(on_unavailable)
            self._on_unavailable = OnUnavailable(on_unavailable)
        except ValueError:
            known = ", ".join(s.value for s in OnUnavailable)
            raise ConfigError(
                f"unknown on_unavailable {describe(on_unavailable)} (known: {known})"
            ) from None
        if (
            isinstance(timeout_s, bool)
            or not isinstance(timeout_s, (int, float))
            or not (0 < timeout_s < 3600)
        ):
            raise ConfigError(
                f"timeout_s must be a positive number of seconds, got {describe(timeout_s)}"
            )
        self._timeout_s = float(timeout_s)
        self._plan = Plan(self._rates, self._strategy)

    @property
    def rates(self) -> tuple[Rate, ...]:
        """The limiter's rates."""
        return self._rates

    @property
    def strategy(self) -> Strategy:
        """The limiter's algorithm."""
        return self._strategy

    def _fallback(self, exc: BackendUnavailableError, key: str) -> Decision:
        mode = self._on_unavailable
        if mode is OnUnavailable.RAISE:
            raise exc
        allow = mode is OnUnavailable.ALLOW
        log.warning(
            "rate-limit storage unavailable; failing %s for key %r: %s",
            "open" if allow else "closed",
            key,
            exc,
        )
        rate = self._rates[0]
        return make_decision(allow, 0, rate.limit, 0.0, 0.0 if allow else 1.0, rate, self._rates)

    def __repr__(self) -> str:
        rates = "; ".join(str(r) for r in self._rates)
        return f"{type(self).__name__}({rates!r}, strategy={self._strategy.value!r})"


class RateLimiter(_BaseLimiter):
    """Per-key rate limits and budgets (requests, tokens) over a storage.

    Every rate must allow a hit, and a hit consumes from all rates or from none
    (atomically, also on Redis). The :class:`Decision` reports the most restrictive
    rate.

    Args:
        rates: ``"10/second; 1000/day"``, a :class:`Rate`, or a list of them.
        storage: ``"memory://"`` (default), ``"redis://host:6379/0"``, or a storage
            object (``MemoryStorage``, ``RedisStorage``).
        strategy: ``"gcra"`` (default), ``"sliding_window"`` or ``"fixed_window"``.
        clock: the clock of a ``memory://`` storage built from a URL (Redis uses the
            server's ``TIME``).
        on_unavailable: ``"raise"`` (default), ``"allow"`` (fail open) or ``"deny"``
            (fail closed) when the storage cannot be reached; the last two log a
            warning.
        timeout_s: socket timeout of a network storage built from a URL.

    Raises:
        ConfigError: a bad rate string, strategy, option or storage URL.
        MissingDependencyError: the storage's driver is not installed.

    Example:
        >>> limiter = RateLimiter("2/second; 100/day")
        >>> [limiter.hit("user-1").allowed for _ in range(3)]
        [True, True, False]
    """

    def __init__(
        self,
        rates: str | Rate | Iterable[str | Rate],
        storage: str | Storage = "memory://",
        *,
        strategy: str | Strategy = Strategy.GCRA,
        clock: Clock | None = None,
        on_unavailable: str | OnUnavailable = OnUnavailable.RAISE,
        timeout_s: float = 0.5,
    ) -> None:
        super().__init__(rates, strategy, on_unavailable, timeout_s)
        _check_clock(clock)
        if isinstance(storage, str):
            scheme = _STORAGES.scheme_of(storage)
            factory = _STORAGES.factory(storage)
            if scheme == "memory":
                storage = cast(Storage, factory(storage, clock=clock))
            else:
                storage = cast(Storage, factory(storage, timeout_s=self._timeout_s))
        if not callable(getattr(type(storage), "bind", None)):
            raise ConfigError(
                f"storage must be a URL or a storage object with bind(), got "
                f"{type(storage).__name__}"
            )
        self._storage = storage
        self._binding: Binding = storage.bind(self._plan)
        self._hit = self._binding.hit
        if getattr(self._binding, "validates", False) and type(self).hit is RateLimiter.hit:
            # The in-process GCRA checks key and cost itself: skip one call level.
            vars(self)["hit"] = self._binding.hit

    @property
    def storage(self) -> Storage:
        """The storage object."""
        return self._storage

    def hit(self, key: Key, cost: int = 1) -> Decision:
        """Consume ``cost`` units for ``key`` if every rate allows it.

        Args:
            key: a string or a tuple such as ``("user-1", "/v1/ask")``.
            cost: units to consume (1 per request, or a number of tokens).

        Returns:
            The decision; nothing is consumed when it is refused.

        Raises:
            InvalidInputError: a bad key or cost.
            BackendUnavailableError: the storage is unreachable and
                ``on_unavailable="raise"``.
            BackendError: the storage failed otherwise.

        Example:
            >>> RateLimiter("100/second").hit("user-1", cost=1).allowed
            True
        """
        if key.__class__ is not str:
            key = make_key(key)
        if cost.__class__ is not int or not 0 <= cost <= MAX_COST:
            _check_cost(cost)
        try:
            return self._hit(key, cost)
        except BackendUnavailableError as exc:
            return self._fallback(exc, key)

    def _run(self, key: Key, cost: int, op: Op) -> Decision:
        k = make_key(key)
        _check_cost(cost)
        try:
            return self._binding.apply(k, cost, op)
        except BackendUnavailableError as exc:
            return self._fallback(exc, k)

    def test(self, key: Key, cost: int = 1) -> Decision:
        """Whether :meth:`hit` would allow ``cost`` now, without consuming anything.

        Raises:
            InvalidInputError: a bad key or cost.
            BackendUnavailableError: the storage is unreachable (``"raise"`` mode).
            BackendError: the storage failed otherwise.
        """
        return self._run(key, cost, Op.TEST)

    def peek(self, key: Key) -> Decision:
        """The current state of ``key`` without consuming anything.

        ``remaining`` is what is left now; ``allowed`` says whether one more unit
        would pass and ``retry_after`` when it will.

        Raises:
            InvalidInputError: a bad key.
            BackendUnavailableError: the storage is unreachable (``"raise"`` mode).
            BackendError: the storage failed otherwise.
        """
        return self._run(key, 0, Op.PEEK)

    def reset(self, key: Key) -> None:
        """Give ``key`` its full limits back.

        Raises:
            InvalidInputError: a bad key.
            BackendUnavailableError: the storage is unreachable.
            BackendError: the storage failed otherwise.
        """
        self._binding.reset(make_key(key))

    def hit_many(self, keys: Iterable[Key], cost: int = 1) -> list[Decision]:
        """:meth:`hit` for many keys at once (one lock or one pipelined round trip).

        Each key is decided on its own, in order (a key listed twice is hit twice).

        Args:
            keys: the keys.
            cost: units to consume for each key.

        Returns:
            One decision per key, in order.

        Raises:
            InvalidInputError: a bad key or cost.
            BackendUnavailableError: the storage is unreachable (``"raise"`` mode).
            BackendError: the storage failed otherwise.
        """
        ks = [k if k.__class__ is str else make_key(k) for k in _keys_of(keys)]
        _check_cost(cost)
        try:
            return self._binding.apply_many(ks, cost, Op.HIT)
        except BackendUnavailableError as exc:
            return [self._fallback(exc, k) for k in ks]

    def reserve(self, key: Key, cost: int) -> Reservation:
        """Take ``cost`` units now; :meth:`settle` with the real cost later.

        Args:
            key: the key.
            cost: the most the call can use (e.g. ``max_tokens`` plus the prompt).

        Returns:
            A reservation; check ``reservation.allowed`` before doing the work.

        Raises:
            InvalidInputError: a bad key or cost.
            BackendUnavailableError: the storage is unreachable (``"raise"`` mode).
            BackendError: the storage failed otherwise.

        Example:
            >>> tokens = RateLimiter("10000/day")
            >>> r = tokens.reserve("user-1", 2000)
            >>> tokens.settle(r, 700).remaining
            9300
        """
        k = make_key(key)
        _check_cost(cost)
        try:
            decision = self._hit(k, cost)
        except BackendUnavailableError as exc:
            # failing open (or closed): nothing was taken, so nothing may be refunded
            return Reservation(key=k, cost=cost, decision=self._fallback(exc, k), charged=0)
        return Reservation(
            key=k, cost=cost, decision=decision, charged=cost if decision.allowed else 0
        )

    def settle(self, reservation: Reservation, actual_cost: int) -> Decision:
        """Replace a reservation's charge by the real cost.

        A lower real cost refunds the difference, but never more than the storage
        really took (``reservation.charged``): a reservation granted while failing
        open took nothing, so settling it after the storage is back charges the real
        cost instead of refunding units that were never charged. A higher real cost
        charges the extra even past the limit (the work is already done), so later
        hits wait longer. Settling while the storage is still down follows
        ``on_unavailable`` (nothing is charged or refunded).

        Args:
            reservation: what :meth:`reserve` returned (settle it once).
            actual_cost: the units really used.

        Returns:
            The state of the key after settling.

        Raises:
            InvalidInputError: a bad cost, or the reservation was refused.
            BackendUnavailableError: the storage is unreachable (``"raise"`` mode).
            BackendError: the storage failed otherwise.
        """
        diff = _settle_diff(reservation, actual_cost)
        if diff < 0:
            return self._run(reservation.key, -diff, Op.REFUND)
        if diff > 0:
            return self._run(reservation.key, diff, Op.FORCE)
        return self._run(reservation.key, 0, Op.PEEK)

    @contextlib.contextmanager
    def acquire(self, key: Key, cost: int = 1) -> Iterator[Decision]:
        """Context manager: hit ``key`` on entry, raise if refused.

        Raises:
            RateLimitedError: the hit was refused (``retry_after_s`` tells when to
                retry; ``decision`` is attached).
            InvalidInputError: a bad key or cost.
            BackendUnavailableError: the storage is unreachable (``"raise"`` mode).

        Example:
            >>> limiter = RateLimiter("1/minute")
            >>> with limiter.acquire("user-1") as decision:
            ...     decision.remaining
            0
        """
        decision = self.hit(key, cost)
        if not decision.allowed:
            raise _refused(decision, make_key(key))
        yield decision

    def limit(self, key: Key | Callable[..., Key], cost: int = 1) -> Callable[[F], F]:
        """Decorator: hit before each call, raise :class:`RateLimitedError` if refused.

        Args:
            key: a fixed key, or a function called with the decorated function's
                arguments that returns the key.
            cost: units per call.

        Returns:
            A decorator for plain or ``async`` functions.

        Example:
            >>> limiter = RateLimiter("1/minute")
            >>> @limiter.limit(lambda user: ("ask", user))
            ... def ask(user: str) -> str:
            ...     return "ok"
            >>> ask("u1")
            'ok'
        """

        def decorate(fn: F) -> F:
            def key_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Key:
                return key(*args, **kwargs) if callable(key) else key

            if inspect.iscoroutinefunction(fn):

                @functools.wraps(fn)
                async def awrapper(*args: Any, **kwargs: Any) -> Any:
                    with self.acquire(key_of(args, kwargs), cost):
                        pass
                    return await fn(*args, **kwargs)

                return cast(F, awrapper)

            @functools.wraps(fn)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                with self.acquire(key_of(args, kwargs), cost):
                    return fn(*args, **kwargs)

            return cast(F, wrapper)

        return decorate


class _SyncAsAsync:
    """An in-process binding seen through the async interface."""

    def __init__(self, binding: Binding) -> None:
        self._b = binding

    async def hit(self, key: str, cost: int) -> Decision:
        return self._b.hit(key, cost)

    async def apply(self, key: str, cost: int, op: Op) -> Decision:
        return self._b.apply(key, cost, op)

    async def apply_many(self, keys: Sequence[str], cost: int, op: Op) -> list[Decision]:
        return self._b.apply_many(keys, cost, op)

    async def reset(self, key: str) -> None:
        self._b.reset(key)


class AsyncRateLimiter(_BaseLimiter):
    """The asyncio twin of :class:`RateLimiter`: same arguments, same methods, awaited.

    ``storage`` is ``"memory://"``, ``"redis://..."`` (uses ``redis.asyncio``),
    ``AsyncRedisStorage`` or ``MemoryStorage``.

    Raises:
        ConfigError: a bad rate string, strategy, option or storage URL.
        MissingDependencyError: the storage's driver is not installed.

    Example:
        >>> import asyncio
        >>> limiter = AsyncRateLimiter("1/second")
        >>> asyncio.run(limiter.hit("user-1")).allowed
        True
    """

    def __init__(
        self,
        rates: str | Rate | Iterable[str | Rate],
        storage: str | AsyncStorage | Storage = "memory://",
        *,
        strategy: str | Strategy = Strategy.GCRA,
        clock: Clock | None = None,
        on_unavailable: str | OnUnavailable = OnUnavailable.RAISE,
        timeout_s: float = 0.5,
    ) -> None:
        super().__init__(rates, strategy, on_unavailable, timeout_s)
        _check_clock(clock)
        obj: Any = storage
        if isinstance(storage, str):
            scheme = _ASYNC_STORAGES.scheme_of(storage)
            factory = _ASYNC_STORAGES.factory(storage)
            if scheme == "memory":
                obj = factory(storage, clock=clock)
            else:
                obj = factory(storage, timeout_s=self._timeout_s)
        if callable(getattr(type(obj), "bind_async", None)):
            self._binding: AsyncBinding = obj.bind_async(self._plan)
        elif callable(getattr(type(obj), "bind", None)):
            self._binding = _SyncAsAsync(obj.bind(self._plan))
        else:
            raise ConfigError(
                f"storage must be a URL or a storage object, got {type(storage).__name__}"
            )
        self._storage = obj

    @property
    def storage(self) -> AsyncStorage | Storage:
        """The storage object."""
        return cast(AsyncStorage | Storage, self._storage)

    async def hit(self, key: Key, cost: int = 1) -> Decision:
        """Async :meth:`RateLimiter.hit`.

        Raises:
            InvalidInputError: a bad key or cost.
            BackendUnavailableError: the storage is unreachable (``"raise"`` mode).
            BackendError: the storage failed otherwise.
        """
        k = key if key.__class__ is str else make_key(key)
        _check_cost(cost)
        try:
            return await self._binding.hit(k, cost)
        except BackendUnavailableError as exc:
            return self._fallback(exc, k)

    async def _run(self, key: Key, cost: int, op: Op) -> Decision:
        k = make_key(key)
        _check_cost(cost)
        try:
            return await self._binding.apply(k, cost, op)
        except BackendUnavailableError as exc:
            return self._fallback(exc, k)

    async def test(self, key: Key, cost: int = 1) -> Decision:
        """Async :meth:`RateLimiter.test`.

        Raises:
            InvalidInputError: a bad key or cost.
            BackendUnavailableError: the storage is unreachable (``"raise"`` mode).
            BackendError: the storage failed otherwise.
        """
        return await self._run(key, cost, Op.TEST)

    async def peek(self, key: Key) -> Decision:
        """Async :meth:`RateLimiter.peek`.

        Raises:
            InvalidInputError: a bad key.
            BackendUnavailableError: the storage is unreachable (``"raise"`` mode).
            BackendError: the storage failed otherwise.
        """
        return await self._run(key, 0, Op.PEEK)

    async def reset(self, key: Key) -> None:
        """Async :meth:`RateLimiter.reset`.

        Raises:
            InvalidInputError: a bad key.
            BackendUnavailableError: the storage is unreachable.
            BackendError: the storage failed otherwise.
        """
        await self._binding.reset(make_key(key))

    async def hit_many(self, keys: Iterable[Key], cost: int = 1) -> list[Decision]:
        """Async :meth:`RateLimiter.hit_many`.

        Raises:
            InvalidInputError: a bad key or cost.
            BackendUnavailableError: the storage is unreachable (``"raise"`` mode).
            BackendError: the storage failed otherwise.
        """
        ks = [make_key(k) for k in _keys_of(keys)]
        _check_cost(cost)
        try:
            return await self._binding.apply_many(ks, cost, Op.HIT)
        except BackendUnavailableError as exc:
            return [self._fallback(exc, k) for k in ks]

    async def reserve(self, key: Key, cost: int) -> Reservation:
        """Async :meth:`RateLimiter.reserve`.

        Raises:
            InvalidInputError: a bad key or cost.
            BackendUnavailableError: the storage is unreachable (``"raise"`` mode).
            BackendError: the storage failed otherwise.
        """
        k = make_key(key)
        _check_cost(cost)
        try:
            decision = await self._binding.hit(k, cost)
        except BackendUnavailableError as exc:
            return Reservation(key=k, cost=cost, decision=self._fallback(exc, k), charged=0)
        return Reservation(
            key=k, cost=cost, decision=decision, charged=cost if decision.allowed else 0
        )

    async def settle(self, reservation: Reservation, actual_cost: int) -> Decision:
        """Async :meth:`RateLimiter.settle`.

        Raises:
            InvalidInputError: a bad cost, or the reservation was refused.
            BackendUnavailableError: the storage is unreachable (``"raise"`` mode).
            BackendError: the storage failed otherwise.
        """
        diff = _settle_diff(reservation, actual_cost)
        if diff < 0:
            return await self._run(reservation.key, -diff, Op.REFUND)
        if diff > 0:
            return await self._run(reservation.key, diff, Op.FORCE)
        return await self._run(reservation.key, 0, Op.PEEK)

    @contextlib.asynccontextmanager
    async def acquire(self, key: Key, cost: int = 1) -> AsyncIterator[Decision]:
        """Async context manager: hit ``key`` on entry, raise if refused.

        Raises:
            RateLimitedError: the hit was refused.
            InvalidInputError: a bad key or cost.
            BackendUnavailableError: the storage is unreachable (``"raise"`` mode).
        """
        decision = await self.hit(key, cost)
        if not decision.allowed:
            raise _refused(decision, make_key(key))
        yield decision

    def limit(
        self, key: Key | Callable[..., Key], cost: int = 1
    ) -> Callable[[Callable[..., Awaitable[Any]]], Callable[..., Awaitable[Any]]]:
        """Decorator for ``async`` functions: hit first, raise if refused.

        Args:
            key: a fixed key, or a function of the call's arguments returning it.
            cost: units per call.

        Returns:
            A decorator.

        Raises:
            ConfigError: the decorated function is not ``async``.
        """

        def decorate(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
            if not inspect.iscoroutinefunction(fn):
                raise ConfigError("AsyncRateLimiter.limit decorates async functions only")

            @functools.wraps(fn)
            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                k = key(*args, **kwargs) if callable(key) else key
                async with self.acquire(k, cost):
                    pass
                return await fn(*args, **kwargs)

            return wrapper

        return decorate
