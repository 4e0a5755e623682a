"""PostgreSQL schemas: every schema on the search_path (or a ``schemas=`` list) is
introspected, with ``schema.table`` names in the prompt, in policies and in SQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from avl.assistant import Assistant, Database
from avl.safety import Policy
from avl.testing import FakeChatModel
from tests.db.conftest import tag

pytestmark = pytest.mark.postgres


@pytest.fixture
def sales(postgres_dsn: str) -> Iterator[tuple[str, str, str]]:
    """Schema ``s_<tag>`` with ``invoices``, and ``cust_<tag>`` in public."""
    import psycopg

    t = tag()
    schema, cust = f"s_{t}", f"cust_{t}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"CREATE TABLE {cust} (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute(f"INSERT INTO {cust} VALUES (1, 'Ann'), (2, 'Bob')")
        conn.execute(
            f"CREATE TABLE {schema}.invoices (id INTEGER PRIMARY KEY, "
            f"customer_id INTEGER REFERENCES public.{cust}(id), amount NUMERIC(8,2), "
            "tenant_id INTEGER, memo TEXT)"
        )
        conn.execute(f"COMMENT ON TABLE {schema}.invoices IS 'bills sent'")
        conn.execute(
            f"INSERT INTO {schema}.invoices VALUES (1, 1, 10, 1, 'a'), (2, 2, 20, 1, 'b'), "
            "(3, 1, 40, 2, 'c')"
        )
    yield postgres_dsn, schema, cust
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
        conn.execute(f"DROP TABLE IF EXISTS {cust}")


def _names(db: Database, **kw: Any) -> set[str]:
    return {t.name for t in db.introspect(**kw).tables}


def test_a_schema_off_the_search_path_is_read_when_listed(sales: tuple[str, str, str]) -> None:
    dsn, schema, cust = sales
    plain = Database(dsn)
    assert f"{schema}.invoices" not in _names(plain)
    assert cust in _names(plain)
    plain.close()
    db = Database(dsn, schemas=["public", schema])
    snap = db.introspect(tables=[cust, f"{schema}.invoices"])
    by = {t.name: t for t in snap.tables}
    assert set(by) == {cust, f"{schema}.invoices"}
    inv = by[f"{schema}.invoices"]
    assert inv.comment == "bills sent"
    assert [c.name for c in inv.columns if c.primary_key] == ["id"]
    (fk,) = snap.foreign_keys
    assert (fk.table, fk.ref_table) == (f"{schema}.invoices", cust)
    assert db.quote(f"{schema}.invoices") == f'"{schema}"."invoices"'
    assert set(db.distinct_values(f"{schema}.invoices", "memo", 5)) == {"a", "b", "c"}
    db.close()


def test_the_search_path_decides_by_default(sales: tuple[str, str, str]) -> None:
    dsn, schema, _ = sales
    db = Database(f"{dsn}?options=-csearch_path%3Dpublic,{schema}")
    assert f"{schema}.invoices" in _names(db)
    assert db.execute(f"SELECT COUNT(*) FROM {schema}.invoices").rows == ((3,),)
    db.close()


def test_qualified_names_in_the_prompt_the_policy_and_the_sql(
    sales: tuple[str, str, str],
) -> None:
    dsn, schema, cust = sales
    inv = f"{schema}.invoices"
    policy = Policy(
        dialect="postgres",
        allowed_tables=[inv, cust],
        denied_columns=[f"{inv}.memo"],
        row_filters={inv: "tenant_id = :tenant"},
        max_rows=50,
    )
    model = FakeChatModel(
        [
            f"SELECT COUNT(*), SUM(amount) FROM {inv}",
            f"SELECT memo FROM {inv}",
            f"SELECT c.name, SUM(i.amount) FROM {inv} i JOIN {cust} c ON c.id = i.customer_id "
            "GROUP BY c.name ORDER BY c.name",
        ]
    )
    a = Assistant(
        db=Database(dsn, schemas=["public", schema]),
        model=model,
        embedder=None,
        policy=policy,
        cache_threshold=None,
        max_attempts=1,
    )
    a.train_from_database(tables=[inv, cust])
    ddl = {i.table: i.text for i in a.training_data("schema")}
    assert f"CREATE TABLE {inv} (" in ddl[inv]
    assert f"REFERENCES {cust}" in ddl[inv]
    one = a.ask("How many invoices and how much?", context={"tenant": 1})
    assert one.outcome == "ok", one.error
    assert [(n, float(s)) for n, s in one.rows] == [(2, 30.0)]
    denied = a.ask("What are the memos?", context={"tenant": 1})
    assert denied.outcome == "rejected"
    joined = a.ask("Invoice totals per customer", context={"tenant": 2})
    assert [(n, float(s)) for n, s in joined.rows] == [("Ann", 40.0)]
    a.close()
