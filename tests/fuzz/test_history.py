"""Garbage into History: only avl errors, no hang, no change after a failure.

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

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from avl.history import Entry, History
from avl.testing import FakeClock
from tests.fuzz._harness import atom, call, fuzz, garbage, text

# ---------------------------------------------------------------------- History
ENTRY_FIELDS = [a.name for a in Entry.__attrs_attrs__]  # type: ignore[attr-defined]


@pytest.fixture(scope="module", params=["memory", "sqlite"])
def history(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[History]:
    url = (
        "memory://"
        if request.param == "memory"
        else f"sqlite:///{tmp_path_factory.mktemp('fh')}/h.db"
    )
    h = History(url, clock=FakeClock(), hmac_key="fuzz")
    h.record(Entry(user="ann", question="orders by region", sql="SELECT 1", tags=("t",)))
    yield h
    h.close()


def _history_state(h: History) -> tuple[list[Any], bool]:
    return [e.to_dict() for e in h.iter_entries()], h.verify().ok


@fuzz
@given(
    fields=st.dictionaries(st.sampled_from(ENTRY_FIELDS), garbage | text, max_size=5),
    raw=st.none() | garbage,
)
def test_history_record(history: History, fields: dict[str, Any], raw: Any) -> None:
    before = _history_state(history)
    if raw is not None:
        ok, _ = call("History.record", history.record, raw)
    else:

        def record(**kw: Any) -> Entry:
            return history.record(Entry(**kw))

        ok, stored = call("History.record", record, **fields)
        if ok:
            got = history.get(str(stored.id))
            assert got == stored
            for name in ("user", "question", "sql", "role", "session", "error", "model"):
                if name in fields and isinstance(fields[name], str):
                    assert getattr(got, name) == fields[name], name
    if not ok:
        assert _history_state(history) == before, "a failed record changed the history"
    assert history.verify().ok


SEARCH_ARGS = ["text", "user", "since", "until", "outcome", "tags", "similar_to", "limit", "cursor"]


@fuzz
@given(kwargs=st.dictionaries(st.sampled_from(SEARCH_ARGS), garbage | text, max_size=4))
def test_history_search(history: History, kwargs: dict[str, Any]) -> None:
    before = _history_state(history)
    call("History.search", history.search, **kwargs)
    assert _history_state(history) == before


@fuzz
@given(
    url=atom,
    hmac_key=st.none() | garbage,
    clock=st.none() | garbage,
    table_prefix=st.none() | garbage,
    create=st.booleans() | garbage,
)
def test_history_constructor(
    url: Any, hmac_key: Any, clock: Any, table_prefix: Any, create: Any
) -> None:
    if isinstance(url, str) and not url.startswith("memory"):
        url = "memory://"  # no file or server is created by the fuzzer
    ok, h = call(
        "History",
        History,
        url,
        hmac_key=hmac_key,
        clock=clock,
        table_prefix=table_prefix,
        create=create,
    )
    if ok:
        h.close()
