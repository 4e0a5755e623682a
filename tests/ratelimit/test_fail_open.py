"""A reservation granted while failing open is never refunded beyond what was charged.

Tested across a real outage: a redis-server of the test's own on a free port is
stopped and started again (its state kept in an RDB file, as a persistent Redis
would), never the shared one.
"""

from __future__ import annotations

import asyncio
import logging
import warnings

import pytest
import redis

from avl.errors import InvalidInputError
from avl.ratelimit import AsyncRateLimiter, RateLimiter, Reservation
from avl.ratelimit.backends.redis import AsyncRedisStorage
from tests.ratelimit.conftest import RedisServer


def _outage(server: RedisServer) -> None:
    """Stop the server, keeping its data (SAVE, then kill)."""
    admin = redis.Redis.from_url(server.url)
    admin.save()
    admin.close()
    server.stop()


def test_reservation_across_a_real_outage(
    own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    limiter = RateLimiter("1000/day", storage=own_redis.url, on_unavailable="allow", timeout_s=1.0)
    before = limiter.reserve("user-1", 400)  # charged while Redis is up
    assert (before.allowed, before.charged, before.decision.remaining) == (True, 400, 600)

    _outage(own_redis)
    with caplog.at_level(logging.WARNING, logger="avl.ratelimit"):
        during = limiter.reserve("user-1", 300)  # granted while failing open
    assert (during.allowed, during.charged) == (True, 0)
    assert "failing open" in caplog.text
    # settling while Redis is still down neither charges nor refunds
    assert limiter.settle(during, 100).allowed is True

    own_redis.start()  # the same port, the saved state
    assert limiter.peek("user-1").remaining == 600
    # The work reserved during the outage really used 100 units: after recovery they
    # are charged. Refunding 300 - 100 = 200 (units never taken) would leave 800.
    assert limiter.settle(during, 100).remaining == 500
    # A reservation charged before the outage refunds normally.
    assert limiter.settle(before, 150).remaining == 750
    assert limiter.peek("user-1").remaining == 750


def test_async_reservation_across_a_real_outage(own_redis: RedisServer) -> None:
    async def scenario() -> tuple[int, int, int]:
        limiter = AsyncRateLimiter(
            "1000/day", storage=own_redis.url, on_unavailable="allow", timeout_s=1.0
        )
        await limiter.hit("user-2", 100)
        _outage(own_redis)
        during = await limiter.reserve("user-2", 300)
        own_redis.start()
        after = await limiter.settle(during, 50)
        await limiter.storage.aclose()  # type: ignore[union-attr]
        return during.charged, int(during.allowed), after.remaining

    assert asyncio.run(scenario()) == (0, 1, 850)


def test_fail_closed_reservations_cannot_be_settled(own_redis: RedisServer) -> None:
    limiter = RateLimiter("1000/day", storage=own_redis.url, on_unavailable="deny", timeout_s=1.0)
    own_redis.stop()
    refused = limiter.reserve("k", 10)
    assert (refused.allowed, refused.charged) == (False, 0)
    with pytest.raises(InvalidInputError, match="refused reservation"):
        limiter.settle(refused, 0)


def test_settle_never_refunds_more_than_charged_in_memory() -> None:
    limiter = RateLimiter("100/day")
    r = limiter.reserve("k", 60)
    assert r.charged == 60
    assert limiter.settle(r, 0).remaining == 100
    # a hand-made reservation claiming a charge that never happened is refused
    forged = Reservation(key="k", cost=50, decision=r.decision, charged=80)
    with pytest.raises(InvalidInputError, match="charged"):
        limiter.settle(forged, 0)
    with pytest.raises(InvalidInputError, match="reservation"):
        limiter.settle("k", 0)  # type: ignore[arg-type]


def test_async_redis_client_warns_nothing(own_redis: RedisServer) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        storage = AsyncRedisStorage(own_redis.url, prefix="w:")

        async def one() -> bool:
            limiter = AsyncRateLimiter("5/second", storage=storage)
            allowed = (await limiter.hit("k")).allowed
            await storage.aclose()
            return allowed

        assert asyncio.run(one()) is True
    # (ResourceWarnings of other tests' clients collected meanwhile are not ours)
    assert [str(w.message) for w in caught if not issubclass(w.category, ResourceWarning)] == []
