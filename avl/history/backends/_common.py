"""Helpers shared by the SQL backends (pure)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from avl.errors import ConfigError, CorruptionError
from avl.history._chain import CONTENT_FIELDS, entry_from_record
from avl.history._entry import Entry

__all__ = ["DEFAULT_PREFIX", "check_prefix", "entry_of_row", "record_of_row", "url_options"]

DEFAULT_PREFIX = "avl_history"
_PREFIX = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,40}$")
JSON_FIELDS = ("violations", "timings", "tags")


def check_prefix(prefix: str) -> str:
    """Validate a table-name prefix (letters, digits, ``_``; at most 41 characters).

    Raises:
        ConfigError: anything else (it is used as an SQL identifier).
    """
    if not isinstance(prefix, str) or not _PREFIX.match(prefix):
        raise ConfigError(
            f"table prefix must match [A-Za-z_][A-Za-z0-9_]* (at most 41 characters), "
            f"got {prefix!r}"
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
            raise ConfigError(f"unknown history URL option {key!r} (known: {', '.join(allowed)})")
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
    if record["allowed"] is not None:
        record["allowed"] = bool(record["allowed"])
    for field in JSON_FIELDS:
        if field == "tags" and not tags_are_json:
            record["tags"] = list(record["tags"]) if record["tags"] is not None else None
            continue
        raw = record[field]
        if isinstance(raw, str):
            try:
                record[field] = json.loads(raw)
            except ValueError:
                record[field] = raw
    return record


def entry_of_row(record: Mapping[str, Any], seq: int, prev_hash: str, hash: str) -> Entry:
    """Build an entry from a stored record.

    Raises:
        CorruptionError: the stored values are not a valid entry.
    """
    try:
        return entry_from_record(record, seq=seq, prev_hash=prev_hash, hash=hash)
    except (ValueError, TypeError) as exc:
        raise CorruptionError(f"history entry seq {seq} is unreadable: {exc}") from exc
