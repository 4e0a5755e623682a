"""Per-user request limits with HTTP headers (memory storage).

Run: python examples/ratelimit_basic.py
"""

from __future__ import annotations

from avl.ratelimit import RateLimiter, apply_headers, key_from_request


def main() -> None:
    limiter = RateLimiter("3/second; 1000/day")
    request_headers = {"X-Api-Key": "demo-key"}
    key = key_from_request(request_headers, "203.0.113.5", route="/v1/ask")
    for i in range(4):
        decision = limiter.hit(key)
        response_headers: dict[str, str] = {}
        apply_headers(decision, response_headers)
        status = 200 if decision.allowed else 429
        print(i, status, response_headers)


if __name__ == "__main__":
    main()
