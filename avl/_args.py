"""Argument checks shared by the public API (pure, private).

Errors from bad input name the argument, what was expected and what was got. What
was got is described by :func:`describe`, which never raises: not for an int of
5,000 digits (``repr`` refuses those), a list nested 10,000 deep, or an object whose
``__repr__`` raises.
"""

from __future__ import annotations

import math
from typing import NoReturn

from avl.errors import ConfigError, InvalidInputError, InvalidTypeError

__all__ = [
    "check_clock",
    "check_storable_text",
    "describe",
    "expect_int",
    "expect_number",
    "expect_str",
    "storable_problem",
    "type_error",
    "unicode_problem",
]

_LIMIT = 80


def describe(value: object, limit: int = _LIMIT) -> str:
    """A short description of any value, for an error message (never raises).

    Example:
        >>> describe(10**5000)
        'an int of 5001 digits'
        >>> describe("x" * 100)[-6:]
        "xxx...'"
    """
    kind = type(value).__name__
    if type(value) is int and value.bit_length() > 1000:
        digits = int(value.bit_length() * math.log10(2)) + 1
        return f"an int of about {digits} digits" if digits > 5000 else _int_digits(value)
    try:
        text = repr(value)
    except BaseException:  # a hostile __repr__, a RecursionError: describe the type only
        return f"an unprintable {kind} object"
    if len(text) > limit:
        text = text[: limit - 4] + "..." + text[-1:]
    return text


def _int_digits(value: int) -> str:
    try:
        return f"an int of {len(str(abs(value)))} digits"
    except ValueError:
        return "a very large int"


def unicode_problem(text: str) -> str | None:
    """Why ``text`` is not valid Unicode (it holds a lone surrogate, which no UTF-8
    file, database or tokenizer takes), or ``None`` when it is.

    Example:
        >>> unicode_problem("caf\u00e9") is None
        True
        >>> unicode_problem("ab\ud800")
        "surrogates not allowed ('\\ud800') at position 2"
    """
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"{exc.reason} ({text[exc.start]!r}) at position {exc.start}"
    return None


def storable_problem(text: str) -> str | None:
    """Why no store can keep ``text``, as the end of a sentence about it, or
    ``None``: a NUL character (PostgreSQL text refuses it) or a lone surrogate (not
    valid Unicode, so not UTF-8)."""
    if "\x00" in text:
        return "must not contain NUL characters"
    problem = unicode_problem(text)
    return None if problem is None else f"is not valid Unicode: {problem}"


def check_storable_text(name: str, value: str) -> None:
    """Refuse a string that no store can keep (see :func:`storable_problem`).

    Raises:
        InvalidInputError: naming ``name`` and what was wrong.
    """
    problem = storable_problem(value)
    if problem is not None:
        raise InvalidInputError(f"{name} {problem}")


def type_error(name: str, expected: str, value: object) -> NoReturn:
    """Raise :class:`~avl.errors.InvalidTypeError`: ``{name} must be {expected}, got ...``."""
    raise InvalidTypeError(f"{name} must be {expected}, got {describe(value)}")


def expect_str(name: str, value: object) -> str:
    """``value`` if it is a ``str``.

    Raises:
        InvalidTypeError: anything else.
    """
    if not isinstance(value, str):
        type_error(name, "a string", value)
    return value


def expect_int(name: str, value: object, *, low: int | None = None, high: int | None = None) -> int:
    """``value`` if it is an ``int`` (not a bool) within ``low..high``.

    Raises:
        InvalidTypeError: not an int.
        InvalidInputError: out of range.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        type_error(name, "an integer", value)
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "" if low is None else str(low)
        hi = "" if high is None else str(high)
        raise InvalidInputError(f"{name} must be within {lo}..{hi}, got {describe(value)}")
    return int(value)


def expect_number(name: str, value: object, *, finite: bool = True) -> float:
    """``value`` as a float if it is an int or float (not a bool).

    Raises:
        InvalidTypeError: not a number.
        InvalidInputError: not finite (when ``finite``), or too large for a float.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        type_error(name, "a number", value)
    try:
        out = float(value)
    except OverflowError:
        raise InvalidInputError(f"{name} is too large: {describe(value)}") from None
    if finite and not math.isfinite(out):
        raise InvalidInputError(f"{name} must be finite, got {describe(value)}")
    return out


def check_clock(name: str, clock: object, *, methods: tuple[str, ...] = ("now",)) -> None:
    """Refuse a clock whose ``methods`` are missing or do not return finite numbers
    (a ``datetime`` has a ``now``, but it returns a datetime).

    Raises:
        ConfigError: not a usable clock.
    """
    for method in methods:
        fn = getattr(type(clock), method, None)
        if not callable(fn):
            raise ConfigError(f"{name} must have a {method}() method, got {describe(clock)}")
        try:
            value = getattr(clock, method)()
        except Exception as exc:
            raise ConfigError(f"{name}.{method}() failed: {describe(exc)}") from exc
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name}.{method}() must return seconds, got {describe(value)}")
        if not math.isfinite(value):
            raise ConfigError(f"{name}.{method}() must return finite seconds, got {value}")
