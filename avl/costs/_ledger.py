"""Where budgets keep what was spent: in memory, or in Redis (shared by every process).

Amounts are integers of nano-dollars (1 USD = 10**9), so every backend adds
exactly. A reservation is checked and taken on all of a call's budgets at once, or on
none (one lock in memory, one Lua script in Redis).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

from avl._optional import require
from avl._registry import Registry, redact_url
from avl.errors import BackendError, BackendUnavailableError, ConfigError

__all__ = ["LEDGERS", "Ledger", "MemoryLedger", "RedisLedger", "ledger_from_url"]

NANO = 1_000_000_000


@runtime_checkable
class Ledger(Protocol):
    """The storage of budgets: spent nano-dollars per key, and alert marks."""

    def reserve(
        self, keys: Sequence[str], amount: int, limits: Sequence[int], ttls_s: Sequence[int]
    ) -> tuple[bool, list[int]]:
        """Add ``amount`` to every key if each stays within its limit, else to none.

        Returns:
            ``(True, new totals)``, or ``(False, current totals)``.
        """
        ...

    def adjust(self, keys: Sequence[str], delta: int, ttls_s: Sequence[int]) -> list[int]:
        """Add ``delta`` (negative to refund) to every key, past any limit; new totals."""
        ...

    def spent(self, keys: Sequence[str]) -> list[int]:
        """The totals of ``keys`` (0 for unknown keys)."""
        ...

    def mark(self, key: str, ttl_s: int) -> bool:
        """Set a one-time mark; ``True`` only for the first caller (alerts fire once)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class MemoryLedger:
    """A ledger in this process (the default; one process only). Thread-safe."""

    def __init__(self, url: str = "memory://") -> None:
        self._lock = threading.Lock()
        self._spent: dict[str, int] = {}
        self._marks: set[str] = set()

    def reserve(
        self, keys: Sequence[str], amount: int, limits: Sequence[int], ttls_s: Sequence[int]
    ) -> tuple[bool, list[int]]:
        """See :meth:`Ledger.reserve`."""
        with self._lock:
            current = [self._spent.get(k, 0) for k in keys]
            if any(c + amount > lim for c, lim in zip(current, limits, strict=True)):
                return False, current
            for k in keys:
                self._spent[k] = self._spent.get(k, 0) + amount
            return True, [self._spent[k] for k in keys]

    def adjust(self, keys: Sequence[str], delta: int, ttls_s: Sequence[int]) -> list[int]:
        """See :meth:`Ledger.adjust`."""
        with self._lock:
            for k in keys:
                self._spent[k] = self._spent.get(k, 0) + delta
            return [self._spent[k] for k in keys]

    def spent(self, keys: Sequence[str]) -> list[int]:
        """See :meth:`Ledger.spent`."""
        with self._lock:
            return [self._spent.get(k, 0) for k in keys]

    def mark(self, key: str, ttl_s: int) -> bool:
        """See :meth:`Ledger.mark`."""
        with self._lock:
            if key in self._marks:
                return False
            self._marks.add(key)
            return True

    def close(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return "MemoryLedger()"


# KEYS: the budget keys. ARGV: amount, then (limit, ttl) per key.
_RESERVE = """
local amount = tonumber(ARGV[1])
local current = {}
for i, key in ipairs(KEYS) do
  current[i] = tonumber(redis.call('GET', key) or '0')
  if current[i] + amount > tonumber(ARGV[2 * i]) then
    return {0, unpack(current)}
  end
end
local out = {1}
for i, key in ipairs(KEYS) do
  out[i + 1] = redis.call('INCRBY', key, amount)
  redis.call('EXPIRE', key, tonumber(ARGV[2 * i + 1]))
end
return out
"""

# KEYS: the budget keys. ARGV: delta, then a ttl per key.
_ADJUST = """
local out = {}
for i, key in ipairs(KEYS) do
  out[i] = redis.call('INCRBY', key, tonumber(ARGV[1]))
  redis.call('EXPIRE', key, tonumber(ARGV[i + 1]))
end
return out
"""


@contextlib.contextmanager
def _translate(url: str) -> Iterator[None]:
    """Re-raise redis-py errors as avl errors (``from exc``)."""
    try:
        yield
    except BackendError:
        raise
    except Exception as exc:
        exceptions = require("redis.exceptions", extra="redis")
        if isinstance(exc, (exceptions.ConnectionError, exceptions.TimeoutError, OSError)):
            raise BackendUnavailableError(
                f"budget ledger at {redact_url(url)} is unavailable: {exc}"
            ) from exc
        if isinstance(exc, exceptions.RedisError):
            raise BackendError(f"budget ledger at {redact_url(url)} failed: {exc}") from exc
        raise


class RedisLedger:
    """A ledger in Redis, shared by every process and machine (atomic Lua scripts).

    Keys expire a while after their period ends (the TTL the budget gives).

    Args:
        url: ``redis://host:6379/0``.
        prefix: the key prefix.
        timeout_s: the socket timeout.

    Raises:
        ConfigError: a bad URL.
        MissingDependencyError: redis-py is not installed (``avl[redis]``).
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "avl:budget:",
        timeout_s: float = 0.5,
    ) -> None:
        redis = require("redis", extra="redis")
        self._url = url
        self.prefix = prefix
        try:
            self._client: Any = redis.Redis.from_url(
                url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
            )
        except ValueError as exc:
            raise ConfigError(f"bad Redis URL {redact_url(url)!r}: {exc}") from exc
        self._reserve = self._client.register_script(_RESERVE)
        self._adjust = self._client.register_script(_ADJUST)

    def _keys(self, keys: Sequence[str]) -> list[str]:
        return [self.prefix + k for k in keys]

    def reserve(
        self, keys: Sequence[str], amount: int, limits: Sequence[int], ttls_s: Sequence[int]
    ) -> tuple[bool, list[int]]:
        """See :meth:`Ledger.reserve`."""
        args: list[int] = [amount]
        for lim, ttl in zip(limits, ttls_s, strict=True):
            args += [lim, ttl]
        with _translate(self._url):
            reply = self._reserve(keys=self._keys(keys), args=args)
        return bool(reply[0]), [int(x) for x in reply[1:]]

    def adjust(self, keys: Sequence[str], delta: int, ttls_s: Sequence[int]) -> list[int]:
        """See :meth:`Ledger.adjust`."""
        with _translate(self._url):
            reply = self._adjust(keys=self._keys(keys), args=[delta, *ttls_s])
        return [int(x) for x in reply]

    def spent(self, keys: Sequence[str]) -> list[int]:
        """See :meth:`Ledger.spent`."""
        if not keys:
            return []
        with _translate(self._url):
            values = self._client.mget(self._keys(keys))
        return [int(v) if v is not None else 0 for v in values]

    def mark(self, key: str, ttl_s: int) -> bool:
        """See :meth:`Ledger.mark`."""
        with _translate(self._url):
            return bool(self._client.set(self.prefix + key, b"1", nx=True, ex=max(1, ttl_s)))

    def close(self) -> None:
        """Close the connection pool."""
        with _translate(self._url):
            self._client.close()

    def __repr__(self) -> str:
        return f"RedisLedger({redact_url(self._url)!r})"


#: The ledger backends by URL scheme.
LEDGERS = Registry(
    kind="budget ledger",
    entries={
        "memory": "avl.costs._ledger:MemoryLedger",
        "redis": "avl.costs._ledger:RedisLedger",
    },
    extras={"redis": "redis"},
)


def ledger_from_url(url: str) -> Ledger:
    """A ledger from ``memory://`` or ``redis://host:6379/0``.

    Raises:
        ConfigError: an unknown scheme (with the closest known one) or a bad URL.
        MissingDependencyError: the backend's driver is not installed.
    """
    ledger: Ledger = LEDGERS.create(url)
    return ledger
