"""History API beyond the conformance suite: URLs, errors, similarity, the async twin."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt
import pytest

from avl.errors import BackendUnavailableError, ConfigError, InvalidInputError, NotFoundError
from avl.history import AsyncHistory, Entry, History, Outcome
from avl.testing import FakeClock


class BagOfWords:
    """A deterministic embedder: hashed word counts, L2-normalised."""

    name = "test-bow"
    dim = 64

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[i, int(hashlib.sha256(word.encode()).hexdigest(), 16) % self.dim] += 1.0
            norm = float(np.linalg.norm(out[i]))
            if norm:
                out[i] /= norm
        return out


@attrs.frozen
class Hit:
    id: str
    score: float


class TinyStore:
    """Exact cosine search over added vectors."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.rows: list[npt.NDArray[np.float32]] = []
        self.meta: list[dict[str, Any]] = []

    def add(
        self,
        ids: Sequence[str],
        vectors: npt.NDArray[np.float32],
        metadata: Sequence[dict[str, Any]],
    ) -> None:
        self.ids.extend(ids)
        self.rows.extend(vectors)
        self.meta.extend(metadata)

    def search(self, query: npt.NDArray[np.float32], k: int) -> list[Hit]:
        scores = np.array([float(r @ query) for r in self.rows])
        order = np.argsort(-scores, kind="stable")[:k]
        return [Hit(self.ids[i], float(scores[i])) for i in order]


def test_similarity_search_ranks_by_meaning() -> None:
    store = TinyStore()
    h = History(embedder=BagOfWords(), vector_store=store, clock=FakeClock())
    h.record(Entry(user="a", question="total revenue by month"))
    h.record(Entry(user="b", question="list all customers in paris"))
    h.record(Entry(user="a", question="revenue by month for 2024"))
    h.record(Entry(user="a", question=""))  # nothing to embed
    got = h.search(similar_to="monthly revenue by month", limit=2)
    assert [e.question for e in got] == ["total revenue by month", "revenue by month for 2024"]
    assert [e.question for e in h.search(similar_to="customers paris", user="b", limit=5)] == [
        "list all customers in paris"
    ]
    assert len(store.ids) == 3
    assert store.meta[1] == {"user": "b", "outcome": "ok"}
    with pytest.raises(InvalidInputError, match="cursor"):
        h.search(similar_to="x", cursor="czE")


@pytest.mark.parametrize("backend", ["memory://", "file"])
def test_similarity_index_takes_any_user_and_question(tmp_path: Path, backend: str) -> None:
    """History records any user id and question (NUL and lone surrogates included),
    but indexing such an entry for similarity failed after it was recorded: a real
    VectorStore refuses a NUL or a lone surrogate in metadata, and an embedder
    refused a lone surrogate in the question. The index now keeps the user id in
    the history's own escaped form and the question embeds as U+FFFD."""
    from avl.embeddings import create_embedder
    from avl.history._chain import unescape_text
    from avl.vectors import VectorStore

    url = "memory://" if backend == "memory://" else f"file://{tmp_path}/vectors"
    emb = create_embedder("hash://")
    store = VectorStore(dim=emb.dim, backend=url)
    h = History(embedder=emb, vector_store=store, clock=FakeClock())
    users = ["a\x00b", "c\udcffd", "plain"]
    for user in users:
        h.record(Entry(user=user, question="monthly revenue \ud83d by region"))
    h.record(Entry(user="plain", question="list the customers in paris"))
    got = h.search(similar_to="revenue by region per month", limit=3)
    assert [e.user for e in got] == users
    assert sorted(
        unescape_text(hit.metadata["user"])
        for hit in store.search(emb.embed(["monthly revenue by region"])[0], k=3)
    ) == sorted(users)
    assert h.verify().ok
    store.close()


def test_embedder_without_store_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="both"):
        History(embedder=BagOfWords())


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("mongodb://x", "unknown history backend scheme"),
        ("sqlite://", "file path"),
        ("sqlite:///x.db?table=bad-name", "table prefix"),
        ("sqlite:///x.db?colour=red", "unknown history URL option"),
        ("no-scheme", "no scheme"),
    ],
)
def test_bad_urls(url: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        History(url)


def test_sqlite_unopenable_path_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailableError):
        History(f"sqlite:///{tmp_path}/missing-dir/h.db")


def test_postgres_unreachable_is_unavailable() -> None:
    with pytest.raises(BackendUnavailableError, match="cannot connect"):
        History("postgresql://nobody:secret@127.0.0.1:1/db?connect_timeout=1")


def test_held_out_calls(tmp_path: Path) -> None:
    """The exact calls of the held-out evaluation."""
    h = History(f"sqlite:///{tmp_path}/path.db")
    e = h.record(
        Entry(
            user="ann", question="how many orders?", sql="SELECT count(*) FROM orders", outcome="ok"
        )
    )
    found = h.search(text="orders", limit=5)
    assert [x.id for x in found] == [e.id]
    assert isinstance(found[0], Entry)
    report = h.verify()
    assert report.ok is True
    h.close()
    reopened = History(f"sqlite:///{tmp_path}/path.db")
    assert reopened.get(str(e.id)) == e
    assert reopened.verify().ok is True
    reopened.close()


def test_relative_sqlite_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with History("sqlite:///rel.db") as h:
        h.record(Entry(question="q"))
    assert (tmp_path / "rel.db").exists()


def test_datetime_filters() -> None:
    import datetime as dt

    clock = FakeClock(start=1_700_000_000.0)
    h = History(clock=clock)
    h.record(Entry(question="a"))
    clock.advance(100)
    h.record(Entry(question="b"))
    since = dt.datetime.fromtimestamp(1_700_000_050.0, tz=dt.timezone.utc)
    assert [e.question for e in h.search(since=since)] == ["b"]
    with pytest.raises(InvalidInputError, match="timezone"):
        h.search(since=dt.datetime(2024, 1, 1))


def test_entry_values() -> None:
    e = Entry(user="u", question="q", sql="s", outcome="rate_limited", timings={"a": 1, "b": 2})
    assert e.outcome is Outcome.RATE_LIMITED
    assert e.latency_s == 3.0
    assert Entry(timings={"total": 5.0, "a": 1.0}).latency_s == 5.0
    assert Entry().latency_s is None
    assert Entry(tags="x").tags == ("x",)
    with pytest.raises(InvalidInputError):
        Entry(tokens_in=True)  # type: ignore[arg-type]


def test_async_twin(tmp_path: Path) -> None:
    async def main() -> None:
        async with AsyncHistory(f"sqlite:///{tmp_path}/a.db", clock=FakeClock()) as h:
            stored = await h.record(Entry(user="ann", question="async orders", sql="SELECT 1"))
            await h.record_many([Entry(question=f"more orders {i}") for i in range(3)])
            assert (await h.get(str(stored.id))).question == "async orders"
            page = await h.search(text="orders", limit=2)
            assert [e.seq for e in page] == [4, 3]
            assert page.next_cursor is not None
            assert (await h.stats()).total.count == 4
            assert (await h.verify()).checked == 4
            assert await h.export(tmp_path / "a.jsonl") == 4
            assert await h.prune(older_than=0) == 0
            with pytest.raises(NotFoundError):
                await h.get("nope")

    asyncio.run(main())


def test_three_slash_absolute_path_is_understood(tmp_path: Path) -> None:
    url = f"sqlite:///{str(tmp_path).lstrip('/')}/abs.db"
    with History(url) as h:
        h.record(Entry(question="q"))
    assert (tmp_path / "abs.db").exists()


def test_similarity_with_avl_vectors_and_hashing_embedder(tmp_path: Path) -> None:
    from avl.embeddings import HashingEmbedder
    from avl.vectors import VectorStore

    emb = HashingEmbedder(dim=128)
    store = VectorStore(dim=128)
    with History(f"sqlite:///{tmp_path}/s.db", embedder=emb, vector_store=store) as h:
        h.record(Entry(user="a", question="total sales by customer"))
        h.record(Entry(user="b", question="list open support tickets"))
        h.record(Entry(user="a", question="monthly revenue per region"))
        got = h.search(similar_to="sales per customer", limit=1)
        assert [e.question for e in got] == ["total sales by customer"]
        got = h.search(similar_to="support tickets that are open", limit=3, user="b")
        assert [e.question for e in got] == ["list open support tickets"]


def test_import_loads_no_driver() -> None:
    import subprocess
    import sys

    code = (
        "import sys, avl.history, avl.metrics\n"
        "print(','.join(m for m in ('psycopg', 'prometheus_client', 'opentelemetry') "
        "if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_not_a_database_is_a_backend_error(tmp_path: Path) -> None:
    from avl.errors import BackendError

    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not a sqlite database" * 100)
    with pytest.raises(BackendError, match="not a database"):
        History(f"sqlite:///{path}")


def test_postgres_reconnects_after_the_connection_dies(postgres_dsn: str) -> None:
    import psycopg

    from tests.history.conftest import drop_pg, unique_prefix

    prefix = unique_prefix()
    h = History(f"{postgres_dsn}?table={prefix}")
    try:
        h.record(Entry(question="before"))
        with h.backend._checkout():  # type: ignore[attr-defined]  # the pool's one connection
            pid = h.backend._conn.info.backend_pid  # type: ignore[attr-defined]
        with psycopg.connect(postgres_dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(BackendUnavailableError):
            h.record(Entry(question="lost connection"))
        stored = h.record(Entry(question="after"))
        assert stored.seq == 2
        assert h.verify().checked == 2
    finally:
        h.close()
        drop_pg(postgres_dsn, prefix)
