"""The database examples run as shipped and print what they promise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(name: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=ROOT,
    )
    return done.stdout.splitlines()


def test_duckdb_example() -> None:
    lines = _run("db_duckdb.py")
    assert lines[:2] == ["sql: SELECT SUM(amount) FROM sales LIMIT 1000", "rows: ((240,),)"]
    assert lines[2].startswith("refused: the database rejected the query: Permission Error")


@pytest.mark.parametrize("name", ["db_sqlalchemy.py"])
def test_sqlalchemy_example(name: str) -> None:
    lines = _run(name)
    assert lines[:2] == ["dialect: sqlite", "rows: ((3,),)"]
    assert lines[2].startswith("refused: the database rejected the query: attempt to write")
    assert lines[3] == "users left: 3"
