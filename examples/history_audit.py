"""Show tamper evidence: edit a row behind the library's back and let verify() find it.

Run: python examples/history_audit.py
"""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

from avl.history import Entry, History


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "audit.db"
        with History(f"sqlite:///{path}", hmac_key=b"audit-key") as history:
            stored = history.record_many(
                Entry(user="ann", question=f"question {i}", sql=f"SELECT {i}") for i in range(5)
            )
            print("before:", history.verify().ok)

            # Someone with write access to the database edits entry 3's SQL.
            with sqlite3.connect(path) as conn:
                conn.execute(
                    "UPDATE avl_history_entries SET sql = 'SELECT secret FROM vault' WHERE seq = 3"
                )

            report = history.verify()
            print("after:", report.ok, report.problem, report.seq, report.entry_id)
            print(report.message)
            assert report.entry_id == stored[2].id


if __name__ == "__main__":
    main()
