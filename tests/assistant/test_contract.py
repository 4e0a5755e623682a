"""The held-out evaluation's calls, exactly as the issue states them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from avl.assistant import Assistant
from avl.console import Console
from avl.errors import AvlError
from avl.history import History
from avl.safety import Policy
from avl.testing import FakeChatModel

SECRET = "zqx-planted-secret"


@pytest.fixture
def data_db(tmp_path: Path) -> Path:
    path = tmp_path / "data.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, city TEXT, "
        "tenant_id INTEGER, note TEXT);"
        "CREATE TABLE salaries (id INTEGER PRIMARY KEY, amount INTEGER);"
        f"INSERT INTO customers VALUES (1, 'Ann', 'Paris', 1, '{SECRET}-note'),"
        f" (2, 'Bob', 'London', 1, '{SECRET}-note'), (3, '{SECRET}-name', 'Rome', 2, 'x');"
        "INSERT INTO salaries VALUES (1, 99999);"
    )
    conn.commit()
    conn.close()
    return path


def test_assistant_contract(data_db: Path) -> None:
    model = FakeChatModel(["SELECT name FROM customers ORDER BY id"])
    assistant = Assistant(
        db=f"sqlite:///{data_db}",
        model=model,
        policy={
            "analyst": Policy(
                allowed_tables=["customers"],
                denied_columns=["customers.note"],
                row_filters={"customers": "tenant_id = :tenant"},
            )
        },
        sample_values=True,
        cache_threshold=None,
    )
    assistant.train_from_database()
    answer = assistant.ask(
        "Who are our customers?", user="ann", role="analyst", context={"tenant": 1}
    )
    assert answer.rows == (("Ann",), ("Bob",))
    text = "\n".join(m.content for call in model.calls for m in call.messages)
    assert "customers" in text
    assert "Paris" in text
    for forbidden in (SECRET, "salaries", "note", "99999", "Rome"):
        assert forbidden not in text


def test_console_contract_unknown_role(data_db: Path) -> None:
    model = FakeChatModel(default="SELECT name, note FROM customers")
    console = Console.from_config(
        {
            "db": f"sqlite:///{data_db}",
            "history": "",
            "model": model,
            "roles": {
                "analyst": {"allowed_tables": ["customers"], "denied_columns": ["customers.note"]}
            },
        }
    )
    try:
        try:
            answer = console.assistant.ask("Show every customer's note", role="analsyt")
        except AvlError:
            pass
        else:
            assert answer.rows == ()
        assert model.calls == []  # refused before anything reached the model
    finally:
        console.close()


def test_history_in_the_data_database(data_db: Path) -> None:
    history = History(f"sqlite:///{data_db}")
    model = FakeChatModel(default="SELECT COUNT(*) FROM customers")
    assistant = Assistant(db=f"sqlite:///{data_db}", model=model, history=history)
    assistant.train_from_database()
    assistant.ask("How many invoices are there?", user="ann")
    text = "\n".join(m.content for call in model.calls for m in call.messages)
    assert "avl_" not in text
    assert {t.name for t in assistant.view().tables} == {"customers", "salaries"}
    history.close()
