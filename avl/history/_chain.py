"""The hash chain, canonical serialisation and shared pure helpers (no I/O).

Each entry's hash is SHA-256 (or HMAC-SHA256 with a key) over the canonical JSON
(sorted keys, no spaces, UTF-8) of its content fields plus ``seq`` and
``prev_hash``. The first entry's ``prev_hash`` is :data:`GENESIS` (or the pruning
checkpoint's hash).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from avl.errors import InvalidInputError
from avl.history._entry import Entry, ProblemKind, VerifyReport

__all__ = [
    "CONTENT_FIELDS",
    "GENESIS",
    "Sealer",
    "check_chain",
    "decode_cursor",
    "encode_cursor",
    "entry_from_record",
    "new_id",
    "percentile",
    "record_of",
    "search_tokens",
    "to_json",
]

GENESIS = "0" * 64

#: The fields covered by the hash, besides ``seq`` and ``prev_hash``.
CONTENT_FIELDS: tuple[str, ...] = (
    "id",
    "time",
    "user",
    "role",
    "session",
    "question",
    "sql",
    "allowed",
    "violations",
    "outcome",
    "error",
    "row_count",
    "timings",
    "model",
    "tokens_in",
    "tokens_out",
    "cost_usd",
    "tags",
)


def new_id(now: float) -> str:
    """A 32-hex-digit id: 12 digits of milliseconds since the epoch, 20 random digits."""
    return f"{int(now * 1000) & 0xFFFFFFFFFFFF:012x}{os.urandom(10).hex()}"


def record_of(entry: Entry) -> dict[str, Any]:
    """The content fields of ``entry`` as plain JSON values (what is stored and hashed)."""
    return {
        "id": entry.id,
        "time": entry.time,
        "user": entry.user,
        "role": entry.role,
        "session": entry.session,
        "question": entry.question,
        "sql": entry.sql,
        "allowed": entry.allowed,
        "violations": list(entry.violations),
        "outcome": entry.outcome.value,
        "error": entry.error,
        "row_count": entry.row_count,
        "timings": dict(entry.timings),
        "model": entry.model,
        "tokens_in": entry.tokens_in,
        "tokens_out": entry.tokens_out,
        "cost_usd": entry.cost_usd,
        "tags": list(entry.tags),
    }


def entry_from_record(record: Mapping[str, Any], *, seq: int, prev_hash: str, hash: str) -> Entry:
    """Rebuild an :class:`Entry` from stored values."""
    return Entry(
        **{name: record[name] for name in CONTENT_FIELDS}, seq=seq, prev_hash=prev_hash, hash=hash
    )


_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def to_json(value: Any) -> str:
    """Compact, sorted-key JSON (used for stored JSON columns)."""
    if not value:
        return "[]" if isinstance(value, list) else "{}"
    return _CANONICAL.encode(value)


def _canonical(obj: Mapping[str, Any]) -> bytes:
    try:
        return _CANONICAL.encode(obj).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"entry is not serialisable: {exc}") from exc


class Sealer:
    """Computes entry hashes and checkpoint signatures.

    Args:
        key: an HMAC key; ``None`` for plain SHA-256 (detects accidental and naive
            edits; with a key, whoever can write the database still cannot forge the
            chain without the key).
    """

    __slots__ = ("_key",)

    def __init__(self, key: bytes | str | None = None) -> None:
        if isinstance(key, str):
            key = key.encode("utf-8")
        if key is not None and not key:
            raise InvalidInputError("hmac_key must not be empty")
        self._key = key

    @property
    def keyed(self) -> bool:
        """Whether an HMAC key is used."""
        return self._key is not None

    def _digest(self, data: bytes) -> str:
        if self._key is None:
            return hashlib.sha256(data).hexdigest()
        return hmac.new(self._key, data, hashlib.sha256).hexdigest()

    def seal(self, record: Mapping[str, Any], *, seq: int, prev_hash: str) -> str:
        """The hash of ``record`` at chain position ``seq`` after ``prev_hash``."""
        body = dict(record)
        body["seq"] = seq
        body["prev_hash"] = prev_hash
        return self._digest(_canonical(body))

    def sign_checkpoint(self, seq: int, hash: str) -> str:
        """The signature of a pruning checkpoint (the last pruned ``seq`` and ``hash``)."""
        return self._digest(_canonical({"checkpoint_seq": seq, "checkpoint_hash": hash}))


ChainRow = tuple[int, Mapping[str, Any], str, str]
"""(seq, record, prev_hash, hash) as stored."""


def check_chain(
    rows: Iterable[ChainRow],
    *,
    sealer: Sealer,
    checkpoint: tuple[int, str, str] | None,
    head: tuple[int, str] | None,
    locate_hash: Callable[[str], int | None],
) -> VerifyReport:
    """Walk the stored rows in ``seq`` order and report the first problem.

    Args:
        rows: (seq, record, prev_hash, hash) in ascending ``seq`` order.
        sealer: recomputes hashes.
        checkpoint: (seq, hash, signature) of the last pruned entry, or ``None``.
        head: (seq, hash) of the chain head as the store recorded it, or ``None``.
        locate_hash: returns the ``seq`` of the row whose stored hash is the argument
            (used only to classify a problem once one is found).

    Returns:
        The :class:`VerifyReport`.
    """
    expected_seq = 1
    expected_prev = GENESIS
    if checkpoint is not None:
        cp_seq, cp_hash, cp_sig = checkpoint
        if not hmac.compare_digest(sealer.sign_checkpoint(cp_seq, cp_hash), cp_sig):
            return VerifyReport(
                ok=False,
                checked=0,
                problem=ProblemKind.ALTERED,
                seq=cp_seq,
                message=f"the pruning checkpoint (seq {cp_seq}) does not match its signature",
            )
        expected_seq, expected_prev = cp_seq + 1, cp_hash
    checked = 0
    prev_seq: int | None = None
    it: Iterator[ChainRow] = iter(rows)
    current = next(it, None)
    while current is not None:
        nxt = next(it, None)
        seq, record, prev_hash, stored = current
        rid = record.get("id")
        rid_s = None if rid is None else str(rid)

        def fail(
            kind: ProblemKind,
            message: str,
            *,
            s: int = seq,
            i: str | None = rid_s,
            n: int = checked,
        ) -> VerifyReport:
            return VerifyReport(
                ok=False, checked=n, problem=kind, entry_id=i, seq=s, message=message
            )

        try:
            computed = sealer.seal(record, seq=seq, prev_hash=prev_hash)
        except InvalidInputError:
            computed = ""
        valid = hmac.compare_digest(computed, stored)
        if valid and prev_hash == expected_prev and seq == expected_seq:
            if head is not None and seq > head[0]:
                return fail(
                    ProblemKind.INSERTED,
                    f"entry {rid_s} (seq {seq}) is beyond the recorded head (seq {head[0]})",
                )
            checked += 1
            expected_prev, expected_seq, prev_seq = stored, seq + 1, seq
            current = nxt
            continue
        # Something is wrong at this row: classify it.
        if prev_hash != expected_prev:
            linked = locate_hash(prev_hash)
            if linked is not None and linked > seq:
                return fail(
                    ProblemKind.REORDERED,
                    f"entry {rid_s} (seq {seq}) is placed before the entry it follows "
                    f"(seq {linked})",
                )
        if not valid:
            if nxt is not None and nxt[2] == expected_prev:
                return fail(
                    ProblemKind.INSERTED,
                    f"entry {rid_s} (seq {seq}) is not part of the chain: its hash does not "
                    "match and the next entry links past it",
                )
            if head is not None and seq > head[0]:
                return fail(
                    ProblemKind.INSERTED,
                    f"entry {rid_s} (seq {seq}) is beyond the recorded head (seq {head[0]}) "
                    "and its hash does not match",
                )
            return fail(
                ProblemKind.ALTERED,
                f"entry {rid_s} (seq {seq}) was altered: its content does not match its hash",
            )
        if prev_hash == expected_prev:
            return fail(
                ProblemKind.ALTERED,
                f"entry {rid_s} has chain position {seq}, expected {expected_seq}",
            )
        linked = locate_hash(prev_hash)
        if linked is not None and prev_seq is not None and linked < prev_seq:
            return fail(
                ProblemKind.INSERTED,
                f"entry seq {prev_seq} was inserted: entry {rid_s} (seq {seq}) links to "
                f"seq {linked}",
                s=prev_seq,
                i=None,
            )
        missing = seq - expected_seq
        what = f"{missing} entr{'y' if missing == 1 else 'ies'}" if missing > 0 else "entries"
        return fail(
            ProblemKind.DELETED,
            f"{what} deleted before entry {rid_s} (seq {seq}): it does not link to seq "
            f"{expected_seq - 1}",
        )
    last_seq = expected_seq - 1
    if head is not None and head[0] > last_seq:
        return VerifyReport(
            ok=False,
            checked=checked,
            problem=ProblemKind.DELETED,
            seq=last_seq + 1,
            message=f"entries seq {last_seq + 1}..{head[0]} deleted at the end of the chain",
        )
    if head is not None and head[0] == last_seq and head[1] != expected_prev and checked:
        return VerifyReport(
            ok=False,
            checked=checked,
            problem=ProblemKind.ALTERED,
            seq=last_seq,
            message=f"the recorded head hash does not match entry seq {last_seq}",
        )
    return VerifyReport(ok=True, checked=checked, head_seq=last_seq, head_hash=expected_prev)


_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def search_tokens(text: str) -> list[str]:
    """The lower-cased words of ``text`` (letters and digits; everything else separates).

    Full-text queries are built only from these words, each quoted, so no FTS
    operator from user text ever reaches the database.
    """
    return [t.lower() for t in _WORD.findall(text)]


def fts5_query(tokens: Sequence[str]) -> str:
    """An FTS5 MATCH string: each token as a quoted string, all required."""
    return " ".join('"' + t.replace('"', '""') + '"' for t in tokens)


def encode_cursor(seq: int) -> str:
    """An opaque cursor for keyset pagination (entries with ``seq`` below this one)."""
    return base64.urlsafe_b64encode(f"s{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """Decode :func:`encode_cursor`.

    Raises:
        InvalidInputError: the cursor is not one of ours.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith("s") or not raw[1:].isdigit() or len(raw) > 20:
            raise ValueError(raw)
        seq = int(raw[1:])
        if seq >= 2**63:  # beyond any stored sequence number (and SQLite's INTEGER)
            raise ValueError(raw)
        return seq
    except (ValueError, TypeError, UnicodeDecodeError):
        raise InvalidInputError(f"invalid cursor {cursor!r}") from None


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile (NumPy's default method) of sorted values."""
    n = len(sorted_values)
    if n == 0:
        raise InvalidInputError("percentile of no values")
    pos = (n - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, n - 1)
    frac = pos - lo
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac)
