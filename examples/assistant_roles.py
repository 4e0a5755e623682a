"""Roles, tenants and audit: what each caller's model sees, and what is recorded.

Run::

    python examples/assistant_roles.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from avl.assistant import Assistant, create_demo_database
from avl.errors import UnknownRoleError
from avl.history import History
from avl.safety import Policy


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = create_demo_database(Path(tmp) / "shop.db")
        history = History(f"sqlite:///{Path(tmp) / 'audit.db'}")
        assistant = Assistant(
            db=f"sqlite:///{path}",
            history=history,  # audit="required": nothing reaches the model unrecorded
            sample_values=True,
            policy={
                # support staff: no cities, customers of their own country only
                "support": Policy(
                    allowed_tables=["customers", "orders"],
                    denied_columns=["customers.city"],
                    row_filters={"customers": "country = :country"},
                ),
                "analyst": Policy(max_rows=100),
            },
        )
        assistant.train_from_database()
        # 1. the view each caller's prompt is built from
        view = assistant.view("support", {"country": "France"})
        for table in view.tables:
            print(table.name, [c.name for c in table.columns], table.comment or "")
        # 2. ask as a support agent in France: only French customers exist for them
        answer = assistant.ask(
            "How many customers are there?",
            user="sam",
            role="support",
            context={"country": "France"},
        )
        print(answer.sql, answer.rows)
        # 3. a mistyped role is refused before anything runs
        try:
            assistant.ask("How many customers are there?", role="suport")
        except UnknownRoleError as exc:
            print("refused:", exc)
        # 4. the audit trail: a pending entry before the model, one completing it after
        for entry in reversed(history.search(limit=10)):
            print(entry.seq, entry.outcome, entry.user, sorted(entry.tags))
        assistant.close()
        history.close()


if __name__ == "__main__":
    main()
