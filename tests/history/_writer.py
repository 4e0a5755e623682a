"""Child-process writers for the concurrency and crash tests (run with spawn or as a script)."""

from __future__ import annotations

import sys

from avl.history import Entry, History


def write_many(url: str, worker: int, count: int, batch: int) -> int:
    """Record ``count`` entries, ``batch`` per transaction; return how many were written."""
    with History(url) as h:
        done = 0
        while done < count:
            n = min(batch, count - done)
            items = [
                Entry(
                    user=f"w{worker}", question=f"worker {worker} item {done + i}", sql="SELECT 1"
                )
                for i in range(n)
            ]
            if n == 1:
                h.record(items[0])
            else:
                h.record_many(items)
            done += n
        return done


def main() -> None:
    """Record forever, printing each id after ``record`` returns (for the SIGKILL test)."""
    url = sys.argv[1]
    with History(url) as h:
        i = 0
        while True:
            stored = h.record(Entry(user="crash", question=f"crash item {i}", sql="SELECT 1"))
            sys.stdout.write(f"{stored.id}\n")
            sys.stdout.flush()
            i += 1


if __name__ == "__main__":
    main()
