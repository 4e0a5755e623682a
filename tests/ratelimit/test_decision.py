"""Decision values and their HTTP headers."""

from __future__ import annotations

import math

import attrs
import pytest

from avl.ratelimit import Decision, Rate, apply_headers

PER_MIN = Rate(limit=10, period_s=60)
PER_DAY = Rate(limit=1000, period_s=86400)


def test_headers_allowed() -> None:
    d = Decision(
        allowed=True,
        remaining=7,
        limit=10,
        reset_after=17.25,
        retry_after=0.0,
        rate=PER_MIN,
        rates=(PER_MIN, PER_DAY),
    )
    assert d.headers() == {
        "RateLimit-Policy": '"10-per-60s";q=10;w=60, "1000-per-86400s";q=1000;w=86400',
        "RateLimit": '"10-per-60s";r=7;t=18',
        "X-RateLimit-Limit": "10",
        "X-RateLimit-Remaining": "7",
        "X-RateLimit-Reset": "18",
    }


def test_headers_refused() -> None:
    d = Decision(
        allowed=False,
        remaining=0,
        limit=1000,
        reset_after=86400.0,
        retry_after=0.2,
        rate=PER_DAY,
        rates=(PER_MIN, PER_DAY),
    )
    h = d.headers()
    assert h["RateLimit"] == '"1000-per-86400s";r=0;t=86400'
    assert h["Retry-After"] == "1"
    assert h["X-RateLimit-Reset"] == "86400"


def test_headers_without_rates_and_never() -> None:
    d = Decision(allowed=False, remaining=3, limit=5, reset_after=0.0, retry_after=math.inf)
    assert d.headers() == {
        "RateLimit": '"default";r=3;t=0',
        "X-RateLimit-Limit": "5",
        "X-RateLimit-Remaining": "3",
        "X-RateLimit-Reset": "0",
    }


def test_float_noise_does_not_round_up() -> None:
    d = Decision(allowed=True, remaining=1, limit=2, reset_after=59.0000000001, retry_after=0.0)
    assert d.headers()["X-RateLimit-Reset"] == "59"


def test_frozen_equal_and_bool() -> None:
    a = Decision(allowed=True, remaining=1, limit=2, reset_after=0.5, retry_after=0.0)
    b = Decision(allowed=True, remaining=1, limit=2, reset_after=0.5, retry_after=0.0)
    assert a == b
    assert bool(a) is True
    assert bool(attrs.evolve(a, allowed=False)) is False
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        a.allowed = False  # type: ignore[misc]


def test_apply_headers_merges_in_place() -> None:
    d = Decision(
        allowed=False,
        remaining=0,
        limit=10,
        reset_after=6.0,
        retry_after=6.0,
        rate=PER_MIN,
        rates=(PER_MIN,),
    )
    headers = {"Content-Type": "application/json"}
    out = apply_headers(d, headers)
    assert out is headers
    assert headers["Content-Type"] == "application/json"
    assert headers["Retry-After"] == "6"
    assert headers["RateLimit-Policy"] == '"10-per-60s";q=10;w=60'
