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
from collections.abc import Iterable, Mapping

import attrs

from avl._args import describe
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
    r"^\s*(?P<count>[+-]?\d{1,30})\s*(?:/|per\b)\s*(?P<mult>\d{1,30}(?:\.\d{1,30})?)?\s*"
    r"(?P<unit>[a-z]{1,20})\s*$",
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


#: The largest limit (and cost) a rate accepts: exact in a double, as Redis' Lua uses.
MAX_UNITS = 2**53


def _positive_int(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if type(value) is not int or not 0 < value <= MAX_UNITS:
        raise ConfigError(
            f"Rate.{attribute.name} must be a positive integer, got {describe(value)}"
        )


def _period_us(instance: Rate, attribute: attrs.Attribute[float], value: float) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not math.isfinite(value * 1_000_000)
        or value > _MAX_PERIOD_S
        or round(value * 1_000_000) < 1
    ):
        raise ConfigError(
            f"Rate.period_s must be a finite number >= 1e-6 seconds, got {describe(value)}"
        )


#: The longest period a rate accepts (about 31.7 years).
_MAX_PERIOD_S = 1e9


def _to_float(value: float) -> float:
    if type(value) is int:
        try:
            return float(value)
        except OverflowError:
            return math.inf  # refused by the validator, with the value described
    return value


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
            f"bad rate {describe(item.strip())} in {describe(text)}: expected '<count>/<period>' "
            "such as '10/second', '50000 per day' or '5 per 10 seconds'"
        )
    count = int(m["count"])
    if count <= 0:
        raise ConfigError(
            f"bad rate {describe(item.strip())} in {describe(text)}: the count must be positive"
        )
    if count > MAX_UNITS:
        raise ConfigError(
            f"bad rate {describe(item.strip())} in {describe(text)}: the count must be at most "
            f"{MAX_UNITS}"
        )
    unit = m["unit"].lower()
    unit_us = _UNITS_US.get(unit)
    if unit_us is None:
        raise ConfigError(
            f"bad rate {describe(item.strip())} in {describe(text)}: unknown time unit {describe(m['unit'])} "
            "(known: ms, second, minute, hour, day, week)"
        )
    mult = float(m["mult"]) if m["mult"] else 1.0
    if mult * unit_us > _MAX_PERIOD_S * 1_000_000:
        raise ConfigError(
            f"bad rate {describe(item.strip())} in {describe(text)}: the period must be at most "
            f"{_MAX_PERIOD_S:.0e} seconds"
        )
    period_us = round(mult * unit_us)
    if period_us < 1:
        raise ConfigError(
            f"bad rate {describe(item.strip())} in {describe(text)}: the period must be positive"
        )
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
        return (rates,)
    if isinstance(rates, str):
        parts = [p for p in re.split(r"[;,]", rates) if p.strip()]
        if not parts:
            raise ConfigError(f"empty rate string {describe(rates)}: expected e.g. '10/second'")
        out.extend(_parse_item(p, rates) for p in parts)
    else:
        if isinstance(rates, (bytes, Mapping)) or not isinstance(rates, Iterable):
            raise ConfigError(
                f"rates must be a string, a Rate or a list of them, got "
                f"{type(rates).__name__}: {describe(rates)}"
            )
        try:
            items = list(rates)
        except Exception as exc:  # the caller's own iterable failed
            raise ConfigError(f"rates could not be iterated: {describe(exc)}") from exc
        for item in items:
            if not isinstance(item, (str, Rate)):
                raise ConfigError(
                    f"rates must be strings or Rate values, got {type(item).__name__}: "
                    f"{describe(item)}"
                )
            out.extend(parse_rates(item))
    if not out:
        raise ConfigError("no rates given: expected e.g. '10/second'")
    unique: list[Rate] = []
    for r in out:
        if r not in unique:
            unique.append(r)
    return tuple(unique)
