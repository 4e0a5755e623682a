"""Rates: ``"10/second; 1000/day"`` parsed into :class:`Rate` values (pure).

A :class:`Rate` is ``limit`` units per ``period_s`` seconds. Units are whatever the
caller counts: requests (``cost=1``) or tokens (``cost=tokens``).

Accepted forms, case-insensitive, separated by ``;`` or ``,``::

    10/second      100/minute      50000 per day      5 per 10 seconds
    2/500ms        1000/1h         7/week

Time units: ``ms``/``millisecond(s)``, ``s``/``sec``/``second(s)``,
``m``/``min``/``minute(s)``, ``h``/``hr``/``hour(s)``, ``d``/``day(s)``,
``w``/``week(s)``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

import attrs

from avl.errors import ConfigError

__all__ = ["Rate", "parse_rates"]

_UNITS_US: dict[str, int] = {}
for _names, _us in (
    (("ms", "msec", "millisecond", "milliseconds"), 1_000),
    (("s", "sec", "secs", "second", "seconds"), 1_000_000),
    (("m", "min", "mins", "minute", "minutes"), 60_000_000),
    (("h", "hr", "hrs", "hour", "hours"), 3_600_000_000),
    (("d", "day", "days"), 86_400_000_000),
    (("w", "wk", "week", "weeks"), 604_800_000_000),
):
    for _n in _names:
        _UNITS_US[_n] = _us
del _names, _us, _n

_ITEM = re.compile(
    r"^\s*(?P<count>[+-]?\d+)\s*(?:/|per\b)\s*(?P<mult>\d+(?:\.\d+)?)?\s*(?P<unit>[a-z]+)\s*$",
    re.IGNORECASE,
)

_UNIT_WORDS = (
    (604_800_000_000, "week"),
    (86_400_000_000, "day"),
    (3_600_000_000, "hour"),
    (60_000_000, "minute"),
    (1_000_000, "second"),
    (1_000, "millisecond"),
)


def _positive_int(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if type(value) is not int or value <= 0:
        raise ConfigError(f"Rate.{attribute.name} must be a positive integer, got {value!r}")


def _period_us(instance: Rate, attribute: attrs.Attribute[float], value: float) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or round(value * 1_000_000) < 1
    ):
        raise ConfigError(f"Rate.period_s must be a finite number >= 1e-6 seconds, got {value!r}")


def _to_float(value: float) -> float:
    return float(value) if type(value) is int else value


@attrs.frozen(kw_only=True)
class Rate:
    """``limit`` units per ``period_s`` seconds.

    The period is kept to the microsecond (``period_us``).

    Attributes:
        limit: how many units (requests, tokens) the period allows.
        period_s: the length of the period in seconds.

    Example:
        >>> Rate(limit=10, period_s=1)
        Rate(limit=10, period_s=1.0)
        >>> str(Rate(limit=5, period_s=10))
        '5 per 10 seconds'
    """

    limit: int = attrs.field(validator=_positive_int)
    period_s: float = attrs.field(converter=_to_float, validator=_period_us)

    @property
    def period_us(self) -> int:
        """The period in whole microseconds."""
        return round(self.period_s * 1_000_000)

    @property
    def name(self) -> str:
        """A short token naming this rate in headers, e.g. ``"100-per-60s"``."""
        us = self.period_us
        if us % 1_000_000 == 0:
            return f"{self.limit}-per-{us // 1_000_000}s"
        return f"{self.limit}-per-{us}us"

    def __str__(self) -> str:
        us = self.period_us
        for unit_us, word in _UNIT_WORDS:
            if us % unit_us == 0:
                n = us // unit_us
                return f"{self.limit}/{word}" if n == 1 else f"{self.limit} per {n} {word}s"
        return f"{self.limit} per {us} microseconds"


def _parse_item(item: str, text: str) -> Rate:
    m = _ITEM.match(item)
    if m is None:
        raise ConfigError(
            f"bad rate {item.strip()!r} in {text!r}: expected '<count>/<period>' "
            "such as '10/second', '50000 per day' or '5 per 10 seconds'"
        )
    count = int(m["count"])
    if count <= 0:
        raise ConfigError(f"bad rate {item.strip()!r} in {text!r}: the count must be positive")
    unit = m["unit"].lower()
    unit_us = _UNITS_US.get(unit)
    if unit_us is None:
        raise ConfigError(
            f"bad rate {item.strip()!r} in {text!r}: unknown time unit {m['unit']!r} "
            "(known: ms, second, minute, hour, day, week)"
        )
    mult = float(m["mult"]) if m["mult"] else 1.0
    period_us = round(mult * unit_us)
    if period_us < 1:
        raise ConfigError(f"bad rate {item.strip()!r} in {text!r}: the period must be positive")
    return Rate(limit=count, period_s=period_us / 1_000_000)


def parse_rates(rates: str | Rate | Iterable[str | Rate]) -> tuple[Rate, ...]:
    """Parse one or more rates.

    Args:
        rates: a string such as ``"10/second; 1000/day"``, a :class:`Rate`, or an
            iterable of strings and rates.

    Returns:
        The rates in the given order, without exact duplicates.

    Raises:
        ConfigError: a part is not a rate; the message quotes the bad part.

    Example:
        >>> parse_rates("10/second; 50000 per day")
        (Rate(limit=10, period_s=1.0), Rate(limit=50000, period_s=86400.0))
    """
    out: list[Rate] = []
    if isinstance(rates, Rate):
        out.append(rates)
    elif isinstance(rates, str):
        parts = [p for p in re.split(r"[;,]", rates) if p.strip()]
        if not parts:
            raise ConfigError(f"empty rate string {rates!r}: expected e.g. '10/second'")
        out.extend(_parse_item(p, rates) for p in parts)
    else:
        try:
            items = list(rates)
        except TypeError:
            raise ConfigError(
                f"rates must be a string, a Rate or a list of them, got {type(rates).__name__}"
            ) from None
        for item in items:
            if isinstance(item, (str, Rate)):
                out.extend(parse_rates(item))
            else:
                raise ConfigError(
                    f"rates must be strings or Rate values, got {type(item).__name__}: {item!r}"
                )
    if not out:
        raise ConfigError("no rates given: expected e.g. '10/second'")
    unique: list[Rate] = []
    for r in out:
        if r not in unique:
            unique.append(r)
    return tuple(unique)
