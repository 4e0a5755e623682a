"""Rate-limit keys: strings, or tuples of parts joined into a stable string."""

from __future__ import annotations

from typing import Union

from avl._args import describe, type_error
from avl.errors import InvalidInputError, InvalidTypeError

__all__ = ["Key", "make_key"]

#: A rate-limit key: a string, or a tuple of parts such as ``("user-1", "/v1/ask")``.
Key = Union[str, tuple[Union[str, int], ...]]  # noqa: UP007 - a runtime alias on 3.10


def _escape(part: str | int) -> str:
    if isinstance(part, bool) or not isinstance(part, (str, int)):
        raise InvalidTypeError(
            f"key parts must be strings or integers, got {type(part).__name__}: {describe(part)}"
        )
    if isinstance(part, int) and not -(2**63) <= part < 2**63:
        raise InvalidInputError(f"integer key parts must fit in 64 bits, got {describe(part)}")
    s = str(part)
    if "\\" in s or ":" in s:
        s = s.replace("\\", "\\\\").replace(":", "\\:")
    return s


def make_key(key: Key) -> str:
    """Turn a key into the stable string a storage uses.

    A string is used as is. A tuple's parts are joined with ``:`` after escaping
    ``\\`` and ``:``, so ``("a:b", "c")`` and ``("a", "b:c")`` differ, and
    ``("user-1", "/v1/ask")`` is ``"user-1:/v1/ask"``.

    Args:
        key: a string or a tuple of strings and integers.

    Returns:
        The string key.

    Raises:
        InvalidInputError: the key is neither a string nor a non-empty tuple of
            strings and integers.

    Example:
        >>> make_key(("user-1", "/v1/ask"))
        'user-1:/v1/ask'
    """
    if isinstance(key, str):
        return key
    if isinstance(key, tuple) and key:
        return ":".join(_escape(p) for p in key)
    raise InvalidTypeError(
        f"a rate-limit key must be a string or a non-empty tuple, got {type(key).__name__}: {describe(key)}"
    )


#: The largest cost one call may take (exact in a double, as Redis' Lua computes).
MAX_COST = 2**53


def _check_cost(cost: object, name: str = "cost") -> int:
    if type(cost) is not int:
        type_error(name, "a non-negative integer", cost)
    if cost < 0:
        raise InvalidInputError(f"{name} must be a non-negative integer, got {describe(cost)}")
    if cost > MAX_COST:
        raise InvalidInputError(f"{name} must be at most {MAX_COST}, got {describe(cost)}")
    return cost
