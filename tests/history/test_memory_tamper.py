"""Tamper detection on the memory backend (rows edited in place)."""

from __future__ import annotations

from avl.history import Entry, History, ProblemKind
from avl.history.backends.memory import MemoryBackend


def _chain() -> tuple[History, MemoryBackend, list[Entry]]:
    backend = MemoryBackend()
    h = History(backend)
    stored = h.record_many(Entry(question=f"q{i}") for i in range(5))
    return h, backend, stored


def test_memory_edit_delete_reorder() -> None:
    h, backend, stored = _chain()
    backend._rows[1][1]["question"] = "changed"
    assert (h.verify().problem, h.verify().entry_id) == (ProblemKind.ALTERED, stored[1].id)

    h, backend, stored = _chain()
    del backend._rows[2]
    assert (h.verify().problem, h.verify().seq) == (ProblemKind.DELETED, 4)

    h, backend, stored = _chain()
    backend._rows[1][0], backend._rows[2][0] = 3, 2
    assert (h.verify().problem, h.verify().entry_id) == (ProblemKind.REORDERED, stored[2].id)
