"""The Database contract on every engine (see ``conftest.BACKENDS``): read-only,
one statement, timeout, cancel, row and byte caps, introspection, threads."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest

from avl.errors import CancelledError, ConfigError, QueryError, QueryTimeoutError
from tests.db.conftest import BIG_ROWS, CUSTOMERS, Backend


def _norm(rows: Any) -> Counter[tuple[Any, ...]]:
    return Counter(tuple(float(x) if hasattr(x, "as_tuple") else x for x in r) for r in rows)


def test_select_returns_rows_and_columns(backend: Backend) -> None:
    db = backend.open()
    res = db.execute(f"SELECT id, name FROM {backend.customers} ORDER BY id")
    assert [c.lower() for c in res.columns] == ["id", "name"]
    assert res.rows == tuple((i, n) for i, n, _, _ in CUSTOMERS)
    assert res.truncated is False
    assert db.dialect == backend.dialect
    assert db.in_transaction() is False
    db.close()


def test_row_cap_cuts_and_flags(backend: Backend) -> None:
    db = backend.open()
    res = db.execute(f"SELECT id FROM {backend.big} ORDER BY id", max_rows=5)
    assert res.rows == ((1,), (2,), (3,), (4,), (5,))
    assert res.truncated is True
    exact = db.execute(f"SELECT id FROM {backend.customers}", max_rows=3)
    assert (len(exact.rows), exact.truncated) == (3, False)
    db.close()


def test_byte_cap_cuts_a_streamed_result(backend: Backend) -> None:
    db = backend.open(max_result_bytes=2000)
    # each row is about 8 + 8 + 20 bytes: the cap cuts after ~55 rows
    res = db.execute(
        f"SELECT b.id, c.name FROM {backend.big} b JOIN {backend.customers} c ON c.id = b.k + 1 "
        "ORDER BY b.id",
        max_rows=BIG_ROWS,
    )
    assert res.truncated is True
    assert 20 < len(res.rows) < 200
    # the connection is usable afterwards and nothing is left open
    assert db.execute(f"SELECT COUNT(*) FROM {backend.customers}").rows == ((3,),)
    assert db.in_transaction() is False
    db.close()


WRITES = [
    "DELETE FROM {c}",
    "UPDATE {c} SET name = 'x'",
    "INSERT INTO {c} (id, name) VALUES (99, 'Zed')",
    "DROP TABLE {o}",
    "CREATE TABLE {c}_x (i INTEGER)",
]


@pytest.mark.parametrize("template", WRITES)
def test_writes_are_refused(backend: Backend, template: str) -> None:
    db = backend.open()
    with pytest.raises(QueryError):
        db.execute(template.format(c=backend.customers, o=backend.orders))
    assert db.in_transaction() is False
    assert db.execute(f"SELECT COUNT(*) FROM {backend.customers}").rows == ((3,),)
    db.close()
    assert backend.count(backend.customers) == 3
    assert backend.count(backend.orders) == 4


def test_one_statement_per_call(backend: Backend) -> None:
    db = backend.open()
    for sql in (
        f"SELECT 1; DELETE FROM {backend.customers}",
        f"COMMIT; DROP TABLE {backend.orders}",
    ):
        with pytest.raises(QueryError):
            db.execute(sql)
    db.close()
    assert backend.count(backend.customers) == 3
    assert backend.count(backend.orders) == 4


def test_timeout_stops_the_statement(backend: Backend) -> None:
    db = backend.open(timeout_s=0.3)
    with pytest.raises(QueryTimeoutError):
        db.execute(f"SELECT COUNT(*) FROM {backend.big} a JOIN {backend.big} b ON a.k = b.k")
    assert db.in_transaction() is False
    assert db.execute(f"SELECT COUNT(*) FROM {backend.customers}").rows == ((3,),)
    db.close()


def test_cancel_stops_the_statement(backend: Backend) -> None:
    db = backend.open(timeout_s=30)
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    with pytest.raises(CancelledError):
        db.execute(
            f"SELECT COUNT(*) FROM {backend.big} a JOIN {backend.big} b ON a.k = b.k",
            cancel=cancel,
        )
    assert db.in_transaction() is False
    assert db.execute(f"SELECT COUNT(*) FROM {backend.orders}").rows == ((4,),)
    db.close()


def test_threads_share_the_pool(backend: Backend) -> None:
    db = backend.open(pool_size=3)
    errors: list[BaseException] = []
    results: list[Any] = []

    def work(i: int) -> None:
        try:
            for j in range(10):
                cid = 1 + (i + j) % 3
                res = db.execute(f"SELECT name FROM {backend.customers} WHERE id = {cid}")
                results.append((cid, res.rows))
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    names = {i: n for i, n, _, _ in CUSTOMERS}
    assert len(results) == 80
    assert all(rows == ((names[cid],),) for cid, rows in results)
    assert db.in_transaction() is False
    db.close()


def test_introspection_reads_tables_keys_and_foreign_keys(backend: Backend) -> None:
    db = backend.open()
    snap = db.introspect(tables=[backend.customers, backend.orders])
    by_name = {t.name: t for t in snap.tables}
    assert set(by_name) == {backend.customers, backend.orders}
    cust = by_name[backend.customers]
    assert [c.name.lower() for c in cust.columns] == ["id", "name", "city", "tenant_id"]
    assert [c.name.lower() for c in cust.columns if c.primary_key] == ["id"]
    (fk,) = snap.foreign_keys
    assert (fk.table, fk.ref_table) == (backend.orders, backend.customers)
    assert [c.lower() for c in fk.columns] == ["customer_id"]
    assert snap.dialect == backend.dialect
    assert db.distinct_values(backend.customers, "city", 10) in (
        ("Paris", "London"),
        ("London", "Paris"),
    )
    db.close()


def test_explain_runs(backend: Backend) -> None:
    db = backend.open()
    plan = db.explain(f"SELECT * FROM {backend.customers} WHERE city = 'Paris'")
    assert len(plan.rows) >= 1
    assert db.in_transaction() is False
    db.close()


def test_bad_settings_are_config_errors(backend: Backend) -> None:
    with pytest.raises(ConfigError, match="pool_size"):
        backend.open(pool_size=0)
    with pytest.raises(ConfigError, match="schemas"):
        backend.open(schemas="public")
    with pytest.raises(ConfigError, match="max_result_bytes"):
        backend.open(max_result_bytes=-1)
