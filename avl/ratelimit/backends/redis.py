"""Redis rate-limit storage: ``redis://host:6379/0`` (sync and asyncio).

Every decision is one atomic Lua script (``lua/*.lua``, shipped as package data)
covering all rates of the limiter: one ``EVALSHA`` round trip. The script is loaded
with ``SCRIPT LOAD`` the first time Redis answers ``NOSCRIPT`` (after a restart or
``SCRIPT FLUSH`` too) and the call is retried once. Time comes from the server's
``TIME`` inside the script, so clients with skewed clocks agree; keys carry a TTL
equal to the time until they are back to full capacity.

A limiter's state for a key is one Redis string at ``<prefix><namespace>:<key>``.
Connection failures and timeouts become
:class:`~avl.errors.BackendUnavailableError`; any other Redis error becomes
:class:`~avl.errors.BackendError`. Calls are not retried, so a decision waits at
most ``timeout_s`` to connect plus ``timeout_s`` for the answer.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import struct
from collections.abc import Callable, Iterator, Sequence
from importlib import resources
from typing import Any

from avl._args import describe
from avl._clock import Clock
from avl._optional import require
from avl._registry import redact_url
from avl.errors import BackendError, BackendUnavailableError, ConfigError
from avl.ratelimit._decision import Decision, make_decision
from avl.ratelimit._strategies import EXACT_LIMIT, Op, Plan, Strategy

__all__ = ["AsyncRedisStorage", "RedisStorage"]

_SCRIPT_FILES = {
    Strategy.GCRA: "gcra.lua",
    Strategy.SLIDING_WINDOW: "sliding_window.lua",
    Strategy.FIXED_WINDOW: "fixed_window.lua",
}
_INF = float("inf")
_DECISION = struct.Struct("<5d")  # ok, rate index (1-based), remaining, reset, retry
#: Keys decided per script call in ``hit_many`` (each call holds Redis for about
#: 10 us per key); the chunks of one batch share one pipelined round trip.
BATCH = 100
_OPS = {op: str(int(op)).encode() for op in Op}


def _script_text(strategy: Strategy) -> str:
    return (
        resources.files("avl.ratelimit.backends")
        .joinpath("lua")
        .joinpath(_SCRIPT_FILES[strategy])
        .read_text(encoding="utf-8")
    )


@contextlib.contextmanager
def _translate(url: str) -> Iterator[None]:
    """Re-raise every redis-py error as an avl error (``from exc``)."""
    try:
        yield
    except BackendError:
        raise
    except Exception as exc:
        exceptions = require("redis.exceptions", extra="redis")
        if isinstance(exc, (exceptions.ConnectionError, exceptions.TimeoutError, OSError)):
            raise BackendUnavailableError(
                f"Redis at {redact_url(url)} is unavailable: {exc}"
            ) from exc
        if isinstance(exc, exceptions.RedisError):
            raise BackendError(f"Redis at {redact_url(url)} failed: {exc}") from exc
        raise


class _Compiled:
    """The per-limiter script arguments and reply decoding (I/O-free)."""

    def __init__(self, plan: Plan, prefix: str) -> None:
        self.plan = plan
        self.text = _script_text(plan.strategy)
        self.sha = hashlib.sha1(self.text.encode("utf-8")).hexdigest()
        self.key_prefix = f"{prefix}{plan.namespace}:"
        self.key_prefix_b = _key_bytes(self.key_prefix)
        tail: list[int] = [len(plan.specs)]
        gcra = plan.strategy is Strategy.GCRA
        for s in plan.specs:
            if s.limit * s.p > EXACT_LIMIT:
                raise ConfigError(
                    f"rate {s.rate} is too large for exact arithmetic in Redis (limit x "
                    "period must stay below 2**50 in microseconds, milliseconds or "
                    "seconds); use a rounder limit or period"
                )
            tail += [s.a, s.b, s.cap, s.unit] if gcra else [s.limit, s.p, s.unit]
        self.divisors = tuple(float(s.bm if gcra else s.per_s) for s in plan.specs)
        self.tail = tuple(str(x).encode() for x in tail)
        self.head = ("EVALSHA", self.sha, 1)

    def args(self, key: str, cost: int, op: Op, now: str) -> tuple[Any, ...]:
        return (*self.head, self.redis_key(key), _OPS[op], cost, now, *self.tail)

    def redis_key(self, key: str) -> bytes:
        """The Redis key of a limiter key (UTF-8; any str, lone surrogates too)."""
        return self.key_prefix_b + _key_bytes(key)

    def batch_args(self, keys: Sequence[str], cost: int, op: Op, now: str) -> list[tuple[Any, ...]]:
        """One EVALSHA per chunk of ``BATCH`` keys (each decided in order)."""
        redis_key = self.redis_key
        out = []
        for i in range(0, len(keys), BATCH):
            chunk = [redis_key(k) for k in keys[i : i + BATCH]]
            out.append(("EVALSHA", self.sha, len(chunk), *chunk, _OPS[op], cost, now, *self.tail))
        return out

    def decode_many(self, replies: Sequence[Any]) -> list[Decision]:
        out: list[Decision] = []
        decode = self.decode
        for reply in replies:
            if not isinstance(reply, bytes) or len(reply) % _DECISION.size:
                raise BackendError(
                    f"unexpected reply from the rate-limit script: {describe(reply)}"
                )
            out.extend(decode(reply, off) for off in range(0, len(reply), _DECISION.size))
        return out

    def decode(self, reply: Any, offset: int = 0) -> Decision:
        """Decode one decision (five little-endian doubles) from a script reply."""
        try:
            ok, idx, remaining, reset_num, retry_num = _DECISION.unpack_from(reply, offset)
            i = int(idx) - 1
            spec = self.plan.specs[i]
            div = self.divisors[i]
        except (TypeError, ValueError, IndexError, struct.error) as exc:
            raise BackendError(
                f"unexpected reply from the rate-limit script: {describe(reply)}"
            ) from exc
        return make_decision(
            ok == 1,
            int(remaining),
            spec.limit,
            reset_num / div,
            _INF if retry_num < 0 else retry_num / div,
            spec.rate,
            self.plan.rates,
        )


def _key_bytes(key: str) -> bytes:
    return key.encode("utf-8", "surrogatepass")


def _bulk(value: bytes) -> bytes:
    """One RESP bulk string."""
    return b"$%d\r\n%s\r\n" % (len(value), value)


def _is_noscript(exc: BaseException) -> bool:
    exceptions = require("redis.exceptions", extra="redis")
    return isinstance(exc, exceptions.NoScriptError) or str(exc).startswith("NOSCRIPT")


def _client_kwargs(timeout_s: float, *, asyncio: bool = False) -> dict[str, Any]:
    # The asyncio client needs the asyncio Retry class: given the synchronous one it
    # converts it and warns (UserWarning) on every client built.
    retry_mod = require("redis.asyncio.retry" if asyncio else "redis.retry", extra="redis")
    backoff = require("redis.backoff", extra="redis")
    return {
        "socket_timeout": timeout_s,
        "socket_connect_timeout": timeout_s,
        "retry": retry_mod.Retry(backoff.NoBackoff(), 0),
        "health_check_interval": 0,
    }


def _check_common(url: str, prefix: str, timeout_s: float) -> None:
    if not isinstance(url, str) or not url.lower().startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"RedisStorage expects a 'redis://' URL, got {describe(url)}")
    if not isinstance(prefix, str):
        raise ConfigError(f"prefix must be a string, got {describe(prefix)}")
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or timeout_s <= 0:
        raise ConfigError(f"timeout_s must be a positive number, got {describe(timeout_s)}")


def _now_arg(clock: Clock | None) -> str:
    return "" if clock is None else str(round(clock.now() * 1_000_000))


class RedisStorage:
    """Rate-limit state in Redis, shared by every process and machine (redis-py).

    Args:
        url: ``redis://[:password@]host:6379/0`` (``rediss://`` for TLS).
        prefix: prepended to every key (use one per application or test).
        timeout_s: connect and read timeout of each call.
        clock: ``None`` (default) takes the time from the server's ``TIME``; a
            clock passes its ``now()`` instead (deterministic tests).

    Raises:
        ConfigError: a bad URL, prefix or timeout.
        MissingDependencyError: ``redis`` is not installed (``pip install 'avl[redis]'``).

    Example:
        >>> from avl.ratelimit import RateLimiter
        >>> storage = RedisStorage("redis://127.0.0.1:6379/0", prefix="app:")  # doctest: +SKIP
        >>> RateLimiter("10/second", storage=storage).hit("user-1").allowed  # doctest: +SKIP
        True
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "avl:rl:",
        timeout_s: float = 0.5,
        clock: Clock | None = None,
    ) -> None:
        _check_common(url, prefix, timeout_s)
        redis = require("redis", extra="redis")
        self._url = url
        self._prefix = prefix
        self._clock = clock
        try:
            self._client: Any = redis.Redis.from_url(url, **_client_kwargs(float(timeout_s)))
        except ValueError as exc:
            raise ConfigError(f"bad Redis URL {redact_url(url)!r}: {exc}") from exc
        exceptions = require("redis.exceptions", extra="redis")
        self._redis_errors: Any = exceptions
        # Idle connections of the single-decision hot path. ``list.pop`` and
        # ``list.append`` are atomic, so each thread takes a connection of its own
        # without the pool's lock and per-call socket poll. Bounded by the number
        # of threads deciding at the same time; dropped in a forked child.
        self._idle: list[Any] = []
        self._idle_pid = os.getpid()

    @property
    def client(self) -> Any:
        """The underlying ``redis.Redis`` client."""
        return self._client

    def _lane(self, packed: bytes) -> Any:
        """Send one pre-encoded command and return its reply (raises redis-py errors).

        A connection that was idle and turns out broken (the server restarted or
        closed it) is replaced once and the command sent again, instead of the pool's
        poll of every connection before each call. Should a server have applied the
        command just before the connection broke, the hit counts twice: like a
        timeout, this can over-count, never under-count. A timeout is not retried.
        """
        idle = self._idle
        if self._idle_pid != os.getpid():
            idle.clear()  # the parent's sockets: never use them in a child
            self._idle_pid = os.getpid()
        errors = self._redis_errors
        try:
            conn = idle.pop()
            reused = True
        except IndexError:
            pool = self._client.connection_pool
            conn = pool.connection_class(**pool.connection_kwargs)
            reused = False
        while True:
            try:
                conn.send_packed_command([packed], False)
                reply = conn.read_response()
            except errors.ResponseError:
                idle.append(conn)  # e.g. NOSCRIPT: the connection is fine
                raise
            except Exception as exc:
                conn.disconnect()
                if reused and isinstance(exc, errors.ConnectionError):
                    reused = False  # one fresh connection, as the pool would
                    continue
                raise
            idle.append(conn)
            return reply

    def bind(self, plan: Plan) -> _RedisBinding:
        """Return the storage's view for one limiter.

        Raises:
            ConfigError: a rate too large for exact arithmetic in Lua.
        """
        return _RedisBinding(self, _Compiled(plan, self._prefix))

    def close(self) -> None:
        """Close the connection pool and the hot path's connections."""
        while self._idle:
            with contextlib.suppress(Exception):
                self._idle.pop().disconnect()
        with contextlib.suppress(Exception):
            self._client.close()

    def __repr__(self) -> str:
        return f"RedisStorage({redact_url(self._url)!r}, prefix={self._prefix!r})"


class _RedisBinding:
    def __init__(self, storage: RedisStorage, compiled: _Compiled) -> None:
        self._url = storage._url
        self._client = storage._client
        self._clock = storage._clock
        self._c = compiled
        self._execute = storage._client.execute_command
        c = compiled
        head, tail, hit_op = c.head, c.tail, _OPS[Op.HIT]
        decode = c.decode
        recover = self._recover
        self.hit: Callable[[str, int], Decision] = self._hit_generic
        if self._clock is None:
            # The common case, sent as one pre-encoded RESP command on a connection
            # this storage keeps for its hot path (see ``RedisStorage._lane``).
            p_head = b"*%d\r\n" % (len(head) + 4 + len(tail)) + b"".join(
                _bulk(str(x).encode()) for x in head
            )
            p_mid = _bulk(hit_op)
            p_tail = _bulk(b"") + b"".join(_bulk(t) for t in tail)
            p_prefix = c.key_prefix_b
            call = storage._lane

            def hit(key: str, cost: int) -> Decision:
                kb = p_prefix + key.encode("utf-8", "surrogatepass")
                cb = b"%d" % cost
                packed = b"%s$%d\r\n%s\r\n%s$%d\r\n%s\r\n%s" % (
                    p_head,
                    len(kb),
                    kb,
                    p_mid,
                    len(cb),
                    cb,
                    p_tail,
                )
                try:
                    reply = call(packed)
                except Exception as exc:
                    return decode(recover(exc, (*head, kb, hit_op, cost, "", *tail)))
                return decode(reply)

            self.hit = hit

    def _recover(self, exc: Exception, args: tuple[Any, ...]) -> Any:
        """After a failed call: reload the script on NOSCRIPT and retry once, or
        translate the error."""
        with _translate(self._url):
            if not _is_noscript(exc):
                raise exc
            self._client.execute_command("SCRIPT", "LOAD", self._c.text)
            return self._execute(*args)

    def _load(self) -> None:
        with _translate(self._url):
            self._client.execute_command("SCRIPT", "LOAD", self._c.text)

    def apply(self, key: str, cost: int, op: Op) -> Decision:
        args = self._c.args(key, cost, op, _now_arg(self._clock))
        try:
            reply = self._execute(*args)
        except Exception as exc:
            reply = self._recover(exc, args)
        return self._c.decode(reply)

    def _hit_generic(self, key: str, cost: int) -> Decision:
        return self.apply(key, cost, Op.HIT)

    def apply_many(self, keys: Sequence[str], cost: int, op: Op) -> list[Decision]:
        if not keys:
            return []
        c = self._c
        calls = c.batch_args(keys, cost, op, _now_arg(self._clock))
        with _translate(self._url):
            replies = self._pipeline(calls)
            if any(isinstance(r, Exception) for r in replies):
                bad = next(r for r in replies if isinstance(r, Exception))
                if not _is_noscript(bad):
                    raise bad
                # Nothing ran for a NOSCRIPT chunk: load the script and redo those.
                self._load()
                redo = [i for i, r in enumerate(replies) if isinstance(r, Exception)]
                again = self._pipeline([calls[i] for i in redo])
                for i, r in zip(redo, again, strict=True):
                    if isinstance(r, Exception):
                        raise r
                    replies[i] = r
        return c.decode_many(replies)

    def _pipeline(self, calls: list[tuple[Any, ...]]) -> list[Any]:
        if len(calls) == 1:
            try:
                return [self._execute(*calls[0])]
            except Exception as exc:
                return [exc]
        pipe = self._client.pipeline(transaction=False)
        for args in calls:
            pipe.execute_command(*args)
        return list(pipe.execute(raise_on_error=False))

    def reset(self, key: str) -> None:
        with _translate(self._url):
            self._client.delete(self._c.redis_key(key))


class AsyncRedisStorage:
    """The asyncio twin of :class:`RedisStorage` (``redis.asyncio``).

    Args:
        url: ``redis://[:password@]host:6379/0``.
        prefix: prepended to every key.
        timeout_s: connect and read timeout of each call.
        clock: ``None`` (default) uses the server's ``TIME``; a clock passes its
            ``now()`` instead.

    Raises:
        ConfigError: a bad URL, prefix or timeout.
        MissingDependencyError: ``redis`` is not installed.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "avl:rl:",
        timeout_s: float = 0.5,
        clock: Clock | None = None,
    ) -> None:
        _check_common(url, prefix, timeout_s)
        aredis = require("redis.asyncio", extra="redis")
        self._url = url
        self._prefix = prefix
        self._clock = clock
        try:
            self._client: Any = aredis.Redis.from_url(
                url, **_client_kwargs(float(timeout_s), asyncio=True)
            )
        except ValueError as exc:
            raise ConfigError(f"bad Redis URL {redact_url(url)!r}: {exc}") from exc

    @property
    def client(self) -> Any:
        """The underlying ``redis.asyncio.Redis`` client."""
        return self._client

    def bind_async(self, plan: Plan) -> _AsyncRedisBinding:
        """Return the storage's asyncio view for one limiter.

        Raises:
            ConfigError: a rate too large for exact arithmetic in Lua.
        """
        return _AsyncRedisBinding(self, _Compiled(plan, self._prefix))

    async def aclose(self) -> None:
        """Close the connection pool."""
        with contextlib.suppress(Exception):
            await self._client.aclose()

    def __repr__(self) -> str:
        return f"AsyncRedisStorage({redact_url(self._url)!r}, prefix={self._prefix!r})"


class _AsyncRedisBinding:
    def __init__(self, storage: AsyncRedisStorage, compiled: _Compiled) -> None:
        self._url = storage._url
        self._client = storage._client
        self._clock = storage._clock
        self._c = compiled

    async def _load(self) -> None:
        with _translate(self._url):
            await self._client.execute_command("SCRIPT", "LOAD", self._c.text)

    async def apply(self, key: str, cost: int, op: Op) -> Decision:
        args = self._c.args(key, cost, op, _now_arg(self._clock))
        with _translate(self._url):
            try:
                reply = await self._client.execute_command(*args)
            except Exception as exc:
                if not _is_noscript(exc):
                    raise
                await self._load()
                reply = await self._client.execute_command(*args)
        return self._c.decode(reply)

    async def hit(self, key: str, cost: int) -> Decision:
        return await self.apply(key, cost, Op.HIT)

    async def apply_many(self, keys: Sequence[str], cost: int, op: Op) -> list[Decision]:
        if not keys:
            return []
        c = self._c
        calls = c.batch_args(keys, cost, op, _now_arg(self._clock))
        with _translate(self._url):
            replies = await self._pipeline(calls)
            if any(isinstance(r, Exception) for r in replies):
                bad = next(r for r in replies if isinstance(r, Exception))
                if not _is_noscript(bad):
                    raise bad
                await self._load()
                redo = [i for i, r in enumerate(replies) if isinstance(r, Exception)]
                again = await self._pipeline([calls[i] for i in redo])
                for i, r in zip(redo, again, strict=True):
                    if isinstance(r, Exception):
                        raise r
                    replies[i] = r
        return c.decode_many(replies)

    async def _pipeline(self, calls: list[tuple[Any, ...]]) -> list[Any]:
        pipe = self._client.pipeline(transaction=False)
        for args in calls:
            pipe.execute_command(*args)
        return list(await pipe.execute(raise_on_error=False))

    async def reset(self, key: str) -> None:
        with _translate(self._url):
            await self._client.delete(self._c.redis_key(key))
