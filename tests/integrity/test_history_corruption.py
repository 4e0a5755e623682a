"""No silent loss in the SQLite history: random damage to the database file.

Every trial flips, zeroes, truncates or extends the file at a random offset, then
reopens the History and reads everything. Allowed outcomes: the history is intact
(every entry back, ``verify(anchor=...)`` ok), ``CorruptionError`` naming the file
(a damaged page or schema), or ``verify(anchor=...)`` reporting the problem.
Never a dependency's exception, and never a history that verifies while an entry is
missing or changed.
"""

from __future__ import annotations

import random
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from avl.errors import AvlError, CorruptionError
from avl.history import Anchor, Entry, History
from avl.testing import FakeClock


@pytest.fixture
def scratch() -> Iterator[Path]:
    shm = Path("/dev/shm")
    path = Path(tempfile.mkdtemp(prefix="avl-hist-", dir=shm if shm.is_dir() else None))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _build(path: Path, key: bytes | None) -> tuple[list[Entry], Anchor]:
    with History(f"sqlite:///{path}", clock=FakeClock(), hmac_key=key) as h:
        stored = h.record_many(
            Entry(
                user=f"user{i % 7}",
                question=f"how many orders in region {i} \x00 \ud800?",
                sql=f"SELECT count(*) FROM orders WHERE region = {i}",
                outcome="ok" if i % 5 else "rejected",
                tags=("t", f"r{i % 3}"),
                timings={"total": 0.01 * i},
            )
            for i in range(150)
        )
        anchor = h.anchor()
    return stored, anchor


def _damage(rng: random.Random, path: Path) -> str:
    data = bytearray(path.read_bytes())
    kind = rng.choice(["flip", "flip", "flips", "zero", "truncate", "append"])
    at = rng.randrange(len(data))
    if kind == "flip":
        data[at] ^= rng.randrange(1, 256)
    elif kind == "flips":
        for _ in range(rng.randint(2, 16)):
            data[rng.randrange(len(data))] ^= rng.randrange(1, 256)
    elif kind == "zero":
        n = rng.randint(1, 512)
        data[at : at + n] = bytes(len(data[at : at + n]))
    elif kind == "truncate":
        del data[at:]
    else:
        data += bytes(rng.randrange(256) for _ in range(rng.randint(1, 4096)))
    path.write_bytes(bytes(data))
    return f"{kind}@{at}"


@pytest.mark.parametrize("key", [None, b"k" * 32])
def test_random_damage_to_the_sqlite_file(scratch: Path, key: bytes | None) -> None:
    base = scratch / "base.db"
    stored, anchor = _build(base, key)
    expected = [(e.id, e.question, e.sql, e.hash) for e in stored]
    rng = random.Random(1312 if key else 1213)
    outcomes: Counter[str] = Counter()
    trials = 150
    for trial in range(trials):
        work = scratch / f"t{trial}.db"
        shutil.copyfile(base, work)
        what = _damage(rng, work)
        error: AvlError | None = None
        try:
            with History(f"sqlite:///{work}", clock=FakeClock(), hmac_key=key) as h:
                report = h.verify(anchor=anchor)
                got = [(e.id, e.question, e.sql, e.hash) for e in h.iter_entries()]
        except AvlError as exc:
            error = exc
        finally:
            work.unlink(missing_ok=True)
        if error is not None:
            outcomes[type(error).__name__] += 1
            if isinstance(error, CorruptionError):
                assert error.path == str(work), what
            continue
        if report.ok:
            outcomes["intact"] += 1
            assert got == expected, f"verified but not intact after {what}"
        else:
            outcomes[f"verify: {report.problem}"] += 1
    print(f"\nsqlite history damage trials (key={key is not None}): {dict(outcomes)}")
    assert sum(outcomes.values()) == trials
    other = {k for k in outcomes if k not in ("intact", "CorruptionError")}
    assert all(k.startswith("verify: ") for k in other), outcomes
