"""Record questions in a SQLite history, search them, look at statistics, verify the chain.

Run: python examples/history_basic.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from avl.history import Entry, History


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'history.db'}"
        with History(url, hmac_key=b"demo-key-keep-me-secret") as history:
            history.record(
                Entry(
                    user="ann",
                    question="how many orders last week?",
                    sql="SELECT count(*) FROM orders",
                    outcome="ok",
                    timings={"generate": 0.8, "execute": 0.02},
                    model="openai/gpt-4o-mini",
                    tokens_in=800,
                    tokens_out=40,
                )
            )
            history.record(
                Entry(
                    user="bob",
                    question="delete the old orders",
                    sql="DELETE FROM orders",
                    allowed=False,
                    violations=("DML",),
                    outcome="rejected",
                    timings={"generate": 0.6, "validate": 0.001},
                )
            )
            for entry in history.search(text="orders", limit=10):
                print(f"{entry.seq} {entry.user:4} {entry.outcome.value:9} {entry.question}")
            stats = history.stats()
            print("by outcome:", {k: v.count for k, v in stats.by_outcome.items()})
            print("p95 latency:", stats.total.p95)
            report = history.verify()
            print("chain ok:", report.ok, "entries checked:", report.checked)


if __name__ == "__main__":
    main()
