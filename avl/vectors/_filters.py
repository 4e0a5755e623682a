"""Metadata filters: parsing and evaluation (pure).

A filter is a mapping from metadata key to either a plain value (equality) or a
mapping of operators::

    {"kind": "ddl"}                          equality
    {"table": {"$in": ["users", "orders"]}}  membership
    {"year": {"$gte": 2020, "$lt": 2025}}    range (all operators must hold)
    {"kind": {"$ne": "doc"}}                 inequality ($nin: not in)

Several keys must all hold. Keys must be identifiers (letters, digits and ``_``,
not starting with a digit, at most 63 characters); anything else is refused, so a
key can never smuggle syntax into a backend's query language. Values are JSON
scalars (str, int, float, bool, None). Comparisons never mix types: ``1`` does not
equal ``True`` or ``"1"``, and a range on a number never matches a string. A row
without the key matches only ``$ne`` and ``$nin``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from avl._args import describe, storable_problem
from avl.errors import InvalidInputError

__all__ = ["KEY_PATTERN", "Condition", "Filter", "parse_where"]

KEY_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_OPS = ("$eq", "$ne", "$in", "$nin", "$gt", "$gte", "$lt", "$lte")
_RANGE_OPS = ("$gt", "$gte", "$lt", "$lte")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "other"


def _check_scalar(key: str, op: str, value: Any) -> Any:
    kind = _kind(value)
    if kind == "other":
        raise InvalidInputError(
            f"filter on {describe(key)}: {op} expects a str, int, float, bool or None, "
            f"got {type(value).__name__}"
        )
    if kind == "number" and isinstance(value, float) and not math.isfinite(value):
        raise InvalidInputError(
            f"filter on {describe(key)}: {op} value must be finite, got {describe(value)}"
        )
    if kind == "string" and storable_problem(value) is not None:
        # no stored metadata holds one (add refuses them), and PostgreSQL's jsonb
        # cannot even compare with one
        raise InvalidInputError(
            f"filter on {describe(key)}: {op} value must be valid Unicode without NUL "
            f"characters, got {describe(value)}"
        )
    return value


def _equal(a: Any, b: Any) -> bool:
    return _kind(a) == _kind(b) and a == b


@attrs.frozen(kw_only=True)
class Condition:
    """One ``key op value`` test.

    Attributes:
        key: the metadata key (a validated identifier).
        op: one of ``$eq $ne $in $nin $gt $gte $lt $lte``.
        value: a scalar, or a tuple of scalars for ``$in``/``$nin``.
    """

    key: str
    op: str
    value: Any

    def matches(self, metadata: Mapping[str, Any]) -> bool:
        """Whether ``metadata`` satisfies this condition."""
        present = self.key in metadata
        got = metadata.get(self.key)
        op = self.op
        if op == "$eq":
            return present and _equal(got, self.value)
        if op == "$ne":
            return not (present and _equal(got, self.value))
        if op == "$in":
            return present and any(_equal(got, v) for v in self.value)
        if op == "$nin":
            return not (present and any(_equal(got, v) for v in self.value))
        if not present or _kind(got) != _kind(self.value) or _kind(got) not in ("number", "string"):
            return False
        if op == "$gt":
            return bool(got > self.value)
        if op == "$gte":
            return bool(got >= self.value)
        if op == "$lt":
            return bool(got < self.value)
        return bool(got <= self.value)


@attrs.frozen(kw_only=True)
class Filter:
    """A parsed filter: every condition must hold.

    Attributes:
        conditions: the conditions, in the order given.
    """

    conditions: tuple[Condition, ...] = ()

    def matches(self, metadata: Mapping[str, Any]) -> bool:
        """Whether ``metadata`` satisfies every condition."""
        return all(c.matches(metadata) for c in self.conditions)

    def __bool__(self) -> bool:
        return bool(self.conditions)


def validate_key(key: Any) -> str:
    """Return ``key`` if it is a valid filter key.

    Raises:
        InvalidInputError: ``key`` is not an identifier-like string.
    """
    if not isinstance(key, str) or KEY_PATTERN.fullmatch(key) is None:
        raise InvalidInputError(
            f"invalid metadata filter key {describe(key)}: keys must match "
            f"{KEY_PATTERN.pattern} (letters, digits, underscore)"
        )
    return key


def parse_where(where: Mapping[str, Any] | Filter | None) -> Filter:
    """Parse and validate a filter mapping.

    Args:
        where: the filter mapping, an already parsed :class:`Filter`, or ``None``.

    Returns:
        The parsed :class:`Filter` (empty when ``where`` is ``None`` or empty).

    Raises:
        InvalidInputError: a key is not an identifier, an operator is unknown, or a
            value is not a JSON scalar (or a list of them for ``$in``/``$nin``).

    Example:
        >>> f = parse_where({"kind": "ddl", "year": {"$gte": 2020}})
        >>> f.matches({"kind": "ddl", "year": 2021})
        True
    """
    if where is None:
        return Filter()
    if isinstance(where, Filter):
        return where
    if not isinstance(where, Mapping):
        raise InvalidInputError(f"where must be a mapping, got {type(where).__name__}")
    conditions: list[Condition] = []
    for key, spec in where.items():
        validate_key(key)
        if isinstance(spec, Mapping):
            if not spec:
                raise InvalidInputError(f"filter on {describe(key)}: empty operator mapping")
            for op, value in spec.items():
                if op not in _OPS:
                    raise InvalidInputError(
                        f"filter on {describe(key)}: unknown operator {describe(op)} (known: {', '.join(_OPS)})"
                    )
                if op in ("$in", "$nin"):
                    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
                        raise InvalidInputError(
                            f"filter on {describe(key)}: {op} expects a list, got {type(value).__name__}"
                        )
                    value = tuple(_check_scalar(key, op, v) for v in value)
                else:
                    _check_scalar(key, op, value)
                    if op in _RANGE_OPS and _kind(value) not in ("number", "string"):
                        raise InvalidInputError(
                            f"filter on {describe(key)}: {op} expects a number or a string, got {describe(value)}"
                        )
                conditions.append(Condition(key=key, op=op, value=value))
        else:
            conditions.append(Condition(key=key, op="$eq", value=_check_scalar(key, "$eq", spec)))
    return Filter(conditions=tuple(conditions))
