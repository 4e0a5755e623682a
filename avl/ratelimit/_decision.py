"""The answer of a rate limiter: :class:`Decision` (pure)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import attrs

from avl._lazy import lazy_module
from avl.ratelimit._rates import Rate

if TYPE_CHECKING:
    from avl import _html
else:  # the HTML views load when a notebook first shows one
    _html = lazy_module("avl._html")

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

    ``repr()`` reads as one line (``Decision(refused, retry in 400.0 ms, 0 of 2
    left, rate 2/second)``); in a notebook it shows as a small table.

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

    def _summary(self) -> list[tuple[str, str]]:
        out = [("left", f"{self.remaining} of {self.limit}")]
        if not self.allowed:
            retry = (
                "never (the cost exceeds the limit)"
                if math.isinf(self.retry_after)
                else f"in {_html.fmt_seconds(self.retry_after)}"
            )
            out.insert(0, ("retry", retry))
        out.append(("full again", f"in {_html.fmt_seconds(self.reset_after)}"))
        if self.rate is not None:
            out.append(("rate", str(self.rate)))
        if len(self.rates) > 1:
            out.append(("all rates", ", ".join(str(r) for r in self.rates)))
        return out

    def __repr__(self) -> str:
        state = "allowed" if self.allowed else "refused"
        parts = [state]
        for name, value in self._summary():
            if name == "left":
                parts.append(f"{value} left")
            elif name == "retry":
                parts.append(f"retry {value}")
            elif name == "full again":
                parts.append(f"full again {value}")
            else:
                parts.append(f"{name} {value}")
        return f"Decision({', '.join(parts)})"

    def _repr_html_(self) -> str:
        """The decision as HTML (Jupyter calls it): a badge and a small table."""
        head = _html.badge("allowed" if self.allowed else "refused", self.allowed)
        return _html.box(head + _html.kv_table(self._summary()), kind="decision")

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
