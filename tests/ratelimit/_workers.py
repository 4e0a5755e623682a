"""Worker functions for the multi-process tests (importable by spawned children)."""

from __future__ import annotations

from avl.ratelimit import RateLimiter
from avl.ratelimit.backends.redis import RedisStorage


def hammer(url: str, prefix: str, rates: str, strategy: str, hits: int, batch: int) -> int:
    """Hit one shared key ``hits`` times, then ``batch`` more in one pipeline."""
    storage = RedisStorage(url, prefix=prefix, timeout_s=5.0)
    limiter = RateLimiter(rates, storage=storage, strategy=strategy)
    allowed = sum(limiter.hit("shared").allowed for _ in range(hits))
    allowed += sum(d.allowed for d in limiter.hit_many(["shared"] * batch))
    storage.close()
    return allowed
