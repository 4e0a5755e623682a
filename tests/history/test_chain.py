"""The hash format is stable: a changed serialisation would break every stored chain."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from avl.errors import InvalidInputError
from avl.history import Entry, Sealer
from avl.history._chain import GENESIS, decode_cursor, encode_cursor, record_of, search_tokens

GOLDEN = Entry(
    id="golden",
    time=1700000000.5,
    user="ann",
    question="q?",
    sql="SELECT 1",
    outcome="ok",
    timings={"generate": 0.25},
    tags=("b", "a"),
    violations=("DML",),
    allowed=False,
    row_count=3,
    model="m",
    tokens_in=1,
    tokens_out=2,
    cost_usd=0.5,
)


def _canonical() -> bytes:
    body = {**record_of(GOLDEN), "seq": 1, "prev_hash": GENESIS}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def test_sha256_over_sorted_compact_json() -> None:
    digest = Sealer().seal(record_of(GOLDEN), seq=1, prev_hash=GENESIS)
    assert digest == "d70b42c78dab70e4acd1a5c01568cc5e06d086f994a81915bceb52bbca856b01"
    assert digest == hashlib.sha256(_canonical()).hexdigest()


def test_hmac_sha256_with_key() -> None:
    digest = Sealer(b"k").seal(record_of(GOLDEN), seq=1, prev_hash=GENESIS)
    assert digest == "141b9aa54504b3d9642135262ff2a19659f7e6565cdd469ed9a902b28d60b167"
    assert digest == hmac.new(b"k", _canonical(), hashlib.sha256).hexdigest()
    assert Sealer("k").seal(record_of(GOLDEN), seq=1, prev_hash=GENESIS) == digest
    assert Sealer(b"k").sign_checkpoint(5, "ab") == (
        "0ccb5f35d8f762d535bfd4d8f3d4eb0c8a9f35df933979ec1943edae51745797"
    )


def test_seq_and_prev_hash_are_covered() -> None:
    s = Sealer()
    base = s.seal(record_of(GOLDEN), seq=1, prev_hash=GENESIS)
    assert s.seal(record_of(GOLDEN), seq=2, prev_hash=GENESIS) != base
    assert s.seal(record_of(GOLDEN), seq=1, prev_hash="1" * 64) != base


def test_empty_key_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="empty"):
        Sealer(b"")


def test_search_tokens_and_cursor() -> None:
    assert search_tokens('"unbalanced AND OR NEAR( order_items Ünïcode') == [
        "unbalanced",
        "and",
        "or",
        "near",
        "order",
        "items",
        "ünïcode",
    ]
    assert decode_cursor(encode_cursor(12345)) == 12345
    with pytest.raises(InvalidInputError, match="cursor"):
        decode_cursor("eA")
