"""Nothing runs unaudited: input checked before anything runs, a pending entry before
the model is called, one entry completing it; audit="required" and "best_effort";
questions and model SQL with NUL bytes and lone surrogates, on every History backend."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from avl.assistant import Assistant, EventKind
from avl.errors import BackendUnavailableError, ConfigError, InvalidInputError
from avl.history import Entry, History
from avl.metrics import Metrics
from avl.safety import Policy
from avl.testing import FakeChatModel

from .conftest import assert_audited, checksum, ended


class FlakyHistory:
    """A real History that can be taken down (an AuditLog, not a mock)."""

    def __init__(self, url: str = "memory://") -> None:
        self.inner = History(url)
        self.down_at: set[str] = set()  # "pending" and/or "final"

    def record(self, entry: Entry) -> Entry:
        stage = "pending" if str(entry.outcome) == "pending" else "final"
        if stage in self.down_at:
            raise BackendUnavailableError("history database unreachable")
        return self.inner.record(entry)


def test_required_audit_refuses_before_the_model_when_the_history_is_down(shop: Path) -> None:
    history, metrics = FlakyHistory(), Metrics()
    history.down_at = {"pending", "final"}
    model = FakeChatModel(default="SELECT COUNT(*) FROM orders")
    a = Assistant(db=f"sqlite:///{shop}", model=model, history=history, metrics=metrics)
    a.train_from_database()
    with pytest.raises(BackendUnavailableError, match="refused before it reaches the model"):
        a.ask("How many orders are there?")
    assert model.calls == []
    events = list(a.stream("How many orders are there?"))
    assert [e.kind for e in events] == [EventKind.ERROR, EventKind.DONE]
    assert model.calls == []
    assert metrics.snapshot().counters['audit_misses{stage="begin"}'] == 2


def test_required_audit_withholds_rows_it_could_not_record(shop: Path) -> None:
    history = FlakyHistory()
    history.down_at = {"final"}
    a = Assistant(
        db=f"sqlite:///{shop}",
        model=FakeChatModel(default="SELECT id FROM orders"),
        history=history,
    )
    with pytest.raises(BackendUnavailableError, match="result is withheld"):
        a.ask("orders?")
    (pending,) = history.inner.search(limit=5)
    assert str(pending.outcome) == "pending"  # the request is on record before it ran


def test_best_effort_answers_and_counts_the_misses(shop: Path) -> None:
    history, metrics = FlakyHistory(), Metrics()
    history.down_at = {"pending", "final"}
    a = Assistant(
        db=f"sqlite:///{shop}",
        model=FakeChatModel(default="SELECT COUNT(*) FROM orders"),
        history=history,
        metrics=metrics,
        audit="best_effort",
    )
    answer = a.ask("How many orders are there?")
    assert answer.rows == ((5,),)
    assert answer.history_id is None
    counters = metrics.snapshot().counters
    assert counters['audit_misses{stage="begin"}'] == 1
    assert counters['audit_misses{stage="finish"}'] == 1
    with pytest.raises(ConfigError, match="audit must be"):
        Assistant(db=f"sqlite:///{shop}", history=history, audit="sometimes")  # type: ignore[arg-type]


def test_input_is_checked_before_anything_runs(shop: Path) -> None:
    history = History("memory://")
    model = FakeChatModel(default="SELECT 1")
    a = Assistant(db=f"sqlite:///{shop}", model=model, history=history)
    bad: list[dict[str, Any]] = [
        {"question": ""},
        {"question": "x" * 20_001},
        {"question": 42},
        {"question": "q", "user": "ann\x00"},
        {"question": "q", "role": "a\udc80"},
        {"question": "q", "session": 7},
        {"question": "q", "context": {"tenant": "1\x00"}},
        {"question": "q", "context": {"tenant": float("nan")}},
        {"question": "q", "context": {"tenant": [1, 2]}},
        {"question": "q", "context": "tenant=1"},
    ]
    for kw in bad:
        with pytest.raises(InvalidInputError):
            a.ask(**kw)
        with pytest.raises(InvalidInputError):
            a.stream(**kw)
    assert model.calls == []
    assert history.search(limit=10) == []


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def history_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "memory":
        yield "memory://"
    elif request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'history.db'}"
    else:
        dsn = request.getfixturevalue("postgres_dsn")
        prefix = f"avl_hist_{uuid.uuid4().hex[:8]}"
        yield f"{dsn}?table={prefix}"
        import psycopg

        with psycopg.connect(dsn, autocommit=True) as conn:
            for (name,) in conn.execute(
                "SELECT tablename FROM pg_tables WHERE tablename LIKE %s", (prefix + "%",)
            ).fetchall():
                conn.execute(f'DROP TABLE IF EXISTS "{name}" CASCADE')


NUL_Q = "How many orders\x00 are there?"
SURROGATE_Q = "How many orders \ud800 are there?"


def test_nul_and_surrogate_questions_and_model_sql_are_audited(
    shop: Path, history_url: str
) -> None:
    before = checksum(shop)
    history = History(history_url)
    model = FakeChatModel(
        [
            "SELECT COUNT(*) FROM orders",
            "SELECT COUNT(*) FROM orders",
            "SELECT COUNT(*) FROM orders WHERE status = 'x\x00'",
            "SELECT COUNT(*) FROM orders WHERE status = '\udc80'",
        ]
    )
    a = Assistant(
        db=f"sqlite:///{shop}", model=model, history=history, cache_threshold=None, max_attempts=1
    )
    a.train_from_database()
    first = a.ask(NUL_Q, user="mallory")
    second = a.ask(SURROGATE_Q, user="mallory")
    assert first.rows == second.rows == ((5,),)
    assert (first.question, second.question) == (NUL_Q, SURROGATE_Q)
    # the model saw the questions escaped, never the raw characters
    sent = "\n".join(m.content for call in model.calls for m in call.messages)
    assert "How many orders\\x00 are there?" in sent
    assert "How many orders \\ud800 are there?" in sent
    assert "\x00" not in sent
    assert "\ud800" not in sent
    # model SQL holding such characters never runs, and is recorded as it was
    nul_sql = a.ask("How many orders?", user="mallory")
    bad_sql = a.ask("How many orders?!", user="mallory")
    for ans in (nul_sql, bad_sql):
        assert (ans.outcome, ans.rows, ans.verdict) == ("llm_error", (), None)
        assert "NUL byte" in ans.error
    entries = ended(history, user="mallory")
    assert [(e.question, e.outcome.value) for e in reversed(entries)] == [
        (NUL_Q, "ok"),
        (SURROGATE_Q, "ok"),
        ("How many orders?", "llm_error"),
        ("How many orders?!", "llm_error"),
    ]
    assert entries[1].sql == "SELECT COUNT(*) FROM orders WHERE status = 'x\x00'"
    assert entries[0].sql == "SELECT COUNT(*) FROM orders WHERE status = '\udc80'"
    assert history.get(str(first.history_id)).question == NUL_Q
    assert len(history.search(outcome="pending", limit=10)) == 4
    assert_audited(history)
    assert history.verify().ok
    assert checksum(shop) == before
    history.close()


def test_every_outcome_completes_its_pending_entry(shop: Path) -> None:
    from avl.errors import ProviderError
    from avl.ratelimit import RateLimiter
    from avl.testing import FakeClock

    history = History("memory://")
    model = FakeChatModel(
        [
            "SELECT COUNT(*) FROM orders",  # ok
            "DROP TABLE orders",  # rejected
            "CANNOT ANSWER: no weather data",  # abstained
            ProviderError("HTTP 500", provider="x"),  # llm_error
            "SELECT nope FROM orders",  # db_error
        ]
    )
    limiter = RateLimiter("6/minute", storage="memory://", clock=FakeClock())
    a = Assistant(
        db=f"sqlite:///{shop}",
        model=model,
        history=history,
        limiter=limiter,
        policy=Policy(max_rows=100),  # no schema: the database judges the unknown column
        cache_threshold=None,
        max_attempts=1,
    )
    a.train_from_database()
    outcomes = []
    for q in ("count", "drop", "weather", "boom", "nope", "stream", "limited"):
        if q == "stream":
            stream = a.stream("How many orders are there?")
            next(stream)
            stream.close()  # cancelled
            outcomes.append("cancelled")
            continue
        try:
            outcomes.append(a.ask(q).outcome)
        except Exception as exc:
            outcomes.append(type(exc).__name__)
    assert outcomes == [
        "ok",
        "rejected",
        "abstained",
        "ProviderError",
        "db_error",
        "cancelled",
        "RateLimitedError",
    ]
    recorded = [e.outcome.value for e in reversed(ended(history))]
    assert recorded == [
        "ok",
        "rejected",
        "abstained",
        "llm_error",
        "db_error",
        "cancelled",
        "rate_limited",
    ]
    assert_audited(history)  # the rate-limited one reached nothing: no pending entry
    assert len(history.search(outcome="pending", limit=20)) == 6


def test_history_in_the_postgresql_data_database(postgres_dsn: str, caplog: Any) -> None:
    import logging

    import psycopg

    tag = uuid.uuid4().hex[:8]
    table, prefix = f"invoices_{tag}", f"avl_history_{tag}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, total NUMERIC(8,2))")
        conn.execute(f"INSERT INTO {table} VALUES (1, 10), (2, 20)")
    history = History(f"{postgres_dsn}?table={prefix}")
    try:
        model = FakeChatModel(default=f"SELECT COUNT(*) FROM {table}")
        a = Assistant(db=postgres_dsn, model=model, history=history, cache_threshold=None)
        with caplog.at_level(logging.WARNING, logger="avl.assistant"):
            # even asked for by name, avl's own tables are not data
            a.train_from_database(tables=[table, f"{prefix}_entries"])
            a.train_from_database(tables=[table, f"{prefix}_entries"])
        warnings = [r for r in caplog.records if "avl's own tables" in r.getMessage()]
        assert len(warnings) == 1  # once
        assert [t.name for t in a.view().tables] == [table]
        answer = a.ask("How many invoices are there?", user="ann")
        assert answer.rows == ((2,),)
        prompt = "\n".join(m.content for call in model.calls for m in call.messages)
        assert "avl_" not in prompt
        # and the default policy refuses avl's tables even to SQL that names them
        refused = a.guard_for().check(f"SELECT question FROM {prefix}_entries")
        assert refused.allowed is False
        a.close()
    finally:
        history.close()
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {table}")
            for (name,) in conn.execute(
                "SELECT tablename FROM pg_tables WHERE tablename LIKE %s", (prefix + "%",)
            ).fetchall():
                conn.execute(f'DROP TABLE IF EXISTS "{name}" CASCADE')


def test_threads_share_one_assistant_and_every_ask_is_audited(shop: Path) -> None:
    import threading

    from avl.safety import Policy

    history = History("memory://")
    a = Assistant(
        db=f"sqlite:///{shop}",
        model=FakeChatModel(default="SELECT COUNT(*) FROM orders"),
        history=history,
        policy={"t": Policy(row_filters={"orders": "tenant_id = :tenant"})},
    )
    a.train_from_database()
    results: list[tuple[int, Any]] = []
    errors: list[BaseException] = []

    def worker(tenant: int) -> None:
        try:
            for i in range(10):
                ans = a.ask(
                    f"How many orders are there? ({i % 3})", role="t", context={"tenant": tenant}
                )
                results.append((tenant, ans.rows))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(1 + n % 2,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(set(results)) == [(1, ((3,),)), (2, ((2,),))]
    assert len(ended(history)) == 60
    assert_audited(history)
    assert history.verify().ok
