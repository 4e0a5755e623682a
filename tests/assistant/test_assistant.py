"""The Assistant end to end on real SQLite: the public contract, training, safety,
repair, streaming, cache, limits, review."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from avl.assistant import Answer, Assistant, EventKind
from avl.assistant._db import Database
from avl.errors import (
    InvalidInputError,
    NotFoundError,
    QueryError,
    RateLimitedError,
    UnsafeQueryError,
)
from avl.history import History
from avl.metrics import Metrics
from avl.ratelimit import RateLimiter
from avl.safety import Policy
from avl.testing import FakeChatModel, FakeClock

from .conftest import assert_audited, checksum, ended


def gold(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    rows = conn.execute(sql).fetchall()
    conn.close()
    return rows


def test_held_out_contract(shop: Path) -> None:
    a = Assistant(db=f"sqlite:///{shop}")
    ids = a.train_from_database()
    assert len(ids) == 2
    a.train(
        question="What is the total of orders of the customer named Ann?",
        sql="SELECT SUM(o.total) FROM orders AS o JOIN customers AS c ON o.customer_id = c.id WHERE c.name = 'Ann'",
    )
    count = a.ask("How many customers are there?")
    assert count.verdict.allowed is True
    assert count.rows == ((4,),)
    assert "COUNT(*)" in count.sql.upper()
    adapted = a.ask("What is the total of orders of the customer named Bob?")
    assert "'Bob'" in adapted.sql
    assert adapted.rows == ((7.25,),)
    listed = a.ask("Which customers are from Paris?")
    assert sorted(listed.rows) == sorted(
        gold(shop, "SELECT name FROM customers WHERE city = 'Paris'")
    )
    a.close()


def test_dbapi_connection(shop: Path) -> None:
    conn = sqlite3.connect(shop)
    a = Assistant(db=conn)
    a.train_from_database()
    ans = a.ask("How many orders are there?")
    assert ans.rows == ((5,),)
    assert conn.in_transaction is False
    # the caller's connection is left writable after the assistant used it
    conn.execute("INSERT INTO customers VALUES (9, 'Zed', 'Oslo', 3)")
    conn.rollback()


def test_database_is_read_only_even_without_safequery(shop: Path) -> None:
    before = checksum(shop)
    db = Database(f"sqlite:///{shop}")
    with pytest.raises(QueryError, match=r"readonly|read-only|read only"):
        db.execute("DELETE FROM orders")
    db.close()
    assert checksum(shop) == before


def test_unsafe_pair_is_not_stored(shop: Path) -> None:
    a = Assistant(db=f"sqlite:///{shop}")
    a.train_from_database()
    with pytest.raises(UnsafeQueryError) as info:
        a.train(question="clean up", sql="DELETE FROM orders")
    assert "statement_kind" in info.value.codes
    assert a.training_data("sql") == []


def test_training_data_remove_and_provenance(shop: Path) -> None:
    a = Assistant(db=f"sqlite:///{shop}")
    a.train_from_database()
    (pid,) = a.train(
        question="all cities", sql="SELECT DISTINCT city FROM customers", added_by="ann"
    )
    (did,) = a.train(documentation="A shipped order has left the warehouse.")
    items = {i.id: i for i in a.training_data()}
    assert items[pid].added_by == "ann"
    assert items[pid].kind == "sql"
    assert items[did].kind == "documentation"
    assert {i.table for i in a.training_data("schema")} == {"customers", "orders"}
    a.remove(pid)
    assert [i.id for i in a.training_data("sql")] == []
    with pytest.raises(NotFoundError):
        a.remove(pid)
    with pytest.raises(InvalidInputError):
        a.train(question="no sql")
    with pytest.raises(InvalidInputError):
        a.training_data("nope")


def test_train_ddl_makes_tables_known(shop: Path) -> None:
    a = Assistant(db=f"sqlite:///{shop}")
    (tid,) = a.train(ddl="CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, city TEXT);")
    assert tid.startswith("ddl:")
    assert a.ask("How many customers are there?").rows == ((4,),)


def test_repair_loop_wrong_column_then_right(shop: Path) -> None:
    model = FakeChatModel(
        [
            "```sql\nSELECT nme FROM customers WHERE city = 'Rome'\n```",
            "SELECT name FROM customers WHERE city = 'Rome'",
        ]
    )
    a = Assistant(db=f"sqlite:///{shop}", model=model)
    a.train_from_database()
    ans = a.ask("Who lives in Rome?")
    assert ans.attempts == 2
    assert ans.rows == (("Dee",),)
    assert ans.error == ""
    # the second prompt carried the failure back to the model
    second = model.received[1][-1].content
    assert "nme" in second
    assert "previous attempt failed" in second


def test_repair_loop_on_database_error(shop: Path) -> None:
    # no schema in the policy: the database itself rejects the column
    model = FakeChatModel(["SELECT nme FROM customers", "SELECT name FROM customers WHERE id = 1"])
    a = Assistant(db=f"sqlite:///{shop}", model=model, policy=Policy(dialect="sqlite", max_rows=10))
    ans = a.ask("first customer?")
    assert ans.attempts == 2
    assert ans.rows == (("Ann",),)
    assert "no such column: nme" in model.received[1][-1].content


def test_attempts_are_bounded(shop: Path) -> None:
    model = FakeChatModel(["DROP TABLE orders"] * 3)
    history = History("memory://")
    a = Assistant(db=f"sqlite:///{shop}", model=model, history=history, max_attempts=3)
    a.train_from_database()
    ans = a.ask("drop it")
    assert ans.attempts == 3
    assert ans.verdict.allowed is False
    assert ans.rows == ()
    assert "SafeQuery rejected" in ans.error
    assert [str(e.outcome) for e in ended(history)] == ["rejected"] * 3
    (pending,) = history.search(outcome="pending", limit=10)
    final, *refused = ended(history)
    assert f"completes:{pending.id}" in final.tags
    assert all(f"request:{pending.id}" in e.tags for e in refused)
    assert_audited(history)


def test_stream_event_order_and_content(shop: Path) -> None:
    a = Assistant(db=f"sqlite:///{shop}")
    a.train_from_database()
    events = list(a.stream("How many customers are there?"))
    kinds = [e.kind for e in events]
    assert kinds[:2] == [EventKind.RETRIEVED, EventKind.PROMPT]
    tail = kinds[kinds.index(EventKind.SQL) :]
    assert tail == [
        EventKind.SQL,
        EventKind.VERDICT,
        EventKind.ROWS,
        EventKind.ANSWER,
        EventKind.DONE,
    ]
    assert set(kinds[2 : kinds.index(EventKind.SQL)]) == {EventKind.TOKEN}
    tokens = "".join(e.data["text"] for e in events if e.kind is EventKind.TOKEN)
    assert tokens == events[kinds.index(EventKind.SQL)].data["sql"]
    rows = events[kinds.index(EventKind.ROWS)]
    assert rows.data["rows"] == [[4]]
    answer = events[kinds.index(EventKind.ANSWER)].answer
    assert isinstance(answer, Answer)
    assert answer.rows == ((4,),)
    assert events[-1].data["outcome"] == "ok"
    assert events[0].to_dict()["event"] == "retrieved"


def test_stream_with_a_streaming_model(shop: Path) -> None:
    model = FakeChatModel(["SELECT name FROM customers WHERE id = 2"], chunk_size=5)
    a = Assistant(db=f"sqlite:///{shop}", model=model)
    a.train_from_database()
    events = list(a.stream("who is customer 2?"))
    tokens = [e.data["text"] for e in events if e.kind is EventKind.TOKEN]
    assert tokens == ["SELEC", "T nam", "e FRO", "M cus", "tomer", "s WHE", "RE id", " = 2"]
    assert events[-2].answer is not None
    assert events[-2].answer.rows == (("Bob",),)


def test_cancel_mid_stream_leaves_no_transaction(shop: Path) -> None:
    history = History("memory://")
    conn = sqlite3.connect(shop)
    a = Assistant(db=conn, history=history)
    a.train_from_database()
    stream = a.stream("How many orders are there?")
    for ev in stream:
        if ev.kind is EventKind.VERDICT:
            break
    stream.close()  # type: ignore[attr-defined]
    assert conn.in_transaction is False
    assert a.db.in_transaction() is False
    (entry,) = ended(history)
    assert str(entry.outcome) == "cancelled"


def test_semantic_cache_reuses_sql_per_user(shop: Path) -> None:
    model = FakeChatModel(["SELECT COUNT(*) FROM orders"])
    a = Assistant(db=f"sqlite:///{shop}", model=model)
    a.train_from_database()
    first = a.ask("How many orders are there?", user="ann")
    again = a.ask("how many orders are there", user="ann")
    assert (first.cached, again.cached) == (False, True)
    assert again.attempts == 0
    assert again.rows == ((5,),)
    assert len(model.calls) == 1
    with pytest.raises(AssertionError, match="ran out"):
        a.ask("How many orders are there?", user="bob")  # another user: no reuse


def test_cache_is_revalidated_with_the_current_policy(shop: Path) -> None:
    policies = {
        "default": Policy(dialect="sqlite"),
        "narrow": Policy(dialect="sqlite", denied_tables=["orders"]),
    }
    model = FakeChatModel(["SELECT COUNT(*) FROM orders"], default="SELECT COUNT(*) FROM orders")
    a = Assistant(db=f"sqlite:///{shop}", model=model, policy=policies)
    assert a.ask("orders?", role="default").rows == ((5,),)
    narrow = a.ask("orders?", role="narrow")
    assert narrow.verdict.allowed is False
    assert narrow.rows == ()


def test_row_filters_bound_to_user_context(shop: Path) -> None:
    policy = Policy(dialect="sqlite", row_filters={"orders": "tenant_id = :tenant"})
    model = FakeChatModel(default="SELECT id FROM orders ORDER BY id")
    a = Assistant(db=f"sqlite:///{shop}", model=model, policy=policy, cache_threshold=None)
    assert a.ask("my orders", context={"tenant": 1}).rows == ((1,), (2,), (3,))
    assert a.ask("my orders", context={"tenant": 2}).rows == ((4,), (5,))


def test_rate_limit_and_token_budget(shop: Path) -> None:
    clock = FakeClock()
    history = History("memory://")
    limiter = RateLimiter("2/minute", storage="memory://", clock=clock)
    a = Assistant(db=f"sqlite:///{shop}", limiter=limiter, history=history, cache_threshold=None)
    a.train_from_database()
    a.ask("How many orders are there?", user="ann")
    a.ask("How many orders are there?", user="ann")
    with pytest.raises(RateLimitedError) as info:
        a.ask("How many orders are there?", user="ann")
    assert info.value.retry_after_s > 0
    assert a.ask("How many orders are there?", user="bob").rows == ((5,),)
    outcomes = [str(e.outcome) for e in ended(history, user="ann")]
    assert outcomes == ["rate_limited", "ok", "ok"]
    budget = RateLimiter("50/day", storage="memory://", clock=clock)
    b = Assistant(db=f"sqlite:///{shop}", token_limiter=budget, cache_threshold=None)
    b.train_from_database()
    with pytest.raises(RateLimitedError, match="token budget"):
        b.ask("How many orders are there?", user="ann")


def test_history_and_metrics_record_every_ask(shop: Path) -> None:
    history = History("memory://")
    metrics = Metrics()
    a = Assistant(db=f"sqlite:///{shop}", history=history, metrics=metrics)
    a.train_from_database()
    ans = a.ask("How many customers are there?", user="ann", session="s1")
    entry = history.get(ans.history_id)
    assert (entry.user, entry.session, entry.row_count, entry.allowed) == ("ann", "s1", 1, True)
    assert entry.sql == ans.sql
    assert set(ans.timings) >= {"retrieve", "model", "check", "execute", "total"}
    snap = metrics.snapshot()
    assert set(snap.stages) == {"retrieve", "model", "check", "execute"}
    assert all(st.count == 1 for st in snap.stages.values())
    (usage,) = snap.models.values()
    assert usage.calls == 1
    assert usage.input_tokens == ans.usage.input_tokens > 0
    assert (snap.cache_hits, snap.cache_misses) == (0, 1)


def test_explain_flags_full_scans_and_suggests_index(tmp_path: Path) -> None:
    path = tmp_path / "big.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, kind TEXT, user_id INTEGER)")
    conn.executemany(
        "INSERT INTO events VALUES (?, ?, ?)", [(i, f"k{i % 7}", i % 50) for i in range(2000)]
    )
    conn.execute("CREATE INDEX ix_user ON events (user_id)")
    conn.commit()
    conn.close()
    a = Assistant(db=f"sqlite:///{path}")
    a.train_from_database()
    r = a.explain("SELECT id FROM events WHERE kind = 'k1'")
    assert r.full_scans == ("events",)
    assert r.suggestions == ('CREATE INDEX ix_events_kind ON "events" ("kind")',)
    r2 = a.explain("SELECT id FROM events WHERE user_id = 3")
    assert r2.full_scans == ()
    assert r2.suggestions == ()
    with pytest.raises(UnsafeQueryError):
        a.explain("DELETE FROM events")


def test_answer_rendering(shop: Path) -> None:
    a = Assistant(db=f"sqlite:///{shop}")
    a.train_from_database()
    ans = a.ask("How many customers are there in each city?")
    assert sorted(ans.rows) == sorted(
        gold(shop, "SELECT city, COUNT(*) FROM customers GROUP BY city")
    )
    text = repr(ans)
    assert text.startswith("Answer(ok, 3 row(s), attempts=1)")
    assert "<table " in ans._repr_html_()
    spec = ans.chart()
    assert spec is not None
    assert spec["mark"] == "bar"
    assert spec["encoding"]["y"]["type"] == "quantitative"
    df = ans.to_pandas()
    assert list(df.columns) == list(ans.columns)
    assert df.shape == (3, 2)
    d = ans.to_dict()
    assert d["verdict"]["allowed"] is True
    assert d["columns"] == list(ans.columns)


def test_sources_do_not_leak(shop: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    sqlite3.connect(other).executescript(
        "CREATE TABLE planets (id INTEGER, name TEXT); INSERT INTO planets VALUES (1, 'Mars');"
    )
    a = Assistant(db=f"sqlite:///{shop}", name="shop")
    b = Assistant(db=f"sqlite:///{other}", name="space", store=a.store, embedder=a.embedder)
    a.train_from_database()
    b.train_from_database()
    a.train(question="Paris customers", sql="SELECT name FROM customers WHERE city = 'Paris'")
    assert b.training_data("sql") == []
    assert b.retrieval_tables("Paris customers") == ["planets"]
    assert b.ask("How many planets are there?").rows == ((1,),)


def test_bad_input() -> None:
    with pytest.raises(Exception, match="does not exist"):
        Assistant(db="sqlite:////nonexistent/x.db")
    with pytest.raises(Exception, match="max_attempts"):
        Assistant(db=sqlite3.connect(":memory:"), max_attempts=0)
    a = Assistant(db=sqlite3.connect(":memory:"))
    with pytest.raises(InvalidInputError):
        a.ask("   ")


def test_cache_never_reuses_sql_for_another_value(shop: Path) -> None:
    model = FakeChatModel(
        [
            "SELECT name FROM customers WHERE city = 'Paris'",
            "SELECT name FROM customers WHERE city = 'Rome'",
        ]
    )
    a = Assistant(db=f"sqlite:///{shop}", model=model, cache_threshold=0.5)
    a.train_from_database()
    assert a.ask("Which customers live in Paris?").rows == (("Ann",), ("Cid",))
    rome = a.ask("Which customers live in Rome?")
    assert (rome.cached, rome.rows) == (False, (("Dee",),))


def test_async_twin_streams_the_same_events(shop: Path) -> None:
    import asyncio

    from avl.assistant import AsyncAssistant

    async def go() -> tuple[list[str], Answer]:
        aa = AsyncAssistant(Assistant(db=f"sqlite:///{shop}"))
        await aa.train_from_database()
        kinds = [e.kind.value async for e in aa.stream("How many orders are there?")]
        return kinds, await aa.ask("How many customers are there?")

    kinds, answer = asyncio.run(go())
    assert kinds[0] == "retrieved"
    assert kinds[-4:] == ["verdict", "rows", "answer", "done"]
    assert answer.rows == ((4,),)


def test_small_budget_retrieves_the_named_table_first(shop: Path) -> None:
    a = Assistant(db=f"sqlite:///{shop}", context_tokens=40)
    a.train_from_database()
    assert a.retrieval_tables("How many orders were shipped?") == ["orders"]
    # a stored value of a table left out of the context is ignored, not an error
    ans = a.ask("How many orders were shipped?")
    assert ans.rows == ((3,),)
    assert a.ask("Who lives in Paris?").error == ""


class TickingClock:
    """A real Clock whose time moves one second per reading (no sleeping)."""

    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def monotonic(self) -> float:
        self.t += 1.0
        return self.t


def test_sqlite_statement_timeout_then_repair(shop: Path) -> None:
    from avl.errors import QueryTimeoutError

    slow = (
        "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 5000000) "
        "SELECT COUNT(*) FROM n"
    )
    db = Database(f"sqlite:///{shop}", timeout_s=5, clock=TickingClock())
    with pytest.raises(QueryTimeoutError, match="5 s statement timeout"):
        db.execute(slow)
    assert db.execute("SELECT COUNT(*) FROM orders").rows == ((5,),)
    model = FakeChatModel([slow, "SELECT COUNT(*) FROM orders"])
    policy = Policy(dialect="sqlite", max_generated_rows=10**7)
    a = Assistant(db=db, model=model, policy=policy, cache_threshold=None)
    ans = a.ask("count")
    assert (ans.attempts, ans.rows) == (2, ((5,),))
    assert "statement timeout" in model.received[1][-1].content


def test_cancel_event_stops_the_stream(shop: Path) -> None:
    import threading

    history = History("memory://")
    a = Assistant(db=f"sqlite:///{shop}", history=history)
    a.train_from_database()
    cancel = threading.Event()
    seen = []
    for ev in a.stream("How many orders are there?", cancel=cancel):
        seen.append(ev.kind)
        if ev.kind is EventKind.PROMPT:
            cancel.set()
    assert seen == [EventKind.RETRIEVED, EventKind.PROMPT]
    assert a.db.in_transaction() is False
    (entry,) = ended(history)
    assert str(entry.outcome) == "cancelled"


def test_documentation_is_chunked(shop: Path) -> None:
    a = Assistant(db=f"sqlite:///{shop}")
    para = ("A shipped order has left the warehouse. " * 12).strip()
    ids = a.train(documentation=f"{para}\n\n{para}\n\nShort note.")
    items = a.training_data("documentation")
    assert len(ids) == len(items) == 2
    assert [i.text for i in items] == [para, f"{para} Short note."]


def test_sqlite_query_cannot_write_other_files_or_lift_query_only(
    shop: Path, tmp_path: Path
) -> None:
    before = checksum(shop)
    statements = [
        f"ATTACH DATABASE '{tmp_path / 'evil.db'}' AS evil",
        f"VACUUM INTO '{tmp_path / 'copy.db'}'",
        "PRAGMA query_only = OFF",
        "PRAGMA writable_schema = ON",
    ]
    for db in (Database(f"sqlite:///{shop}"), Database(sqlite3.connect(shop))):
        for sql in statements:
            with pytest.raises(QueryError, match=r"not authorized|authorization denied"):
                db.execute(sql)
        with pytest.raises(QueryError, match=r"readonly|read-only|read only"):
            db.execute("DELETE FROM orders")
        assert db.execute("SELECT COUNT(*) FROM orders").rows == ((5,),)
        assert db.in_transaction() is False
        db.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shop.db"]
    assert checksum(shop) == before
