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

import pytest

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
