"""What the command-line tests share: ``main`` run in process, a small shop database."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import pytest

from avl.cli import main


def run(*argv: str) -> tuple[int, str, str]:
    """``avl ARGV`` in this process: ``(exit code, stdout, stderr)``."""
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """Customers (with an ``email`` column roles deny) and their orders."""
    path = tmp_path / "shop.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, email TEXT, city TEXT);"
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, total REAL);"
        "INSERT INTO customers VALUES (1, 'Ann', 'ann@x.org', 'Paris'), "
        "(2, 'Bob', 'bob@x.org', 'Rome'), (3, 'Cid', 'cid@x.org', 'Paris');"
        "INSERT INTO orders VALUES (1, 1, 10.5), (2, 2, 20.0);"
    )
    conn.commit()
    conn.close()
    return path
