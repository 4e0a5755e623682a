"""One renderer: identifiers quoted only when they must be, in the dialect's own
quotes (backticks on MySQL/MariaDB, never a double-quoted string there)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import attrs
import pytest

from avl.assistant import Assistant
from avl.llm._offline._intent import Col, Cond, Intent, Item, Order
from avl.llm._offline._render import needs_quotes, render
from avl.llm._offline._schema import SchemaIndex
from avl.llm.offline import ColumnSpec, GenerationContext, OfflineChatModel, TableSpec

USER = TableSpec(
    name="user",
    columns=[
        ColumnSpec(name="id", type="INT", primary_key=True),
        ColumnSpec(name="name", type="TEXT"),
        ColumnSpec(name="order", type="INT"),
        ColumnSpec(name="Group Name", type="TEXT"),
    ],
)


@pytest.mark.parametrize(
    ("name", "dialect", "quoted"),
    [
        ("name", "sqlite", False),
        ("user", "sqlite", True),
        ("order", "postgres", True),
        ("Album", "postgres", True),  # folded to lower case unless quoted
        ("Album", "sqlite", False),
        ("Album", "mysql", False),
        ("Group Name", "mysql", True),
        ("2nd", "duckdb", True),
        ("café", "sqlite", True),
    ],
)
def test_needs_quotes(name: str, dialect: str, quoted: bool) -> None:
    assert needs_quotes(name, dialect) is quoted


def _intent() -> Intent:
    it = Intent(subject="user")
    it.select = [Item(col=Col("user", "Group Name")), Item(col=Col("user", "order"))]
    it.where = [Cond(col=Col("user", "order"), op=">", value=3)]
    it.order = [Order(item=Item(col=Col("user", "name")), desc=True)]
    return it


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        (
            "mysql",
            "SELECT `Group Name`, `order` FROM `user` WHERE `order` > 3 ORDER BY name DESC",
        ),
        (
            "sqlite",
            'SELECT "Group Name", "order" FROM "user" WHERE "order" > 3 ORDER BY name DESC',
        ),
        (
            "postgres",
            'SELECT "Group Name", "order" FROM "user" WHERE "order" > 3 ORDER BY name DESC',
        ),
    ],
)
def test_one_tree_in_each_dialect(dialect: str, sql: str) -> None:
    assert render(SchemaIndex([USER], []), _intent(), dialect) == sql


def test_the_offline_model_writes_backticks_on_mysql() -> None:
    ctx = GenerationContext(tables=[USER], dialect="mysql", question="How many users are there?")
    assert OfflineChatModel().write(ctx).sql == "SELECT COUNT(*) FROM `user`"
    listing = OfflineChatModel().write(attrs.evolve(ctx, question="List the users by order"))
    assert '"' not in listing.sql
    assert "`order`" in listing.sql


@pytest.fixture
def mariadb_user_table(mysql_url: str) -> Iterator[str]:
    """A database of its own holding tables named ``user`` and ``order``."""
    import pymysql

    name = "avl_offline_" + uuid.uuid4().hex[:10]
    parts = urlsplit(mysql_url)
    conn = pymysql.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=parts.username or "root",
        password=parts.password or "",
        autocommit=True,
    )
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
        cur.execute(
            f"CREATE TABLE `{name}`.`user` (id INT PRIMARY KEY, name VARCHAR(40), "
            "`group` VARCHAR(20))"
        )
        cur.execute(
            f"CREATE TABLE `{name}`.`order` (id INT PRIMARY KEY, user_id INT, total INT, "
            f"FOREIGN KEY (user_id) REFERENCES `{name}`.`user`(id))"
        )
        cur.execute(
            f"INSERT INTO `{name}`.`user` VALUES (1, 'Ann', 'red'), (2, 'Bob', 'blue'), "
            "(3, 'Cid', 'red')"
        )
        cur.execute(f"INSERT INTO `{name}`.`order` VALUES (1, 1, 10), (2, 1, 20), (3, 3, 5)")
    try:
        yield urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE `{name}`")
        conn.close()


def test_reserved_names_on_a_real_mariadb(mariadb_user_table: str) -> None:
    a = Assistant(db=mariadb_user_table, cache_threshold=None)
    try:
        a.train_from_database()
        count = a.ask("How many users are in the red group?")
        assert count.error == ""
        assert count.rows == ((2,),)
        assert "`user`" in count.sql
        assert "`group`" in count.sql
        total = a.ask("What is the total of the orders of Ann?")
        assert total.error == ""
        assert [float(r[0]) for r in total.rows] == [30.0]
        assert '"' not in total.sql
    finally:
        a.close()
