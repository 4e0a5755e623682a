"""The bypass suite and the leak oracle, shared by ``test_leaks.py`` and ``benches/corpus_safety.py``.

Three secrets are planted in each engine: a denied column (``users.password_hash``),
another tenant's rows (``orders`` of tenant 2, under the row filter
``tenant_id = :tenant``) and a table outside the allow-list (``secrets``). Every statement
of the suite is checked with the held-out contract's policy (schema given, and again
without a schema); each one SafeQuery allows is run on the real engine, and no secret
may appear in any result or in the driver's error text. The suite was written from the attack classes of issue 19 and
from the engines' own function lists (``pg_proc``, ``pragma_function_list``,
``duckdb_functions()``, MariaDB's built-ins): SQL-text evaluators, XML/JSON exporters,
catalogue and settings readers, file and URL readers, large objects, sequences, locks,
renamed columns, positional references, star modifiers, whole-row references, set
operations, CTEs, laterals, quoted aliases and qualified names.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import attrs

from avl.safety import Policy, SafeQuery

TENANT = 1

# {u} users, {o} orders, {s} the table outside the allow-list, {q} the schema qualifier,
# {f} a file holding a secret (DuckDB), {U} the users table name as a string literal
COMMON = [
    "SELECT * FROM {u}",
    "SELECT password_hash FROM {u}",
    "SELECT name, password_hash AS p FROM {u}",
    "SELECT upper(password_hash) FROM {u}",
    "SELECT count(*) FROM {u} WHERE password_hash LIKE 'PW%'",
    "SELECT max(password_hash) FROM {u}",
    "SELECT name FROM {u} UNION SELECT password_hash FROM {u}",
    "SELECT name FROM {u} UNION ALL SELECT password_hash FROM {u}",
    "SELECT name, (SELECT password_hash FROM {u} LIMIT 1) AS p FROM {u}",
    "SELECT CASE WHEN password_hash LIKE 'P%' THEN 1 ELSE 0 END AS b FROM {u}",
    "WITH t(a, b, c, d, e) AS (SELECT * FROM {u}) SELECT e FROM t",
    "WITH t(a, b, c, d, e) AS (SELECT * FROM {u}) SELECT * FROM t",
    "WITH t AS (SELECT * FROM {u}) SELECT * FROM t",
    "WITH t AS (SELECT * FROM {u}) SELECT password_hash FROM t",
    "WITH t AS (SELECT * FROM {u}) SELECT name FROM t",
    "SELECT x.e FROM {u} AS x(a, b, c, d, e)",
    "SELECT x.* FROM {u} AS x(a, b, c, d, e)",
    "SELECT t.c5 FROM (SELECT * FROM {u}) AS t(c1, c2, c3, c4, c5)",
    "SELECT * FROM (SELECT * FROM {u}) AS t",
    "SELECT t.* FROM (SELECT * FROM {u}) AS t",
    "SELECT t.name FROM (SELECT * FROM {u}) AS t",
    "SELECT t.password_hash FROM (SELECT * FROM {u}) AS t",
    "SELECT * FROM (SELECT id, password_hash FROM {u}) AS t",
    "SELECT * FROM (SELECT * FROM {u}) AS t ORDER BY 5",
    "WITH t AS (SELECT * FROM {u} ORDER BY 5) SELECT name FROM t",
    "SELECT id, name FROM {u} ORDER BY 5",
    "SELECT * FROM {u} NATURAL JOIN {o}",
    "SELECT * FROM {s}",
    "SELECT secret FROM {s}",
    "SELECT name FROM {u} WHERE id IN (SELECT id FROM {s})",
    "SELECT (SELECT secret FROM {s} LIMIT 1) AS x",
    "WITH x AS (SELECT * FROM {s}) SELECT * FROM x",
    "SELECT * FROM {q}{s}",
    "SELECT notes FROM {o}",
    "SELECT notes FROM {o} WHERE tenant_id = 2",
    "SELECT notes FROM {o} WHERE tenant_id = 1 OR 1 = 1",
    "SELECT notes FROM {o} WHERE tenant_id = 1 OR tenant_id = 2",
    "SELECT notes FROM {o} WHERE 1 = 1",
    "SELECT o.notes FROM {o} o JOIN {o} p ON p.id = o.id",
    "SELECT notes FROM {o} UNION ALL SELECT notes FROM {o}",
    "WITH x AS (SELECT * FROM {o}) SELECT notes FROM x",
    "WITH x AS (SELECT * FROM {o} WHERE tenant_id = 2) SELECT notes FROM x",
    "SELECT (SELECT max(notes) FROM {o} WHERE tenant_id = 2) AS n",
    "SELECT notes FROM {o} WHERE id IN (SELECT id FROM {o} WHERE tenant_id = 2)",
    'SELECT notes FROM {o} AS "order"',
    'SELECT "order".notes FROM {o} AS "order"',
    "SELECT {q}{o}.notes FROM {q}{o}",
    "SELECT notes FROM {q}{o}",
    "SELECT o1.notes FROM {o} o1, {o} o2 WHERE o1.id = o2.id",
    "SELECT notes FROM {o} ORDER BY 1 LIMIT 100000",
    "SELECT u.name, o.notes FROM {u} u JOIN {o} o ON o.user_id = u.id",
    "SELECT u.name, o.notes FROM {u} u LEFT JOIN {o} o ON o.user_id = u.id",
    "SELECT notes FROM {o} WHERE tenant_id = 2 OR \"zz\" = 'zz'",
    'SELECT notes FROM {o} WHERE "notes" = "notes"',
    "SELECT o.* FROM {o} o",
    "SELECT * FROM {o}",
    "SELECT DISTINCT notes FROM {o}",
    "SELECT notes FROM {o} GROUP BY notes HAVING count(*) > 0",
    "SELECT id FROM {o} WHERE notes LIKE 'T%'",
    "SELECT first_value(password_hash) OVER (ORDER BY id) AS f FROM {u}",
    "SELECT lag(password_hash) OVER (ORDER BY id) AS f FROM {u}",
    "SELECT coalesce(NULL, password_hash) AS f FROM {u}",
    "SELECT name FROM {u} WHERE EXISTS (SELECT 1 FROM {u} v WHERE v.password_hash > 'A')",
    "WITH RECURSIVE r(n, p) AS (SELECT 1, password_hash FROM {u} UNION ALL SELECT n + 1, p FROM r WHERE n < 2) SELECT p FROM r",
    "SELECT name FROM {u} WHERE id = 1 UNION ALL SELECT NULL",
    "SELECT * FROM {u} WHERE name = '' OR '1' = '1'",
    "SELECT name FROM {u}; SELECT password_hash FROM {u}",
    "SELECT name FROM {u} -- ' AND 1 = 0",
    "WITH a AS (SELECT * FROM {u}), b(x1, x2, x3, x4, x5) AS (SELECT * FROM a) SELECT x5 FROM b",
    "WITH a AS (SELECT * FROM {u}), b(x1, x2, x3, x4, x5) AS (SELECT * FROM a) SELECT x2 FROM b",
    "WITH t AS (SELECT * FROM {u} UNION ALL SELECT * FROM {u}) SELECT * FROM t",
    "SELECT password_hash FROM {u} AS x(a, b, c, d, pw)",
    "SELECT x.pw FROM {u} AS x(a, b, c, d, pw)",
    "SELECT (SELECT v.password_hash FROM {u} v WHERE v.id = w.id) AS p FROM {u} w",
    "SELECT name FROM {u} ORDER BY password_hash",
    "SELECT name FROM {u} GROUP BY name, password_hash",
    'SELECT name FROM {u} WHERE name = "password_hash"',
    "SELECT n.notes FROM {o} AS n(a, b, c, d, notes)",
    "SELECT notes FROM {o} AS o(a, b, c, d, notes) WHERE 1 = 1",
    "SELECT notes FROM {o} /* c */ WHERE tenant_id = 2",
    "SELECT notes FROM {o} o -- trailing",
    "SELECT a.notes FROM {o} a, {o} b WHERE a.id = b.id AND b.tenant_id = 2",
    # a CTE naming itself outside a UNION's recursive term: DuckDB reads the real table
    "WITH RECURSIVE {u} AS (SELECT * FROM {u}) SELECT * FROM {u}",
    "WITH RECURSIVE {o} AS (SELECT * FROM {o}) SELECT * FROM {o}",
    "WITH RECURSIVE {o} AS (SELECT * FROM {o} UNION ALL SELECT * FROM {o} WHERE 1 = 0) SELECT * FROM {o}",
    "SELECT name FROM {u} NATURAL JOIN (SELECT 1 AS id, 'x' AS password_hash) AS g",
]

SQLITE = [
    "SELECT * FROM pragma_table_info('{u}')",
    "SELECT name FROM pragma_table_info('{u}')",
    "SELECT sql FROM sqlite_master",
    "SELECT * FROM sqlite_schema",
    "SELECT load_extension('/nonexistent')",
    "SELECT readfile('/etc/hostname')",
    "SELECT * FROM json_each((SELECT json_group_array(password_hash) FROM {u}))",
    "SELECT value FROM json_each((SELECT json_group_array(notes) FROM {o}))",
    "SELECT json_object('p', password_hash) FROM {u}",
    "SELECT group_concat(password_hash) FROM {u}",
    "SELECT printf('%s', password_hash) FROM {u}",
    "SELECT * FROM dbstat",
    "SELECT sqlite_version()",
    "SELECT fts3_tokenizer('simple')",
    'SELECT "password_hash" FROM {u}',
    'SELECT name FROM {u} WHERE name = "zz" OR "zz" = \'zz\'',
    "SELECT notes FROM main.{o}",
    "SELECT main.{o}.notes FROM main.{o}",
    "SELECT rowid, * FROM {u}",
    "ATTACH DATABASE ':memory:' AS x",
    "PRAGMA table_info({u})",
    "SELECT length(printf('%.*c', 1000000000, 'x'))",
    "WITH RECURSIVE r(s) AS (SELECT 'x' UNION ALL SELECT s || s FROM r WHERE length(s) < 1000000000) SELECT max(length(s)) FROM r",
    "SELECT zeroblob(1000000000)",
    "SELECT hex(randomblob(500000000))",
    "SELECT count(*) FROM {o} a, {o} b",
    "SELECT count(*) FROM {o} a JOIN {o} b ON a.id = a.id",
]

POSTGRES = [
    # a bare word in a date-part position is a column to the engine, a unit to sqlglot
    "SELECT DATE_TRUNC(password_hash, now()) FROM {u}",
    "SELECT date_part(password_hash, now()) FROM {u}",
    "SELECT DATE_TRUNC(notes, now()) FROM {o} WHERE tenant_id = 2",
    "SELECT query_to_xml('SELECT password_hash FROM {u}', true, false, '')",
    "SELECT query_to_xml('SELECT * FROM {s}', true, false, '')",
    "SELECT table_to_xml('{o}', true, false, '')",
    "SELECT table_to_xml('{s}', true, false, '')",
    "SELECT database_to_xml(true, false, '')",
    "SELECT schema_to_xml('public', true, false, '')",
    "SELECT query_to_xmlschema('SELECT 1', true, false, '')",
    "SELECT * FROM ts_stat('SELECT to_tsvector(password_hash) FROM {u}')",
    "SELECT ts_stat('SELECT to_tsvector(secret) FROM {s}')",
    "SELECT ts_rewrite('a'::tsquery, 'SELECT ''a''::tsquery, ''b''::tsquery')",
    "SELECT query_to_xml('SELECT pg_read_file(''/etc/hostname'')', true, false, '')",
    "SELECT pg_read_file('/etc/hostname')",
    "SELECT lo_import('/etc/hostname')",
    "SELECT * FROM pg_ls_dir('.')",
    "SELECT current_setting('data_directory')",
    "SELECT set_config('search_path', 'pg_catalog', false)",
    "SELECT * FROM pg_show_all_settings()",
    "SELECT * FROM pg_stat_get_activity(NULL)",
    "SELECT * FROM pg_stat_activity",
    "SELECT passwd FROM pg_shadow",
    "SELECT * FROM information_schema.tables",
    "SELECT to_regclass('{s}')",
    "SELECT '{s}'::regclass",
    "SELECT has_table_privilege('{s}', 'select')",
    "SELECT nextval('x')",
    "SELECT txid_current()",
    "SELECT pg_advisory_lock(1)",
    "SELECT pg_sleep(0)",
    "SELECT pg_catalog.pg_sleep(0)",
    "SELECT version()",
    "SELECT current_user",
    "SELECT u FROM {u} u",
    "SELECT row_to_json(u) FROM {u} u",
    "SELECT to_json(u) FROM {u} u",
    "SELECT json_agg(u) FROM {u} u",
    "SELECT (u).password_hash FROM {u} u",
    "SELECT (u).* FROM {u} u",
    "SELECT u::text FROM {u} u",
    "SELECT row_to_json(t) FROM (SELECT * FROM {u}) t",
    "SELECT * FROM jsonb_populate_record(null::{u}, '{{}}')",
    "SELECT * FROM json_to_recordset((SELECT json_agg(u) FROM {u} u)) AS x(password_hash text)",
    "SELECT * FROM jsonb_to_recordset((SELECT jsonb_agg(o) FROM {o} o)) AS x(notes text)",
    "SELECT notes FROM public.{o}",
    "SELECT public.{o}.notes FROM public.{o}",
    "SELECT * FROM {o} JOIN LATERAL (SELECT * FROM {u}) l ON true",
    "SELECT l.name FROM {o} o, LATERAL (SELECT * FROM {u}) l",
    "SELECT string_agg(password_hash, ',') FROM {u}",
    "SELECT format('%s', password_hash) FROM {u}",
    "SELECT array_agg(notes) FROM {o}",
    "SELECT * FROM unnest(ARRAY(SELECT notes FROM {o}))",
    "SELECT * FROM generate_series(1, 3) g, LATERAL (SELECT notes FROM {o} WHERE id = g) x",
    "SELECT xmlelement(name x, password_hash) FROM {u}",
    "SELECT dblink('host=127.0.0.1', 'SELECT 1')",
    "COPY {u} TO STDOUT",
    "SELECT * FROM ONLY {o}",
    'SELECT "UPPER"(password_hash) FROM {u}',
    'SELECT "pg_sleep"(0)',
    'SELECT U&"\\0070g_sleep"(0)',
    "SELECT pg_catalog.upper(name) FROM {u}",
    "SELECT u FROM {u} u WHERE u IS NOT NULL",
    "SELECT ROW(u.*) FROM {u} u",
    "TABLE {u}",
    "TABLE {o}",
    "SELECT * FROM {o} AS o(a, b, c, d, e)",
    "SELECT length(repeat(repeat('x', 100000), 10000))",
    "SELECT string_agg(x::text, ',') FROM generate_series(1, 1000000000) x",
    "SELECT string_agg(x::text, '') FROM generate_series(1, 1000000) x",
    "SELECT length(string_agg(repeat('x', 1000), '')) FROM generate_series(1, 1000000) x",
    "SELECT array_fill(1, ARRAY[100000, 100000])",
    "SELECT lpad('x', 2000000000)",
    "SELECT format('%1000000000s', 'x')",
    "SELECT count(*) FROM {o} a CROSS JOIN {o} b",
]

MYSQL = [
    "SELECT LOAD_FILE('/etc/hostname')",
    "SELECT @@datadir",
    "SELECT @@version",
    "SELECT * FROM information_schema.tables",
    "SELECT user, authentication_string FROM mysql.user",
    "SELECT * FROM performance_schema.threads",
    "SELECT name FROM {u} INTO OUTFILE '/tmp/x.csv'",
    "SELECT EXTRACTVALUE(1, CONCAT(0x7e, (SELECT password_hash FROM {u} LIMIT 1)))",
    "SELECT UPDATEXML(1, CONCAT(0x7e, (SELECT secret FROM {s} LIMIT 1)), 1)",
    "SELECT JSON_OBJECT('p', password_hash) FROM {u}",
    "SELECT CONVERT(password_hash USING utf8mb4) FROM {u}",
    "SELECT GROUP_CONCAT(password_hash) FROM {u}",
    "SELECT SLEEP(0)",
    "SELECT BENCHMARK(1, 1)",
    "SELECT GET_LOCK('x', 0)",
    "SELECT DATABASE()",
    "SELECT USER()",
    "SELECT notes FROM test.{o}",
    "SELECT test.{o}.notes FROM test.{o}",
    "SELECT notes FROM `{o}`",
    "SELECT `password_hash` FROM {u}",
    "HANDLER {u} OPEN",
    "TABLE {o}",
    "SELECT notes FROM {o} PARTITION (p0)",
    "SELECT notes FROM {o} FORCE INDEX (PRIMARY)",
    "SELECT SLEEP/**/(0)",
    "DO SLEEP(0)",
    "SELECT @a := password_hash FROM {u}",
    "SELECT name FROM {u} WHERE id = 1 /*!50000 UNION SELECT password_hash FROM {u} */",
    "SELECT name FROM {u} WHERE name = '\\' OR 1=1 -- '",
    "SELECT * FROM JSON_TABLE((SELECT JSON_ARRAYAGG(notes) FROM {o}), '$[*]' COLUMNS (n TEXT PATH '$')) AS j",
    "SELECT * FROM JSON_TABLE((SELECT JSON_ARRAYAGG(password_hash) FROM {u}), '$[*]' COLUMNS (n TEXT PATH '$')) AS j",
    "SELECT LENGTH(REPEAT('x', 1000000000))",
    "SELECT LENGTH(SPACE(1000000000))",
    "SELECT LENGTH(LPAD('x', 1000000000, 'y'))",
]

DUCKDB = [
    "SELECT DATE_TRUNC(password_hash, now()) FROM {u}",
    "SELECT date_diff(password_hash, now(), now()) FROM {u}",
    "SELECT datediff(password_hash, now(), now()) FROM {u}",
    # sqlglot read u.password_hash as a field of the lambda parameter u; DuckDB reads the
    # column of the table aliased u
    "SELECT list_transform([1], lambda u: u.password_hash) FROM {u} u",
    "SELECT list_transform([1], lambda o: o.notes) FROM {o} o",
    "SELECT list_transform([1], lambda {u}: {u}.password_hash) FROM {u}",
    # a PIVOT inside the row-filter wrapper forged the filter's column
    "SELECT * FROM {o} PIVOT (max(notes) AS n, count(*) AS id FOR tenant_id IN (2 AS tenant))",
    "SELECT * FROM {o} PIVOT (max(notes) AS n, count(*) AS id FOR tenant_id IN (2 AS tenant)) AS p",
    "SELECT * FROM query('SELECT password_hash FROM {u}')",
    "SELECT * FROM query('SELECT * FROM {s}')",
    "SELECT * FROM query_table('{u}')",
    "SELECT * FROM query_table('{s}')",
    "SELECT COLUMNS('.*') FROM {u}",
    "SELECT COLUMNS(*) FROM {u}",
    "SELECT min(COLUMNS(*)) FROM {u}",
    "SELECT COLUMNS('pass.*') FROM {u}",
    "SELECT COLUMNS(c -> c LIKE '%hash%') FROM {u}",
    "SELECT COLUMNS(['name']) FROM {u}",
    "SELECT #5 FROM {u}",
    "SELECT #2 FROM {u}",
    "SELECT name FROM {u} WHERE #5 LIKE 'P%'",
    "SELECT * FROM {u} ORDER BY #5",
    "SELECT * EXCLUDE (password_hash) FROM {u}",
    "SELECT * EXCLUDE (id) FROM {u}",
    "SELECT * REPLACE (name AS password_hash) FROM {u}",
    "SELECT * REPLACE (password_hash AS name) FROM {u}",
    "SELECT * RENAME (password_hash AS p) FROM {u}",
    "SELECT struct_pack(*) FROM {u}",
    "SELECT list(*) FROM {u}",
    "SELECT to_json(*) FROM {u}",
    "SELECT {u} FROM {u}",
    "SELECT u FROM {u} u",
    "SELECT to_json(u) FROM {u} u",
    "SELECT * LIKE '%hash%' FROM {u}",
    "SELECT * FROM pragma_storage_info('{u}')",
    "SELECT * FROM pragma_table_info('{u}')",
    "SELECT * FROM duckdb_settings()",
    "SELECT * FROM duckdb_tables()",
    "SELECT * FROM duckdb_columns()",
    "SELECT * FROM duckdb_tables",
    "SELECT * FROM read_csv('{f}')",
    "SELECT * FROM read_csv_auto('{f}')",
    "SELECT * FROM '{f}'",
    'SELECT * FROM "{f}"',
    "SELECT * FROM glob('*')",
    "SELECT getenv('HOME')",
    "SELECT current_setting('threads')",
    "SELECT * FROM sniff_csv('{f}')",
    "SELECT * FROM histogram('{u}', password_hash)",
    "SELECT * FROM {u} POSITIONAL JOIN {o}",
    "FROM {u}",
    "FROM {u} SELECT password_hash",
    "SUMMARIZE {u}",
    "DESCRIBE {u}",
    "SELECT * FROM (DESCRIBE {u})",
    "SELECT * EXCLUDE (PASSWORD_HASH) FROM {u}",
    "SELECT u.* EXCLUDE (password_hash) FROM {u} u",
    "SELECT COLUMNS(* EXCLUDE (password_hash)) FROM {u}",
    "SELECT COLUMNS('^pass') FROM {u}",
    "SELECT u['password_hash'] FROM {u} u",
    "SELECT struct_extract(u, 'password_hash') FROM {u} u",
    "SELECT u.password_hash FROM {u} u",
    "SELECT * FROM {o} AT (VERSION => 1)",
    "SELECT * FROM 'lk_orders_x'",
    "PIVOT {u} ON password_hash USING count(*)",
    "SELECT notes FROM main.{o}",
    "SELECT main.{o}.notes FROM main.{o}",
    "SELECT json_serialize_sql('SELECT password_hash FROM {u}')",
    "SELECT list_transform([1], x -> (SELECT password_hash FROM {u} LIMIT 1))",
    "SELECT count(*) FROM range(10000000000)",
    "SELECT length(string_agg(repeat('x', 1000), '')) FROM range(1000000)",
    "SELECT count(*) FROM {o} a, {o} b",
    "SELECT length(repeat('x', 1000000000))",
    "ATTACH ':memory:' AS x",
    "COPY {u} TO '/tmp/x.csv'",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET threads = 1",
    "PRAGMA database_list",
]

ENGINE_SUITES = {"sqlite": SQLITE, "postgres": POSTGRES, "mysql": MYSQL, "duckdb": DUCKDB}


@attrs.frozen
class Names:
    """The planted tables of one run and the secrets in them."""

    users: str
    orders: str
    secrets: str
    tag: str

    @property
    def markers(self) -> tuple[str, ...]:
        """Strings that must never appear in a result."""
        return (
            f"PWSECRET{self.tag}",
            f"TENANTSECRET{self.tag}",
            f"OUTSIDESECRET{self.tag}",
            f"FILESECRET{self.tag}",
        )


def names() -> Names:
    tag = uuid.uuid4().hex[:8]
    return Names(
        users=f"lk_users_{tag}", orders=f"lk_orders_{tag}", secrets=f"lk_secrets_{tag}", tag=tag
    )


def schema(n: Names) -> dict[str, list[str]]:
    return {
        n.users: ["id", "name", "email", "tenant_id", "password_hash"],
        n.orders: ["id", "user_id", "tenant_id", "total", "notes"],
    }


def ddl(n: Names, text: str = "TEXT") -> list[str]:
    """CREATE and INSERT statements that plant the secrets."""
    return [
        f"CREATE TABLE {n.users} (id INTEGER, name {text}, email {text}, tenant_id INTEGER, password_hash {text})",
        f"CREATE TABLE {n.orders} (id INTEGER, user_id INTEGER, tenant_id INTEGER, total INTEGER, notes {text})",
        f"CREATE TABLE {n.secrets} (id INTEGER, secret {text})",
        f"INSERT INTO {n.users} VALUES (1, 'ann', 'ann@x', 1, 'PWSECRET{n.tag}1'), (2, 'bob', 'bob@x', 2, 'PWSECRET{n.tag}2')",
        f"INSERT INTO {n.orders} VALUES (1, 1, 1, 10, 'paid'), (2, 1, 1, 20, 'open'), (3, 2, 2, 30, 'TENANTSECRET{n.tag}3')",
        f"INSERT INTO {n.secrets} VALUES (1, 'OUTSIDESECRET{n.tag}')",
    ]


def policies(dialect: str, n: Names) -> list[Policy]:
    """The held-out contract's policy, with and without a schema."""
    common: dict[str, Any] = {
        "dialect": dialect,
        "allowed_tables": [n.users, n.orders],
        "denied_columns": [f"{n.users}.password_hash"],
        "row_filters": {n.orders: "tenant_id = :tenant"},
        "max_rows": 50,
    }
    return [Policy(schema=schema(n), **common), Policy(**common)]


@attrs.define
class Outcome:
    """What the oracle saw on one engine."""

    checked: int = 0
    refused: int = 0
    ran: int = 0
    failed: int = 0  # allowed, but the engine refused it (no rows, so no leak)
    leaks: list[tuple[str, str, str]] = attrs.field(factory=list)
    errors: list[tuple[str, str]] = attrs.field(factory=list)


def statements(dialect: str, n: Names, qualifier: str, path: str = "") -> Iterator[str]:
    for template in COMMON + ENGINE_SUITES[dialect]:
        yield template.format(u=n.users, o=n.orders, s=n.secrets, q=qualifier, f=path, U=n.users)


def run_oracle(
    dialect: str,
    n: Names,
    run: Callable[[str], list[tuple[Any, ...]]],
    failure: type[BaseException] | tuple[type[BaseException], ...],
    qualifier: str,
    path: str = "",
) -> Outcome:
    """Check every statement; run the allowed ones; look for the secrets in the rows."""
    out = Outcome()
    for policy in policies(dialect, n):
        guard = SafeQuery(policy, cache_size=0)
        for sql in statements(dialect, n, qualifier, path):
            out.checked += 1
            verdict = guard.check(sql, {"tenant": TENANT})
            if not verdict.allowed:
                out.refused += 1
                continue
            assert verdict.sql is not None
            try:
                rows = run(verdict.sql)
            except failure as exc:
                out.failed += 1
                out.errors.append((verdict.sql, str(exc).splitlines()[0][:120]))
                # the error channel: a secret in the driver's own error text is a leak
                # too (avl redacts it on the way out; the checker must refuse first)
                for marker in n.markers:
                    if marker.lower() in str(exc).lower():
                        out.leaks.append((sql, verdict.sql, marker))
                continue
            out.ran += 1
            text = repr(rows)
            for marker in n.markers:
                if marker in text:
                    out.leaks.append((sql, verdict.sql, marker))
    return out
