"""The Assistant pipeline's own overhead per ``ask`` (everything but the model).

Plain script (prints figures; never asserts on timings)::

    .venv/bin/python benches/bench_assistant.py
    .venv/bin/python benches/bench_assistant.py --n 2000

On the demo shop database (SQLite), with an instant scripted model
(:class:`avl.testing.FakeChatModel` returning a fixed SQL) and the semantic cache
off, it times in one run:

- ``ask`` end to end: rate limit, embedding + retrieval, prompt, model (instant),
  SQL extraction, SafeQuery, read-only execution, answer; bare, and with a memory
  History + Metrics + RateLimiter attached;
- the irreducible parts alone, as the baseline: ``SafeQuery.check`` of the same SQL
  plus ``sqlite3`` executing it on a read-only connection;
- the offline generator's own latency per question (``OfflineChatModel.generate``).

Overhead = ask p50 - baseline p50. ``--cpu`` times with the thread's CPU time instead
of the wall clock (on a busy machine the wall clock's p95 is mostly waits for a CPU).
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import attrs

from avl.assistant import Assistant, create_demo_database
from avl.history import History
from avl.metrics import Metrics
from avl.ratelimit import RateLimiter
from avl.testing import FakeChatModel

SQL = "SELECT c.name, SUM(o.total) FROM orders AS o JOIN customers AS c ON o.customer_id = c.id GROUP BY c.name"


_CLOCK: Callable[[], float] = time.perf_counter


def _times(fn: Callable[[], object], n: int) -> list[float]:
    clock = _CLOCK
    for _ in range(min(50, n)):
        fn()
    out = []
    for _ in range(n):
        t0 = clock()
        fn()
        out.append(clock() - t0)
    return out


def _fmt(name: str, ts: list[float]) -> str:
    q = statistics.quantiles(ts, n=100)
    return f"{name:52} p50 {q[49] * 1e6:8.0f} us   p95 {q[94] * 1e6:8.0f} us"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    ap = argparse.ArgumentParser(description="Assistant pipeline overhead")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument(
        "--cpu",
        action="store_true",
        help="time with this thread's CPU time (a busy machine's waits for a CPU left out)",
    )
    args = ap.parse_args(argv)
    global _CLOCK
    _CLOCK = time.thread_time if args.cpu else time.perf_counter
    with tempfile.TemporaryDirectory() as tmp:
        path = create_demo_database(Path(tmp) / "demo.db")
        url = f"sqlite:///{path}"

        bare = Assistant(db=url, model=FakeChatModel(default=SQL), cache_threshold=None)
        bare.train_from_database()
        full = Assistant(
            db=url,
            model=FakeChatModel(default=SQL),
            cache_threshold=None,
            history=History("memory://"),
            metrics=Metrics(),
            limiter=RateLimiter("1000000/second", storage="memory://"),
        )
        full.train_from_database()
        guard = bare.guard_for(None)
        checked = guard.check(SQL).sql or SQL
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)

        def baseline() -> None:
            guard.check(SQL)
            conn.execute(checked).fetchall()

        q = "Which customers spent the most in total?"
        t_bare = _times(lambda: bare.ask(q), args.n)
        t_full = _times(lambda: full.ask(q, user="u1"), args.n)
        t_base = _times(baseline, args.n)

        try:  # the offline generator's rows need the code after issue 11
            from avl.assistant import DEMO_QUESTIONS
            from avl.schema import WriteContext, build_value_index
        except ImportError:  # an older checkout on PYTHONPATH: the first rows only
            WriteContext = None
        t_gen: list[float] = []
        t_off: list[float] = []
        offline = None
        if WriteContext is not None:
            offline = Assistant(db=url, cache_threshold=None)
            offline.train_from_database()
            from avl.llm.offline import OfflineChatModel

            view = offline.view()
            index = build_value_index(view.values)
            ctx = WriteContext(
                question="",
                tables=view.tables,
                foreign_keys=view.foreign_keys,
                values=view.values,
                value_index=index,
            )
            model = OfflineChatModel()
            qs = list(DEMO_QUESTIONS)
            i = [0]

            def gen() -> None:
                model.write(attrs.evolve(ctx, question=qs[i[0] % len(qs)]))
                i[0] += 1

            t_gen = _times(gen, args.n)
            t_off = _times(lambda: offline.ask(qs[i[0] % len(qs)]), args.n)

        what = "thread CPU time" if args.cpu else "wall time"

        print(f"Assistant pipeline overhead, n={args.n} per row (SQLite demo database), {what}")
        print(_fmt("ask(), instant scripted model", t_bare))
        print(_fmt("ask(), + History + Metrics + RateLimiter (memory)", t_full))
        print(_fmt("baseline: SafeQuery.check + sqlite3 execute", t_base))
        ov = statistics.median(t_bare) - statistics.median(t_base)
        ov_full = statistics.median(t_full) - statistics.median(t_base)
        print(
            f"{'overhead (ask p50 - baseline p50)':52} {ov * 1e6:8.0f} us bare, {ov_full * 1e6:.0f} us with all"
        )
        if offline is not None:
            print(_fmt("offline generator alone (write)", t_gen))
            print(_fmt("ask() with the offline generator", t_off))
        for a in (bare, full, offline):
            if a is not None:
                a.close()
        conn.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
