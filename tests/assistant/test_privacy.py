"""The prompt holds only what the caller may read: real SQLite, PostgreSQL and MariaDB.

Secrets are planted in a denied column, in another tenant's rows and in a table the
role may not read; documentation and pairs that name or need them are trained. For
several roles and contexts, with sample values on and off, no secret and no
forbidden name reaches any message the model receives, nor the in-process writer's
stored-value index, nor another caller's semantic cache.
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from avl.assistant import Assistant
from avl.llm.offline import OfflineChatModel
from avl.safety import Policy
from avl.schema import SqlDraft, WriteContext
from avl.testing import FakeChatModel

COL_SECRET = "zqxcolumnsecret"
TABLE_SECRET = "zqxpayrollsecret"
CITY = {1: "Zqxonecity", 2: "Zqxtwocity"}
NAME = {1: "Zqxonename", 2: "Zqxtwoname"}


@attrs.frozen
class Shop:
    url: str
    c: str  # customers (tenant-filtered, one denied column)
    o: str  # orders (tenant-filtered)
    p: str  # payroll (never allowed)


def _tag() -> str:
    return "".join(chr(97 + int(ch, 16)) for ch in uuid.uuid4().hex[:8])


def _statements(c: str, o: str, p: str) -> list[str]:
    return [
        f"CREATE TABLE {c} (id INTEGER PRIMARY KEY, name VARCHAR(40), city VARCHAR(40), "
        f"tenant_id INTEGER, secret_note VARCHAR(40))",
        f"CREATE TABLE {o} (id INTEGER PRIMARY KEY, customer_id INTEGER, status VARCHAR(20), "
        "tenant_id INTEGER)",
        f"CREATE TABLE {p} (id INTEGER PRIMARY KEY, employee VARCHAR(40), band VARCHAR(40))",
        f"INSERT INTO {c} VALUES (1, 'Ann', 'Paris', 1, '{COL_SECRET}a'), "
        f"(2, '{NAME[1]}', '{CITY[1]}', 1, '{COL_SECRET}b'), "
        f"(3, '{NAME[2]}', '{CITY[2]}', 2, '{COL_SECRET}c'), (4, 'Dee', 'Paris', 2, 'x')",
        f"INSERT INTO {o} VALUES (1, 1, 'shipped', 1), (2, 3, 'returned', 2)",
        f"INSERT INTO {p} VALUES (1, 'Ann', '{TABLE_SECRET}')",
    ]


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def shop(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Shop]:
    tag = _tag()
    c, o, p = f"customers_{tag}", f"orders_{tag}", f"payroll_{tag}"
    if request.param == "sqlite":
        path = tmp_path / "shop.db"
        conn = sqlite3.connect(path)
        for s in _statements(c, o, p):
            conn.execute(s)
        conn.commit()
        conn.close()
        yield Shop(f"sqlite:///{path}", c, o, p)
        return
    if request.param == "postgresql":
        import psycopg

        dsn = request.getfixturevalue("postgres_dsn")
        with psycopg.connect(dsn, autocommit=True) as conn:
            for s in _statements(c, o, p):
                conn.execute(s)
        try:
            yield Shop(dsn, c, o, p)
        finally:
            with psycopg.connect(dsn, autocommit=True) as conn:
                for t in (c, o, p):
                    conn.execute(f"DROP TABLE IF EXISTS {t}")
        return
    import pymysql

    url = request.getfixturevalue("mysql_url")
    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", database="test")
    try:
        with conn.cursor() as cur:
            for s in _statements(c, o, p):
                cur.execute(s)
        conn.commit()
        yield Shop(url, c, o, p)
    finally:
        with conn.cursor() as cur:
            for t in (c, o, p):
                cur.execute(f"DROP TABLE IF EXISTS {t}")
        conn.commit()
        conn.close()


def _policies(s: Shop) -> dict[str, Policy]:
    return {
        "analyst": Policy(
            allowed_tables=[s.c, s.o],
            denied_columns=[f"{s.c}.secret_note"],
            row_filters={s.c: "tenant_id = :tenant", s.o: "tenant_id = :tenant"},
            max_rows=100,
        ),
        "support": Policy(
            allowed_tables=[s.c],
            denied_columns=[f"{s.c}.secret_note", f"{s.c}.city"],
            row_filters={s.c: "tenant_id = :tenant"},
            max_rows=100,
        ),
    }


def _train(a: Assistant, s: Shop) -> None:
    a.train_from_database(tables=[s.c, s.o, s.p])
    a.train(documentation=f"The {s.p} table lists each employee's band.")
    a.train(documentation="Pay grades are confidential.", table=s.p)
    a.train(documentation="The secret_note column holds remarks.")
    a.train(documentation="Customers place orders; each order has a status.")
    a.train(documentation="A customer is someone who bought from us at least once.")
    a.train(question="How many employees are there?", sql=f"SELECT COUNT(*) FROM {s.p}")
    a.train(question="How many customers are there?", sql=f"SELECT COUNT(*) FROM {s.c}")
    a.train(question="Which cities do customers live in?", sql=f"SELECT DISTINCT city FROM {s.c}")


def _replies(s: Shop, n: int) -> list[str]:
    # each ask: a denied column, an unknown column whose error may name the denied one
    # (PostgreSQL's HINT), a table outside the allow-list, then a query that runs
    one = [
        f"SELECT secret_note FROM {s.c}",
        f"SELECT secret_not FROM {s.c}",
        f"SELECT band FROM {s.p}",
        f"SELECT COUNT(*) FROM {s.c}",
    ]
    return one * n


QUESTIONS = (
    "How many customers are there?",
    "Which cities do our customers live in?",
    "Show me everything you know",
)


def _forbidden(s: Shop, role: str, tenant: int) -> tuple[list[str], list[str]]:
    """(secret values, forbidden names) for one caller."""
    other = 2 if tenant == 1 else 1
    secrets = [COL_SECRET, TABLE_SECRET, CITY[other], NAME[other], "confidential"]
    names = [s.p, "secret_note", "band"]
    if role == "support":
        names += [s.o, "city", "status"]
        secrets += [CITY[tenant]]
    return secrets, names


def _check(text: str, secrets: list[str], names: list[str]) -> None:
    low = text.lower()
    for secret in secrets:
        assert secret.lower() not in low, secret
    for name in names:
        assert re.search(rf"\b{re.escape(name.lower())}\b", low) is None, name


@pytest.mark.parametrize("samples", [False, True])
@pytest.mark.parametrize(("role", "tenant"), [("analyst", 1), ("analyst", 2), ("support", 1)])
def test_prompts_hold_only_what_the_caller_may_read(
    shop: Shop, role: str, tenant: int, samples: bool
) -> None:
    model = FakeChatModel(_replies(shop, len(QUESTIONS)))
    a = Assistant(
        db=shop.url,
        model=model,
        policy=_policies(shop),
        sample_values=samples,
        cache_threshold=None,
        max_attempts=4,
    )
    _train(a, shop)
    answers = [a.ask(q, user="u", role=role, context={"tenant": tenant}) for q in QUESTIONS]
    assert len(model.calls) == 4 * len(QUESTIONS)  # every repair prompt is checked too
    secrets, names = _forbidden(shop, role, tenant)
    text = "\n".join(m.content for call in model.calls for m in call.messages)
    _check(text, secrets, names)
    # what the caller may read does reach the model (the checks above can fail)
    assert shop.c in text
    assert "someone who bought from us" in text
    assert ("each order has a status" in text) is (role == "analyst")
    assert f"SELECT COUNT(*) FROM {shop.c}" in text  # the allowed pair
    assert "<hidden>" in text  # the refused attempts came back redacted
    assert ("row filter" in text or "filtered" in text) is True
    if role == "analyst":
        assert shop.o in text
        assert "SELECT DISTINCT city" in text
    assert (CITY[tenant] in text) is (samples and role == "analyst")
    # and the rows are the caller's only
    expected = {1: 2, 2: 2}[tenant]
    assert answers[0].rows[0][0] == expected
    a.close()


class Spy:
    """An in-process SqlWriter that records each context (the offline model inside)."""

    name = "spy"

    def __init__(self) -> None:
        self.inner = OfflineChatModel()
        self.contexts: list[WriteContext] = []

    def write(self, context: WriteContext) -> SqlDraft:
        self.contexts.append(context)
        return self.inner.write(context)


def _strings(ctx: WriteContext) -> str:
    parts = [v for vals in ctx.values.values() for v in vals]
    parts += [f"{t}.{c}" for t, c in ctx.values]
    parts += [v for hits in ctx.value_index.values() for _, _, v in hits]
    parts += [s for t in ctx.tables for col in t.columns for s in col.samples]
    parts += [f"{t.name} {' '.join(col.name for col in t.columns)}" for t in ctx.tables]
    return "\n".join(parts)


@pytest.mark.parametrize(("role", "tenant"), [("analyst", 1), ("analyst", 2), ("support", 2)])
def test_the_offline_value_index_is_scoped_too(shop: Shop, role: str, tenant: int) -> None:
    spy = Spy()
    a = Assistant(
        db=shop.url, model=spy, policy=_policies(shop), sample_values=True, cache_threshold=None
    )
    _train(a, shop)
    for q in (*QUESTIONS, f"Which customers live in {CITY[1]} or {CITY[2]}?"):
        a.ask(q, role=role, context={"tenant": tenant})
    secrets, names = _forbidden(shop, role, tenant)
    seen = "\n".join(_strings(c) for c in spy.contexts)
    _check(seen, secrets, names)
    assert NAME[tenant] in seen  # the caller's own values are linked
    a.close()


def test_the_semantic_cache_never_crosses_tenants(shop: Shop) -> None:
    model = FakeChatModel(default=f"SELECT name FROM {shop.c} ORDER BY id")
    a = Assistant(db=shop.url, model=model, policy=_policies(shop))
    _train(a, shop)
    q = "Who are our customers?"
    one = a.ask(q, user="u", role="analyst", context={"tenant": 1})
    again = a.ask(q, user="u", role="analyst", context={"tenant": 1})
    two = a.ask(q, user="u", role="analyst", context={"tenant": 2})
    assert (one.cached, again.cached, two.cached) == (False, True, False)
    assert one.rows == again.rows == (("Ann",), (NAME[1],))
    assert two.rows == ((NAME[2],), ("Dee",))
    a.close()


def test_views_per_role(shop: Shop) -> None:
    a = Assistant(db=shop.url, policy=_policies(shop), sample_values=True)
    a.train_from_database(tables=[shop.c, shop.o, shop.p])
    analyst = a.view("analyst", {"tenant": 1})
    assert sorted(t.name for t in analyst.tables) == sorted([shop.c, shop.o])
    cols = [c.name for c in analyst.table(shop.c).columns]  # type: ignore[union-attr]
    assert cols == ["id", "name", "city", "tenant_id"]
    assert analyst.filtered == {shop.c.lower(), shop.o.lower()}
    assert {"secret_note", shop.p.lower(), "band", "employee"} <= analyst.hidden
    support = a.view("support", {"tenant": 1})
    assert [t.name for t in support.tables] == [shop.c]
    assert support.foreign_keys == ()
    # without the tenant parameter the filtered tables cannot be read at all
    assert a.view("analyst").tables == ()
    a.close()


def _any(x: Any) -> Any:
    return x


def test_learned_pairs_stay_with_their_role_and_context(shop: Shop) -> None:
    learned_sql = f"SELECT id FROM {shop.c} WHERE name = '{NAME[2]}'"
    model = FakeChatModel(default=learned_sql)
    a = Assistant(
        db=shop.url, model=model, policy=_policies(shop), learn=True, cache_threshold=None
    )
    a.train_from_database(tables=[shop.c, shop.o, shop.p])
    q = f"What is the id of {NAME[2]}?"
    assert a.ask(q, role="analyst", context={"tenant": 2}).rows == ((3,),)
    (pair,) = a.training_data("sql")
    assert pair.sql == learned_sql  # the writer's SQL, never the tenant-filtered rewrite
    a.ask("What is the id of that customer?", role="analyst", context={"tenant": 1})
    a.ask("What is the id of that customer?", role="analyst", context={"tenant": 2})
    assert NAME[2] not in model.calls[1].messages[1].content
    assert learned_sql in model.calls[2].messages[1].content
    a.close()


def test_database_errors_lose_quoted_values_before_the_model_sees_them() -> None:
    from avl.assistant import SchemaView
    from avl.schema import ColumnSpec, TableSpec

    view = SchemaView(
        tables=[TableSpec(name="customers", columns=[ColumnSpec(name="name")])],
        hidden={"secret_note"},
    )
    sql = "SELECT CAST(name AS INTEGER) FROM customers WHERE name = 'Ann'"
    assert (
        view.redact_error(f'invalid input syntax for type integer: "{NAME[2]}"', sql)
        == 'invalid input syntax for type integer: "<value>"'
    )
    assert view.redact_error("no such column: 'Ann' near \"customers\"", sql) == (
        "no such column: 'Ann' near \"customers\""
    )
    assert "secret_note" not in view.redact_error(
        'HINT: Perhaps you meant to reference the column "customers.secret_note".', sql
    )
