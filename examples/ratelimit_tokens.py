"""A daily token budget per user: reserve before a model call, settle after.

Run: python examples/ratelimit_tokens.py
"""

from __future__ import annotations

from avl.errors import RateLimitedError
from avl.ratelimit import RateLimiter


def fake_model_call(max_tokens: int) -> int:
    """Stands in for a chat-model call; returns the tokens really used."""
    return max_tokens // 3


def main() -> None:
    budget = RateLimiter("10000/day")
    for call in range(8):
        reservation = budget.reserve("user-1", 2000)
        if not reservation.allowed:
            err = RateLimitedError(
                "token budget spent",
                retry_after_s=reservation.decision.retry_after,
                decision=reservation.decision,
            )
            print(call, "refused:", err, f"(retry after {err.retry_after_s:.0f} s)")
            continue
        used = fake_model_call(2000)
        after = budget.settle(reservation, used)
        print(call, f"used {used} tokens, {after.remaining} left today")


if __name__ == "__main__":
    main()
