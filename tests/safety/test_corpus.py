"""The shared SQL-injection and benign corpora, with the issue's thresholds.

See ``tests/safety/_corpus.py`` for the standard policy and how each corpus's
schema is chosen.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.safety._corpus import (
    STRICT_TAGS,
    Guards,
    corpus_functions,
    run_benign,
    run_malicious,
    run_questions,
)


@pytest.fixture(scope="module")
def guards(shared_data: Path) -> Guards:
    return Guards(shared_data)


def test_malicious_corpus(guards: Guards) -> None:
    total, rejected, tag_total, tag_rejected, passed = run_malicious(guards)
    assert total == 19170
    assert rejected / total >= 0.995, f"{rejected}/{total} rejected"
    for tag in STRICT_TAGS:
        missed = [row["sql"] for row, _ in passed if tag in row["tags"] or row["kind"] == tag]
        assert tag_rejected[tag] == tag_total[tag], (tag, missed[:5])


@pytest.mark.parametrize(("name", "size"), [("benign", 5539), ("tricky", 828)])
def test_benign_corpora(guards: Guards, name: str, size: int) -> None:
    total, blocked = run_benign(guards, name)
    assert total == size
    details = [
        (row["sql"][:120], [v.code.value for v in verdict.violations]) for row, verdict in blocked
    ]
    assert len(blocked) / total <= 0.005, details[:10]


def test_text2sql_gold_sql_with_its_schema(guards: Guards) -> None:
    total, blocked = run_questions(guards)
    assert total == 1056
    assert [(row["sql"], verdict.codes) for row, verdict in blocked] == []


def test_every_function_the_benign_corpora_call_is_allowed(guards: Guards) -> None:
    """An allow-list that blocks analysts is a failure too."""
    functions = corpus_functions(guards)
    assert set(functions) == {
        "sqlite",
        "postgres",
        "mysql",
        "duckdb",
        "tsql",
        "bigquery",
        "snowflake",
    }
    refused = {
        dialect: sorted(name for name, (_calls, allowed) in names.items() if not allowed)
        for dialect, names in functions.items()
    }
    assert refused == {dialect: [] for dialect in functions}
    assert sum(len(names) for names in functions.values()) >= 300


def test_rewritten_gold_sql_returns_the_same_rows(guards: Guards) -> None:
    """SQLite's double-quoted strings become single-quoted literals: same rows, every query."""
    import sqlite3

    from tests.safety._corpus import rows

    rewritten = 0
    for row in rows(guards.data / "text2sql" / "questions.jsonl"):
        verdict = guards.benign("sqlite", row["db_id"]).check(row["sql"])
        assert verdict.sql is not None
        if verdict.sql.replace(" LIMIT 1000", "") == row["sql"].rstrip().rstrip(";"):
            continue
        rewritten += 1
        db = guards.data / "text2sql" / "databases" / row["db_id"] / f"{row['db_id']}.sqlite"
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            want = sorted(map(repr, con.execute(row["sql"]).fetchall()))[:1000]
            got = sorted(map(repr, con.execute(verdict.sql).fetchall()))
        finally:
            con.close()
        assert got == want or len(got) == 1000, (row["sql"], verdict.sql)
    assert rewritten >= 200  # the double-quoted strings of the Spider gold SQL
