"""Property test: any single tamper operation is found and named at the right place."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from avl.history import Entry, History, ProblemKind
from avl.history.backends.memory import MemoryBackend
from avl.testing import FakeClock


def _chain(n: int, key: bytes | None) -> tuple[History, MemoryBackend]:
    backend = MemoryBackend()
    h = History(backend, clock=FakeClock(), hmac_key=key)
    h.record_many(Entry(user=f"u{i}", question=f"q{i}", sql=f"SELECT {i}") for i in range(n))
    return h, backend


def _row(backend: MemoryBackend, seq: int) -> list[object]:
    return next(r for r in backend._rows if r[0] == seq)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=12),
    op=st.sampled_from(["edit", "delete", "insert", "swap"]),
    data=st.data(),
    key=st.sampled_from([None, b"secret"]),
)
def test_single_tamper_is_named(n: int, op: str, data: st.DataObject, key: bytes | None) -> None:
    h, backend = _chain(n, key)
    assert h.verify().ok is True
    if op == "edit":
        i = data.draw(st.integers(1, n))
        field = data.draw(st.sampled_from(["user", "question", "sql", "time", "outcome"]))
        rec = _row(backend, i)[1]
        assert isinstance(rec, dict)
        rec[field] = rec[field] + 1 if field == "time" else f"{rec[field]}!"
        expected = (ProblemKind.ALTERED, i)
    elif op == "delete":
        i = data.draw(st.integers(1, n))
        backend._rows.remove(_row(backend, i))
        expected = (ProblemKind.DELETED, i + 1 if i < n else n)
    elif op == "insert":
        i = data.draw(st.integers(1, n + 1))
        prev = "0" * 64 if i == 1 else _row(backend, i - 1)[3]
        for r in backend._rows:
            if isinstance(r[0], int) and r[0] >= i:
                r[0] += 1
        forged = dict(_row(backend, i + 1 if i <= n else n)[1])  # type: ignore[call-overload]
        forged["id"] = "forged"
        backend._rows.append([i, forged, prev, "ab" * 32])
        expected = (ProblemKind.INSERTED, i)
    else:
        if n < 2:
            return
        i = data.draw(st.integers(1, n - 1))
        j = data.draw(st.integers(i + 1, n))
        a, b = _row(backend, i), _row(backend, j)
        a[0], b[0] = j, i
        expected = (ProblemKind.REORDERED, i)
    report = h.verify()
    assert report.ok is False
    assert (report.problem, report.seq) == expected, report.message
