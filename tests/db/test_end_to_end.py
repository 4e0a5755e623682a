"""The Assistant end to end on every engine: ask, refusal, timeout, row filters.

A scripted model (``FakeChatModel``) writes the SQL, so each engine sees the same
statements; SafeQuery checks them in the engine's dialect and the Database runs
them read-only."""

from __future__ import annotations

from typing import Any

from avl.assistant import Assistant
from avl.safety import Policy
from avl.testing import FakeChatModel
from tests.db.conftest import Backend


def _assistant(backend: Backend, replies: list[str], **kw: Any) -> Assistant:
    db = backend.open(timeout_s=kw.pop("timeout_s", 10.0))
    a = Assistant(
        db=db,
        model=FakeChatModel(replies, default=replies[-1]),
        embedder=None,
        cache_threshold=None,
        **kw,
    )
    a.train_from_database(tables=[backend.customers, backend.orders, backend.big])
    return a


def test_ask_answers_from_the_database(backend: Backend) -> None:
    a = _assistant(backend, [f"SELECT COUNT(*) FROM {backend.customers} WHERE city = 'Paris'"])
    ans = a.ask("How many customers live in Paris?")
    assert (ans.outcome, ans.error) == ("ok", "")
    assert ans.rows == ((2,),)
    assert a.db.in_transaction() is False
    a.close()


def test_a_destructive_statement_is_refused_and_nothing_changes(backend: Backend) -> None:
    a = _assistant(
        backend,
        [f"DELETE FROM {backend.customers}", f"DROP TABLE {backend.orders}"],
        max_attempts=2,
    )
    ans = a.ask("Remove every customer")
    assert ans.outcome == "rejected"
    assert ans.verdict is not None
    assert ans.verdict.allowed is False
    assert ans.rows == ()
    a.close()
    assert backend.count(backend.customers) == 3
    assert backend.count(backend.orders) == 4


def test_a_slow_statement_times_out(backend: Backend) -> None:
    slow = f"SELECT COUNT(*) FROM {backend.big} a JOIN {backend.big} b ON a.k = b.k"
    count = f"SELECT COUNT(*) FROM {backend.orders}"
    a = _assistant(backend, [slow, count], max_attempts=1, timeout_s=0.3)
    ans = a.ask("How many pairs of rows share a k?")
    assert ans.outcome == "timeout", (ans.outcome, ans.error)
    assert "timeout" in ans.error
    assert a.db.in_transaction() is False
    # the next question runs normally on the same pool
    assert a.ask("How many orders?").rows == ((4,),)
    a.close()


def test_row_filters_scope_every_answer(backend: Backend) -> None:
    o = backend.orders
    policy = Policy(dialect=backend.dialect, row_filters={o: "tenant_id = :tenant"}, max_rows=100)
    a = _assistant(
        backend,
        [f"SELECT COUNT(*), SUM(total) FROM {o}"],
        policy=policy,
    )
    one = a.ask("How many orders, and their total?", context={"tenant": 1})
    two = a.ask("How many orders, and their total?", context={"tenant": 2})
    assert (one.outcome, two.outcome) == ("ok", "ok")
    assert [(r[0], float(r[1])) for r in one.rows] == [(3, 35.0)]
    assert [(r[0], float(r[1])) for r in two.rows] == [(1, 30.0)]
    a.close()


def test_the_assistant_takes_an_engine_or_a_sqlalchemy_url(tmp_path: object) -> None:
    import sqlite3
    from pathlib import Path

    import sqlalchemy as sa

    path = Path(str(tmp_path)) / "e.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO t VALUES (1, 'a'), (2, 'b')")
    conn.commit()
    conn.close()
    engine = sa.create_engine(f"sqlite:///{path}")
    for db in (engine, f"sqlalchemy+sqlite:///{path}"):
        a = Assistant(
            db=db,
            model=FakeChatModel(["SELECT COUNT(*) FROM t"]),
            embedder=None,
            cache_threshold=None,
        )
        a.train_from_database()
        assert type(a.db._engine).__name__ == "SQLAlchemyEngine"
        assert a.ask("How many rows?").rows == ((2,),)
        a.close()
    engine.dispose()
