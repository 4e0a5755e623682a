"""Execution-side resource bounds, per engine: statements of the resource class run on
``Database`` directly (no SafeQuery in front), with the peak memory of the process
that runs them and the wall time beside the statement timeout.

Plain script (prints figures; never asserts on timings)::

    .venv/bin/python benches/bench_db_resources.py                    # all engines, 3 runs
    .venv/bin/python benches/bench_db_resources.py --engines sqlite duckdb --runs 1

What is measured (Linux ``/proc``, as root for the servers):

- SQLite and DuckDB run inside the process: each statement runs in a fresh child
  process; memory is its peak RSS (``VmHWM``) minus its RSS just before the
  statement (after opening the database and a first query);
- PostgreSQL: the backend process of the connection (``pg_backend_pid()``); its peak
  RSS is reset (``/proc/PID/clear_refs`` = 5) before the statement, then ``VmHWM``
  after, minus its RSS before (shared buffers it touches count too);
- MariaDB: the ``mariadbd`` process, the same way (other clients' work on the same
  server shows up as noise).

Each statement runs with ``timeout_s`` (default 1 s) and the Database's default
limits (``memory_mb=256``, ``max_value_bytes=16 MiB``); the target is < 256 MB and
at most 1 s past the timeout.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PG = os.environ.get("AVL_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
MY = os.environ.get("AVL_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")

STATEMENTS: dict[str, list[tuple[str, str]]] = {
    "sqlite": [
        ("printf width 1e9", "SELECT length(printf('%.*c', 1000000000, 'x'))"),
        (
            "doubling recursive CTE",
            "WITH RECURSIVE r(s, n) AS (SELECT 'x', 0 UNION ALL SELECT s || s, n + 1 FROM r "
            "WHERE n < 40) SELECT max(length(s)) FROM r",
        ),
        ("zeroblob 2e9", "SELECT length(zeroblob(2000000000))"),
        ("randomblob 1e9", "SELECT length(randomblob(1000000000))"),
        (
            "group_concat of 1e8 rows",
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000000) "
            "SELECT length(group_concat(printf('%0100d', i))) FROM n",
        ),
        ("cartesian count", "SELECT count(*) FROM big a, big b, big c"),
        ("cartesian distinct", "SELECT count(DISTINCT a.id * 1000000 + b.id) FROM big a, big b"),
    ],
    "postgres": [
        ("repeat(repeat) 1 GB", "SELECT length(repeat(repeat('x', 100000), 10000))"),
        (
            "doubling recursive CTE",
            "WITH RECURSIVE r(s, n) AS (SELECT 'x'::text, 0 UNION ALL SELECT s || s, n + 1 "
            "FROM r WHERE n < 40) SELECT max(length(s)) FROM r",
        ),
        (
            "string_agg over generate_series(1e6)",
            "SELECT length(string_agg(repeat('x', 1000), ',')) FROM generate_series(1, 1000000)",
        ),
        (
            "array_agg over generate_series(1e8)",
            "SELECT cardinality(array_agg(i)) FROM generate_series(1, 100000000) i",
        ),
        (
            "cartesian count",
            "SELECT count(*) FROM generate_series(1, 100000) a, generate_series(1, 100000) b",
        ),
        (
            "cartesian distinct (sort)",
            "SELECT count(DISTINCT (a, b)) FROM generate_series(1, 4000) a, "
            "generate_series(1, 4000) b",
        ),
    ],
    "mysql": [
        ("repeat(repeat) 1 GB", "SELECT length(repeat(repeat('x', 100000), 10000))"),
        (
            "doubling recursive CTE",
            "WITH RECURSIVE r(s, n) AS (SELECT CAST('x' AS CHAR(16000000)), 0 UNION ALL "
            "SELECT CONCAT(s, s), n + 1 FROM r WHERE n < 40) SELECT max(length(s)) FROM r",
        ),
        (
            "group_concat over 1e6 rows",
            "SELECT length(group_concat(repeat('x', 1000))) FROM seq_1_to_1000000",
        ),
        ("cartesian count", "SELECT count(*) FROM seq_1_to_100000 a, seq_1_to_100000 b"),
        (
            "cartesian distinct (temp table)",
            "SELECT count(DISTINCT a.seq * 100000 + b.seq) FROM seq_1_to_4000 a, seq_1_to_4000 b",
        ),
    ],
    "duckdb": [
        ("repeat(repeat) 1 GB", "SELECT length(repeat(repeat('x', 100000), 10000))"),
        (
            "doubling recursive CTE",
            "WITH RECURSIVE r(s, n) AS (SELECT 'x', 0 UNION ALL SELECT s || s, n + 1 FROM r "
            "WHERE n < 40) SELECT max(length(s)) FROM r",
        ),
        (
            "string_agg over range(1e6)",
            "SELECT length(string_agg(repeat('x', 1000), ',')) FROM range(1000000)",
        ),
        ("list over range(1e8)", "SELECT len(list(range)) FROM range(100000000)"),
        ("lpad 1e9", "SELECT length(lpad('x', 1000000000, 'y'))"),
        ("scalar range(1e9) list", "SELECT len(range(1000000000))"),
        ("cartesian count", "SELECT count(*) FROM range(100000) a, range(100000) b"),
        (
            "cartesian distinct",
            "SELECT count(DISTINCT a.range * 100000 + b.range) FROM range(4000) a, range(4000) b",
        ),
    ],
}


def status_kb(pid: int, field: str) -> int:
    """A ``/proc/PID/status`` field in kB (``VmRSS``, ``VmHWM``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def run_child(engine: str, path: str, sql: str, timeout_s: float) -> dict[str, Any]:
    """In a fresh child process: open, warm up, run ``sql``; measure itself."""
    from avl.assistant import Database

    url = f"{'sqlite' if engine == 'sqlite' else 'duckdb'}:///{path}"
    db = Database(url, timeout_s=timeout_s)
    db.execute("SELECT count(*) FROM big")
    me = os.getpid()
    base = status_kb(me, "VmRSS")
    reset_peak(me)
    t0 = time.perf_counter()
    try:
        res = db.execute(sql)
        outcome = f"rows {res.rows[:1]}"
    except Exception as exc:
        outcome = f"{type(exc).__name__}: {str(exc).splitlines()[0][:90]}"
    wall = time.perf_counter() - t0
    peak = status_kb(me, "VmHWM")
    return {"wall_s": wall, "base_mb": base / 1024, "peak_mb": peak / 1024, "outcome": outcome}


def run_server(engine: str, sql: str, timeout_s: float) -> dict[str, Any]:
    from avl.assistant import Database

    db = Database(PG if engine == "postgres" else MY, timeout_s=timeout_s, pool_size=1)
    if engine == "postgres":
        pid = int(db.execute("SELECT pg_backend_pid()").rows[0][0])
    else:
        pid = int(subprocess.check_output(["pidof", "mariadbd"]).split()[0])
        db.execute("SELECT 1")
    base = status_kb(pid, "VmRSS")
    reset_peak(pid)
    t0 = time.perf_counter()
    try:
        res = db.execute(sql)
        outcome = f"rows {res.rows[:1]}"
    except Exception as exc:
        outcome = f"{type(exc).__name__}: {str(exc).splitlines()[0][:90]}"
    wall = time.perf_counter() - t0
    peak = status_kb(pid, "VmHWM")
    db.close()
    return {"wall_s": wall, "base_mb": base / 1024, "peak_mb": peak / 1024, "outcome": outcome}


def child(cmd: list[str], timeout_s: float) -> dict[str, Any]:
    """Run one child measurement; a child still running 60 s past the timeout is
    killed and reported as such."""
    t0 = time.perf_counter()
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s + 60)
    except subprocess.TimeoutExpired:
        wall = time.perf_counter() - t0
        return {"wall_s": wall, "base_mb": 0.0, "peak_mb": 0.0, "outcome": "KILLED (still running)"}
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        err = (out.stderr.strip().splitlines() or ["?"])[-1]
        return {
            "wall_s": time.perf_counter() - t0,
            "base_mb": 0.0,
            "peak_mb": 0.0,
            "outcome": f"CHILD DIED (exit {out.returncode}): {err[:80]}",
        }
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def make_files(tmp: Path) -> dict[str, str]:
    import sqlite3

    import duckdb

    lite = tmp / "bench.db"
    conn = sqlite3.connect(lite)
    conn.execute("CREATE TABLE big (id INTEGER PRIMARY KEY, k INTEGER)")
    conn.execute(
        "INSERT INTO big WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
        "WHERE i < 100000) SELECT i, i % 3 FROM n"
    )
    conn.commit()
    conn.close()
    duck = tmp / "bench.duckdb"
    dconn = duckdb.connect(str(duck))
    dconn.execute("CREATE TABLE big AS SELECT range AS id, range % 3 AS k FROM range(100000)")
    dconn.close()
    return {"sqlite": str(lite), "duckdb": str(duck)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--engines", nargs="*", default=["sqlite", "postgres", "mysql", "duckdb"])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=1.0)
    ap.add_argument("--child", nargs=3, metavar=("ENGINE", "PATH", "INDEX"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        engine, path, index = args.child
        sql = STATEMENTS[engine][int(index)][1]
        print(json.dumps(run_child(engine, path, sql, args.timeout)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        files = make_files(Path(tmp))
        worst_mb, worst_over = 0.0, 0.0
        for engine in args.engines:
            print(f"\n== {engine} (timeout {args.timeout:g} s)")
            for i, (label, sql) in enumerate(STATEMENTS[engine]):
                runs = []
                for _ in range(args.runs):
                    if engine in files:
                        cmd = [
                            sys.executable,
                            __file__,
                            "--timeout",
                            str(args.timeout),
                            "--child",
                            engine,
                            files[engine],
                            str(i),
                        ]
                        runs.append(child(cmd, args.timeout))
                    else:
                        runs.append(run_server(engine, sql, args.timeout))
                used = [r["peak_mb"] - r["base_mb"] for r in runs]
                walls = [r["wall_s"] for r in runs]
                worst_mb = max(worst_mb, max(used))
                worst_over = max(worst_over, max(walls) - args.timeout)
                print(
                    f"  {label:38s} +{statistics.median(used):7.1f} MB "
                    f"({min(used):.1f}-{max(used):.1f})  wall {statistics.median(walls):5.2f} s "
                    f"({min(walls):.2f}-{max(walls):.2f})  {runs[0]['outcome']}"
                )
        print(
            f"\nworst: +{worst_mb:.1f} MB over the process's RSS before the statement; "
            f"{max(0.0, worst_over):.2f} s past the timeout"
        )


if __name__ == "__main__":
    main()
