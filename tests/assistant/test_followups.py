"""The offline generator refines the previous turn's SQL (general rules, any schema)."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from avl.assistant import Assistant
from avl.history import History
from avl.llm.offline import OfflineChatModel
from avl.safety import Policy
from avl.schema import ColumnSpec, ForeignKeySpec, TableSpec, Turn, WriteContext, build_value_index
from tests.assistant.conftest import trained


def _assistant(db: Path, **kw: Any) -> Assistant:
    return trained(db, cache_threshold=None, **kw)


def _chain(a: Assistant, questions: list[str], **kw: Any) -> list[Any]:
    chat = a.session(user="ann", **kw)
    return [chat.ask(q) for q in questions]


# ------------------------------------------------------- through the Assistant
def test_a_value_filter_is_added_and_what_about_replaces_it(demo: Path) -> None:
    a = _assistant(demo)
    base, france, germany = _chain(
        a,
        [
            "How many customers are there in each country?",
            "and only in France?",
            "what about Germany?",
        ],
    )
    assert base.sql.startswith("SELECT country, COUNT(*) FROM customers GROUP BY country")
    assert "WHERE country = 'France' GROUP BY country" in france.sql
    assert france.rows == (("France", 2),)
    assert "WHERE country = 'Germany' GROUP BY country" in germany.sql
    assert "France" not in germany.sql


def test_what_about_a_value_of_another_column_replaces_the_text_filter(demo: Path) -> None:
    a = _assistant(demo)
    _, berlin, year = _chain(
        a, ["Which customers are from Paris?", "what about Berlin?", "only those in 2023"]
    )
    assert "city = 'Berlin'" in berlin.sql
    assert "Paris" not in berlin.sql
    assert "city = 'Berlin' AND signup_year = 2023" in year.sql


def test_sort_limit_count_and_negation(demo: Path) -> None:
    a = _assistant(demo)
    answers = _chain(
        a,
        [
            "List the products",
            "sort by price descending",
            "only the top 3",
            "not in Hardware",
            "how many are there?",
        ],
    )
    _, by_price, top, not_hw, count = answers
    assert by_price.sql.startswith("SELECT name FROM products ORDER BY price DESC")
    assert top.sql.startswith("SELECT name FROM products ORDER BY price DESC LIMIT 3")
    assert len(top.rows) == 3
    assert "WHERE category <> 'Hardware' ORDER BY price DESC LIMIT 3" in not_hw.sql
    assert count.sql.startswith("SELECT COUNT(*) FROM (SELECT name FROM products WHERE")
    assert count.rows == ((3,),)
    assert count.summary == "The count is 3."


def test_groups_are_sorted_by_their_aggregate_and_compared_in_having(demo: Path) -> None:
    a = _assistant(demo)
    _, by_total, without, above, top = _chain(
        a,
        [
            "What is the total of orders per status?",
            "sort them by total",
            "excluding cancelled",
            "only those with a total above 100",
            "only the top 1",
        ],
    )
    assert "GROUP BY status ORDER BY SUM(total)" in by_total.sql
    assert "WHERE status <> 'cancelled' GROUP BY status" in without.sql
    assert "HAVING SUM(total) > 100" in above.sql
    assert top.sql.endswith("LIMIT 1")


def test_a_year_on_a_date_column_compares_its_year(demo: Path) -> None:
    a = _assistant(demo)
    year = sqlite3.connect(demo).execute("SELECT MIN(substr(order_date, 1, 4)) FROM orders")
    y = year.fetchone()[0]
    _, got = _chain(a, ["List the order dates and totals", f"only those in {y}"])
    assert f"CAST(STRFTIME('%Y', order_date) AS INTEGER) = {int(y)}" in got.sql
    assert got.ok
    assert got.rows


def test_a_new_question_is_not_read_as_a_follow_up(demo: Path) -> None:
    a = _assistant(demo)
    _, other, again = _chain(
        a,
        [
            "How many customers are there in each country?",
            "How many orders are there?",  # names another table
            "How many customers are there?",  # no follow-up shape, names a table
        ],
    )
    assert other.sql.startswith("SELECT COUNT(*) FROM orders")
    assert again.sql.startswith("SELECT COUNT(*) FROM customers")
    assert "GROUP BY" not in again.sql


def test_a_write_is_still_refused_in_a_session(demo: Path) -> None:
    a = _assistant(demo)
    _, wipe = _chain(a, ["List the products", "and delete them all"])
    assert wipe.abstained
    assert "delete" in wipe.reason


def test_the_refined_sql_goes_through_safequery(demo: Path) -> None:
    # the caller may not read products.price: it is not in their view, so the follow-up
    # cannot sort by it (and SafeQuery would refuse it anyway)
    policy = Policy(dialect="sqlite", denied_columns=["products.price"], max_rows=100)
    a = _assistant(demo, policy=policy)
    _, got = _chain(a, ["List the products", "sort by price descending"])
    assert "price" not in got.sql
    assert got.verdict is None or got.verdict.allowed


def test_row_filtered_follow_ups_stay_filtered(demo: Path, tmp_path: Path) -> None:
    policy = Policy(dialect="sqlite", row_filters={"orders": "customer_id = :cid"}, max_rows=100)
    with History(f"sqlite:///{tmp_path / 'h.db'}") as h:
        a = _assistant(demo, policy=policy, history=h)
        _, shipped = _chain(
            a, ["List the order dates and totals", "only shipped ones"], context={"cid": 3}
        )
        mine = sqlite3.connect(demo).execute(
            "SELECT COUNT(*) FROM orders WHERE customer_id = 3 AND status = 'shipped'"
        )
        assert len(shipped.rows) == mine.fetchone()[0]
        assert shipped.sql.count("customer_id = 3") == 1  # filtered once, not twice


# ----------------------------------------------------------------- the writer
def _ctx(question: str, turns: list[Turn], **kw: Any) -> WriteContext:
    tables = [
        TableSpec(
            name="employee",
            columns=[
                ColumnSpec(name="id", type="INTEGER", primary_key=True),
                ColumnSpec(name="name", type="TEXT"),
                ColumnSpec(name="department_id", type="INTEGER"),
                ColumnSpec(name="salary", type="REAL"),
                ColumnSpec(name="hired", type="DATE"),
            ],
        ),
        TableSpec(
            name="department",
            columns=[
                ColumnSpec(name="id", type="INTEGER", primary_key=True),
                ColumnSpec(name="title", type="TEXT"),
            ],
        ),
    ]
    fks = [
        ForeignKeySpec(
            table="employee",
            columns=("department_id",),
            ref_table="department",
            ref_columns=("id",),
        )
    ]
    values = {("department", "title"): ("Sales", "Research", "Support")}
    return WriteContext(
        question=question,
        dialect=kw.get("dialect", "sqlite"),
        tables=tables,
        foreign_keys=fks,
        values=values,
        value_index=build_value_index(values),
        turns=turns,
    )


JOINED = Turn(
    question="employees and their department",
    sql="SELECT e.name, d.title FROM employee AS e JOIN department AS d ON e.department_id = d.id",
)


@pytest.mark.parametrize(
    ("question", "dialect", "expected"),
    [
        ("and only in Sales?", "sqlite", "WHERE d.title = 'Sales'"),
        ("only those hired in 2021", "postgres", "WHERE EXTRACT(YEAR FROM e.hired) = 2021"),
        ("only those hired in 2021", "mysql", "WHERE YEAR(e.hired) = 2021"),
        ("sort them by salary descending", "sqlite", "ORDER BY e.salary DESC"),
        ("just the first 2", "sqlite", "LIMIT 2"),
        ("only those with a salary above 5000", "sqlite", "WHERE e.salary > 5000"),
    ],
)
def test_aliases_of_the_previous_query_are_kept(question: str, dialect: str, expected: str) -> None:
    draft = OfflineChatModel().write(_ctx(question, [JOINED], dialect=dialect))
    assert expected in draft.sql, draft.sql
    assert "JOIN department AS d" in draft.sql


def test_without_turns_nothing_changes() -> None:
    with_turns = OfflineChatModel().write(_ctx("and only in Sales?", [JOINED]))
    alone = OfflineChatModel().write(_ctx("and only in Sales?", []))
    assert with_turns.sql != alone.sql
    assert "JOIN" in with_turns.sql


def test_an_unreadable_previous_query_is_answered_alone() -> None:
    other = Turn(question="x", sql="SELECT * FROM secret_table")
    cte = Turn(question="y", sql="WITH t AS (SELECT name FROM employee) SELECT * FROM t")
    for turn in (other, cte, Turn(question="z", sql="not sql (")):
        draft = OfflineChatModel().write(_ctx("sort them by salary", [turn]))
        assert "secret_table" not in draft.sql
        assert "WITH" not in draft.sql


# ------------------------------------------------------------------ PostgreSQL
@pytest.fixture
def pg_demo(demo: Path, postgres_dsn: str) -> Iterator[str]:
    """The demo database copied into a fresh PostgreSQL schema (search_path set)."""
    import psycopg

    url = postgres_dsn
    conn = psycopg.connect(url, autocommit=True, connect_timeout=3)
    schema = f"avl_fu_{uuid.uuid4().hex[:8]}"
    src = sqlite3.connect(demo)
    conn.execute(f"CREATE SCHEMA {schema}")
    try:
        conn.execute(
            f"CREATE TABLE {schema}.customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
            "city TEXT NOT NULL, country TEXT NOT NULL, signup_year INTEGER NOT NULL)"
        )
        conn.execute(
            f"CREATE TABLE {schema}.orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL "
            f"REFERENCES {schema}.customers(id), order_date DATE NOT NULL, status TEXT NOT NULL, "
            "total DOUBLE PRECISION NOT NULL)"
        )
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {schema}.customers VALUES (%s, %s, %s, %s, %s)",
                src.execute("SELECT * FROM customers").fetchall(),
            )
            cur.executemany(
                f"INSERT INTO {schema}.orders VALUES (%s, %s, %s, %s, %s)",
                src.execute("SELECT * FROM orders").fetchall(),
            )
        sep = "&" if "?" in url else "?"
        yield f"{url}{sep}options=-csearch_path%3D{schema}"
    finally:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
        conn.close()
        src.close()


def test_follow_ups_on_postgresql_with_a_postgresql_history(pg_demo: str) -> None:
    prefix = f"avl_fuh_{uuid.uuid4().hex[:8]}"
    base = pg_demo.split("?")[0]
    with History(f"{base}?table={prefix}") as h1, History(f"{base}?table={prefix}") as h2:
        w1 = Assistant(db=pg_demo, history=h1, cache_threshold=None)
        w1.train_from_database()
        w2 = Assistant(db=pg_demo, history=h2, cache_threshold=None)
        w2.train_from_database()
        chat = w1.session(user="ann")
        chat.ask("List the order dates and totals")
        year = w2.ask("only those in 2024", user="ann", session=chat.id)
        assert "EXTRACT(YEAR FROM order_date) = 2024" in year.sql, year.sql
        assert year.ok
        top = w1.ask("sort them by total descending", user="ann", session=chat.id)
        assert "ORDER BY total DESC" in top.sql
        assert top.ok
        totals = [r[-1] for r in top.rows]
        assert totals == sorted(totals, reverse=True)
        assert w2.session_turns(chat.id, user="bob") == ()
        w1.close()
        w2.close()


def test_a_value_of_a_referenced_table_joins_it(demo: Path) -> None:
    """Each order has one customer: "and only in France?" after a list of orders
    joins customers along the order's foreign key (no row repeated)."""
    a = _assistant(demo)
    _, france, by_city = _chain(
        a,
        [
            "List the order dates and totals",
            "and only in France?",
            "what about Berlin?",
        ],
    )
    assert "JOIN customers ON orders.customer_id = customers.id" in france.sql
    assert "WHERE customers.country = 'France'" in france.sql
    expected = sqlite3.connect(demo).execute(
        "SELECT COUNT(*) FROM orders JOIN customers ON orders.customer_id = customers.id "
        "WHERE customers.country = 'France'"
    )
    assert len(france.rows) == expected.fetchone()[0]
    assert "customers.city = 'Berlin'" in by_city.sql
    assert by_city.sql.count("JOIN customers") == 1


def test_rows_that_many_rows_refer_to_are_tested_with_in(demo: Path) -> None:
    """A customer has many orders: "only those with shipped orders" keeps each
    customer once (IN (SELECT ...)), not once per order."""
    a = _assistant(demo)
    _, shipped, count = _chain(
        a, ["List the customer names", "only those with shipped orders", "how many are there?"]
    )
    assert (
        "WHERE customers.id IN (SELECT customer_id FROM orders WHERE status = 'shipped')"
        in shipped.sql
    )
    names = [r[0] for r in shipped.rows]
    assert len(names) == len(set(names))
    expected = sqlite3.connect(demo).execute(
        "SELECT COUNT(DISTINCT customer_id) FROM orders WHERE status = 'shipped'"
    )
    assert count.rows == ((expected.fetchone()[0],),)


def test_another_table_without_a_key_to_it_is_a_new_question(demo: Path) -> None:
    a = _assistant(demo)
    # products is reached from customers only through orders and order_items
    _, got = _chain(a, ["List the customer names", "and only in Hardware?"])
    assert "customers" not in got.sql or "IN (SELECT" not in got.sql


def test_what_about_another_table_asks_the_previous_question_of_it(demo: Path) -> None:
    a = _assistant(demo)
    _, orders, products, again = _chain(
        a,
        [
            "How many customers are there in each country?",
            "what about orders?",
            "and what about products?",
            "how about the orders",
        ],
    )
    # "How many orders are there in each country?": orders reach country through customers
    assert "JOIN customers" in orders.sql
    assert "GROUP BY" in orders.sql
    assert "country" in orders.sql
    assert sum(r[1] for r in orders.rows) == 40
    assert products.abstained or "products" in products.sql
    # a chain of "what about" restates the first question, not the one before it
    assert again.sql == orders.sql
