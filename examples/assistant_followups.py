"""Follow-up questions and summaries with the offline model (no key, no network).

A session carries the earlier turns, so each question refines the previous answer;
every answer has a one-sentence summary. With a History, the same conversation
continues from any worker sharing it (here: a second Assistant on the same file).

Run: python examples/assistant_followups.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from avl.assistant import Assistant, create_demo_database
from avl.history import History


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = create_demo_database(Path(tmp) / "shop.db")
        history_url = f"sqlite:///{Path(tmp) / 'history.db'}"
        with History(history_url) as history:
            assistant = Assistant(db=f"sqlite:///{db}", history=history)
            assistant.train_from_database()

            chat = assistant.session(user="ann")
            for question in (
                "How many customers are there in each country?",
                "and only in France?",
                "what about Germany?",
            ):
                answer = chat.ask(question)
                print(f"{question}\n  {answer.sql}\n  {answer.summary}")

            # the same session from another worker: the turns are read from the History
            with History(history_url) as shared:
                worker = Assistant(db=f"sqlite:///{db}", history=shared)
                worker.train_from_database()
                for question in ("List the products", "sort by price descending"):
                    worker.ask(question, user="ann", session=chat.id)
                answer = worker.ask("only the top 3", user="ann", session=chat.id)
                print(f"only the top 3\n  {answer.sql}\n  {answer.summary}")
                # another user giving the same id starts afresh: turns are per user
                print("bob sees", len(worker.session_turns(chat.id, user="bob")), "turns")
                print("ann has", len(worker.session_turns(chat.id, user="ann")), "turns")
                worker.close()
            assistant.close()


if __name__ == "__main__":
    main()
