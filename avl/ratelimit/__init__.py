"""Per-key rate limits and token budgets: ``avl.ratelimit``.

Example:
    >>> from avl.ratelimit import RateLimiter
    >>> limiter = RateLimiter("10/second; 1000/day")
    >>> limiter.hit("user-1").allowed
    True
"""

from __future__ import annotations

from avl.ratelimit._decision import Decision
from avl.ratelimit._keys import Key, make_key
from avl.ratelimit._limiter import (
    AsyncRateLimiter,
    AsyncStorage,
    OnUnavailable,
    RateLimiter,
    Reservation,
    Storage,
    apply_headers,
    key_from_request,
)
from avl.ratelimit._rates import Rate, parse_rates
from avl.ratelimit._strategies import Strategy
from avl.ratelimit.backends.memory import MemoryStorage

__all__ = [
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
