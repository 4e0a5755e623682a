"""The History conformance suite: every backend must pass it unchanged."""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import Callable

import numpy as np
import pytest

from avl.errors import ConfigError, InvalidInputError, NotFoundError
from avl.history import Entry, History, Outcome, Page
from avl.testing import FakeClock

QUESTIONS = [
    ("ann", "how many orders last week", "SELECT count(*) FROM orders", "ok", ("sales",)),
    ("bob", "top customers by revenue", "SELECT name FROM customers", "ok", ("sales", "vip")),
    ("ann", "delete old orders", "DELETE FROM orders", "rejected", ()),
    (
        "cid",
        "orders per region",
        "SELECT region, count(*) FROM orders GROUP BY 1",
        "db_error",
        ("geo",),
    ),
    ("bob", "average order value", "SELECT avg(total) FROM orders", "ok", ("sales",)),
]


def fill(h: History, clock: FakeClock) -> list[Entry]:
    out = []
    for i, (user, q, sql, outcome, tags) in enumerate(QUESTIONS):
        out.append(
            h.record(
                Entry(
                    user=user,
                    question=q,
                    sql=sql,
                    outcome=outcome,
                    tags=tags,
                    timings={"generate": 0.1 * (i + 1), "execute": 0.01},
                    model="openai/gpt-4o-mini",
                    tokens_in=100 + i,
                    tokens_out=10,
                    cost_usd=0.001,
                )
            )
        )
        clock.advance(10)
    return out


class HistoryConformance:
    """Tests every backend runs; the ``history`` and ``clock`` fixtures pick the backend."""

    def test_minimal_entry_round_trip(self, history: History, clock: FakeClock) -> None:
        stored = history.record(Entry(user="u", question="q?", sql="SELECT 1", outcome="ok"))
        assert stored.seq == 1
        assert stored.time == 1_700_000_000.0
        assert stored.outcome is Outcome.OK
        assert stored.id is not None
        assert len(stored.id) == 32
        assert stored.hash is not None
        assert len(stored.hash) == 64
        assert stored.prev_hash == "0" * 64
        got = history.get(stored.id)
        assert got == stored
        report = history.verify()
        assert report.ok is True
        assert report.checked == 1

    def test_every_field_round_trips(self, history: History) -> None:
        entry = Entry(
            id="fixed-id-1",
            time=123.25,
            user="ann",
            role="analyst",
            session="s1",
            question="é ünïcode ✓",
            sql="SELECT 'x'",
            allowed=False,
            violations=("DML", "NO_LIMIT"),
            outcome=Outcome.REJECTED,
            error="refused",
            row_count=7,
            timings={"validate": 0.1, "generate": 1},
            model="anthropic/claude-sonnet-4",
            tokens_in=12,
            tokens_out=3,
            cost_usd=0.1 + 0.2,
            tags=("b", "a", "b"),
        )
        stored = history.record(entry)
        got = history.get("fixed-id-1")
        assert got == stored
        assert got.tags == ("a", "b")
        assert dict(got.timings) == {"generate": 1.0, "validate": 0.1}
        assert got.cost_usd == 0.30000000000000004
        assert got.allowed is False
        assert got.violations == ("DML", "NO_LIMIT")

    def test_chain_links(self, history: History, clock: FakeClock) -> None:
        entries = fill(history, clock)
        assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
        for a, b in itertools.pairwise(entries):
            assert b.prev_hash == a.hash
        assert history.verify().checked == 5

    def test_record_many_is_one_chain(self, history: History) -> None:
        stored = history.record_many(Entry(user="u", question=f"q{i}") for i in range(50))
        assert [e.seq for e in stored] == list(range(1, 51))
        more = history.record(Entry(user="u", question="last"))
        assert more.prev_hash == stored[-1].hash
        report = history.verify()
        assert (report.ok, report.checked, report.head_seq) == (True, 51, 51)

    def test_large_batch_is_one_chain_or_nothing(self, history: History) -> None:
        # a batch this size takes the backends' bulk path (PostgreSQL: COPY)
        stored = history.record_many(Entry(user="u", question=f"q{i}") for i in range(200))
        assert [e.seq for e in stored] == list(range(1, 201))
        assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(stored))
        assert history.get(stored[-1].id) == stored[-1]
        with pytest.raises(InvalidInputError):
            history.record_many(
                [Entry(question=f"r{i}") for i in range(150)] + [Entry(id=stored[0].id)]
            )
        report = history.verify()
        assert (report.ok, report.checked, report.head_seq) == (True, 200, 200)
        assert history.record(Entry(question="after")).seq == 201

    def test_get_missing_raises(self, history: History) -> None:
        with pytest.raises(NotFoundError, match="nope"):
            history.get("nope")

    def test_duplicate_id_raises_and_stores_nothing(self, history: History) -> None:
        history.record(Entry(id="a", question="one"))
        with pytest.raises(InvalidInputError):
            history.record(Entry(id="a", question="two"))
        with pytest.raises(InvalidInputError):
            history.record_many([Entry(id="b"), Entry(id="a")])
        assert [e.id for e in history.search(limit=10)] == ["a"]
        assert history.verify().ok is True

    def test_text_search_newest_first(self, history: History, clock: FakeClock) -> None:
        fill(history, clock)
        found = history.search(text="orders", limit=10)
        assert [e.question for e in found] == [
            "average order value",
            "orders per region",
            "delete old orders",
            "how many orders last week",
        ]
        assert [e.question for e in history.search(text="ORDERS count", limit=10)] == [
            "orders per region",
            "how many orders last week",
        ]
        assert list(history.search(text="nothing-like-this", limit=10)) == []

    @pytest.mark.parametrize(
        "text", ['"unbalanced', "AND OR NEAR(", "*", "orders'; DROP TABLE x; --", "a:b", "(", "-"]
    )
    def test_fts_syntax_from_user_is_escaped(
        self, history: History, clock: FakeClock, text: str
    ) -> None:
        fill(history, clock)
        history.record(Entry(question='say "unbalanced and near( things', sql="SELECT 1"))
        got = [e.question for e in history.search(text=text, limit=10)]
        expected = {
            '"unbalanced': ['say "unbalanced and near( things'],
            "AND OR NEAR(": [],
            "*": [],
            "orders'; DROP TABLE x; --": [],
            "a:b": [],
            "(": [],
            "-": [],
        }[text]
        assert got == expected
        assert history.verify().checked == 6

    def test_filters(self, history: History, clock: FakeClock) -> None:
        fill(history, clock)
        t0 = 1_700_000_000.0
        assert [e.question for e in history.search(user="bob", limit=10)] == [
            "average order value",
            "top customers by revenue",
        ]
        assert [e.user for e in history.search(outcome="rejected", limit=10)] == ["ann"]
        assert len(history.search(outcome=["ok", Outcome.DB_ERROR], limit=10)) == 4
        assert [e.seq for e in history.search(tags=["sales", "vip"], limit=10)] == [2]
        assert [e.seq for e in history.search(tags="sales", limit=10)] == [5, 2, 1]
        assert [e.seq for e in history.search(since=t0 + 10, until=t0 + 30, limit=10)] == [3, 2]
        assert [e.seq for e in history.search(text="orders", user="ann", limit=10)] == [3, 1]

    def test_injection_in_filter_values_is_inert(self, history: History, clock: FakeClock) -> None:
        fill(history, clock)
        assert list(history.search(user="ann' OR '1'='1", limit=10)) == []
        assert list(history.search(tags=["sales') OR 1=1 --"], limit=10)) == []
        with pytest.raises(InvalidInputError):
            history.search(outcome="ok' OR 1=1", limit=10)
        assert history.verify().checked == 5

    def test_keyset_pagination(self, history: History) -> None:
        history.record_many(Entry(user="p", question=f"page item {i}") for i in range(23))
        seen: list[int] = []
        cursor = None
        pages = 0
        while True:
            page = history.search(text="item", limit=10, cursor=cursor)
            assert isinstance(page, Page)
            seen.extend(int(e.seq or 0) for e in page)
            pages += 1
            cursor = page.next_cursor
            if cursor is None:
                break
        assert pages == 3
        assert seen == list(range(23, 0, -1))

    def test_bad_arguments(self, history: History) -> None:
        with pytest.raises(InvalidInputError, match="limit"):
            history.search(limit=0)
        with pytest.raises(InvalidInputError, match="cursor"):
            history.search(cursor="garbage!")
        with pytest.raises(InvalidInputError, match="outcome"):
            Entry(outcome="exploded")
        with pytest.raises(InvalidInputError, match="finite"):
            Entry(cost_usd=float("nan"))
        with pytest.raises(InvalidInputError, match="Entry"):
            history.record({"user": "x"})  # type: ignore[arg-type]

    def test_similarity_needs_configuration(self, history: History) -> None:
        with pytest.raises(ConfigError, match="embedder"):
            history.search(similar_to="orders", limit=5)

    def test_stats(self, history: History, clock: FakeClock) -> None:
        fill(history, clock)
        s = history.stats()
        lat = [0.11, 0.21, 0.31, 0.41, 0.51]
        assert s.total.count == 5
        assert s.total.p50 == pytest.approx(float(np.percentile(lat, 50)))
        assert s.total.p95 == pytest.approx(float(np.percentile(lat, 95)))
        assert s.total.p99 == pytest.approx(float(np.percentile(lat, 99)))
        assert s.total.tokens_in == 510
        assert s.by_user["bob"].count == 2
        assert s.by_user["bob"].p50 == pytest.approx(float(np.percentile([0.21, 0.51], 50)))
        assert {k: v.count for k, v in s.by_outcome.items()} == {
            "db_error": 1,
            "ok": 3,
            "rejected": 1,
        }
        assert s.by_model["openai/gpt-4o-mini"].cost_usd == pytest.approx(0.005)
        assert history.stats(user="ann").total.count == 2

    def test_export_jsonl_and_csv(self, history: History, clock: FakeClock, tmp_path) -> None:  # type: ignore[no-untyped-def]
        stored = fill(history, clock)
        path = tmp_path / "out.jsonl"
        assert history.export(path) == 5
        lines = [json.loads(x) for x in path.read_text().splitlines()]
        assert [x["id"] for x in lines] == [e.id for e in stored]
        assert lines[0]["hash"] == stored[0].hash
        assert lines[1]["tags"] == ["sales", "vip"]
        buf = io.StringIO()
        assert history.export(buf, format="csv") == 5
        rows = buf.getvalue().splitlines()
        assert rows[0].startswith("id,seq,time,user")
        assert len(rows) == 6
        with pytest.raises(InvalidInputError, match="format"):
            history.export(buf, format="xml")  # type: ignore[arg-type]

    def test_prune_keeps_chain_verifiable(self, history: History, clock: FakeClock) -> None:
        fill(history, clock)  # times t0, t0+10, ..., t0+40; now t0+50
        removed = history.prune(older_than=25)  # cutoff t0+25: drops seq 1..3
        assert removed == 3
        assert [e.seq for e in history.search(limit=10)] == [5, 4]
        report = history.verify()
        assert (report.ok, report.checked, report.head_seq) == (True, 2, 5)
        nxt = history.record(Entry(question="after prune"))
        assert nxt.seq == 6
        assert history.verify().checked == 3
        assert history.prune(older_than=1000) == 0
        clock.advance(1)
        assert history.prune(older_than=0) == 3
        assert history.verify().ok is True
        assert history.record(Entry(question="fresh")).seq == 7
        assert history.verify().checked == 1

    def test_hmac_key_must_match(self, make_history: Callable[..., History]) -> None:
        keyed = make_history(hmac_key=b"secret")
        keyed.record(Entry(question="signed"))
        assert keyed.verify().ok is True
        other = History(keyed.backend, hmac_key=b"other")
        assert other.verify().problem == "altered"
        assert History(keyed.backend).verify().ok is False
        assert History(keyed.backend, hmac_key="secret").verify().ok is True

    def test_closed_history_refuses(self, history: History) -> None:
        history.close()
        with pytest.raises(InvalidInputError, match="closed"):
            history.record(Entry())
        history.close()
