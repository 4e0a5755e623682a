"""What a session costs per question: the same question alone and as the first of a
session (the turns are read), a follow-up and the same query asked whole; without a
History (turns in the process) and with a SQLite History (turns read from it).
Offline model, demo database, template summaries, no cache; medians of 200.

Run::

    .venv/bin/python benches/bench_sessions.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avl.assistant import Assistant, create_demo_database
from avl.history import History

Q = "How many customers are there in each country?"
WHOLE = "How many customers are there in France in each country?"


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        db = create_demo_database(Path(d) / "shop.db")
        for label, url in (("no History", None), ("SQLite History", f"sqlite:///{d}/h.db")):
            h = History(url) if url else None
            a = Assistant(
                db=f"sqlite:///{db}", history=h, cache_threshold=None, summaries="template"
            )
            a.train_from_database()
            alone: list[float] = []
            first: list[float] = []
            follow: list[float] = []
            whole: list[float] = []
            for i in range(200):
                t = time.perf_counter()
                a.ask(Q, user=f"a{i}")
                alone.append(time.perf_counter() - t)
                chat = a.session(user=f"u{i}")
                t = time.perf_counter()
                chat.ask(Q)
                first.append(time.perf_counter() - t)
                t = time.perf_counter()
                chat.ask("and only in France?")
                follow.append(time.perf_counter() - t)
                t = time.perf_counter()
                a.ask(WHOLE, user=f"b{i}")
                whole.append(time.perf_counter() - t)

            def m(xs: list[float]) -> str:
                return f"{statistics.median(xs) * 1000:.2f} ms"

            print(
                f"{label}: alone {m(alone)}, first of a session {m(first)}; "
                f"follow-up {m(follow)}, the same query asked whole {m(whole)}"
            )
            a.close()
            if h is not None:
                h.close()


if __name__ == "__main__":
    main()
