"""Training lives in the store, shared by every worker: two processes over PostgreSQL,
two assistants over a SQLite file, and the stores' own contract."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from avl.assistant import (
    Assistant,
    MemoryTrainingStore,
    SqlTrainingStore,
    TrainingItem,
    open_training_store,
)
from avl.errors import BackendError, ConfigError, InvalidInputError
from avl.schema import ColumnSpec, ForeignKeySpec, TableSpec
from avl.testing import FakeChatModel

ROOT = Path(__file__).resolve().parents[2]

WORKER = textwrap.dedent(
    """
    import json, sys
    from avl.assistant import Assistant
    db, training, action = sys.argv[1], sys.argv[2], sys.argv[3]
    a = Assistant(db=db, training=training)
    if action == "train":
        a.train_from_database()
        a.train(question="Which orders were cancelled?",
                sql="SELECT id FROM orders WHERE status = 'cancelled'", added_by="worker-a")
        a.train(documentation="A cancelled order was never shipped.", added_by="worker-a")
    print(json.dumps(sorted((i.kind, i.added_by) for i in a.training_data())))
    a.close()
    """
)


def _worker(db: str, training: str, action: str) -> list[list[str]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run(
        [sys.executable, "-c", WORKER, db, training, action],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    got: list[list[str]] = json.loads(done.stdout)
    return got


@pytest.fixture
def pg_training(postgres_dsn: str) -> Iterator[str]:
    prefix = f"avl_training_{uuid.uuid4().hex[:8]}"
    sep = "&" if "?" in postgres_dsn else "?"
    yield f"{postgres_dsn}{sep}table={prefix}"
    import psycopg

    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        for suffix in ("items", "versions"):
            conn.execute(f"DROP TABLE IF EXISTS {prefix}_{suffix}")


def test_two_processes_share_training_through_postgresql(shop: Path, pg_training: str) -> None:
    db = f"sqlite:///{shop}"
    model = FakeChatModel(default="SELECT id FROM orders WHERE status = 'cancelled'")
    here = Assistant(db=db, model=model, training=pg_training, cache_threshold=None)
    assert here.training_data() == []
    # another process trains; this one sees it at its next request, without a restart
    assert _worker(db, pg_training, "train") == [
        ["documentation", "worker-a"],
        ["schema", "introspection"],
        ["schema", "introspection"],
        ["sql", "worker-a"],
    ]
    answer = here.ask("Which orders were cancelled?")
    assert answer.rows == ((5,),)
    prompt = model.calls[0].messages[1].content
    assert "SQL: SELECT id FROM orders WHERE status = 'cancelled'" in prompt
    assert "A cancelled order was never shipped." in prompt
    assert "CREATE TABLE orders" in prompt  # the other process's schema items
    assert [i.added_by for i in here.training_data("sql")] == ["worker-a"]
    # and the other way round: what this process removes is gone for the other
    (pair,) = here.training_data("sql")
    here.remove(pair.id)
    assert ["sql", "worker-a"] not in _worker(db, pg_training, "list")
    here.ask("Which orders were cancelled?")
    assert "SQL: SELECT id FROM orders" not in model.calls[1].messages[1].content
    here.close()


def test_two_assistants_share_a_sqlite_training_file(shop: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'training.db'}"
    one = Assistant(db=f"sqlite:///{shop}", training=url)
    two = Assistant(db=f"sqlite:///{shop}", training=url)
    one.train_from_database()
    assert {i.table for i in two.training_data("schema")} == {"customers", "orders"}
    assert two.ask("How many customers are there?").rows == ((4,),)
    two.train(question="Big spenders?", sql="SELECT name FROM customers WHERE id = 1")
    assert [p.question for p in one.training_data("sql")] == ["Big spenders?"]
    assert two.view().foreign_keys == one.view().foreign_keys != ()
    one.close()
    two.close()


@pytest.mark.parametrize("training", ["memory", "sqlite", "postgresql"])
@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"documentation": "Orders \ud800 ship daily."}, r"^documentation is not valid Unicode"),
        ({"documentation": "Orders\x00 ship daily."}, r"^documentation must not contain NUL"),
        ({"question": "Big \udcff?", "sql": "SELECT 1"}, r"^question is not valid Unicode"),
        ({"question": "Big?", "sql": "SELECT 1 -- \x00"}, r"^sql must not contain NUL"),
        (
            {"documentation": "Orders ship daily.", "added_by": "ops\x00"},
            r"^added_by must not contain NUL",
        ),
    ],
)
def test_train_refuses_text_no_training_store_can_keep(
    shop: Path,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    training: str,
    kwargs: dict[str, str],
    error: str,
) -> None:
    """A lone surrogate made ``train`` fail with a bare ``UnicodeEncodeError`` (the
    item's id hashes the UTF-8 text), and a NUL reached PostgreSQL, whose text
    columns refuse it: both are refused first, and nothing is stored."""
    if training == "postgresql":
        url = request.getfixturevalue("pg_training")
    else:
        url = "memory://" if training == "memory" else f"sqlite:///{tmp_path / 'training.db'}"
    assistant = Assistant(db=f"sqlite:///{shop}", training=url)
    try:
        with pytest.raises(InvalidInputError, match=error):
            assistant.train(**kwargs)  # type: ignore[arg-type]
        assert assistant.training_data() == []
        assistant.train(documentation="Orders \u00e9t\u00e9 ship daily.", added_by="ops")
        assert [i.text for i in assistant.training_data()] == ["Orders \u00e9t\u00e9 ship daily."]
    finally:
        assistant.close()


def _item(i: int) -> TrainingItem:
    spec = TableSpec(
        name=f"t{i}",
        comment="c\x00\ud800",
        row_count=3,
        columns=[ColumnSpec(name="id", type="INT", primary_key=True, samples=("a", "b"))],
    )
    fk = ForeignKeySpec(table=f"t{i}", columns=["id"], ref_table="u", ref_columns=["id"])
    return TrainingItem(
        id=f"schema:{i}",
        kind="schema",
        text=f"CREATE TABLE t{i} (id INT);",
        table=f"t{i}",
        added_by="x",
        source="s",
        spec=spec,
        foreign_keys=[fk],
    )


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    if request.param == "memory":
        s: object = MemoryTrainingStore()
    elif request.param == "sqlite":
        s = SqlTrainingStore(f"sqlite:///{tmp_path / 't.db'}")
    else:
        s = SqlTrainingStore(request.getfixturevalue("pg_training"))
    yield s
    s.close()  # type: ignore[attr-defined]


def test_training_store_contract(store: MemoryTrainingStore) -> None:
    assert (store.items("s"), store.version("s")) == ([], "0")
    store.put("s", [_item(1), _item(2)])
    v1 = store.version("s")
    store.put("s", [TrainingItem(id="schema:1", kind="schema", text="again", source="s")])
    v2 = store.version("s")
    assert len({"0", v1, v2}) == 3
    got = store.items("s")
    assert [i.id for i in got] == ["schema:1", "schema:2"]  # first-added order kept
    assert got[0].text == "again"
    assert got[1] == _item(2)  # lossless, NUL and surrogates included
    assert store.items("other") == []
    assert store.remove("s", ["schema:2", "nope"]) == 1
    assert store.remove("s", ["nope"]) == 0
    assert store.version("s") not in ("0", v1, v2)
    assert [i.id for i in store.items("s")] == ["schema:1"]


def test_open_training_store_and_bad_urls(tmp_path: Path) -> None:
    assert isinstance(open_training_store(None), MemoryTrainingStore)
    assert isinstance(open_training_store("memory://"), MemoryTrainingStore)
    with pytest.raises(ConfigError, match="training store URL"):
        open_training_store("redis://localhost")
    with pytest.raises(ConfigError, match="file path"):
        open_training_store("sqlite://")
    with pytest.raises(ConfigError, match="table prefix"):
        open_training_store(f"sqlite:///{tmp_path / 'x.db'}?table=bad-name")
    with pytest.raises(ConfigError, match="TrainingStore"):
        open_training_store(42)  # type: ignore[arg-type]
    bad = SqlTrainingStore(f"sqlite:///{tmp_path / 'y.db'}")
    bad._conn.execute("INSERT INTO avl_training_items (source, id, doc) VALUES ('s', 'x', '{')")
    with pytest.raises(BackendError, match="cannot be read"):
        bad.items("s")
    bad.close()
