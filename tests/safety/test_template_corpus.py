"""Templates against the shared corpora and the real SQLite, PostgreSQL and MariaDB.

- every payload of ``sqli/payloads.txt`` rendered into a WHERE clause reads back from a
  real SQLite as exactly that string (NUL payloads get a clear error);
- a sample of them does the same on the real PostgreSQL and MariaDB servers;
- ``verify`` rejects the spliced statements of ``sqli/malicious.jsonl`` (>= 99.9 %),
  and the few it accepts are statements where the payload really is one literal.

The helpers at the top are also used by ``benches/corpus_template.py``.
"""

from __future__ import annotations

import json
import random
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from avl.errors import InvalidInputError, UnsafeQueryError
from avl.safety._template import Template, template

USERS_SQL = "SELECT id, name FROM users WHERE name = :name"
ECHO_SQL = "SELECT :v AS v"
SAMPLE = 2000

_HASH = "{q}5f4dcc3b5aa765d61d8327deb882cf99{q}"
# (context family, template id) -> (application SQL with {v} where the value goes,
# how the value was written around the payload {p} with quote {q}). These are the
# templates that built malicious.jsonl (sqli/build.py), with the whole literal that
# the payload was spliced into marked as the value.
SPLICE_TEMPLATES: tuple[tuple[tuple[str, str], tuple[str, str]], ...] = (
    (
        ("string", "login"),
        (
            "SELECT id, username, role FROM users WHERE username = {v} AND password_hash = "
            + _HASH,
            "{q}{p}{q}",
        ),
    ),
    (
        ("string", "search"),
        ("SELECT id, name, price FROM products WHERE name = {v} ORDER BY price", "{q}{p}{q}"),
    ),
    (
        ("string", "like"),
        ("SELECT title, body FROM articles WHERE title LIKE {v} LIMIT 20", "{q}%{p}%{q}"),
    ),
    (
        ("string", "join"),
        (
            "SELECT o.id, o.total, c.email FROM orders o JOIN customers c "
            "ON c.id = o.customer_id WHERE c.email = {v}",
            "{q}{p}{q}",
        ),
    ),
    (
        ("string", "login-paren"),
        (
            "SELECT id, username FROM users WHERE (username = {v}) AND (password_hash = {q}x{q})",
            "{q}{p}{q}",
        ),
    ),
    (
        ("string", "search-paren"),
        (
            "SELECT id, name FROM products WHERE (category = {q}books{q} AND (name = {v}))",
            "{q}{p}{q}",
        ),
    ),
    (("numeric", "by-id"), ("SELECT id, name, email FROM customers WHERE id = {v}", "{p}")),
    (
        ("numeric", "by-id-order"),
        ("SELECT * FROM orders WHERE customer_id = {v} ORDER BY created_at DESC", "{p}"),
    ),
    (("numeric", "in-list"), ("SELECT name FROM products WHERE category_id IN ({v})", "{p}")),
    (
        ("numeric", "limit"),
        ("SELECT id, title FROM articles ORDER BY published_at DESC LIMIT {v}", "{p}"),
    ),
    (("after-value", "by-id"), ("SELECT id, name, email FROM customers WHERE id = {v}", "1 {p}")),
    (
        ("after-value", "by-id-order"),
        ("SELECT * FROM orders WHERE customer_id = {v}", "42 {p}"),
    ),
    (("after-value", "paged"), ("SELECT id, title FROM articles WHERE author_id = {v}", "7 {p}")),
    (("order-by", "order-by"), ("SELECT id, name, price FROM products ORDER BY {v}", "1{p}")),
    (("order-by", "select-list"), ("SELECT id, {v} FROM products WHERE id = 3", "name{p}")),
)


class Spliced(NamedTuple):
    """One spliced malicious row and the application template it came from."""

    sql: str
    template_sql: str
    payload: str
    tags: tuple[str, ...]
    kind: str


def read_payloads(data: Path) -> list[str]:
    """The payloads of ``sqli/payloads.txt``, one per line (lines may hold any character)."""
    text = (data / "sqli" / "payloads.txt").read_text(encoding="utf-8")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def spliced_rows(data: Path) -> Iterator[Spliced]:
    """The rows of ``malicious.jsonl`` with a template and a payload, with their template.

    The template SQL is the row's statement with the literal that the payload was
    spliced into replaced by ``:p``; a row whose statement the table above does not
    reproduce exactly raises ``LookupError`` (so the derivation cannot silently drift).
    """
    table = dict(SPLICE_TEMPLATES)
    with (data / "sqli" / "malicious.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            payload, context = row.get("payload"), row.get("context", "")
            if not row.get("template") or payload is None or context == "llm":
                continue
            family = "string" if context.startswith("string") else context
            sql_shape, value_shape = table[(family, row["template"])]
            quote = '"' if context == "string-double" else "'"
            for variant in (payload, payload.strip(), payload.rstrip()):
                value = value_shape.format(q=quote, p=variant)
                if sql_shape.format(q=quote, v=value) == row["sql"]:
                    break
            else:
                raise LookupError(f"cannot reconstruct the template of {row['sql']!r}")
            yield Spliced(
                sql=row["sql"],
                template_sql=sql_shape.format(q=quote, v=":p"),
                payload=payload,
                tags=tuple(row.get("tags", ())),
                kind=row.get("kind", ""),
            )


class VerifyOutcome(NamedTuple):
    total: int
    rejected: int
    accepted: list[tuple[Spliced, dict[str, object]]]


def verify_spliced(rows: list[Spliced], dialect: str) -> VerifyOutcome:
    """Run ``verify`` of each row's template over the row's statement."""
    cache: dict[str, Template] = {}
    rejected = 0
    accepted: list[tuple[Spliced, dict[str, object]]] = []
    for row in rows:
        tpl = cache.get(row.template_sql)
        if tpl is None:
            tpl = cache[row.template_sql] = template(row.template_sql, dialect=dialect)
        try:
            values = tpl.verify(row.sql)
        except UnsafeQueryError:
            rejected += 1
        else:
            accepted.append((row, values))
    return VerifyOutcome(total=len(rows), rejected=rejected, accepted=accepted)


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def payloads(shared_data: Path) -> list[str]:
    return read_payloads(shared_data)


@pytest.fixture(scope="module")
def spliced(shared_data: Path) -> list[Spliced]:
    return list(spliced_rows(shared_data))


@pytest.fixture(scope="module")
def sqlite_outcome(spliced: list[Spliced]) -> VerifyOutcome:
    return verify_spliced(spliced, "sqlite")


def _sample(payloads: list[str]) -> list[str]:
    """A fixed sample, with every payload holding a quote-breaking character first."""
    risky = [p for p in payloads if "\\" in p or "\x00" in p]
    chosen = set(risky)
    rest = [p for p in payloads if p not in chosen]
    return risky + random.Random(20261125).sample(rest, SAMPLE - len(risky))


# ---------------------------------------------------------------- payloads -> SQLite


def test_payload_file_is_the_documented_corpus(payloads: list[str]) -> None:
    assert len(payloads) == 14996
    assert sum("\x00" in p for p in payloads) == 10


def test_every_payload_reads_back_from_a_real_sqlite(payloads: list[str], tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "users.db")
    try:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)")
        holdable = [p for p in payloads if "\x00" not in p]
        conn.executemany("INSERT INTO users (id, name) VALUES (?, ?)", enumerate(holdable))
        ids = {payload: index for index, payload in enumerate(holdable)}
        tpl = template(USERS_SQL, dialect="sqlite")
        refused = []
        read_back = 0
        for payload in payloads:
            try:
                sql = tpl.render(name=payload)
            except InvalidInputError as exc:
                refused.append((payload, str(exc)))
                continue
            assert conn.execute(sql).fetchall() == [(ids[payload], payload)]
            assert tpl.verify(sql) == {"name": payload}
            read_back += 1
        assert read_back == len(payloads) - 10
        assert [p for p, _ in refused] == [p for p in payloads if "\x00" in p]
        assert all("NUL character" in message for _, message in refused)
    finally:
        conn.close()


# ---------------------------------------------------------------- payloads -> servers


@pytest.mark.postgres
def test_payload_sample_reads_back_from_real_postgres(
    payloads: list[str], postgres_dsn: str
) -> None:
    import psycopg

    sample = _sample(payloads)
    table = f"avl_tpl_{uuid.uuid4().hex[:12]}"
    tpl = template(f"SELECT id, name FROM {table} WHERE name = :name", dialect="postgres")
    echo = template(ECHO_SQL, dialect="postgres")
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (id integer PRIMARY KEY, name text NOT NULL)")
        try:
            holdable = [p for p in sample if "\x00" not in p]
            with conn.cursor() as cur:
                cur.executemany(
                    f"INSERT INTO {table} (id, name) VALUES (%s, %s)", list(enumerate(holdable))
                )
            # A server that still reads backslashes as escapes in plain strings.
            conn.execute("SET standard_conforming_strings = off")
            conn.execute("SET escape_string_warning = off")
            checked = 0
            for index, payload in enumerate(holdable):
                sql = tpl.render(name=payload)
                assert conn.execute(sql).fetchall() == [(index, payload)]
                assert conn.execute(echo.render(v=payload)).fetchall() == [(payload,)]
                checked += 1
            conn.execute("SET standard_conforming_strings = on")
            for payload in holdable:
                assert conn.execute(echo.render(v=payload)).fetchall() == [(payload,)]
            assert checked == len(holdable) == SAMPLE - 10
            for payload in sample:
                if "\x00" in payload:
                    with pytest.raises(InvalidInputError, match="NUL character"):
                        tpl.render(name=payload)
        finally:
            conn.execute(f"DROP TABLE {table}")


def _mysql_connect(url: str) -> Any:
    from urllib.parse import urlsplit

    import pymysql

    parts = urlsplit(url)
    return pymysql.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=parts.username or "root",
        password=parts.password or "",
        database=(parts.path or "/test").lstrip("/") or "test",
        charset="utf8mb4",
        autocommit=True,
    )


@pytest.mark.mysql
def test_payload_sample_reads_back_from_real_mariadb(payloads: list[str], mysql_url: str) -> None:
    sample = _sample(payloads)
    table = f"avl_tpl_{uuid.uuid4().hex[:12]}"
    tpl = template(f"SELECT id, name FROM {table} WHERE name = :name", dialect="mysql")
    echo = template(ECHO_SQL, dialect="mysql")
    conn = _mysql_connect(mysql_url)
    try:
        cur = conn.cursor()
        cur.execute(
            f"CREATE TABLE {table} (id INT PRIMARY KEY, name LONGTEXT NOT NULL) "
            "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
        )
        try:
            cur.executemany(
                f"INSERT INTO {table} (id, name) VALUES (%s, %s)", list(enumerate(sample))
            )
            for index, payload in enumerate(sample):
                cur.execute(tpl.render(name=payload))
                assert cur.fetchall() == ((index, payload),)
                cur.execute(echo.render(v=payload))
                assert cur.fetchall() == ((payload,),)
            # With NO_BACKSLASH_ESCAPES the server keeps backslashes as written: values
            # with a backslash or NUL come back altered, but nothing escapes the literal.
            cur.execute("SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')")
            for payload in sample:
                cur.execute(echo.render(v=payload))
                expected = payload.replace("\\", "\\\\").replace("\x00", "\\0")
                assert cur.fetchall() == ((expected,),)
        finally:
            cur.execute(f"DROP TABLE {table}")
    finally:
        conn.close()


# ---------------------------------------------------------------- malicious -> verify


def test_every_spliced_row_maps_to_its_template(spliced: list[Spliced]) -> None:
    assert len(spliced) == 18882
    assert len({row.template_sql for row in spliced}) == 17


@pytest.mark.parametrize("dialect", ["sqlite", "postgres", "mysql"])
def test_verify_rejects_the_spliced_malicious_statements(
    spliced: list[Spliced], sqlite_outcome: VerifyOutcome, dialect: str
) -> None:
    outcome = sqlite_outcome if dialect == "sqlite" else verify_spliced(spliced, dialect)
    assert outcome.total == 18882
    assert outcome.rejected / outcome.total >= 0.999
    # What is accepted must really be the template with one literal: rendering the
    # values that verify read gives SQL that verifies to the same values.
    for row, values in outcome.accepted:
        tpl = template(row.template_sql, dialect=dialect)
        assert tpl.verify(tpl.render(**values)) == values


def test_the_spliced_statements_verify_accepts_are_harmless_values(
    sqlite_outcome: VerifyOutcome,
) -> None:
    outcome = sqlite_outcome
    found = sorted({(row.payload, repr(values["p"])) for row, values in outcome.accepted})
    # Each of these payloads, spliced as the application does, is one literal in
    # SQLite: a quote written as '' , a backslash that SQLite does not treat as an
    # escape (so the "breakout" stays inside the string), a number, a hex integer.
    assert [payload for payload, _ in found] == [
        "''",
        "''",
        "0x770061006900740066006F0072002000640065006C00610079002000270030003A0030003A",
        "3.10E+17",
        "\\''); DROP TABLE users; --",
        "\\''); DROP TABLE users; --",
        "\\''; DROP TABLE users; --",
    ]
    assert len(outcome.accepted) == 10
