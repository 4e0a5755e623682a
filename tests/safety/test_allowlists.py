"""The allow-lists are checked against the real engines, not guessed.

Every name allowed by default for SQLite, PostgreSQL, MariaDB and DuckDB must exist on
the real engine (``pragma_function_list``, ``pg_proc``, MariaDB's built-ins,
``duckdb_functions()``); no default list may hold a never-listed function; the typed
classes must be sqlglot function classes. Then the policy's widening and narrowing.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from sqlglot import exp

from avl.errors import ConfigError
from avl.safety import Policy, SafeQuery
from avl.safety.allowlists import catalog, dialect_modules, entries, typed
from tests.conftest import need_module
from tests.safety._engines import mariadb, postgres

# argument shapes tried on names that an engine's catalogue does not list (syntax)
SHAPES = ("", "()", "(1)", "(1, 2)", "(1, 2, 3)", "('a')", "('a', 'b')", "(CURRENT_DATE)")


def _entries(dialect: str, table: bool = False) -> list[Any]:
    module = dialect_modules()[dialect]
    docs = module.TABLE_FUNCTIONS if table else module.FUNCTIONS
    return entries(docs)


def test_every_entry_is_traceable_to_documentation() -> None:
    for dialect, module in dialect_modules().items():
        for entry in entries(module.FUNCTIONS + getattr(module, "TABLE_FUNCTIONS", ())):
            assert entry.url.startswith("https://"), (dialect, entry)
            assert entry.kind in {"scalar", "aggregate", "window", "table", "syntax"}
            assert entry.name == entry.name.strip().lower()
            assert entry.name


@pytest.mark.parametrize("dialect", sorted(dialect_modules()))
def test_no_default_list_holds_a_never_listed_function(dialect: str) -> None:
    compiled = catalog(dialect)
    for name in sorted(compiled.names | compiled.table_names):
        assert compiled.refusal(name) is None, (dialect, name, compiled.refusal(name))


@pytest.mark.parametrize(
    "name",
    ["query_to_xml", "table_to_xml", "database_to_xml", "cursor_to_xml", "ts_stat",
     "dblink", "lo_import", "pg_read_file", "pg_ls_dir", "pg_stat_get_activity",
     "current_setting", "set_config", "query", "query_table", "read_csv", "getenv",
     "duckdb_settings", "pragma_table_info", "load_extension", "readfile", "writefile",
     "fts3_tokenizer", "load_file", "sleep", "benchmark", "get_lock", "nextval", "setval",
     "pg_advisory_lock", "txid_current", "sys_exec", "version", "pg_show_all_settings"],
)  # fmt: skip
def test_the_issue_classes_are_never_allowed(name: str) -> None:
    for dialect in ("sqlite", "postgres", "mysql", "duckdb"):
        compiled = catalog(dialect)
        assert name not in compiled.names
        assert name not in compiled.table_names
        assert compiled.refusal(name) is not None, (dialect, name)


def test_typed_classes_are_sqlglot_function_classes() -> None:
    names = [n for group in typed.CLASSES.values() for n in group.split()]
    names += typed.TABLE_CLASSES.split()
    for name in names:
        cls = getattr(exp, name, None)
        assert isinstance(cls, type), name
        assert issubclass(cls, exp.Func), name
    assert len(names) == len(set(names)) + len(
        set(typed.TABLE_CLASSES.split()) & {n for g in typed.CLASSES.values() for n in g.split()}
    )


# ------------------------------------------------------------ the real engines
def test_sqlite_names_exist() -> None:
    con = sqlite3.connect(":memory:")
    try:
        version = tuple(int(p) for p in sqlite3.sqlite_version.split("."))
        functions = {r[0].lower() for r in con.execute("SELECT name FROM pragma_function_list")}
        modules = {r[0].lower() for r in con.execute("SELECT name FROM pragma_module_list")}
        checked = 0
        for entry in _entries("sqlite"):
            if entry.since is not None and version < entry.since:
                continue
            assert entry.name in functions, entry
            checked += 1
        for entry in _entries("sqlite", table=True):
            assert entry.name in modules, entry
            checked += 1
        assert checked >= 100
    finally:
        con.close()


def _callable(run: Any, name: str, errors: tuple[type[BaseException], ...]) -> bool:
    for shape in SHAPES:
        try:
            run(f"SELECT {name}{shape}")
        except errors:
            continue
        return True
    return False


def test_postgres_names_exist(postgres_dsn: str) -> None:
    psycopg = need_module("psycopg")
    with postgres(postgres_dsn) as con:
        procs = {r[0] for r in con.execute("SELECT DISTINCT proname FROM pg_proc").fetchall()}

        def run(sql: str) -> None:
            con.execute(sql)

        missing = []
        for entry in _entries("postgres") + _entries("postgres", table=True):
            if entry.name in procs:
                continue
            if entry.kind == "syntax" and _callable(run, entry.name, (psycopg.Error,)):
                continue
            missing.append(entry.name)
        assert missing == []


def test_duckdb_names_exist() -> None:
    duckdb = need_module("duckdb")
    con = duckdb.connect()
    try:
        known = {
            r[0].lower()
            for r in con.execute("SELECT function_name FROM duckdb_functions()").fetchall()
        }

        def run(sql: str) -> None:
            con.execute(sql).fetchall()

        missing = []
        for entry in _entries("duckdb") + _entries("duckdb", table=True):
            if entry.name in known:
                continue
            if entry.kind == "syntax" and _callable(run, entry.name, (duckdb.Error,)):
                continue
            missing.append(entry.name)
        assert missing == []
    finally:
        con.close()


def test_mariadb_names_exist(mysql_url: str) -> None:
    pymysql = need_module("pymysql")
    with mariadb(mysql_url) as con:
        with con.cursor() as cur:
            cur.execute("SELECT LOWER(name) FROM mysql.help_topic")
            topics = {str(r[0]).replace("\\_", "_") for r in cur.fetchall()}

        def attempt(sql: str) -> int:
            """0 when it ran, else the server's error code."""
            with con.cursor() as cur:
                try:
                    cur.execute(sql)
                    cur.fetchall()
                except pymysql.MySQLError as exc:
                    return int(exc.args[0])
            return 0

        missing = []
        for entry in _entries("mysql") + _entries("mysql", table=True):
            name = entry.name
            code = attempt(f"SELECT {name}()")
            if code == 1582 or code == 0:  # a native function, called with the wrong arguments
                continue
            if code == 1305:  # FUNCTION test.x does not exist
                missing.append(name)
                continue
            # grammar-level functions (IF, CHAR, LEFT, window functions...): a real call
            suffix = " OVER ()" if entry.kind == "window" else ""
            # 1054 unknown column (a bare word), 1064 syntax, 1305/1630 no such function
            ran = any(
                attempt(f"SELECT {name}{shape}{suffix}") not in (1054, 1064, 1305, 1630)
                for shape in SHAPES
                if shape
            )
            if name == "json_table":
                ran = (
                    attempt("SELECT * FROM JSON_TABLE('[1]', '$[*]' COLUMNS (a INT PATH '$')) t")
                    == 0
                )
            if not ran and name not in topics:
                missing.append(name)
        assert missing == []


# ------------------------------------------------------------ widening, narrowing
def test_allowed_functions_widen_and_denied_functions_narrow() -> None:
    base = SafeQuery(Policy(dialect="postgres"))
    assert base.check("SELECT pg_typeof(1) AS t").codes == ("system_catalog",)
    wider = SafeQuery(Policy(dialect="postgres", allowed_functions=["pg_typeof"]))
    assert wider.check("SELECT pg_typeof(1) AS t").allowed is True
    narrower = SafeQuery(Policy(dialect="postgres", denied_functions=["upper"]))
    verdict = narrower.check("SELECT upper('a') AS u")
    assert verdict.codes == ("function_denied",)
    assert "denied by the policy" in verdict.violations[0].message
    # denied wins over allowed
    both = SafeQuery(
        Policy(dialect="postgres", allowed_functions=["lower"], denied_functions=["lower"])
    )
    assert both.check("SELECT lower('A') AS l").codes == ("function_denied",)


def test_table_functions_widen_too() -> None:
    base = SafeQuery(Policy(dialect="duckdb"))
    assert base.check("SELECT * FROM read_parquet('x.parquet')").codes == ("function_denied",)
    wider = SafeQuery(Policy(dialect="duckdb", allowed_functions=["read_parquet"]))
    assert wider.check("SELECT * FROM read_parquet('x.parquet')").allowed is True


def test_user_functions_allow_any_name_as_written() -> None:
    guard = SafeQuery(Policy(dialect="sqlite", user_functions=["my_score"]))
    assert guard.check("SELECT my_score(1) AS s").allowed is True
    assert guard.check("SELECT my_other(1) AS s").codes == ("function_not_allowed",)
    qualified = SafeQuery(Policy(dialect="postgres", allowed_functions=["analytics.score"]))
    assert qualified.check("SELECT analytics.score(1) AS s").allowed is True
    assert qualified.check("SELECT other.score(1) AS s").codes == ("function_not_allowed",)


@pytest.mark.parametrize(
    ("field", "name", "hint"),
    [
        ("allowed_functions", "uppper", "did you mean 'upper'"),
        ("denied_functions", "lowerr", "did you mean 'lower'"),
        ("allowed_functions", "totally_made_up_fn", "user_functions"),
    ],
)
def test_unknown_function_names_are_a_clear_config_error(field: str, name: str, hint: str) -> None:
    with pytest.raises(ConfigError, match=hint) as info:
        Policy(dialect="postgres", **{field: [name]})
    assert name in str(info.value)
    assert field in str(info.value)
