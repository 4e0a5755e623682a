"""VectorStore: exact, filterable, crash-safe vector memory with pluggable backends.

Example:
    >>> import numpy as np
    >>> from avl.vectors import VectorStore
    >>> store = VectorStore(dim=4, metric="cosine")
    >>> store.add(["a", "b"], np.eye(4, dtype=np.float32)[:2], metadata=[{"k": 1}, {"k": 2}])
    >>> store.search(np.array([1, 0, 0, 0], dtype=np.float32), k=1)[0].id
    'a'
"""

from __future__ import annotations

from avl.vectors._filters import Condition, Filter, parse_where
from avl.vectors._store import BACKENDS, VectorStore, open_backend
from avl.vectors._types import Hit, Metric, Record, VectorBackend, Where

__all__ = [
    "BACKENDS",
    "Condition",
    "Filter",
    "Hit",
    "Metric",
    "Record",
    "VectorBackend",
    "VectorStore",
    "Where",
    "open_backend",
    "parse_where",
]
