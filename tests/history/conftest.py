"""Fixtures: one History per backend (memory, SQLite file, PostgreSQL with a unique prefix)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from avl.history import History
from avl.testing import FakeClock

ROOT_DIR = Path(__file__).resolve().parents[2]
BACKENDS = ["memory", "sqlite", "postgresql"]


def unique_prefix() -> str:
    return f"t_hist_{uuid.uuid4().hex[:12]}"


def drop_pg(dsn: str, prefix: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {prefix}_entries")
        conn.execute(f"DROP TABLE IF EXISTS {prefix}_meta")


class Target:
    """Where a test's history lives, with raw SQL access for tamper tests."""

    def __init__(self, kind: str, url: str, prefix: str, dsn: str | None, path: Path | None):
        self.kind = kind
        self.url = url
        self.prefix = prefix
        self.dsn = dsn
        self.path = path

    def sql(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run raw SQL against the store (``{p}`` is replaced by the prefix)."""
        statement = statement.replace("{p}", self.prefix)
        if self.kind == "sqlite":
            import sqlite3

            conn = sqlite3.connect(str(self.path), isolation_level=None)
            try:
                return conn.execute(statement, params).fetchall()
            finally:
                conn.close()
        import psycopg

        with psycopg.connect(str(self.dsn), autocommit=True) as conn:
            cur = conn.execute(statement.replace("?", "%s"), params)
            return cur.fetchall() if cur.description else []


@contextlib.contextmanager
def make_target(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    """A fresh store of ``kind`` (PostgreSQL tables are dropped afterwards)."""
    prefix = unique_prefix()
    if kind == "memory":
        yield Target(kind, "memory://", prefix, None, None)
    elif kind == "sqlite":
        path = tmp_path / "history.db"
        yield Target(kind, f"sqlite:///{path}?table={prefix}", prefix, None, path)
    else:
        dsn = request.getfixturevalue("postgres_dsn")
        yield Target(kind, f"{dsn}?table={prefix}", prefix, dsn, None)
        drop_pg(dsn, prefix)


@pytest.fixture(params=BACKENDS)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    with make_target(request.param, request, tmp_path) as t:
        yield t


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1_700_000_000.0)


@pytest.fixture
def make_history(target: Target, clock: FakeClock) -> Iterator[Callable[..., History]]:
    made: list[History] = []

    def make(**kwargs: Any) -> History:
        kwargs.setdefault("clock", clock)
        h = History(target.url, **kwargs)
        made.append(h)
        return h

    yield make
    for h in made:
        h.close()


@pytest.fixture
def history(make_history: Callable[..., History]) -> History:
    return make_history()
