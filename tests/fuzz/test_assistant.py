"""Garbage into Assistant.ask: only avl errors, no hang, no change to the data.

Each test draws arguments from :mod:`tests.fuzz._harness` (wrong types, huge and
non-finite numbers, NUL and lone surrogates, ragged and deep containers, NumPy arrays
of every shape, objects whose dunders raise) and calls one public method through
:func:`~tests.fuzz._harness.call`, which fails on any exception that is not an
:class:`~avl.errors.AvlError` and on any call running past its alarm. When a call
fails, the stored data it could have touched is compared with a snapshot taken
before it.

Bounded for CI (derandomised, a few hundred examples per test); set
``AVL_FUZZ_EXAMPLES`` (and ``AVL_FUZZ_RANDOM=1``) for a longer, random run.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from avl.history import History
from tests.fuzz._harness import EXAMPLES, call, fuzz, garbage, text


# ---------------------------------------------------------------------- Assistant
@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("shop") / "shop.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, city TEXT);"
        "INSERT INTO customers(name, city) VALUES ('Ann', 'Paris'), ('Bob', 'Rome');"
    )
    conn.commit()
    conn.close()
    return path


def _rows(path: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT * FROM customers ORDER BY id").fetchall()
    finally:
        conn.close()


REPLIES = (
    st.sampled_from(
        [
            "SELECT count(*) FROM customers",
            "SELECT '\ud800' FROM customers",
            "SELECT '\x00'",
            "DELETE FROM customers",
            "```sql\nSELECT name FROM customers\n```",
            "",
            "I cannot answer that.",
            "SELECT " + "(" * 3000 + "1" + ")" * 3000,
        ]
    )
    | text
)


@settings(fuzz, max_examples=max(60, EXAMPLES // 3))
@given(
    question=st.sampled_from(["How many customers?", "who lives in Rome?"]) | text | garbage,
    user=st.sampled_from(["ann"]) | text | garbage,
    role=st.none() | text | garbage,
    context=st.none() | st.dictionaries(text, garbage, max_size=2) | garbage,
    session=st.sampled_from([""]) | text | garbage,
    reply=REPLIES,
)
def test_assistant_ask(
    shop: Path, question: Any, user: Any, role: Any, context: Any, session: Any, reply: str
) -> None:
    from avl.assistant import Assistant
    from avl.testing import FakeChatModel

    history = History("memory://")
    before = _rows(shop)
    assistant = Assistant(
        db=f"sqlite:///{shop}",
        model=FakeChatModel(default=reply),
        history=history,
        cache_threshold=None,
    )
    try:
        call(
            "Assistant.ask",
            assistant.ask,
            question,
            user=user,
            role=role,
            context=context,
            session=session,
        )
    finally:
        assistant.close()
    assert _rows(shop) == before
    assert history.verify().ok
