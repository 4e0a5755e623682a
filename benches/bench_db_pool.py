"""Connection pooling on PostgreSQL: record and ask rates with 8 threads, one
connection shared under a lock (``pool_size=1``, how avl worked before pooling)
beside a pool of 8 (``pool_size=8``), in one run, interleaved.

Plain script (prints figures; never asserts on timings)::

    .venv/bin/python benches/bench_db_pool.py                 # 3 rounds of 4 s each
    .venv/bin/python benches/bench_db_pool.py --rounds 5 --seconds 3
    AVL_TEST_POSTGRES_DSN=postgresql://... .venv/bin/python benches/bench_db_pool.py

- record: ``History.record`` of one entry per call (the PostgreSQL history backend,
  ``?pool_size=N``), 8 threads;
- search: ``History.search(text=..., limit=20)`` over the entries recorded so far;
- execute: ``Database.execute`` of a query that scans 200,000 rows on the server
  (a few ms each), 8 threads;
- ask: ``Assistant.ask`` with a scripted model (no LLM time) running the same
  query: the whole pipeline (retrieval, SafeQuery, execution, history), 8 threads.

Figures are calls per second, the median of the rounds with the spread (min-max).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avl.assistant import Assistant, Database
from avl.history import Entry, History
from avl.testing import FakeChatModel

DSN = os.environ.get("AVL_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
THREADS = 8


def rate(call: Callable[[], object], seconds: float, threads: int = THREADS) -> float:
    """Calls per second of ``call`` from ``threads`` threads for ``seconds``."""
    stop = time.perf_counter() + seconds
    counts = [0] * threads
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            while time.perf_counter() < stop:
                call()
                counts[i] += 1
        except BaseException as exc:  # reported after the run
            errors.append(exc)

    start = time.perf_counter()
    ts = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise errors[0]
    return sum(counts) / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=4.0)
    args = ap.parse_args()

    import psycopg

    table = f"bench_pool_{uuid.uuid4().hex[:8]}"
    prefixes = {n: f"bench_pool_h{n}_{uuid.uuid4().hex[:6]}" for n in (1, 8)}
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, k INTEGER, v TEXT)")
        conn.execute(
            f"INSERT INTO {table} SELECT i, i % 100, md5(i::text) FROM generate_series(1, 200000) i"
        )
        conn.execute(f"ANALYZE {table}")
    query = f"SELECT COUNT(*), MAX(v) FROM {table} WHERE k = 7"
    histories = {n: History(f"{DSN}?table={prefixes[n]}&pool_size={n}") for n in (1, 8)}
    dbs = {n: Database(DSN, pool_size=n) for n in (1, 8)}
    assistants = {
        n: Assistant(
            db=Database(DSN, pool_size=n),
            model=FakeChatModel([], default=query),
            embedder=None,
            cache_threshold=None,
            history=History(f"{DSN}?table={prefixes[n]}_a&pool_size={n}"),
        )
        for n in (1, 8)
    }
    for a in assistants.values():
        a.train_from_database(tables=[table])
    results: dict[tuple[str, int], list[float]] = {}
    try:
        for r in range(args.rounds):
            for name, make in (
                ("record", lambda n: lambda: histories[n].record(Entry(question="q", sql=query))),
                ("search", lambda n: lambda: histories[n].search(text="rows", limit=20)),
                ("execute", lambda n: lambda: dbs[n].execute(query)),
                ("ask", lambda n: lambda: assistants[n].ask("How many rows have k 7?")),
            ):
                for n in (1, 8):
                    got = rate(make(n), args.seconds)
                    results.setdefault((name, n), []).append(got)
                    print(f"round {r + 1} {name:8s} pool_size={n}: {got:8.1f}/s", flush=True)
    finally:
        for h in histories.values():
            h.backend.drop()  # type: ignore[attr-defined]
            h.close()
        for a in assistants.values():
            a.history.backend.drop()  # type: ignore[union-attr]
            a.close()
        for d in dbs.values():
            d.close()
        with psycopg.connect(DSN, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {table}")
    print(f"\n{THREADS} threads, {args.rounds} rounds x {args.seconds:g} s (median, min-max):")
    for name in ("record", "search", "execute", "ask"):
        one, eight = results[(name, 1)], results[(name, 8)]
        m1, m8 = statistics.median(one), statistics.median(eight)
        print(
            f"  {name:8s} pool_size=1 {m1:8.1f}/s ({min(one):.1f}-{max(one):.1f})   "
            f"pool_size=8 {m8:8.1f}/s ({min(eight):.1f}-{max(eight):.1f})   x{m8 / m1:.2f}"
        )


if __name__ == "__main__":
    main()
