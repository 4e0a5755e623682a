"""History benchmarks: record rate and full-text search latency, beside raw drivers.

Plain script (prints figures; never asserts on timings)::

    .venv/bin/python benches/bench_history.py                      # full run
    .venv/bin/python benches/bench_history.py --entries 100000     # smaller search corpus
    .venv/bin/python benches/bench_history.py --skip-pg

For each backend, in the same run and against the same schema (the DDL comes from
the backend module, FTS5 triggers / generated tsvector + GIN index included):

- record rate, one entry per transaction: ``History.record`` vs a raw driver
  ``INSERT`` + ``COMMIT`` of the same row values (the raw baseline does not compute
  hashes, serialise entries or read the chain head);
- record rate, batched: ``History.record_many`` (1,000 per call) vs raw
  ``executemany`` (SQLite) or ``COPY`` (PostgreSQL) of 1,000 rows per transaction;
- full-text search over ``--entries`` synthetic entries: p50/p95/p99 of
  ``History.search(text=..., limit=20)``, beside the raw ``MATCH`` /
  ``@@ plainto_tsquery`` query with the same ``ORDER BY seq DESC LIMIT 20``.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avl.history import Entry, History
from avl.history._chain import CONTENT_FIELDS, record_of
from avl.history.backends import postgres as pg_backend
from avl.history.backends import sqlite as sqlite_backend

WORDS = [
    "orders",
    "customers",
    "revenue",
    "region",
    "month",
    "year",
    "product",
    "category",
    "supplier",
    "invoice",
    "payment",
    "refund",
    "shipment",
    "warehouse",
    "employee",
    "salary",
    "department",
    "manager",
    "sales",
    "target",
    "quarter",
    "growth",
    "churn",
    "subscription",
    "plan",
    "discount",
    "coupon",
    "cart",
    "session",
    "visit",
    "page",
    "click",
    "conversion",
    "funnel",
    "campaign",
    "email",
    "open",
    "bounce",
    "ticket",
    "support",
    "priority",
    "status",
    "latency",
    "error",
    "deploy",
    "release",
    "incident",
    "alert",
    "metric",
    "dashboard",
]
TABLES = ["orders", "customers", "products", "invoices", "payments", "tickets", "events"]
PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"


def make_entries(n: int, seed: int) -> list[Entry]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = rng.sample(WORDS, 6)
        table = rng.choice(TABLES)
        out.append(
            Entry(
                user=f"user{rng.randrange(50)}",
                question=f"how many {' '.join(words)} last {rng.choice(['week', 'month'])}",
                sql=f"SELECT {words[0]}, count(*) FROM {table} WHERE {words[1]} > 10 GROUP BY 1",
                outcome="ok",
                model="openai/gpt-4o-mini",
                tokens_in=rng.randrange(100, 2000),
                tokens_out=rng.randrange(10, 200),
                timings={"generate": rng.random(), "execute": rng.random() / 10},
                time=1_700_000_000.0 + rng.random(),
            )
        )
    return out


def sqlite_row(entry: Entry, seq: int, i: int) -> tuple[Any, ...]:
    rec = record_of(entry)
    rec["id"] = f"raw{i:012d}"
    return sqlite_backend._row_params(rec, seq, "0" * 64, "f" * 64)


def pg_row(entry: Entry, seq: int, i: int) -> tuple[Any, ...]:
    rec = record_of(entry)
    rec["id"] = f"raw{i:012d}"
    return pg_backend._row_params(rec, seq, "0" * 64, "f" * 64)


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:>10,.0f} entries/s"


def pct(samples: Sequence[float]) -> str:
    s = sorted(samples)

    def q(p: float) -> float:
        return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))] * 1000

    return f"p50 {q(50):6.2f} ms  p95 {q(95):6.2f} ms  p99 {q(99):6.2f} ms"


def queries(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        k = 1 if i % 3 == 0 else 2
        out.append(" ".join(rng.sample(WORDS, k)))
    return out


def alternate(
    n: int, avl: Callable[[int, int], None], raw: Callable[[int, int], None], rounds: int = 5
) -> tuple[float, float]:
    """Run ``n`` items through avl and raw in alternating chunks; total seconds of each."""
    t_avl = t_raw = 0.0
    step = -(-n // rounds)
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        t_raw += timed(lambda lo=lo, hi=hi: raw(lo, hi))
        t_avl += timed(lambda lo=lo, hi=hi: avl(lo, hi))
    return t_avl, t_raw


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# --------------------------------------------------------------------------- SQLite


def bench_sqlite(args: argparse.Namespace, tmp: Path) -> None:
    print("== SQLite", sqlite3.sqlite_version, "(WAL, synchronous=NORMAL)")
    sqlite_search(args, tmp)
    if args.search_only:
        return
    n1 = args.record
    entries = make_entries(n1, 1)
    cols = f"seq, {sqlite_backend._COLS}, prev_hash, hash"
    marks = ", ".join("?" * (len(CONTENT_FIELDS) + 3))

    def raw_conn(path: Path) -> sqlite3.Connection:
        conn = sqlite3.connect(str(path), isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        for stmt in sqlite_backend.schema_sql("avl_history"):
            conn.execute(stmt)
        return conn

    # one per transaction (avl and raw alternate in 5 rounds to share the noise)
    raw = raw_conn(tmp / "raw1.db")
    rows = [sqlite_row(e, i + 1, i) for i, e in enumerate(entries)]
    h = History(f"sqlite:///{tmp / 'avl1.db'}")

    def raw_single(lo: int, hi: int) -> None:
        for r in rows[lo:hi]:
            raw.execute("BEGIN")
            raw.execute(f"INSERT INTO avl_history_entries({cols}) VALUES ({marks})", r)
            raw.execute("COMMIT")

    def avl_single(lo: int, hi: int) -> None:
        for e in entries[lo:hi]:
            h.record(e)

    t_avl, t_raw = alternate(n1, avl_single, raw_single)
    h.close()
    print(
        f"record, 1/txn   avl {rate(n1, t_avl)}   raw sqlite3 {rate(n1, t_raw)}   "
        f"ratio {t_raw / t_avl:.2f}x"
    )

    # batched
    nb = args.record_batched
    entries = make_entries(nb, 2)
    rows = [sqlite_row(e, i + 1, i) for i, e in enumerate(entries)]
    raw = raw_conn(tmp / "raw2.db")
    h = History(f"sqlite:///{tmp / 'avl2.db'}")

    def raw_batched(lo: int, hi: int) -> None:
        for i in range(lo, hi, 1000):
            raw.execute("BEGIN")
            raw.executemany(
                f"INSERT INTO avl_history_entries({cols}) VALUES ({marks})",
                rows[i : min(i + 1000, hi)],
            )
            raw.execute("COMMIT")

    def avl_batched(lo: int, hi: int) -> None:
        for i in range(lo, hi, 1000):
            h.record_many(entries[i : min(i + 1000, hi)])

    t_avl, t_raw = alternate(nb, avl_batched, raw_batched)
    h.close()
    print(
        f"record, batched avl {rate(nb, t_avl)}   raw sqlite3 {rate(nb, t_raw)}   "
        f"ratio {t_raw / t_avl:.2f}x"
    )


def sqlite_search(args: argparse.Namespace, tmp: Path) -> None:
    """Full-text search latency over ``args.entries`` entries (avl and raw FTS5)."""
    n = args.entries
    path = Path(args.sqlite_db) if args.sqlite_db else tmp / "big.db"
    h = History(f"sqlite:///{path.resolve()}")
    newest = h.search(limit=1)
    have = int(newest[0].seq or 0) if newest else 0
    t0 = time.perf_counter()
    for start in range(have, n, 10_000):
        h.record_many(make_entries(min(10_000, n - start), 100 + start))
    print(f"loaded {n - have:,} entries with record_many in {time.perf_counter() - t0:.1f} s")
    qs = queries(args.queries, 7)
    h.search(text=qs[0], limit=20)
    lat = []
    hits = 0
    for q in qs:
        t = time.perf_counter()
        hits += len(h.search(text=q, limit=20))
        lat.append(time.perf_counter() - t)
    print(f"search avl      {pct(lat)}   ({len(qs)} queries, {hits / len(qs):.1f} hits avg)")
    conn = sqlite3.connect(str(path))
    lat = []
    for q in qs:
        match = " ".join(f'"{w}"' for w in q.split())
        t = time.perf_counter()
        conn.execute(
            f"SELECT {sqlite_backend._SELECT} FROM avl_history_fts f JOIN avl_history_entries e "
            "ON e.seq = f.rowid WHERE avl_history_fts MATCH ? ORDER BY f.rowid DESC LIMIT 20",
            (match,),
        ).fetchall()
        lat.append(time.perf_counter() - t)
    print(f"search raw      {pct(lat)}")
    t = timed(lambda: h.verify())
    print(f"verify {n:,} entries: {t:.1f} s")
    h.close()


# ------------------------------------------------------------------------ PostgreSQL


def bench_pg(args: argparse.Namespace) -> None:
    import psycopg

    prefix = f"bench_hist_{uuid.uuid4().hex[:8]}"
    dsn = args.pg_dsn
    conn = psycopg.connect(dsn, autocommit=True)
    print("== PostgreSQL", conn.info.server_version)
    cols = f"seq, {pg_backend._COLS}, prev_hash, hash"
    marks = ", ".join(["%s"] * (len(CONTENT_FIELDS) + 3))
    made: list[str] = []

    def schema(p: str) -> None:
        made.append(p)
        for stmt in pg_backend.schema_sql(p):
            conn.execute(stmt)

    try:
        n1 = args.pg_record
        entries = make_entries(n1, 1)
        rows = [pg_row(e, i + 1, i) for i, e in enumerate(entries)]
        schema(f"{prefix}_r1")
        made.append(f"{prefix}_a1")
        h = History(f"{dsn}?table={prefix}_a1")

        def raw_single(lo: int, hi: int) -> None:
            for r in rows[lo:hi]:
                with conn.transaction():
                    conn.execute(f"INSERT INTO {prefix}_r1_entries({cols}) VALUES ({marks})", r)

        def avl_single(lo: int, hi: int) -> None:
            for e in entries[lo:hi]:
                h.record(e)

        t_avl, t_raw = alternate(n1, avl_single, raw_single)
        h.close()
        print(
            f"record, 1/txn   avl {rate(n1, t_avl)}   raw psycopg {rate(n1, t_raw)}   "
            f"ratio {t_raw / t_avl:.2f}x"
        )

        nb = args.pg_record_batched
        entries = make_entries(nb, 2)
        rows = [pg_row(e, i + 1, i) for i, e in enumerate(entries)]
        schema(f"{prefix}_r2")
        made.append(f"{prefix}_a2")
        h = History(f"{dsn}?table={prefix}_a2")

        def raw_batched(lo: int, hi: int) -> None:
            for i in range(lo, hi, 1000):
                with (
                    conn.transaction(),
                    conn.cursor().copy(f"COPY {prefix}_r2_entries({cols}) FROM STDIN") as cp,
                ):
                    for r in rows[i : min(i + 1000, hi)]:
                        cp.write_row(r)

        def avl_batched(lo: int, hi: int) -> None:
            for i in range(lo, hi, 1000):
                h.record_many(entries[i : min(i + 1000, hi)])

        t_avl, t_raw = alternate(nb, avl_batched, raw_batched)
        h.close()
        print(
            f"record, batched avl {rate(nb, t_avl)}   raw COPY {rate(nb, t_raw)}   "
            f"ratio {t_raw / t_avl:.2f}x"
        )

        n = args.pg_entries
        made.append(f"{prefix}_big")
        h = History(f"{dsn}?table={prefix}_big")
        t0 = time.perf_counter()
        for start in range(0, n, 10_000):
            h.record_many(make_entries(min(10_000, n - start), 100 + start))
        conn.execute(f"ANALYZE {prefix}_big_entries")
        print(f"loaded {n:,} entries with record_many (COPY) in {time.perf_counter() - t0:.1f} s")
        qs = queries(args.queries, 7)
        h.search(text=qs[0], limit=20)
        lat = []
        for q in qs:
            t = time.perf_counter()
            h.search(text=q, limit=20)
            lat.append(time.perf_counter() - t)
        print(f"search avl      {pct(lat)}   ({len(qs)} queries)")
        lat = []
        for q in qs:
            t = time.perf_counter()
            conn.execute(
                f"SELECT {pg_backend._SELECT} FROM {prefix}_big_entries e WHERE e.tsv @@ "
                "plainto_tsquery('simple', %s) ORDER BY e.seq DESC LIMIT 20",
                (q,),
            ).fetchall()
            lat.append(time.perf_counter() - t)
        print(f"search raw      {pct(lat)}")
        t = timed(lambda: h.verify())
        print(f"verify {n:,} entries: {t:.1f} s")
        h.close()
    finally:
        for p in made:
            conn.execute(f"DROP TABLE IF EXISTS {p}_entries")
            conn.execute(f"DROP TABLE IF EXISTS {p}_meta")
        conn.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--entries", type=int, default=1_000_000, help="SQLite search corpus size")
    ap.add_argument("--record", type=int, default=5_000, help="entries for the 1/txn figure")
    ap.add_argument("--record-batched", type=int, default=50_000)
    ap.add_argument(
        "--sqlite-db", default="", help="keep the search corpus in this file (reused when rerun)"
    )
    ap.add_argument("--search-only", action="store_true", help="skip the record-rate figures")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--skip-pg", action="store_true")
    ap.add_argument("--skip-sqlite", action="store_true")
    ap.add_argument("--pg-dsn", default=PG_DSN)
    ap.add_argument("--pg-entries", type=int, default=200_000, help="PostgreSQL search corpus")
    ap.add_argument("--pg-record", type=int, default=2_000)
    ap.add_argument("--pg-record-batched", type=int, default=20_000)
    args = ap.parse_args()
    print(json.dumps(dict(vars(args).items())))
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_sqlite:
            bench_sqlite(args, Path(tmp))
    if not args.skip_pg:
        bench_pg(args)
    _ = statistics


if __name__ == "__main__":
    main()
