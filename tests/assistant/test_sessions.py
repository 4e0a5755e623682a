"""Follow-up questions: sessions carry earlier turns, scoped to the user and role."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from avl.assistant import Answer, Assistant, Session
from avl.errors import ConfigError, InvalidInputError
from avl.history import History
from avl.llm import Message
from avl.safety import Policy
from avl.testing import FakeChatModel, FakeClock
from tests.assistant.conftest import trained


# ----------------------------------------------------------------------- the API
def test_session_object_asks_follow_ups_and_keeps_turns(demo: Path) -> None:
    a = trained(demo)
    chat = a.session(user="ann")
    assert isinstance(chat, Session)
    assert len(chat.id) >= 16
    assert chat.id != a.session(user="ann").id
    assert chat.turns == ()
    first = chat.ask("How many customers are there in each country?")
    assert first.ok
    assert first.session == chat.id
    second = chat.ask("and only in France?")
    assert second.ok
    assert second.session == chat.id
    assert "'France'" in second.sql
    turns = chat.turns
    assert [t.question for t in turns] == [
        "How many customers are there in each country?",
        "and only in France?",
    ]
    assert turns[0].columns == ("country", "COUNT(*)")
    assert "LIMIT 1000" not in turns[0].sql  # the writer's SQL, not the guard's rewrite
    # the same id continues through ask(); the dict and repr carry session and summary
    third = a.ask("sort them by country", user="ann", session=chat.id)
    assert third.session == chat.id
    d = third.to_dict()
    assert d["session"] == chat.id
    assert isinstance(d["summary"], str)


def test_session_new_creates_an_id_and_empty_asks_alone(demo: Path) -> None:
    a = trained(demo)
    new = a.ask("How many customers are there?", session="new")
    assert new.session
    assert new.session != "new"
    alone = a.ask("How many customers are there?")
    assert alone.session == ""
    assert a.session_turns(new.session) != ()
    assert a.session_turns("") == ()
    with pytest.raises(InvalidInputError):
        a.ask("How many customers?", session="x\x00")
    with pytest.raises(InvalidInputError):
        a.session(id="new")
    with pytest.raises(ConfigError):
        Assistant(db=f"sqlite:///{demo}", summaries="sometimes")
    with pytest.raises(ConfigError):
        Assistant(db=f"sqlite:///{demo}", max_turns=-1)


def test_a_follow_up_is_not_answered_from_the_cache(demo: Path) -> None:
    a = trained(demo)
    chat = a.session(user="ann")
    chat.ask("Which customers are from Paris?")
    a.ask("what about Berlin?", user="ann")  # asked alone: cached as such
    follow = chat.ask("what about Berlin?")
    assert not follow.cached


def test_turns_are_bounded(demo: Path) -> None:
    a = trained(demo, max_turns=2, turn_tokens=10_000)
    chat = a.session(user="ann")
    for q in ("How many customers are there?", "How many orders are there?", "How many products?"):
        chat.ask(q)
    assert [t.question for t in chat.turns] == ["How many orders are there?", "How many products?"]
    tight = trained(demo, turn_tokens=1)
    chat = tight.session(user="ann")
    chat.ask("How many customers are there?")
    chat.ask("How many orders are there?")
    assert len(chat.turns) == 1  # the newest always kept, the rest over the budget
    off = trained(demo, max_turns=0)
    chat = off.session(user="ann")
    chat.ask("How many customers are there?")
    assert chat.turns == ()


def test_idle_sessions_are_forgotten_without_a_history(demo: Path) -> None:
    clock = FakeClock()
    a = trained(demo, session_ttl_s=60, clock=clock)
    chat = a.session(user="ann")
    chat.ask("How many customers are there?")
    assert len(chat.turns) == 1
    clock.advance(61)
    assert chat.turns == ()


# ------------------------------------------------------------ isolation of users
def _isolation(a: Assistant) -> None:
    ann = a.session(user="ann")
    ann.ask("Which customers are from Paris?")
    assert len(ann.turns) == 1
    # another user giving ann's id sees none of her turns: the follow-up is alone
    bob = a.session(user="bob", id=ann.id)
    assert bob.turns == ()
    got = bob.ask("what about Berlin?")
    assert "Paris" not in got.sql
    # each keeps their own turns under the same id
    assert [t.question for t in a.session_turns(ann.id, user="bob")] == ["what about Berlin?"]
    assert [t.question for t in ann.turns] == ["Which customers are from Paris?"]
    # nor does ann in another role
    assert a.session_turns(ann.id, user="ann", role="other") == ()
    assert len(a.session_turns(ann.id, user="ann")) == 1


def test_another_user_never_sees_the_turns_in_memory(demo: Path) -> None:
    _isolation(trained(demo))


def test_another_user_never_sees_the_turns_in_a_history(demo: Path, tmp_path: Path) -> None:
    with History(f"sqlite:///{tmp_path / 'h.db'}") as h:
        _isolation(trained(demo, history=h))


# ------------------------------------------------------- stored in the History
def _shared_history(demo: Path, url: str) -> None:
    with History(url) as h1, History(url) as h2:
        w1 = trained(demo, history=h1, name="shop")
        w2 = trained(demo, history=h2, name="shop")
        chat = w1.session(user="ann")
        chat.ask("How many customers are there in each country?")
        # another worker (its own History handle on the same store) continues it
        follow = w2.ask("and only in France?", user="ann", session=chat.id)
        assert follow.ok
        assert "'France'" in follow.sql
        entries = [e for e in h1.search(session=chat.id, limit=100) if str(e.outcome) == "ok"]
        assert len(entries) == 2
        assert {e.session for e in entries} == {chat.id}
        assert [t.question for t in w1.session_turns(chat.id, user="ann")] == [
            "How many customers are there in each country?",
            "and only in France?",
        ]
        # another data source sharing the History never reads these turns
        other = trained(demo, history=h1, name="other")
        assert other.session_turns(chat.id, user="ann") == ()


def test_turns_are_stored_in_a_sqlite_history_shared_by_workers(demo: Path, tmp_path: Path) -> None:
    _shared_history(demo, f"sqlite:///{tmp_path / 'history.db'}")


def test_turns_are_stored_in_a_postgres_history_shared_by_workers(
    demo: Path, postgres_dsn: str
) -> None:
    url = postgres_dsn
    prefix = f"avl_sess_{uuid.uuid4().hex[:8]}"
    sep = "&" if "?" in url else "?"
    _shared_history(demo, f"{url}{sep}table={prefix}")


def test_row_filter_values_never_reach_the_model_through_turns(demo: Path, tmp_path: Path) -> None:
    """The History holds the guard's rewrite (with the caller's filter value); the
    next prompt holds the writer's SQL."""
    policy = Policy(
        dialect="sqlite",
        row_filters={"orders": "customer_id = :cid"},
        max_rows=50,
    )
    model = FakeChatModel(
        [
            "```sql\nSELECT status, COUNT(*) FROM orders GROUP BY status\n```",
            "```sql\nSELECT status, COUNT(*) FROM orders WHERE status = 'shipped' "
            "GROUP BY status\n```",
        ]
    )
    with History(f"sqlite:///{tmp_path / 'h.db'}") as h:
        a = trained(demo, model=model, policy=policy, history=h, cache_threshold=None)
        chat = a.session(user="ann", context={"cid": 987654})
        first = chat.ask("orders per status")
        assert "987654" in first.sql  # what ran (and is recorded) holds the filter
        chat.ask("only shipped ones")
    second = model.calls[1].messages
    assert [m.role for m in second] == ["system", "user", "assistant", "user"]
    assert second[1] == Message(role="user", content="Question: orders per status")
    assert second[2].content == ("```sql\nSELECT status, COUNT(*) FROM orders GROUP BY status\n```")
    assert all("987654" not in m.content for m in second)


# ---------------------------------------------------------------------- answers
def test_answer_defaults_are_backwards_compatible() -> None:
    a = Answer(question="q")
    assert a.summary is None
    assert a.session == ""
    assert a.to_dict()["summary"] is None
    assert a.to_dict()["session"] == ""


# ------------------------------------------------------------------------- HTTP
def test_follow_up_over_http() -> None:
    import asyncio

    import httpx

    from avl import sse
    from avl.console import Console
    from avl.web import ApiKeyAuthenticator, Identity, create_app

    console = Console(ratelimit={"rates": "1000/second"})
    auth = ApiKeyAuthenticator.from_keys(
        {
            "ann-key-0123456789abcdef": Identity(user="ann"),
            "bob-key-0123456789abcdef": Identity(user="bob"),
        }
    )
    ann = {"x-api-key": "ann-key-0123456789abcdef"}
    bob = {"x-api-key": "bob-key-0123456789abcdef"}

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=create_app(console, authenticator=auth))
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as tc:
            alone = await tc.post("/v1/ask", json={"question": "How many customers?"}, headers=ann)
            assert alone.status_code == 200
            assert alone.json()["session"] is None
            assert alone.json()["summary"] == "The count is 12."
            first = await tc.post(
                "/v1/ask",
                json={
                    "question": "How many customers are there in each country?",
                    "session": "new",
                },
                headers=ann,
            )
            assert first.status_code == 200
            sid = first.json()["session"]
            assert sid
            assert sid != "new"
            assert first.json()["summary"]
            follow = await tc.post(
                "/v1/ask", json={"question": "and only in France?", "session": sid}, headers=ann
            )
            assert follow.status_code == 200
            assert follow.json()["session"] == sid
            assert "'France'" in follow.json()["sql"]
            # the stream route takes the session as a query parameter
            stream = await tc.get(
                "/v1/ask/stream",
                params={"question": "sort them by country", "session": sid},
                headers=ann,
            )
            assert stream.status_code == 200, stream.content
            events = list(sse.parse([stream.content]))
            answers = [e for e in events if e.event == "answer"]
            assert len(answers) == 1, events
            assert sid in answers[0].data
            assert "summary" in answers[0].data
            # another caller sending ann's id starts afresh (turns are per caller)
            theirs = await tc.post(
                "/v1/ask", json={"question": "and only in France?", "session": sid}, headers=bob
            )
            assert theirs.status_code == 200
            turns = console.assistant.session_turns
            assert [t.question for t in turns(sid, user="bob", role="default")] == [
                "and only in France?"
            ]
            assert len(turns(sid, user="ann", role="default")) == 3
            bad = await tc.post(
                "/v1/ask", json={"question": "q", "session": "x" * 300}, headers=ann
            )
            assert bad.status_code in (400, 422)
            spec = (await tc.get("/openapi.json", headers=ann)).json()
            props = spec["components"]["schemas"]["AnswerOut"]["properties"]
            assert {"summary", "session"} <= set(props)
            assert "session" in spec["components"]["schemas"]["AskRequest"]["properties"]

    try:
        asyncio.run(scenario())
    finally:
        console.close()


@pytest.mark.parametrize(
    ("dialect", "ran", "written"),
    [
        (
            "sqlite",
            "SELECT status, COUNT(*) FROM (SELECT * FROM orders WHERE customer_id = 9 "
            "LIMIT -1 OFFSET 0) AS orders GROUP BY status LIMIT 50",
            "SELECT status, COUNT(*) FROM orders GROUP BY status",
        ),
        (
            "postgres",
            "SELECT o.status FROM (SELECT * FROM orders WHERE customer_id = 9 OFFSET 0) AS o "
            "LIMIT 50",
            "SELECT o.status FROM orders AS o",
        ),
        (
            "mysql",
            "SELECT status FROM (SELECT * FROM orders WHERE customer_id = 9 "
            "LIMIT 18446744073709551615) AS orders LIMIT 50",
            "SELECT status FROM orders",
        ),
        (
            "sqlite",
            "SELECT * FROM (SELECT a FROM x UNION SELECT a FROM y) AS _bounded LIMIT 50",
            "SELECT a FROM x UNION SELECT a FROM y",
        ),
    ],
)
def test_unwrap_takes_the_guards_rewrite_back_out(dialect: str, ran: str, written: str) -> None:
    from avl.assistant._session import unwrap

    assert unwrap(ran, dialect=dialect, filtered={"orders"}, max_rows=50) == written


def test_unwrap_keeps_what_the_writer_wrote() -> None:
    from avl.assistant._session import unwrap

    mine = "SELECT a FROM (SELECT * FROM orders WHERE x = 1 LIMIT 5) AS orders LIMIT 10"
    assert unwrap(mine, dialect="sqlite", filtered={"orders"}, max_rows=50) == mine
    other = "SELECT a FROM (SELECT * FROM notes WHERE x = 1) AS notes"
    assert unwrap(other, dialect="sqlite", filtered={"orders"}, max_rows=50) == other
    assert unwrap("not sql at all (", dialect="sqlite") == "not sql at all ("


def test_async_session(demo: Path) -> None:
    import asyncio

    from avl.assistant import AsyncAssistant, AsyncSession

    a = trained(demo)

    async def scenario() -> tuple[Any, ...]:
        chat = AsyncAssistant(a).session(user="ann")
        assert isinstance(chat, AsyncSession)
        await chat.ask("How many customers are there in each country?")
        events = [e async for e in chat.stream("and only in France?")]
        return chat.id, await chat.turns(), events

    sid, turns, events = asyncio.run(scenario())
    answer = next(e for e in events if e.kind.value == "answer")
    assert answer.data["session"] == sid
    assert "country = 'France'" in answer.data["sql"]
    assert [t.question for t in turns] == [
        "How many customers are there in each country?",
        "and only in France?",
    ]
