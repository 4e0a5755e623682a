"""Helpers shared by the SQL backends (pure)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import attrs

from avl._args import describe
from avl.errors import ConfigError, CorruptionError
from avl.history._chain import (
    CONTENT_FIELDS,
    ESCAPE,
    Sealer,
    entry_from_record,
    escape_text,
    to_json,
    unescape_text,
)
from avl.history._entry import Entry, Outcome, replace_checked

__all__ = [
    "DEFAULT_PREFIX",
    "TEXT_FIELDS",
    "check_prefix",
    "entry_of_row",
    "record_of_row",
    "sealed_rows",
    "stored_json",
    "url_options",
]

DEFAULT_PREFIX = "avl_history"
_PREFIX = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,40}$")
JSON_FIELDS = ("violations", "timings", "tags")
#: Free-text columns: stored through :func:`~avl.history._chain.escape_text`.
TEXT_FIELDS = ("id", "user", "role", "session", "question", "sql", "error", "model")
_decode = json.JSONDecoder().decode


def stored_json(value: Any) -> str:
    """A JSON column's stored text (compact JSON, escaped like every text column)."""
    return escape_text(to_json(value))


def sealed_rows(
    items: Sequence[tuple[Entry, dict[str, Any]]],
    sealer: Sealer,
    seq: int,
    prev: str,
    row: Callable[[dict[str, Any], int, str, str], tuple[Any, ...]],
    out: list[Entry],
) -> Iterator[tuple[Any, ...]]:
    """Seal ``items`` in chain order after the head ``(seq, prev)``.

    Yields each row to store (``row(record, seq, prev_hash, hash)``), lazily, so a
    backend can stream rows while the next ones are hashed, and appends each stored
    :class:`Entry` to ``out`` once its row has been taken.
    """
    for entry, record in items:
        seq += 1
        digest = sealer.seal(record, seq=seq, prev_hash=prev)
        yield row(record, seq, prev, digest)
        out.append(
            replace_checked(
                entry, id=record["id"], time=record["time"], seq=seq, prev_hash=prev, hash=digest
            )
        )
        prev = digest


def check_prefix(prefix: str) -> str:
    """Validate a table-name prefix (letters, digits, ``_``; at most 41 characters).

    Raises:
        ConfigError: anything else (it is used as an SQL identifier).
    """
    if not isinstance(prefix, str) or not _PREFIX.match(prefix):
        raise ConfigError(
            f"table prefix must match [A-Za-z_][A-Za-z0-9_]* (at most 41 characters), "
            f"got {describe(prefix)}"
        )
    return prefix


def url_options(url: str, allowed: tuple[str, ...]) -> dict[str, str]:
    """The query options of ``url``, checked against ``allowed``.

    Raises:
        ConfigError: an unknown option.
    """
    out: dict[str, str] = {}
    for key, value in parse_qsl(urlsplit(url).query, keep_blank_values=True):
        if key not in allowed:
            raise ConfigError(
                f"unknown history URL option {describe(key)} (known: {', '.join(allowed)})"
            )
        out[key] = value
    return out


def record_of_row(
    row: Mapping[str, Any] | tuple[Any, ...], *, tags_are_json: bool
) -> dict[str, Any]:
    """Turn stored column values (``CONTENT_FIELDS`` order) into a hashable record.

    Unparseable JSON is kept as the raw string, so verification reports the row as
    altered instead of crashing.
    """
    values = row if isinstance(row, tuple) else tuple(row[f] for f in CONTENT_FIELDS)
    record = dict(zip(CONTENT_FIELDS, values, strict=True))
    if record["allowed"] is not None and type(record["allowed"]) in (int, bool):
        record["allowed"] = bool(record["allowed"])
    for field in TEXT_FIELDS:
        v = record[field]
        if type(v) is str and ESCAPE in v:
            record[field] = unescape_text(v)
    for field in JSON_FIELDS:
        if field == "tags" and not tags_are_json:
            tags = record["tags"]
            if isinstance(tags, list):
                record["tags"] = [unescape_text(t) if type(t) is str else t for t in tags]
            continue
        raw = record[field]
        if type(raw) is str and ESCAPE in raw:
            raw = unescape_text(raw)
        if raw == "[]":
            record[field] = []
        elif raw == "{}":
            record[field] = {}
        elif isinstance(raw, str):
            try:
                record[field] = _decode(raw)
            except (ValueError, RecursionError):
                record[field] = raw
    return record


_OUTCOMES = {o.value: o for o in Outcome}
_STR_FIELDS = ("id", "user", "role", "session", "question", "sql", "error", "model")
_ENTRY_FIELDS = tuple(a.name for a in attrs.fields(Entry))


def _finite(value: object) -> bool:
    return type(value) is float and math.isfinite(value)


def _fast_entry(r: Mapping[str, Any], seq: int, prev_hash: str, hash: str) -> Entry | None:
    """Build an Entry without the converters when every stored value has the exact
    type the converters would produce; ``None`` sends the caller to the full path."""
    outcome = _OUTCOMES.get(r["outcome"]) if type(r["outcome"]) is str else None
    if outcome is None or not _finite(r["time"]):
        return None
    for name in _STR_FIELDS:
        if type(r[name]) is not str:
            return None
    if r["allowed"] is not None and type(r["allowed"]) is not bool:
        return None
    if r["row_count"] is not None and type(r["row_count"]) is not int:
        return None
    if type(r["tokens_in"]) is not int or type(r["tokens_out"]) is not int:
        return None
    if r["cost_usd"] is not None and not _finite(r["cost_usd"]):
        return None
    violations, tags, timings = r["violations"], r["tags"], r["timings"]
    if type(violations) is not list or type(tags) is not list or type(timings) is not dict:
        return None
    if not all(type(v) is str for v in violations) or not all(type(t) is str and t for t in tags):
        return None
    if not all(type(k) is str and _finite(v) for k, v in timings.items()):
        return None
    values = dict(r)
    values.update(
        outcome=outcome,
        violations=tuple(violations),
        tags=tuple(tags),
        timings=MappingProxyType(dict(timings)),
        seq=seq,
        prev_hash=prev_hash,
        hash=hash,
    )
    new = object.__new__(Entry)
    for name in _ENTRY_FIELDS:
        object.__setattr__(new, name, values[name])
    return new


def entry_of_row(
    record: Mapping[str, Any], seq: int, prev_hash: str, hash: str, source: str | None = None
) -> Entry:
    """Build an entry from a stored record.

    Args:
        record: the stored content fields.
        seq: the stored position.
        prev_hash: the stored previous hash.
        hash: the stored hash.
        source: the file (or table) it was read from, for the error.

    Raises:
        CorruptionError: the stored values are not a valid entry.
    """
    fast = _fast_entry(record, seq, prev_hash, hash)
    if fast is not None:
        return fast
    try:
        return entry_from_record(record, seq=seq, prev_hash=prev_hash, hash=hash)
    except (ValueError, TypeError) as exc:
        where = f" in {source}" if source else ""
        raise CorruptionError(
            f"history entry seq {seq}{where} is unreadable (verify() names the problem): {exc}",
            path=source,
        ) from exc
