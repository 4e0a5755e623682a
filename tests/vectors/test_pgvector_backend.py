"""pgvector specifics: the HNSW index, SQL built from parameters only."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import numpy as np
import pytest

from avl.errors import ConfigError, InvalidInputError
from avl.vectors import VectorStore, parse_where
from avl.vectors.backends.postgresql import PgVectorBackend, compile_where

pytestmark = pytest.mark.pgvector


class _J:
    def __init__(self, v: object) -> None:
        self.v = v

    def __repr__(self) -> str:
        return f"J({self.v!r})"


def test_compiled_sql_carries_no_keys_or_values() -> None:
    where = parse_where({"kind": "x'; DROP TABLE t; --", "n": {"$gte": 3, "$in": [1, 2]}})
    sql, params = compile_where(where, _J)
    assert sql == (
        "(metadata -> %s) = %s::jsonb AND "
        "(jsonb_typeof(metadata -> %s) = %s AND (metadata -> %s) >= %s::jsonb) AND "
        "COALESCE((metadata -> %s) = ANY(%s::jsonb[]), FALSE)"
    )
    assert "kind" not in sql
    assert "DROP" not in sql
    assert params[0] == "kind"
    assert repr(params[1]) == 'J("x\'; DROP TABLE t; --")'


@pytest.fixture
def table_url(pgvector_uri: str) -> Iterator[tuple[str, str]]:
    table = f"avl_vec_{uuid.uuid4().hex[:12]}"
    yield f"{pgvector_uri}&table={table}", table
    import psycopg

    with psycopg.connect(pgvector_uri, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")


def test_hnsw_index_and_filtered_search(table_url: tuple[str, str]) -> None:
    url, _table = table_url
    rng = np.random.default_rng(0)
    x = rng.standard_normal((600, 16)).astype(np.float32)
    with VectorStore(dim=16, backend=f"{url}&index_after=500&ef_search=100") as store:
        backend = store.backend
        assert isinstance(backend, PgVectorBackend)
        store.add(list(range(400)), x[:400], metadata=[{"g": i % 4} for i in range(400)])
        assert not backend.has_index()
        store.add(list(range(400, 600)), x[400:], metadata=[{"g": i % 4} for i in range(400, 600)])
        assert backend.has_index()
        assert [store.search(x[i], k=1)[0].id for i in (3, 300, 599)] == ["3", "300", "599"]
        hits = store.search(x[0], k=20, where={"g": 3})
        assert len(hits) == 20
        assert all(int(h.id) % 4 == 3 for h in hits)
        # an injection attempt through a filter key never reaches SQL
        with pytest.raises(InvalidInputError, match="invalid metadata filter key"):
            store.search(x[0], k=5, where={"g') OR 1=1 --": 1})
        assert len(store) == 600


def test_reopen_with_other_dim_and_bad_table(table_url: tuple[str, str], pgvector_uri: str) -> None:
    url, _table = table_url
    with VectorStore(dim=4, backend=url) as store:
        store.add("a", [1.0, 0.0, 0.0, 0.0])
    with pytest.raises(ConfigError, match="dim=4"):
        VectorStore(dim=5, backend=url)
    with pytest.raises(ConfigError, match="table name"):
        VectorStore(dim=4, backend=f"{pgvector_uri}&table=x;drop")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("m=1", "m must be between 2 and 100, got 1"),
        ("m=101", "m must be between 2 and 100"),
        ("ef_construction=3", "ef_construction must be between 32 and 1,000, got 3"),
        ("m=16&ef_construction=20", "ef_construction must be between 32 and 1,000"),
        ("ef_search=0", "ef_search must be between 1 and 1,000"),
        ("ef_search=1001", "ef_search must be between 1 and 1,000"),
        ("index_after=-1", "index_after must be at least 0"),
    ],
)
def test_options_outside_pgvectors_limits_are_refused_up_front(
    table_url: tuple[str, str], query: str, message: str
) -> None:
    """pgvector refuses a bad ``m``/``ef_construction`` only when it creates the
    index, inside a later ``add()`` after its rows went in: avl refuses it on open,
    and no table is created."""
    url, table = table_url
    with pytest.raises(ConfigError, match=f"^pgvector option {message}"):
        VectorStore(dim=4, backend=f"{url}&{query}")
    import psycopg

    with psycopg.connect(url.split("&table=")[0], autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass(%s)", [table]).fetchone() == (None,)
    # pgvector's own bounds are accepted, and the index builds
    with VectorStore(dim=4, backend=f"{url}&m=2&ef_construction=4&index_after=10") as store:
        store.add([str(i) for i in range(12)], np.eye(4, dtype=np.float32)[np.arange(12) % 4] + 0.1)
        assert isinstance(store.backend, PgVectorBackend)
        assert store.backend.has_index()
