"""Fixtures of the Assistant tests: a small real SQLite database."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from avl.assistant import Assistant, create_demo_database

SHOP_DDL = """
CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, city TEXT, tenant_id INTEGER);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id),
                     total REAL, status TEXT, tenant_id INTEGER);
"""
CUSTOMERS = [
    (1, "Ann", "Paris", 1),
    (2, "Bob", "London", 1),
    (3, "Cid", "Paris", 2),
    (4, "Dee", "Rome", 2),
]
ORDERS = [
    (1, 1, 10.0, "shipped", 1),
    (2, 1, 25.5, "pending", 1),
    (3, 2, 7.25, "shipped", 1),
    (4, 3, 99.0, "shipped", 2),
    (5, 4, 12.0, "cancelled", 2),
]


def make_shop(path: Path) -> Path:
    """Create the shop database at ``path``."""
    conn = sqlite3.connect(path)
    conn.executescript(SHOP_DDL)
    conn.executemany("INSERT INTO customers VALUES (?, ?, ?, ?)", CUSTOMERS)
    conn.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?)", ORDERS)
    conn.commit()
    conn.close()
    return path


def checksum(path: Path) -> str:
    """A checksum of every table's rows and the schema."""
    import hashlib

    conn = sqlite3.connect(path)
    h = hashlib.sha256()
    for name, sql in conn.execute("SELECT name, sql FROM sqlite_master ORDER BY name"):
        h.update(f"{name}{sql}".encode())
        if sql and sql.startswith("CREATE TABLE"):
            for row in conn.execute(f'SELECT * FROM "{name}" ORDER BY 1'):
                h.update(repr(row).encode())
    conn.close()
    return h.hexdigest()


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """Path of a fresh shop database."""
    return make_shop(tmp_path / "shop.db")


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """Path of a fresh demo database (``create_demo_database``)."""
    return create_demo_database(tmp_path / "demo.db")


def trained(db: Path, **kw: Any) -> Assistant:
    """An Assistant over the SQLite file ``db``, trained from its schema."""
    a = Assistant(db=f"sqlite:///{db}", **kw)
    a.train_from_database()
    return a


def ended(history: Any, **filters: Any) -> list[Any]:
    """The entries that record how requests ended (newest first): every entry but the
    pending ones written before a request reaches the model or the database."""
    page = history.search(limit=10_000, **filters)
    return [e for e in page.entries if str(e.outcome) != "pending"]


def assert_audited(history: Any) -> None:
    """Every pending entry is completed by exactly one entry tagged ``completes:<id>``,
    and every other entry of a request points at its pending entry."""
    entries = history.search(limit=10_000).entries
    pending = {e.id for e in entries if str(e.outcome) == "pending"}
    completes = [t.split(":", 1)[1] for e in entries for t in e.tags if t.startswith("completes:")]
    assert sorted(completes) == sorted(pending)
    for e in entries:
        links = [t for t in e.tags if t.startswith(("completes:", "request:"))]
        if str(e.outcome) == "pending":
            assert links == []
        else:
            assert all(t.split(":", 1)[1] in pending for t in links)
