"""Ask a DuckDB database whose data lives in a CSV file, through a view.

The database's owner creates the view; avl opens the file read-only and lets DuckDB
read only the files the views name. The model can never name a path itself.

Run: python examples/db_duckdb.py   (needs ``pip install 'avl[duckdb]'``)
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb

from avl.assistant import Assistant, Database
from avl.errors import QueryError

with tempfile.TemporaryDirectory() as tmp:
    csv = Path(tmp) / "sales.csv"
    csv.write_text("region,amount\nnorth,120\nsouth,80\nnorth,40\n")
    secret = Path(tmp) / "secret.csv"
    secret.write_text("password\nhunter2\n")
    path = Path(tmp) / "lake.duckdb"

    # the owner's one-time setup: a view over the file
    con = duckdb.connect(str(path))
    con.execute(f"CREATE VIEW sales AS SELECT * FROM read_csv('{csv}')")
    con.close()

    db = Database(f"duckdb:///{path}", timeout_s=5)
    assistant = Assistant(db=db)
    assistant.train_from_database()
    answer = assistant.ask("What is the total amount of sales?")
    print("sql:", answer.sql)
    print("rows:", answer.rows)

    # even without SafeQuery in front, the connection reads no other file
    try:
        db.execute(f"SELECT * FROM read_csv('{secret}')")
    except QueryError as exc:
        print("refused:", str(exc).splitlines()[0][:60])
    assistant.close()
