"""The Assistant quickstart example runs end to end with the offline generator."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quickstart_example() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "assistant_quickstart.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = done.stdout.splitlines()
    assert (
        "  sql: SELECT SUM(o.total) FROM orders AS o JOIN customers AS c ON o.customer_id = c.id "
        "WHERE c.name = 'Alan Turing' LIMIT 1000"
    ) in lines
    assert "691.5" in [line.strip() for line in lines]  # numbers are right-aligned
    assert "sql {'sql': 'SELECT AVG(price) FROM products', 'attempt': 1}" in lines
    assert "rows {'columns': ['AVG(price)'], 'rows': [[50.5]], 'truncated': False}" in lines
    assert lines[-3:] == [
        "6 ok What is the average price of products?",
        "4 ok What is the total amount of orders of the customer named Alan Turing?",
        "2 ok How many customers are there in each country?",
    ]
    assert any(line.startswith("Explanation(") for line in lines)
    assert any(line.startswith("CREATE INDEX ix_orders_status ON") for line in lines)


def test_roles_example() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "assistant_roles.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = done.stdout.splitlines()
    assert lines[0] == (
        "customers ['id', 'name', 'country', 'signup_year'] "
        "rows are filtered for you by your access policy"
    )
    assert lines[2] == (
        "SELECT COUNT(*) FROM (SELECT * FROM customers WHERE country = 'France' LIMIT -1 OFFSET 0) AS customers ((2,),)"
    )
    assert lines[3].startswith("refused: no policy is configured for role 'suport'")
    assert [line.split()[1] for line in lines[4:]] == ["pending", "ok", "error"]
    assert "completes:" in lines[5]


def test_followups_example() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "assistant_followups.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = [line.strip() for line in done.stdout.splitlines()]
    assert (
        "SELECT country, COUNT(*) FROM customers WHERE country = 'Germany' GROUP BY country "
        "LIMIT 1000"
    ) in lines
    assert "One row: country Germany, count 2." in lines
    assert "SELECT name FROM products ORDER BY price DESC LIMIT 3" in lines
    assert "3 rows; the first is name Monitor." in lines
    assert lines[-2:] == ["bob sees 0 turns", "ann has 5 turns"]
