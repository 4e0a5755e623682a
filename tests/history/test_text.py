"""Whatever a caller typed is recorded and read back exactly (NUL, lone surrogates)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avl.history import Entry, History
from avl.history._chain import ESCAPE, escape_text, unescape_text
from tests.history.conftest import Target

AWKWARD = [
    "nul\x00inside",
    "\x00",
    "lone \ud800 high",
    "lone \udfff low",
    "pair \U0001f600 ok",
    f"escape char {ESCAPE} itself",
    f"looks escaped {ESCAPE}0041 but is not",
    "mixed \x00\ud83d\x00" + ESCAPE,
    'quote " and , and [ ] in a tag',
    "",
]


def test_escape_is_lossless_and_leaves_plain_text_alone() -> None:
    for text in AWKWARD:
        stored = escape_text(text)
        assert unescape_text(stored) == text
        assert "\x00" not in stored
        stored.encode("utf-8")  # no surrogate is left
    assert escape_text("plain SELECT 1 -- ünïcode") == "plain SELECT 1 -- ünïcode"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec=None, exclude_categories=())))
def test_escape_round_trips_any_text(text: str) -> None:
    stored = escape_text(text)
    assert unescape_text(stored) == text
    stored.encode("utf-8")
    assert "\x00" not in stored


@pytest.mark.parametrize("text", AWKWARD)
def test_awkward_text_round_trips_in_every_field(
    target: Target, make_history: Callable[..., History], text: str
) -> None:
    h = make_history(hmac_key=b"key")
    entry = Entry(
        id="id-" + text,
        user=text,
        role=text,
        session=text,
        question=text,
        sql=text,
        error=text,
        model=text,
        violations=(text, "DML"),
        timings={text or "t": 1.5},
        tags=(text, "plain") if text else ("plain",),
    )
    stored = h.record(entry)
    got = h.get("id-" + text)
    assert got == stored
    for field in ("id", "user", "role", "session", "question", "sql", "error", "model"):
        assert getattr(got, field) == getattr(entry, field), field
    assert got.violations == (text, "DML")
    assert dict(got.timings) == {text or "t": 1.5}
    assert got.tags == entry.tags
    assert [e.id for e in h.search(user=text)] == [stored.id]
    if text:
        assert [e.id for e in h.search(tags=text)] == [stored.id]
    assert [e.id for e in h.search(tags="plain")] == [stored.id]
    assert h.search(tags="pla") == []
    report = h.verify(anchor=h.anchor())
    assert report.ok, report.message
    assert report.checked == 1


def test_tag_filter_does_not_match_inside_another_tag(
    make_history: Callable[..., History],
) -> None:
    h = make_history()
    a = h.record(Entry(question="a", tags=('x","y',)))
    b = h.record(Entry(question="b", tags=("x", "y")))
    assert [e.id for e in h.search(tags="x")] == [b.id]
    assert [e.id for e in h.search(tags='x","y')] == [a.id]


def test_escaped_questions_are_still_searchable(make_history: Callable[..., History]) -> None:
    h = make_history()
    stored = h.record(Entry(question="orders \x00 by \ud800 region", sql="SELECT 1"))
    assert [e.id for e in h.search(text="orders region")] == [stored.id]
    assert h.search(text="\x00") == []


def test_many_awkward_entries_in_one_batch_verify(make_history: Callable[..., History]) -> None:
    h = make_history(hmac_key="k")
    stored = h.record_many(Entry(user=t, question=t, sql=t) for t in AWKWARD * 10)
    assert [e.question for e in h.iter_entries()] == [e.question for e in stored]
    assert h.verify().ok


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=40))
def test_any_text_round_trips(make_history: Callable[..., History], text: str) -> None:
    h = make_history()
    stored = h.record(Entry(user=text, question=text, sql=text, tags=(text,) if text else ()))
    got = h.get(str(stored.id))
    assert (got.user, got.question, got.sql, got.tags) == (text, text, text, stored.tags)
    assert h.verify().ok
