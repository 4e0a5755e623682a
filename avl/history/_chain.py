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

from avl._args import describe
from avl.errors import InvalidInputError
from avl.history._entry import Entry, ProblemKind, VerifyReport

__all__ = [
    "CONTENT_FIELDS",
    "ESCAPE",
    "GENESIS",
    "Sealer",
    "check_chain",
    "decode_cursor",
    "encode_cursor",
    "entry_from_record",
    "escape_text",
    "new_id",
    "percentile",
    "record_of",
    "same_digest",
    "search_tokens",
    "to_json",
    "unescape_text",
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
    # "surrogatepass": a lone surrogate a caller typed has one well-defined byte form,
    # so such an entry is hashed (and recorded) instead of refused; every other string
    # encodes exactly as plain UTF-8, so no existing hash changes.
    try:
        return _CANONICAL.encode(obj).encode("utf-8", "surrogatepass")
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidInputError(f"entry is not serialisable: {exc}") from exc


#: The escape character of stored text (a private-use code point): SQL backends store
#: ``ESCAPE`` followed by four lower-case hex digits for a NUL, a lone surrogate or
#: ``ESCAPE`` itself, which PostgreSQL (NUL) or UTF-8 (surrogates) cannot hold.
ESCAPE = "\ue000"
_NEEDS_ESCAPE = re.compile("[\x00\ud800-\udfff\ue000]")
_ESCAPED = re.compile("\ue000([0-9a-f]{4})")


def _esc(m: re.Match[str]) -> str:
    return f"{ESCAPE}{ord(m.group()):04x}"


def _unesc(m: re.Match[str]) -> str:
    return chr(int(m.group(1), 16))


def escape_text(text: str) -> str:
    """``text`` in a form every SQL backend stores: NUL, lone surrogates and
    :data:`ESCAPE` become ``ESCAPE`` + four hex digits; anything else is unchanged.

    Lossless: :func:`unescape_text` gives ``text`` back exactly.
    """
    if text.isascii():
        if "\x00" not in text:
            return text
    elif _NEEDS_ESCAPE.search(text) is None:
        return text
    return _NEEDS_ESCAPE.sub(_esc, text)


def unescape_text(stored: str) -> str:
    """The text :func:`escape_text` stored as ``stored``."""
    if ESCAPE not in stored:
        return stored
    return _ESCAPED.sub(_unesc, stored)


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
            key = key.encode("utf-8", "surrogatepass")
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
        """The signature of a pruning checkpoint (the last pruned ``seq`` and ``hash``).

        ``seq`` is also the number of entries pruned so far (positions start at 1 and
        have no gaps).
        """
        return self._digest(_canonical({"checkpoint_seq": seq, "checkpoint_hash": hash}))

    def sign_head(self, seq: int, hash: str) -> str:
        """The signature of the head row (``""`` without a key: nothing to sign with)."""
        if self._key is None:
            return ""
        return self._digest(_canonical({"head_seq": seq, "head_hash": hash}))

    def sign_anchor(self, seq: int, hash: str, time: float) -> str:
        """The HMAC of an anchor (``""`` without a key)."""
        if self._key is None:
            return ""
        return self._digest(
            _canonical({"anchor_seq": seq, "anchor_hash": hash, "anchor_time": time})
        )


ChainRow = tuple[int, Mapping[str, Any], Any, Any]
"""(seq, record, prev_hash, hash) as stored (the hashes should be strings; anything
else a tampered store holds is reported, never raised)."""

Meta = tuple[Any, Any, Any]
"""(seq, hash, signature) of a meta row as stored."""


def same_digest(a: object, b: object) -> bool:
    """Constant-time equality of two hex digests; ``False`` for anything that is not
    an ASCII string (a BLOB or a number a tampered store returns)."""
    if type(a) is not str or type(b) is not str or not a.isascii() or not b.isascii():
        return False
    return hmac.compare_digest(a, b)


def _valid_meta(row: Meta | None) -> bool:
    if row is None:
        return True
    seq, digest, sig = row
    return (
        type(seq) is int
        and seq >= 0
        and type(digest) is str
        and digest.isascii()
        and type(sig) is str
        and sig.isascii()
    )


def check_chain(
    rows: Iterable[ChainRow],
    *,
    sealer: Sealer,
    checkpoint: Meta | None,
    head: Meta | None,
    locate_hash: Callable[[str], int | None],
    anchor: tuple[int, str] | None = None,
) -> VerifyReport:
    """Walk the stored rows in ``seq`` order and report the first problem.

    Args:
        rows: (seq, record, prev_hash, hash) in ascending ``seq`` order.
        sealer: recomputes hashes and signatures.
        checkpoint: (seq, hash, signature) of the last pruned entry, or ``None``.
        head: (seq, hash, signature) of the chain head as the store recorded it, or
            ``None``; with a key, its signature must match.
        locate_hash: returns the ``seq`` of the row whose stored hash is the argument
            (used only to classify a problem once one is found).
        anchor: (seq, hash) of a head kept outside the store: the entry at that
            position must exist with that hash (or have been pruned under a signed
            checkpoint).

    Returns:
        The :class:`VerifyReport`.
    """
    for name, meta in (("pruning checkpoint", checkpoint), ("head", head)):
        if not _valid_meta(meta):
            return VerifyReport(
                ok=False,
                checked=0,
                problem=ProblemKind.ALTERED,
                message=f"the {name} row holds values of the wrong type: {describe(meta)}",
            )
    expected_seq = 1
    expected_prev = GENESIS
    anchor_seen = anchor is None or anchor[0] == 0
    if anchor is not None and anchor[0] == 0 and anchor[1] != GENESIS:
        return _anchor_mismatch(anchor, 0)
    if checkpoint is not None:
        cp_seq, cp_hash, cp_sig = checkpoint
        if not same_digest(sealer.sign_checkpoint(cp_seq, cp_hash), cp_sig):
            return VerifyReport(
                ok=False,
                checked=0,
                problem=ProblemKind.ALTERED,
                seq=cp_seq,
                message=f"the pruning checkpoint (seq {cp_seq}) does not match its signature",
            )
        if anchor is not None and not anchor_seen:
            if anchor[0] == cp_seq:
                if not same_digest(cp_hash, anchor[1]):
                    return _anchor_mismatch(anchor, 0)
                anchor_seen = True
            elif anchor[0] < cp_seq:
                if not sealer.keyed:
                    return VerifyReport(
                        ok=False,
                        checked=0,
                        problem=ProblemKind.DELETED,
                        seq=anchor[0],
                        message=(
                            f"the anchor (seq {anchor[0]}) lies in the pruned range (up to seq "
                            f"{cp_seq}); without an hmac_key the checkpoint cannot prove it: "
                            "verify with an anchor taken after the last prune"
                        ),
                    )
                anchor_seen = True  # the signed checkpoint vouches for the pruned range
        expected_seq, expected_prev = cp_seq + 1, cp_hash
    checked = 0
    prev_seq: int | None = None
    it: Iterator[ChainRow] = iter(rows)
    current = next(it, None)
    while current is not None:
        nxt = next(it, None)
        seq, record, prev_hash, stored = current
        rid = record.get("id") if isinstance(record, Mapping) else None
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
            computed = (
                sealer.seal(record, seq=seq, prev_hash=prev_hash) if type(prev_hash) is str else ""
            )
        except InvalidInputError:
            computed = ""
        valid = same_digest(computed, stored)
        linked_ok = type(prev_hash) is str and prev_hash == expected_prev
        if valid and linked_ok and seq == expected_seq:
            if head is not None and seq > head[0]:
                return fail(
                    ProblemKind.INSERTED,
                    f"entry {rid_s} (seq {seq}) is beyond the recorded head (seq {head[0]})",
                )
            if not anchor_seen and anchor is not None and seq == anchor[0]:
                if not same_digest(stored, anchor[1]):
                    return _anchor_mismatch(anchor, checked, rid_s)
                anchor_seen = True
            checked += 1
            expected_prev, expected_seq, prev_seq = stored, seq + 1, seq
            current = nxt
            continue
        # Something is wrong at this row: classify it.
        if not linked_ok and type(prev_hash) is str:
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
        if linked_ok:
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
    if head is not None and sealer.keyed:
        h_seq, h_hash, h_sig = head
        unsigned_empty = h_seq == 0 and h_hash == GENESIS and h_sig == ""
        if not unsigned_empty and not same_digest(sealer.sign_head(h_seq, h_hash), h_sig):
            return VerifyReport(
                ok=False,
                checked=checked,
                problem=ProblemKind.ALTERED,
                seq=h_seq,
                message=(
                    f"the head row (seq {h_seq}) does not match its signature: it was moved "
                    "or written without the key"
                ),
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
    if not anchor_seen and anchor is not None:
        return VerifyReport(
            ok=False,
            checked=checked,
            problem=ProblemKind.ROLLED_BACK,
            seq=last_seq,
            message=(
                f"the chain ends at seq {last_seq} but the anchor was taken at seq "
                f"{anchor[0]}: entries {last_seq + 1}..{anchor[0]} are missing (a restored "
                "backup, a deleted tail or a replaced table)"
            ),
        )
    return VerifyReport(ok=True, checked=checked, head_seq=last_seq, head_hash=expected_prev)


def _anchor_mismatch(
    anchor: tuple[int, str], checked: int, entry_id: str | None = None
) -> VerifyReport:
    return VerifyReport(
        ok=False,
        checked=checked,
        problem=ProblemKind.ROLLED_BACK,
        entry_id=entry_id,
        seq=anchor[0],
        message=(
            f"the entry at seq {anchor[0]} does not match the anchor: the history was "
            "rolled back or replaced since the anchor was taken"
        ),
    )


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
    if not isinstance(cursor, str) or len(cursor) > 64:
        raise InvalidInputError(f"invalid cursor {describe(cursor)}")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith("s") or not raw[1:].isdigit() or len(raw) > 20:
            raise ValueError(raw)
        seq = int(raw[1:])
        if seq >= 2**63:  # beyond any stored sequence number (and SQLite's INTEGER)
            raise ValueError(raw)
        return seq
    except (ValueError, TypeError, UnicodeDecodeError):
        raise InvalidInputError(f"invalid cursor {describe(cursor)}") from None


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
