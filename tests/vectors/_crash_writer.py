"""Child process for the crash test: writes to a file store forever, acknowledging
each write on stdout only after ``add``/``delete`` has returned."""

from __future__ import annotations

import sys

import numpy as np

from avl.vectors import VectorStore


def vector(i: int) -> np.ndarray:
    return np.random.default_rng(i).standard_normal(16).astype(np.float32)


def main() -> None:
    url, start = sys.argv[1], int(sys.argv[2])
    store = VectorStore(dim=16, metric="ip", backend=url)
    print("ready", flush=True)
    i = start
    while True:
        if i % 5 == 4:
            victim = str(i - 3)
            store.delete(victim)
            print(f"d {victim}", flush=True)
        else:
            store.add(str(i), vector(i), metadata={"i": i})
            print(f"a {i}", flush=True)
        i += 1


if __name__ == "__main__":
    main()
