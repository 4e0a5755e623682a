"""The calls the held-out evaluation makes, exactly: ``Assistant(db="sqlite:///...")``
with its default model, ``.train_from_database()``, ``.train(question=..., sql=...)``,
``.ask(question)``, reading ``.rows``, ``.sql`` and ``.error``."""

from __future__ import annotations

import collections
import json
import random
from pathlib import Path
from typing import Any

import pytest

from avl.assistant import Assistant, create_demo_database


def _rows(rows: Any) -> collections.Counter[tuple[Any, ...]]:
    return collections.Counter(tuple(r) for r in rows)


def test_the_evaluation_calls_on_the_demo_shop(tmp_path: Path) -> None:
    db = create_demo_database(tmp_path / "shop.db")
    a = Assistant(db=f"sqlite:///{db}")
    a.train_from_database()
    ans = a.ask("How many orders were cancelled?")
    assert ans.error == ""
    assert ans.sql == "SELECT COUNT(*) FROM orders WHERE status = 'cancelled' LIMIT 1000"
    gold = a.db.execute("SELECT COUNT(*) FROM orders WHERE status = 'cancelled'").rows
    assert ans.rows == tuple(tuple(r) for r in gold)
    # a trained pair is adapted to a question it was not trained with
    a.train(
        question="Which customers signed up in 2019 and live in Berlin?",
        sql="SELECT name FROM customers WHERE signup_year = 2019 AND city = 'Berlin'",
    )
    adapted = a.ask("Which customers signed up in 2021 and live in Paris?")
    assert adapted.error == ""
    assert adapted.sql == (
        "SELECT name FROM customers WHERE signup_year = 2021 AND city = 'Paris' LIMIT 1000"
    )
    # unanswerable: no SQL runs, no rows come back
    for q in ("delete all orders", "What is the weather in Paris tomorrow?", "x" * 10_000):
        ans = a.ask(q)
        assert ans.sql == ""
        assert ans.rows == ()
    a.close()


def _accuracy(shared: Path, dbs: tuple[str, ...], *, folds: bool) -> float:
    data = shared / "text2sql"
    qs = [json.loads(x) for x in (data / "questions.jsonl").read_text().splitlines() if x]
    right = total = 0
    for db_id in dbs:
        pairs = [(q["question"], q["sql"]) for q in qs if q["db_id"] == db_id]
        path = data / "databases" / db_id / f"{db_id}.sqlite"
        a = Assistant(db=f"sqlite:///{path}", cache_threshold=None, max_rows=10**6)
        a.train_from_database()
        golds = [_rows(a.db.execute(s, max_rows=10**7).rows) for _, s in pairs]
        order = list(range(len(pairs)))
        if folds:
            random.Random(db_id).shuffle(order)
            ids = [a.train(question=q, sql=s)[0] for q, s in pairs]
            for k in range(5):
                fold = order[k::5]
                for i in fold:
                    a.remove(ids[i])
                for i in fold:
                    ans = a.ask(pairs[i][0])
                    right += ans.error == "" and _rows(ans.rows) == golds[i]
                for i in fold:
                    ids[i] = a.train(question=pairs[i][0], sql=pairs[i][1])[0]
        else:
            for (q, _), gold in zip(pairs, golds, strict=True):
                ans = a.ask(q)
                right += ans.error == "" and _rows(ans.rows) == gold
        total += len(pairs)
        a.close()
    return right / total


@pytest.mark.slow
def test_accuracy_on_the_validation_half(shared_data: Path) -> None:
    """The half of the shared set no rule was written from: above the held-out bars
    (30% schema-only, 62% trained), with room for the held-out drop."""
    from benches.eval_text2sql import VALIDATION

    assert _accuracy(shared_data, VALIDATION, folds=False) >= 0.42
    assert _accuracy(shared_data, VALIDATION, folds=True) >= 0.65
