"""The semantic cache: a question close enough to an answered one reuses its SQL.

Entries are keyed by the data source, the schema version, the role, the user and
the context (row-filter parameters), so a cached SQL is only ever offered to the
same caller in the same scope; and the SQL is checked again by the caller's guard
before it runs. Two questions that differ in a content word or a number never share
an entry.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

import attrs
import numpy as np

from avl.text import STOPWORDS, similarity, words

__all__ = ["SemanticCache"]

CacheKey = tuple[str, ...]


def _literal_words(text: str) -> tuple[frozenset[str], tuple[str, ...]]:
    """Content words and numbers: two questions differing here never share a cache entry."""
    ws = [w.lower() for w in words(text)]
    return frozenset(w for w in ws if w not in STOPWORDS), tuple(w for w in ws if w[:1].isdigit())


@attrs.frozen
class _Entry:
    question: str
    sql: str
    key: CacheKey
    vector: Any
    literals: tuple[frozenset[str], tuple[str, ...]]


class SemanticCache:
    """Question -> SQL, per caller scope; thread-safe, bounded (oldest dropped first).

    Args:
        threshold: similarity (0..1) at or above which an entry answers.
        max_entries: the bound.
    """

    def __init__(self, threshold: float, max_entries: int = 1000) -> None:
        self.threshold = threshold
        self._entries: deque[_Entry] = deque(maxlen=max_entries)
        self._lock = threading.Lock()

    def lookup(self, question: str, vector: Any, key: CacheKey) -> str | None:
        """The SQL of the closest entry in scope ``key``, or ``None``."""
        with self._lock:
            entries = [e for e in self._entries if e.key == key]
        literals = _literal_words(question)
        best, best_s = None, 0.0
        for e in entries:
            if question.lower() == e.question.lower():
                s = 1.0
            elif literals != e.literals:
                continue  # another value or number: never reuse
            elif vector is not None and e.vector is not None:
                norm = float(np.linalg.norm(vector) * np.linalg.norm(e.vector)) or 1.0
                s = float(np.dot(vector, e.vector)) / norm
            else:
                s = similarity(question, e.question)
            if s > best_s:
                best, best_s = e, s
        if best is not None and best_s >= self.threshold:
            return best.sql
        return None

    def store(self, question: str, vector: Any, key: CacheKey, sql: str) -> None:
        """Remember ``sql`` for ``question`` in scope ``key``."""
        entry = _Entry(question, sql, key, vector, _literal_words(question))
        with self._lock:
            self._entries.append(entry)

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
