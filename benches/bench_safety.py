"""SafeQuery speed: checks per second beside ``sqlglot.parse_one`` in the same run.

Run: ``.venv/bin/python benches/bench_safety.py [--rounds 7] [--seconds 0.3]``
(or ``pytest benches/bench_safety.py --benchmark-only`` for pytest-benchmark).

Four workloads over the same statements:

- ``parse_one``: ``sqlglot.parse_one(sql, read=dialect)`` alone (the floor);
- ``check uncached``: ``SafeQuery(policy, cache_size=0).check(sql)`` (one
  tokenisation, one parse, one walk, and the LIMIT rewrite);
- ``check cached``: the same statements through a guard whose LRU already holds
  them.

Statements: ``short`` (about 60-90 characters) and ``long`` (about 1,100
characters, CTEs, joins, window functions). The policy is the standard one of the
corpus test: schema given, tables allow-listed, ``max_rows=1000``. Each contender
runs ``--rounds`` times interleaved; within a round the fastest call (one pass over
the statements) is kept, and the best round is reported (the machine is shared and
noisy). The ratio column is check/parse_one per statement.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SCHEMA = {
    "customers": ["id", "name", "email", "country", "created_at"],
    "orders": ["id", "customer_id", "total", "status", "created_at"],
    "order_items": ["id", "order_id", "product_id", "quantity", "price"],
    "products": ["id", "name", "category", "price"],
}

SHORT = [
    "SELECT id, name, email FROM customers WHERE id = 42",
    "SELECT name, price FROM products WHERE category = 'books' ORDER BY price DESC LIMIT 10",
    "SELECT COUNT(*) FROM orders WHERE status = 'shipped'",
    "SELECT c.name, o.total FROM customers c JOIN orders o ON o.customer_id = c.id",
    "SELECT country, COUNT(*) AS n FROM customers GROUP BY country HAVING COUNT(*) > 5",
]

LONG = [
    """WITH recent AS (
  SELECT o.customer_id, SUM(o.total) AS spent, COUNT(*) AS n_orders, MAX(o.created_at) AS last_order
  FROM orders AS o
  WHERE o.created_at >= '2024-01-01' AND o.status IN ('shipped', 'delivered')
  GROUP BY o.customer_id
), items AS (
  SELECT oi.order_id, SUM(oi.quantity * oi.price) AS item_total, COUNT(DISTINCT oi.product_id) AS n_products
  FROM order_items AS oi JOIN products AS p ON p.id = oi.product_id
  WHERE p.category <> 'gift cards'
  GROUP BY oi.order_id
), ranked AS (
  SELECT r.customer_id, r.spent, r.n_orders, r.last_order,
         RANK() OVER (ORDER BY r.spent DESC) AS spend_rank,
         NTILE(4) OVER (ORDER BY r.n_orders) AS order_quartile
  FROM recent AS r
)
SELECT c.name, c.email, c.country, k.spent, k.n_orders, k.spend_rank, k.order_quartile,
       (SELECT AVG(i.item_total) FROM items AS i JOIN orders AS o2 ON o2.id = i.order_id
        WHERE o2.customer_id = c.id) AS avg_items
FROM ranked AS k
JOIN customers AS c ON c.id = k.customer_id
WHERE k.spend_rank <= 100 AND (c.country = 'NL' OR c.country = 'BE') AND c.email LIKE '%@%'
ORDER BY k.spend_rank, c.name""",
    """SELECT p.category,
       COUNT(DISTINCT o.customer_id) AS buyers,
       SUM(oi.quantity) AS units,
       SUM(oi.quantity * oi.price) AS revenue,
       AVG(oi.price) AS avg_price,
       SUM(CASE WHEN o.status = 'returned' THEN oi.quantity ELSE 0 END) AS returned_units,
       ROUND(100.0 * SUM(CASE WHEN o.status = 'returned' THEN oi.quantity ELSE 0 END) / SUM(oi.quantity), 2) AS return_rate,
       MIN(o.created_at) AS first_sale,
       MAX(o.created_at) AS last_sale
FROM order_items AS oi
JOIN orders AS o ON o.id = oi.order_id
JOIN products AS p ON p.id = oi.product_id
JOIN customers AS c ON c.id = o.customer_id
WHERE o.created_at BETWEEN '2023-01-01' AND '2023-12-31'
  AND c.country IN ('NL', 'BE', 'DE', 'FR', 'LU')
  AND p.price > 0
  AND o.customer_id IN (SELECT customer_id FROM orders GROUP BY customer_id HAVING COUNT(*) >= 2)
GROUP BY p.category
HAVING SUM(oi.quantity) > 10
ORDER BY revenue DESC, p.category""",
]

DIALECT = "postgres"


def measure(fn: Callable[[], int], seconds: float) -> float:
    """Call ``fn`` (returns how many statements it handled) repeatedly for ``seconds``.

    Returns the rate of the fastest call: on a shared, loaded machine the minimum
    is the figure least disturbed by other processes.
    """
    best = 0.0
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        done = fn()
        t1 = time.perf_counter()
        best = max(best, done / (t1 - t0))
        if t1 - start >= seconds:
            return best


def contenders(statements: list[str]) -> dict[str, Callable[[], int]]:
    import sqlglot

    from avl.safety import Policy, SafeQuery

    policy = Policy(dialect=DIALECT, schema=SCHEMA, allowed_tables=list(SCHEMA), max_rows=1000)
    uncached = SafeQuery(policy, cache_size=0)
    cached = SafeQuery(policy, cache_size=1024)
    for sql in statements:
        verdict = uncached.check(sql)
        assert verdict.allowed, (sql, verdict.violations)
        cached.check(sql)
    n = len(statements)

    def parse() -> int:
        for sql in statements:
            sqlglot.parse_one(sql, read=DIALECT)
        return n

    def check() -> int:
        for sql in statements:
            uncached.check(sql)
        return n

    def check_cached() -> int:
        for _ in range(20):
            for sql in statements:
                cached.check(sql)
        return 20 * n

    return {"parse_one": parse, "check uncached": check, "check cached": check_cached}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=0.3)
    args = parser.parse_args(argv)
    import sqlglot

    try:
        import sqlglotc  # noqa: F401

        compiled = "sqlglotc (compiled)"
    except ImportError:
        compiled = "pure Python" if not _compiled_sqlglot() else "compiled modules"
    print(
        f"sqlglot {sqlglot.__version__}, {compiled}; dialect {DIALECT}; best of {args.rounds} rounds"
    )
    for label, statements in (("short", SHORT), ("long", LONG)):
        chars = sum(map(len, statements)) // len(statements)
        runs = contenders(statements)
        best: dict[str, float] = dict.fromkeys(runs, 0.0)
        ratios: list[float] = []  # check uncached / parse_one, per round
        for _ in range(args.rounds):
            round_best: dict[str, float] = {}
            for name, fn in runs.items():
                round_best[name] = measure(fn, args.seconds)
                best[name] = max(best[name], round_best[name])
            ratios.append(round_best["parse_one"] / round_best["check uncached"])
        base = best["parse_one"]
        print(f"\n{label} statements (~{chars} chars, {len(statements)} distinct)")
        print(f"  {'contender':<16} {'per second':>12} {'us each':>9} {'vs parse_one':>13}")
        for name, rate in best.items():
            ratio = base / rate if name != "check cached" else rate / base
            note = f"{ratio:.2f}x cost" if name != "check cached" else f"{ratio:.0f}x faster"
            print(f"  {name:<16} {rate:>12,.0f} {1e6 / rate:>9.1f} {note:>13}")
        ratios.sort()
        print(
            f"  uncached/parse_one per round: min {ratios[0]:.2f}x, "
            f"median {ratios[len(ratios) // 2]:.2f}x, max {ratios[-1]:.2f}x"
        )


def _compiled_sqlglot() -> bool:
    import sqlglot.parser

    return not str(getattr(sqlglot.parser, "__file__", "")).endswith(".py")


# pytest-benchmark entry points (``pytest benches/bench_safety.py --benchmark-only``)
def test_parse_one_short(benchmark):  # type: ignore[no-untyped-def]
    benchmark(contenders(SHORT)["parse_one"])


def test_check_uncached_short(benchmark):  # type: ignore[no-untyped-def]
    benchmark(contenders(SHORT)["check uncached"])


def test_check_cached_short(benchmark):  # type: ignore[no-untyped-def]
    benchmark(contenders(SHORT)["check cached"])


def test_parse_one_long(benchmark):  # type: ignore[no-untyped-def]
    benchmark(contenders(LONG)["parse_one"])


def test_check_uncached_long(benchmark):  # type: ignore[no-untyped-def]
    benchmark(contenders(LONG)["check uncached"])


if __name__ == "__main__":
    main()
