"""Ask a database through a SQLAlchemy engine the application already has.

avl checks connections out of the engine's pool, runs each statement read-only in a
transaction that is always rolled back, and introspects through SQLAlchemy's
Inspector. Any SQLAlchemy dialect works; SQLite keeps this example self-contained.

Run: python examples/db_sqlalchemy.py   (needs ``pip install 'avl[sqlalchemy]'``)
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import sqlalchemy as sa

from avl.assistant import Assistant, Database
from avl.errors import QueryError

with tempfile.TemporaryDirectory() as tmp:
    engine = sa.create_engine(f"sqlite:///{Path(tmp) / 'app.db'}")
    with engine.begin() as conn:  # the application's own tables and rows
        conn.exec_driver_sql("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, city TEXT)")
        conn.exec_driver_sql(
            "INSERT INTO users VALUES (1, 'Ann', 'Paris'), (2, 'Bob', 'Rome'), (3, 'Cid', 'Paris')"
        )

    db = Database(engine, timeout_s=5)  # or Database("sqlalchemy+sqlite:///app.db")
    assistant = Assistant(db=db)
    assistant.train_from_database()
    answer = assistant.ask("How many users are there?")
    print("dialect:", db.dialect)
    print("rows:", answer.rows)

    try:
        db.execute("DELETE FROM users")  # not even the Database itself writes
    except QueryError as exc:
        print("refused:", str(exc)[:60])
    with engine.connect() as conn:
        print("users left:", conn.exec_driver_sql("SELECT COUNT(*) FROM users").scalar())
    assistant.close()
    engine.dispose()
