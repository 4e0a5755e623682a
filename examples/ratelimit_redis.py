"""One limit shared by every process through Redis, with fail-open on outages.

Run: python examples/ratelimit_redis.py [redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import sys
import uuid

from avl.ratelimit import RateLimiter
from avl.ratelimit.backends.redis import RedisStorage


def main() -> None:
    url = sys.argv[1] if len(sys.argv) > 1 else "redis://127.0.0.1:6379/0"
    storage = RedisStorage(url, prefix=f"example:{uuid.uuid4().hex[:8]}:")
    limiter = RateLimiter("5/minute", storage=storage, on_unavailable="allow")
    decisions = limiter.hit_many(["user-1"] * 7)  # one pipelined round trip
    print([d.allowed for d in decisions])
    print(limiter.peek("user-1").headers())
    limiter.reset("user-1")
    storage.close()


if __name__ == "__main__":
    main()
