"""The answer of a rate limiter: :class:`Decision` (pure)."""

from __future__ import annotations

import math
from typing import Any

import attrs

from avl.ratelimit._rates import Rate

__all__ = ["Decision"]


@attrs.frozen(kw_only=True, slots=False)
class Decision:
    """The outcome of one rate-limit check.

    With several rates, the decision reports the most restrictive one: when allowed,
    the rate with the fewest units left; when refused, the refused rate that frees up
    last.

    Attributes:
        allowed: whether the request passes (for :meth:`RateLimiter.hit` it was
            counted; nothing is counted when it is refused).
        remaining: units left in the reported rate after this decision.
        limit: the reported rate's limit.
        reset_after: seconds until the reported rate is back to its full limit.
        retry_after: seconds until the same request could pass (``0.0`` when
            allowed; ``math.inf`` when its cost exceeds the limit, so it never can).
        rate: the reported rate (``None`` for a fail-open/closed decision made
            without a backend).
        rates: every rate of the limiter (for the ``RateLimit-Policy`` header).

    Example:
        >>> from avl.ratelimit import RateLimiter
        >>> d = RateLimiter("2/second").hit("user-1")
        >>> (d.allowed, d.remaining, d.limit)
        (True, 1, 2)
    """

    allowed: bool
    remaining: int
    limit: int
    reset_after: float
    retry_after: float
    rate: Rate | None = None
    rates: tuple[Rate, ...] = ()

    def __bool__(self) -> bool:
        return self.allowed

    def headers(self) -> dict[str, str]:
        """HTTP response headers describing this decision.

        Produces the IETF draft (draft-ietf-httpapi-ratelimit-headers, structured
        field form) ``RateLimit-Policy`` (every rate: ``q`` quota, ``w`` window
        seconds) and ``RateLimit`` (the reported rate: ``r`` remaining, ``t``
        seconds until it is back to full), the common ``X-RateLimit-Limit`` /
        ``X-RateLimit-Remaining`` / ``X-RateLimit-Reset`` (delta seconds), and
        ``Retry-After`` (whole seconds, at least 1) when refused.

        Returns:
            A new ``dict`` of header name to value.

        Example:
            >>> from avl.ratelimit import Decision, Rate
            >>> r = Rate(limit=10, period_s=60)
            >>> d = Decision(allowed=False, remaining=0, limit=10, reset_after=59.2,
            ...              retry_after=5.5, rate=r, rates=(r,))
            >>> d.headers()["RateLimit"], d.headers()["Retry-After"]
            ('"10-per-60s";r=0;t=60', '6')
        """
        reset = _ceil_s(self.reset_after)
        out: dict[str, str] = {}
        if self.rates:
            out["RateLimit-Policy"] = ", ".join(
                f'"{r.name}";q={r.limit};w={max(1, math.ceil(r.period_s))}' for r in self.rates
            )
        name = self.rate.name if self.rate is not None else "default"
        out["RateLimit"] = f'"{name}";r={self.remaining};t={reset}'
        out["X-RateLimit-Limit"] = str(self.limit)
        out["X-RateLimit-Remaining"] = str(self.remaining)
        out["X-RateLimit-Reset"] = str(reset)
        if not self.allowed and math.isfinite(self.retry_after):
            out["Retry-After"] = str(max(1, _ceil_s(self.retry_after)))
        return out


def _ceil_s(seconds: float) -> int:
    if not math.isfinite(seconds):
        return 0
    # Tolerate float noise from the microsecond arithmetic (59.0000000001 -> 59).
    return max(0, math.ceil(round(seconds, 6)))


_new = object.__new__
_set = object.__setattr__


def make_decision(
    allowed: bool,
    remaining: int,
    limit: int,
    reset_after: float,
    retry_after: float,
    rate: Rate | None,
    rates: tuple[Rate, ...],
) -> Decision:
    """Build a :class:`Decision` without re-running validation (hot path; internal)."""
    d: Any = _new(Decision)
    _set(
        d,
        "__dict__",
        {
            "allowed": allowed,
            "remaining": remaining,
            "limit": limit,
            "reset_after": reset_after,
            "retry_after": retry_after,
            "rate": rate,
            "rates": rates,
        },
    )
    result: Decision = d
    return result
