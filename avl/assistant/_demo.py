"""A small sample shop database for the demo, the Console default and examples."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

__all__ = ["DEMO_PAIRS", "DEMO_QUESTIONS", "create_demo_database"]

_DDL = """
CREATE TABLE customers (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  city TEXT NOT NULL,
  country TEXT NOT NULL,
  signup_year INTEGER NOT NULL
);
CREATE TABLE products (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  category TEXT NOT NULL,
  price REAL NOT NULL
);
CREATE TABLE orders (
  id INTEGER PRIMARY KEY,
  customer_id INTEGER NOT NULL REFERENCES customers(id),
  order_date TEXT NOT NULL,
  status TEXT NOT NULL,
  total REAL NOT NULL
);
CREATE TABLE order_items (
  id INTEGER PRIMARY KEY,
  order_id INTEGER NOT NULL REFERENCES orders(id),
  product_id INTEGER NOT NULL REFERENCES products(id),
  quantity INTEGER NOT NULL
);
"""

_NAMES = [
    "Ada Lovelace",
    "Alan Turing",
    "Grace Hopper",
    "Edsger Dijkstra",
    "Barbara Liskov",
    "Donald Knuth",
    "Margaret Hamilton",
    "Ken Thompson",
    "Frances Allen",
    "John McCarthy",
    "Radia Perlman",
    "Tim Berners-Lee",
]
_CITIES = [
    ("London", "United Kingdom"),
    ("Paris", "France"),
    ("Berlin", "Germany"),
    ("Madrid", "Spain"),
    ("Lisbon", "Portugal"),
    ("Rome", "Italy"),
]
_PRODUCTS = [
    ("Keyboard", "Hardware", 49.0),
    ("Mouse", "Hardware", 19.5),
    ("Monitor", "Hardware", 219.0),
    ("Laptop stand", "Accessories", 35.0),
    ("USB cable", "Accessories", 7.5),
    ("Desk lamp", "Accessories", 28.0),
    ("Notebook", "Stationery", 4.0),
    ("Fountain pen", "Stationery", 42.0),
]

#: Questions the demo asks.
DEMO_QUESTIONS = (
    "How many customers are there?",
    "List the names of the products ordered by price descending.",
    "What is the average price of products?",
    "How many customers are there in each country?",
    "Which customers are from Paris?",
    "How many orders have status shipped?",
    "What is the total amount of orders of the customer named Ada Lovelace?",
)

#: Question->SQL pairs the demo trains (the offline model reuses and adapts them).
DEMO_PAIRS = (
    (
        "What is the total amount of orders of the customer named Grace Hopper?",
        "SELECT SUM(o.total) FROM orders AS o JOIN customers AS c ON o.customer_id = c.id "
        "WHERE c.name = 'Grace Hopper'",
    ),
)


def create_demo_database(path: str | Path, *, seed: int = 7) -> Path:
    """Create (or replace) the sample shop database at ``path``.

    Four tables (customers, products, orders, order_items) with deterministic rows.

    Args:
        path: where to write the SQLite file.
        seed: the seed of the generated rows.

    Returns:
        The path.
    """
    p = Path(path)
    if p.exists():
        p.unlink()
    rnd = random.Random(seed)
    conn = sqlite3.connect(p)
    try:
        conn.executescript(_DDL)
        for i, name in enumerate(_NAMES, start=1):
            city, country = _CITIES[(i * 5) % len(_CITIES)]
            conn.execute(
                "INSERT INTO customers VALUES (?, ?, ?, ?, ?)",
                (i, name, city, country, 2018 + (i % 6)),
            )
        for i, (name, cat, price) in enumerate(_PRODUCTS, start=1):
            conn.execute("INSERT INTO products VALUES (?, ?, ?, ?)", (i, name, cat, price))
        item_id = 1
        for oid in range(1, 41):
            cust = rnd.randint(1, len(_NAMES))
            status = rnd.choice(["shipped", "shipped", "pending", "cancelled"])
            date = f"2025-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}"
            total = 0.0
            lines = []
            for _ in range(rnd.randint(1, 3)):
                pid = rnd.randint(1, len(_PRODUCTS))
                qty = rnd.randint(1, 4)
                total += _PRODUCTS[pid - 1][2] * qty
                lines.append((item_id, oid, pid, qty))
                item_id += 1
            conn.execute(
                "INSERT INTO orders VALUES (?, ?, ?, ?, ?)",
                (oid, cust, date, status, round(total, 2)),
            )
            conn.executemany("INSERT INTO order_items VALUES (?, ?, ?, ?)", lines)
        conn.commit()
    finally:
        conn.close()
    return p
