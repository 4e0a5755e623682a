"""Shared corpus runner for the SafeQuery corpus test and ``benches/corpus_safety.py``.

Standard policy: read-only (the default kinds), ``max_rows=1000``, defaults
otherwise. For ``sqli/malicious.jsonl`` the schema is ``sqli/app_schema.json``
plus every table of ``text2sql/databases/*/schema.sql`` (read by running the DDL
in an in-memory SQLite), and those tables are the allow-list. Rows of dialect
``generic`` are checked as MySQL; ``db2`` and ``firebird`` (which sqlglot has no
dialect for) as PostgreSQL, the closest standard-SQL reader.

Benign rows are checked against their own database's schema when it is one of
the text2sql databases (allow-list = its tables); for every other database
(most Spider-train, all defog and Spider 2.0 rows) the schema is not available
here, so they are checked with the standard policy without schema or allow-list.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from avl.safety import Policy, SafeQuery, Verdict

DIALECTS = {"generic": "mysql", "db2": "postgres", "firebird": "postgres"}
STRICT_TAGS = ("ddl", "dml", "stacked", "exec", "file", "admin", "dos", "time")


def dialect_of(name: str) -> str:
    return DIALECTS.get(name, name)


def ddl_schema(path: Path) -> dict[str, list[str]]:
    """Tables and columns of one ``schema.sql`` (run in an in-memory SQLite)."""
    con = sqlite3.connect(":memory:")
    try:
        con.executescript(path.read_text(encoding="utf-8"))
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: [r[1] for r in con.execute(f'PRAGMA table_info("{t}")')] for t in tables}
    finally:
        con.close()


def database_schemas(data: Path) -> dict[str, dict[str, list[str]]]:
    out = {}
    for schema_sql in sorted((data / "text2sql" / "databases").glob("*/schema.sql")):
        out[schema_sql.parent.name] = ddl_schema(schema_sql)
    return out


def malicious_schema(data: Path, dbs: dict[str, dict[str, list[str]]]) -> dict[str, list[str]]:
    schema: dict[str, set[str]] = {}
    app = json.loads((data / "sqli" / "app_schema.json").read_text(encoding="utf-8"))
    for source in [app, *dbs.values()]:
        for table, cols in source.items():
            schema.setdefault(table.lower(), set()).update(cols)
    return {t: sorted(c) for t, c in schema.items()}


def rows(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


class Guards:
    """One SafeQuery per (corpus, dialect, db), built lazily."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.dbs = database_schemas(data)
        self.mal_schema = malicious_schema(data, self.dbs)
        self._cache: dict[tuple[str, str, str | None], SafeQuery] = {}

    def malicious(self, dialect: str) -> SafeQuery:
        key = ("malicious", dialect, None)
        if key not in self._cache:
            self._cache[key] = SafeQuery(
                Policy(
                    dialect=dialect_of(dialect),
                    schema=self.mal_schema,
                    allowed_tables=list(self.mal_schema),
                    max_rows=1000,
                ),
                cache_size=0,
            )
        return self._cache[key]

    def benign(self, dialect: str, db: str | None) -> SafeQuery:
        schema = self.dbs.get(db) if db else None
        key = ("benign", dialect, db if schema is not None else None)
        if key not in self._cache:
            if schema is not None:
                policy = Policy(
                    dialect=dialect_of(dialect),
                    schema=schema,
                    allowed_tables=list(schema),
                    max_rows=1000,
                )
            else:
                policy = Policy(dialect=dialect_of(dialect), max_rows=1000)
            self._cache[key] = SafeQuery(policy, cache_size=0)
        return self._cache[key]


def run_malicious(
    guards: Guards,
) -> tuple[int, int, Counter[str], Counter[str], list[tuple[dict[str, Any], Verdict]]]:
    """Return (total, rejected, per-tag totals, per-tag rejected, allowed rows)."""
    total = rejected = 0
    tag_total: Counter[str] = Counter()
    tag_rejected: Counter[str] = Counter()
    passed = []
    for row in rows(guards.data / "sqli" / "malicious.jsonl"):
        verdict = guards.malicious(row["dialect"]).check(row["sql"])
        total += 1
        tags = set(row.get("tags") or []) | {row.get("kind", "")}
        tag_total.update(tags)
        if not verdict.allowed:
            rejected += 1
            tag_rejected.update(tags)
        else:
            passed.append((row, verdict))
    return total, rejected, tag_total, tag_rejected, passed


def run_benign(guards: Guards, name: str) -> tuple[int, list[tuple[dict[str, Any], Verdict]]]:
    """Return (total, rejected rows) for ``benign/<name>.jsonl``."""
    total = 0
    blocked = []
    for row in rows(guards.data / "benign" / f"{name}.jsonl"):
        verdict = guards.benign(row["dialect"], row.get("db")).check(row["sql"])
        total += 1
        if not verdict.allowed:
            blocked.append((row, verdict))
    return total, blocked


def run_questions(guards: Guards) -> tuple[int, list[tuple[dict[str, Any], Verdict]]]:
    """The gold SQL of ``text2sql/questions.jsonl``, each against its own database's schema."""
    total = 0
    blocked = []
    for row in rows(guards.data / "text2sql" / "questions.jsonl"):
        verdict = guards.benign("sqlite", row["db_id"]).check(row["sql"])
        total += 1
        if not verdict.allowed:
            blocked.append((row, verdict))
    return total, blocked


def corpus_functions(guards: Guards) -> dict[str, dict[str, tuple[int, bool]]]:
    """The distinct functions the benign corpora call, per dialect: name -> (calls, allowed).

    A call written with a name is listed by that name (lower case); function syntax
    without a name by its sqlglot class in angle brackets (``<cast>``). ``allowed`` says
    whether the dialect's rules allow the call (the same decision the checker makes).
    """
    import sqlglot
    from sqlglot import exp

    from avl.safety.allowlists import catalog

    out: dict[str, dict[str, tuple[int, bool]]] = {}
    catalogs = {}
    sources = [
        (row["sql"], dialect_of(row["dialect"]))
        for name in ("benign", "tricky")
        for row in rows(guards.data / "benign" / f"{name}.jsonl")
    ] + [(row["sql"], "sqlite") for row in rows(guards.data / "text2sql" / "questions.jsonl")]
    for sql, dialect in sources:
        if dialect not in catalogs:
            catalogs[dialect] = catalog(dialect)
        functions = catalogs[dialect]
        try:
            trees = sqlglot.parse(sql, read=dialect)
        except sqlglot.errors.SqlglotError:
            continue
        seen = out.setdefault(dialect, {})
        for tree in trees:
            if tree is None:
                continue
            for node in tree.find_all(exp.Func):
                meta = node.meta
                start, end = meta.get("start"), meta.get("end")
                text = (
                    sql[start : end + 1] if isinstance(start, int) and isinstance(end, int) else ""
                )
                cls = type(node)
                if text.strip('`"[]').replace("_", "").isalnum():
                    name = text.strip('`"[]').lower()
                    in_from = isinstance(node.parent, (exp.Table, exp.TableFromRows, exp.Lateral))
                    names = functions.table_names if in_from else functions.names
                    classes = functions.table_classes if in_from else functions.classes
                    allowed = name in names or (not functions.by_name and cls in classes)
                else:
                    name = f"<{cls.__name__.lower()}>"
                    allowed = cls in functions.classes or cls in functions.table_classes
                calls, _ = seen.get(name, (0, allowed))
                seen[name] = (calls + 1, allowed)
    return out
