"""The held-out contract of issue 13, making exactly the calls it names.

``History("sqlite:///path.db")``, ``.record(Entry(user=..., question=..., sql=...,
outcome="ok"))``, ``.anchor()``, ``.verify(anchor=anchor).ok`` and ``.verify().ok``,
``.close()``, after replacing the database file with an earlier copy; and garbage into
``Policy``, ``SafeQuery.check``, ``RateLimiter``, ``VectorStore.add/upsert/search``,
``History.search/record`` and ``Assistant.ask`` raises only avl errors.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from avl.errors import AvlError
from avl.history import Entry, History


def _record(history: History, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        history.record(Entry(user="ann", question=f"question {i}", sql=f"SELECT {i}", outcome="ok"))


@pytest.mark.parametrize("copy_while_open", [False, True])
def test_replacing_the_file_with_an_earlier_copy_is_caught(
    tmp_path: Path, copy_while_open: bool
) -> None:
    path = tmp_path / "path.db"
    earlier = tmp_path / "earlier.db"
    history = History(f"sqlite:///{path}")
    _record(history, 3)
    if copy_while_open:
        shutil.copyfile(path, earlier)  # the main file only: what a naive backup takes
    else:
        history.close()
        shutil.copyfile(path, earlier)
        history = History(f"sqlite:///{path}")
    _record(history, 4, start=3)
    anchor = history.anchor()
    assert history.verify(anchor=anchor).ok is True
    assert history.verify().ok is True
    history.close()

    shutil.copyfile(earlier, path)

    history = History(f"sqlite:///{path}")
    assert history.verify(anchor=anchor).ok is False
    assert history.verify().ok is True
    history.close()


def test_anchor_verifies_an_untouched_history(tmp_path: Path) -> None:
    history = History(f"sqlite:///{tmp_path / 'path.db'}")
    _record(history, 5)
    anchor = history.anchor()
    history.close()
    history = History(f"sqlite:///{tmp_path / 'path.db'}")
    _record(history, 2, start=5)
    assert history.verify(anchor=anchor).ok is True
    assert history.verify().ok is True
    history.close()


GARBAGE: list[Any] = [
    None,
    5,
    -1,
    10**5000,
    float("nan"),
    float("inf"),
    "",
    "\x00",
    "\ud800",
    b"\xff\xfe",
    [],
    [[1, 2], [3]],
    {"a": {"b": {"c": [None] * 3}}},
    object(),
    np.zeros((2, 3)),
    np.array(["x"]),
    (1, "a", None),
]


REFUSED: list[str] = []


def _only_avl(call: Any, *args: Any, **kwargs: Any) -> None:
    """Call; an avl error is fine (and counted), anything else fails the test."""
    try:
        call(*args, **kwargs)
    except AvlError as exc:
        REFUSED.append(type(exc).__name__)


def test_garbage_into_policy_and_safequery() -> None:
    REFUSED.clear()
    from avl.safety import Policy, SafeQuery

    guard = SafeQuery(Policy())
    for value in GARBAGE:
        _only_avl(Policy, max_rows=value)
        _only_avl(Policy, allowed_tables=value)
        _only_avl(Policy, dialect=value)
        _only_avl(guard.check, value)
    assert "InvalidTypeError" in REFUSED  # SafeQuery.check(5) and friends
    assert "ConfigError" in REFUSED  # Policy(max_rows=-1) and friends


def test_garbage_into_ratelimiter() -> None:
    REFUSED.clear()
    from avl.ratelimit import RateLimiter

    limiter = RateLimiter("5/second")
    for value in GARBAGE:
        _only_avl(RateLimiter, value)
        _only_avl(RateLimiter, "5/second", storage=value)
        _only_avl(limiter.hit, value)
        _only_avl(limiter.hit, "k", cost=value)
    assert {"ConfigError", "InvalidTypeError", "InvalidInputError"} <= set(REFUSED)


def test_garbage_into_vector_store() -> None:
    REFUSED.clear()
    from avl.vectors import VectorStore

    for dim in (10**9, 10**5000, 0, -3, 2.5, "8", None):
        _only_avl(VectorStore, dim=dim)
    store = VectorStore(dim=3)
    store.add(["keep"], np.ones((1, 3), dtype=np.float32), metadata=[{"k": 1}])
    for value in GARBAGE:
        _only_avl(store.add, value, np.ones((1, 3)))
        _only_avl(store.add, ["x"], value)
        _only_avl(store.add, ["x"], np.ones((1, 3)), metadata=value)
        _only_avl(store.upsert, value, value)
        _only_avl(store.search, value)
        _only_avl(store.search, [1.0, 0.0, 0.0], k=value)
        _only_avl(store.search, [1.0, 0.0, 0.0], where=value)
    assert store.get(["keep"])[0].metadata == {"k": 1}
    assert {"ConfigError", "InvalidInputError"} <= set(REFUSED)


def test_garbage_into_history() -> None:
    REFUSED.clear()
    history = History("memory://")
    kept = history.record(Entry(user="ann", question="q", sql="SELECT 1", outcome="ok"))
    for value in GARBAGE:
        _only_avl(history.record, value)
        _only_avl(lambda v: history.record(Entry(user=v, question=v, sql=v, outcome=v)), value)
        for name in ("text", "user", "since", "until", "outcome", "tags", "limit", "cursor"):
            _only_avl(history.search, **{name: value})
    assert history.verify().ok
    assert history.get(str(kept.id)) == kept
    assert {"InvalidTypeError", "InvalidInputError"} <= set(REFUSED)


def test_garbage_into_assistant_ask(tmp_path: Path) -> None:
    import sqlite3

    from avl.assistant import Assistant
    from avl.testing import FakeChatModel

    db = tmp_path / "shop.db"
    sqlite3.connect(db).execute("CREATE TABLE t (a INTEGER)").connection.commit()
    assistant = Assistant(
        db=f"sqlite:///{db}",
        model=FakeChatModel(
            ["SELECT 1", "SELECT '\ud800'", "SELECT '\x00'"] * 30, default="SELECT 1"
        ),
    )
    try:
        for value in GARBAGE:
            _only_avl(assistant.ask, value)
            _only_avl(assistant.ask, "how many?", user=value)
            _only_avl(assistant.ask, "how many?", role=value)
            _only_avl(assistant.ask, "how many?", context=value)
    finally:
        assistant.close()
