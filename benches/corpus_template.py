"""SafeQuery templates on the shared SQL-injection corpora.

Prints, for the dialects sqlite, postgres and mysql:

- render round trips: every payload of ``sqli/payloads.txt`` rendered into
  ``SELECT :v AS v`` and read back from a real database (SQLite in memory always;
  PostgreSQL and MariaDB from the test servers unless ``--no-servers``), counting
  exact read-backs and clear refusals (a NUL character where the dialect cannot
  hold one);
- acceptance of render outputs: ``verify(render(p)) == {"name": p}`` for every payload;
- verify rejection on the 18,882 spliced rows of ``sqli/malicious.jsonl``: overall,
  and by tag, with the accepted rows listed;
- speed: renders and verifies per second, beside ``sqlglot.parse_one`` of the same
  statements in the same run (one parse is the floor: render and verify each parse
  once and compare trees).

Run: ``.venv/bin/python benches/corpus_template.py [--no-servers] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import collections
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlglot  # noqa: E402

from avl.errors import AvlError  # noqa: E402
from avl.safety._template import template  # noqa: E402
from tests.conftest import MYSQL_URL, POSTGRES_DSN, shared_data_dir  # noqa: E402
from tests.safety.test_template_corpus import (  # noqa: E402
    read_payloads,
    spliced_rows,
    verify_spliced,
)

DIALECTS = ("sqlite", "postgres", "mysql")
ECHO = "SELECT :v AS v"
USERS = "SELECT id, name FROM users WHERE name = :name"


def _connect(dialect: str) -> Any:
    if dialect == "sqlite":
        return sqlite3.connect(":memory:")
    if dialect == "postgres":
        import psycopg

        return psycopg.connect(POSTGRES_DSN, autocommit=True)
    from urllib.parse import urlsplit

    import pymysql

    parts = urlsplit(MYSQL_URL)
    return pymysql.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=parts.username or "root",
        password=parts.password or "",
        database=(parts.path or "/test").lstrip("/") or "test",
        charset="utf8mb4",
        autocommit=True,
    )


def round_trips(dialect: str, payloads: list[str]) -> tuple[int, int, int]:
    """(exact read-backs, clear refusals, wrong read-backs) for every payload."""
    tpl = template(ECHO, dialect=dialect)
    conn = _connect(dialect)
    exact = refused = wrong = 0
    try:
        cur = conn.cursor()
        for payload in payloads:
            try:
                sql = tpl.render(v=payload)
            except AvlError:
                refused += 1
                continue
            cur.execute(sql)
            rows = [tuple(r) for r in cur.fetchall()]
            if rows == [(payload,)]:
                exact += 1
            else:
                wrong += 1
    finally:
        conn.close()
    return exact, refused, wrong


def render_acceptance(dialect: str, payloads: list[str]) -> tuple[int, int]:
    """(rendered, of which verify returned exactly the value)."""
    tpl = template(USERS, dialect=dialect)
    rendered = accepted = 0
    for payload in payloads:
        try:
            sql = tpl.render(name=payload)
        except AvlError:
            continue
        rendered += 1
        try:
            if tpl.verify(sql) == {"name": payload}:
                accepted += 1
        except AvlError:
            pass
    return rendered, accepted


def _best_rate(fn: Callable[[], int], rounds: int) -> float:
    """Best rate over ``rounds``, in this process's CPU time (the machine is shared)."""
    best = 0.0
    for _ in range(rounds):
        start = time.process_time()
        count = fn()
        best = max(best, count / max(time.process_time() - start, 1e-9))
    return best


def speed(payloads: list[str], rounds: int) -> None:
    sample = [p for p in payloads if "\x00" not in p][:3000]
    short = template(USERS, dialect="sqlite")
    long_sql = (
        "WITH recent AS (SELECT o.id, o.customer_id, o.total, o.created_at FROM orders o "
        "WHERE o.created_at > :since AND o.status = :status), ranked AS (SELECT r.*, "
        "ROW_NUMBER() OVER (PARTITION BY r.customer_id ORDER BY r.total DESC) AS rn FROM "
        "recent r) SELECT c.name, c.email, k.total, k.created_at FROM ranked k JOIN "
        "customers c ON c.id = k.customer_id WHERE k.rn <= :top AND c.region = :region "
        "AND (c.name LIKE :pattern OR c.email = :email) ORDER BY k.total DESC LIMIT :lim"
    )
    long_tpl = template(long_sql, dialect="sqlite")
    short_sql = [short.render(name=p) for p in sample]
    long_values = [
        {
            "since": "2026-01-01",
            "status": p,
            "top": 3,
            "region": "EU",
            "pattern": f"%{p[:10]}%",
            "email": p,
            "lim": 100,
        }
        for p in sample[:1000]
    ]
    long_rendered = [long_tpl.render(**v) for v in long_values]
    print(f"\nspeed (best of {rounds} rounds, process CPU time; shared, noisy machine)")
    print(f"  {'':34} {'per second':>12}  {'us each':>9}")

    def row(label: str, rate: float) -> None:
        print(f"  {label:34} {rate:12,.0f}  {1e6 / rate:9.1f}")

    row("short: sqlglot.parse_one", _best_rate(lambda: _parse_all(short_sql), rounds))
    row("short: Template.render", _best_rate(lambda: _render_all(short, sample), rounds))
    row("short: Template.verify", _best_rate(lambda: _verify_all(short, short_sql), rounds))
    print(f"  (long = a {len(long_rendered[0])}-character CTE statement with 7 placeholders)")
    row("long: sqlglot.parse_one", _best_rate(lambda: _parse_all(long_rendered), rounds))
    row(
        "long: Template.render",
        _best_rate(lambda: sum(1 for v in long_values if long_tpl.render(**v)), rounds),
    )
    row("long: Template.verify", _best_rate(lambda: _verify_all(long_tpl, long_rendered), rounds))
    row(
        "template(): parse a template",
        _best_rate(lambda: sum(1 for _ in range(300) if template(long_sql)), rounds),
    )


def _parse_all(statements: list[str]) -> int:
    for sql in statements:
        sqlglot.parse_one(sql, read="sqlite")
    return len(statements)


def _render_all(tpl: Any, payloads: list[str]) -> int:
    for p in payloads:
        tpl.render(name=p)
    return len(payloads)


def _verify_all(tpl: Any, statements: list[str]) -> int:
    for sql in statements:
        tpl.verify(sql)
    return len(statements)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-servers", action="store_true", help="SQLite only for round trips")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    data = shared_data_dir()
    payloads = read_payloads(data)
    print(f"sqlglot {sqlglot.__version__}; {len(payloads):,} payloads")

    print("\nrender -> real database -> read back (SELECT :v AS v), every payload")
    for dialect in DIALECTS:
        if args.no_servers and dialect != "sqlite":
            continue
        try:
            exact, refused, wrong = round_trips(dialect, payloads)
        except Exception as exc:  # a missing server is reported, not fatal
            print(f"  {dialect:9} unavailable: {type(exc).__name__}: {exc}")
            continue
        print(
            f"  {dialect:9} exact {exact:,} / {len(payloads):,}; refused clearly {refused} "
            f"(NUL); wrong read-backs {wrong}"
        )

    print("\nverify(render(p)) == {'name': p}, every payload")
    for dialect in DIALECTS:
        rendered, accepted = render_acceptance(dialect, payloads)
        print(f"  {dialect:9} {accepted:,} / {rendered:,} rendered values accepted")

    rows = list(spliced_rows(data))
    print(f"\nverify on the {len(rows):,} spliced rows of malicious.jsonl")
    for dialect in DIALECTS:
        outcome = verify_spliced(rows, dialect)
        rate = outcome.rejected / outcome.total
        print(f"  {dialect:9} rejected {outcome.rejected:,} / {outcome.total:,} = {rate:.4%}")
        by_tag: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
        accepted_ids = {id(row) for row, _ in outcome.accepted}
        for row in rows:
            ok = id(row) not in accepted_ids
            for tag in row.tags or ("(none)",):
                by_tag[tag][0] += ok
                by_tag[tag][1] += 1
        tags = ", ".join(
            f"{tag} {r}/{n}" for tag, (r, n) in sorted(by_tag.items(), key=lambda kv: -kv[1][1])
        )
        print(f"    by tag: {tags}")
        for row, values in outcome.accepted:
            print(f"    accepted: payload {row.payload!r:.70} -> {values['p']!r:.60}")

    speed(payloads, args.rounds)


if __name__ == "__main__":
    main()
