"""Tamper-evident, searchable history of questions, SQL, verdicts and outcomes.

Example:
    >>> from avl.history import History, Entry
    >>> h = History("memory://")
    >>> e = h.record(Entry(user="ann", question="top customers", sql="SELECT 1"))
    >>> h.verify().ok
    True
    >>> h.close()
"""

from __future__ import annotations

from avl.history._anchor import (
    Anchor,
    AnchorSink,
    CallbackAnchorSink,
    FileAnchorSink,
    HistoryAnchorSink,
    LogAnchorSink,
    read_anchors,
)
from avl.history._chain import Sealer
from avl.history._entry import (
    Entry,
    GroupStats,
    Outcome,
    Page,
    ProblemKind,
    Stats,
    VerifyReport,
)
from avl.history._history import BACKENDS, AsyncHistory, History
from avl.history._types import HistoryBackend, Query, SimilarityStore

__all__ = [
    "BACKENDS",
    "Anchor",
    "AnchorSink",
    "AsyncHistory",
    "CallbackAnchorSink",
    "Entry",
    "FileAnchorSink",
    "GroupStats",
    "History",
    "HistoryAnchorSink",
    "HistoryBackend",
    "LogAnchorSink",
    "Outcome",
    "Page",
    "ProblemKind",
    "Query",
    "Sealer",
    "SimilarityStore",
    "Stats",
    "VerifyReport",
    "read_anchors",
]
