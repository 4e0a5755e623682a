"""Rate strings and values."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from avl.errors import ConfigError
from avl.ratelimit import Rate, parse_rates


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10/second", [(10, 1.0)]),
        ("10/second; 1000/day", [(10, 1.0), (1000, 86400.0)]),
        ("50000 per day", [(50000, 86400.0)]),
        ("100/minute", [(100, 60.0)]),
        ("5 per 10 seconds", [(5, 10.0)]),
        ("2/500ms", [(2, 0.5)]),
        ("1000/1h, 7/week", [(1000, 3600.0), (7, 604800.0)]),
        ("  3 PER 2 Hours ;", [(3, 7200.0)]),
        ("1/1.5s", [(1, 1.5)]),
    ],
)
def test_parse(text: str, expected: list[tuple[int, float]]) -> None:
    assert [(r.limit, r.period_s) for r in parse_rates(text)] == expected


@pytest.mark.parametrize(
    ("text", "bad_part", "why"),
    [
        ("10/fortnight", "10/fortnight", "unknown time unit 'fortnight'"),
        ("10/second; ten/day", "ten/day", "expected '<count>/<period>'"),
        ("0/second", "0/second", "count must be positive"),
        ("-5/second", "-5/second", "count must be positive"),
        ("10 second", "10 second", "expected '<count>/<period>'"),
        ("10/0 seconds", "10/0 seconds", "period must be positive"),
        ("1/second; 5//day", "5//day", "expected"),
    ],
)
def test_bad_strings_name_the_bad_part(text: str, bad_part: str, why: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_rates(text)
    assert f"bad rate {bad_part!r}" in str(info.value)
    assert why in str(info.value)


@pytest.mark.parametrize("text", ["", "  ", ";;"])
def test_empty(text: str) -> None:
    with pytest.raises(ConfigError, match="empty rate string"):
        parse_rates(text)


def test_values_and_lists() -> None:
    r = Rate(limit=5, period_s=10)
    assert parse_rates(r) == (r,)
    assert parse_rates(["10/second", r, "10/second"]) == (Rate(limit=10, period_s=1.0), r)
    with pytest.raises(ConfigError, match="got int"):
        parse_rates([3])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="got float"):
        parse_rates(1.5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="no rates"):
        parse_rates([])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit": 0, "period_s": 1}, "Rate.limit must be a positive integer, got 0"),
        ({"limit": True, "period_s": 1}, "Rate.limit must be a positive integer, got True"),
        ({"limit": 1, "period_s": 0}, "Rate.period_s must be a finite number"),
        ({"limit": 1, "period_s": float("nan")}, "Rate.period_s must be a finite number"),
        ({"limit": 1, "period_s": "1"}, "Rate.period_s must be a finite number"),
    ],
)
def test_rate_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        Rate(**kwargs)  # type: ignore[arg-type]


def test_str_and_name() -> None:
    assert str(Rate(limit=10, period_s=1)) == "10/second"
    assert str(Rate(limit=5, period_s=10)) == "5 per 10 seconds"
    assert str(Rate(limit=1000, period_s=86400)) == "1000/day"
    assert str(Rate(limit=2, period_s=0.5)) == "2 per 500 milliseconds"
    assert Rate(limit=100, period_s=60).name == "100-per-60s"
    assert Rate(limit=2, period_s=0.5).name == "2-per-500000us"


@given(
    st.integers(min_value=1, max_value=10**9),
    st.integers(min_value=1, max_value=1000),
    st.sampled_from(["ms", "s", "second", "minutes", "h", "day", "weeks"]),
)
def test_str_round_trips(count: int, mult: int, unit: str) -> None:
    (rate,) = parse_rates(f"{count} per {mult} {unit}")
    assert parse_rates(str(rate)) == (rate,)
