"""Retrieval memory in a few lines: embed schema snippets, store them, search.

Run: python examples/vectors_quickstart.py
"""

from __future__ import annotations

import tempfile

from avl.embeddings import CachedEmbedder, HashingEmbedder
from avl.vectors import VectorStore

DOCS = {
    "ddl:customers": "CREATE TABLE customers (customer_id int, full_name text, signup_date date)",
    "ddl:orders": "CREATE TABLE orders (order_id int, customer_id int, total numeric, placed_at date)",
    "ddl:products": "CREATE TABLE products (product_id int, title text, unit_price numeric)",
    "doc:refunds": "Refunds are stored as orders with a negative total.",
    "sql:monthly": "SELECT date_trunc('month', placed_at), sum(total) FROM orders GROUP BY 1",
}
KINDS = [{"kind": key.split(":", 1)[0]} for key in DOCS]


def main() -> None:
    embedder = CachedEmbedder(HashingEmbedder(dim=384))
    with tempfile.TemporaryDirectory() as tmp:
        url = f"file://{tmp}/memory"
        with VectorStore(dim=384, metric="cosine", backend=url) as store:
            store.add(list(DOCS), embedder.embed(list(DOCS.values())), metadata=KINDS)

        # Reopen: the store was persisted (and verified on open).
        with VectorStore(dim=384, metric="cosine", backend=url) as store:
            question = "how much did each customer spend per month?"
            query = embedder.embed([question])[0]
            print(f"question: {question}")
            for hit in store.search(query, k=3):
                print(f"  {hit.score:.3f}  {hit.id}")
            print("only DDL:")
            for hit in store.search(query, k=2, where={"kind": "ddl"}):
                print(f"  {hit.score:.3f}  {hit.id}")


if __name__ == "__main__":
    main()
