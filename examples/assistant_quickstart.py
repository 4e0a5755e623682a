"""Ask the sample shop database questions with the offline generator (no key, no network).

Run::

    python examples/assistant_quickstart.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from avl.assistant import Assistant, EventKind, create_demo_database
from avl.history import History


def main() -> None:
    """Train, ask, stream, review."""
    with tempfile.TemporaryDirectory() as tmp:
        path = create_demo_database(Path(tmp) / "shop.db")
        history = History("memory://")
        assistant = Assistant(db=f"sqlite:///{path}", history=history)
        assistant.train_from_database()
        assistant.train(
            question="What is the total amount of orders of the customer named Grace Hopper?",
            sql="SELECT SUM(o.total) FROM orders AS o JOIN customers AS c ON o.customer_id = c.id "
            "WHERE c.name = 'Grace Hopper'",
            added_by="docs",
        )
        # 1. a plain question
        print(assistant.ask("How many customers are there in each country?"))
        # 2. a trained pair, adapted to another value
        print(
            assistant.ask("What is the total amount of orders of the customer named Alan Turing?")
        )
        # 3. the same pipeline as a stream of events (what the SSE endpoint sends)
        for event in assistant.stream("What is the average price of products?"):
            if event.kind is not EventKind.TOKEN:
                print(
                    event.kind.value, dict(event.data) if event.kind is not EventKind.ANSWER else ""
                )
        # 4. a query review
        review = assistant.explain("SELECT * FROM orders WHERE status = 'shipped'")
        print(review)
        print(*review.suggestions, sep="\n")
        # 5. everything is in the history: a "pending" entry before the model is called,
        #    then the entry that completes it (tagged completes:<pending id>)
        for entry in history.search(limit=10).entries:
            if str(entry.outcome) != "pending":
                print(entry.seq, entry.outcome, entry.question)
        assistant.close()


if __name__ == "__main__":
    main()
