"""Approximate search over many vectors with the Annoy backend.

New vectors are searched exactly beside the built index until the next rebuild
(in the background); deletes are honoured at once.

Run: python examples/vectors_annoy.py
"""

from __future__ import annotations

import tempfile

import numpy as np

from avl.embeddings import TtyProgress
from avl.vectors import VectorStore


def main() -> None:
    rng = np.random.default_rng(7)
    centres = rng.standard_normal((50, 64)).astype(np.float32)
    vectors = centres[rng.integers(0, 50, 20_000)] + 0.3 * rng.standard_normal((20_000, 64))
    progress = TtyProgress("adding")
    with (
        tempfile.TemporaryDirectory() as tmp,
        VectorStore(dim=64, backend=f"annoy://{tmp}/ann?fsync=0") as store,
    ):
        for start in range(0, 20_000, 2_000):
            ids = list(range(start, start + 2_000))
            store.add(
                ids,
                vectors[start : start + 2_000],
                metadata=[{"even": i % 2 == 0} for i in ids],
            )
            progress(start + 2_000, 20_000)
        store.backend.wait()  # type: ignore[attr-defined]  # let the background build finish
        store.delete([0, 1, 2])
        hits = store.search(vectors[3], k=5, where={"even": False})
        print([(h.id, round(h.score, 3)) for h in hits])


if __name__ == "__main__":
    main()
