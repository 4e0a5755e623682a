"""DuckDB, embedded: the database file opened read-only, no file or network access
beyond the files the database's own views read, the configuration locked.

Opening ``duckdb:///path.duckdb``:

- ``read_only=True`` (writes fail), ``threads`` 2 and ``memory_limit`` = half of
  ``memory_mb`` (it governs the buffer manager; strings and lists are allocated
  beside it), ``max_temp_directory_size`` = ``temp_mb``, no automatic extension
  install or load;
- on each cursor, ``repeat``, ``lpad`` and ``rpad`` are shadowed by temporary
  macros that refuse a result longer than ``max_value_bytes`` before building it
  (one such call cannot be interrupted: ``repeat(repeat('x', 100000), 10000)``
  took 12 s and 1.9 GB before), and the scalar (list) forms of ``range`` and
  ``generate_series`` with one or two arguments refuse more than
  ``max_value_bytes / 8`` items (``len(range(1e9))`` ran for minutes); the
  three-argument form (a step, or timestamps) is left as is;
- the files the database's views read (``CREATE VIEW v AS SELECT * FROM
  read_parquet('/data/x.parquet')``) become the only readable paths
  (``allowed_paths``; a glob's directory goes to ``allowed_directories``), then
  ``enable_external_access = false`` (no other file, no URL, no ``ATTACH``, no
  ``COPY ... TO``, no extension loading) and ``lock_configuration = true`` (no
  ``SET`` can undo any of it). So a Parquet or CSV file is queryable only through a
  view the database's owner created, never by the model naming a path.

Each statement runs on its own cursor from a bounded pool; only one ``SELECT`` (or
``EXPLAIN``) statement is accepted per call; a watchdog thread calls
``interrupt()`` at the statement timeout or when ``cancel`` is set; rows are
fetched in batches under the row and byte caps.

A DuckDB connection passed in is used only when it is already read-only with
external access off (``duckdb.connect(path, read_only=True,
config={"enable_external_access": False})``).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from avl._optional import require
from avl.assistant._db._engine import Engine, Watchdog
from avl.assistant._db._infoschema import display_name, wanted
from avl.assistant._db._pool import BoundedPool
from avl.assistant._db._types import (
    ColumnSpec,
    ForeignKeySpec,
    Limits,
    QueryResult,
    TableSpec,
    collect_rows,
)
from avl.errors import BackendUnavailableError, ConfigError, QueryError

__all__ = ["DuckDBEngine", "view_paths"]

_GLOB = re.compile(r"[*?\[{]")
_LITERAL = re.compile(r"'((?:[^']|'')*)'|\"((?:[^\"]|\"\")*)\"")
_FILE_SUFFIXES = (
    ".csv",
    ".tsv",
    ".txt",
    ".parquet",
    ".json",
    ".jsonl",
    ".ndjson",
    ".gz",
    ".zst",
    ".arrow",
    ".xlsx",
    ".duckdb",
)
_STATEMENTS = ("SELECT", "EXPLAIN")
_GUARDED = frozenset({"repeat", "lpad", "rpad", "range", "generate_series"})
# EXPLAIN ANALYZE runs the statement it explains: only a SELECT may follow
_EXPLAIN = re.compile(r"\s*EXPLAIN\s*(\([^()]*\))?\s*(ANALY[SZ]E\b)?", re.IGNORECASE)


def view_paths(view_sql: Sequence[str]) -> tuple[list[str], list[str]]:
    """The local files and glob directories that view definitions read.

    Args:
        view_sql: ``CREATE VIEW`` statements.

    Returns:
        ``(paths, directories)``: exact file paths (as written and absolute), and the
        directories of glob patterns.
    """
    paths: list[str] = []
    dirs: list[str] = []
    for text in view_sql:
        for m in _LITERAL.finditer(text):
            raw = m.group(1) if m.group(1) is not None else m.group(2)
            value = raw.replace("''", "'").replace('""', '"')
            low = value.lower()
            if "://" in value or not value or "\n" in value:
                continue  # URLs need extensions that stay unloaded
            if not ("/" in value or "\\" in value or low.endswith(_FILE_SUFFIXES)):
                continue
            glob = _GLOB.search(value)
            if glob:
                head = value[: glob.start()]
                base = head if head.endswith(("/", "\\")) else str(Path(head).parent) + "/"
                for d in (base, str(Path(base).resolve()) + "/"):
                    if d not in dirs:
                        dirs.append(d)
                continue
            for p in (value, str(Path(value).resolve())):
                if p not in paths:
                    paths.append(p)
    return paths, dirs


def _path_of(url: str) -> Path:
    rest = unquote(url.split("://", 1)[1]).split("?", 1)[0]
    if rest in ("", "/", "/:memory:", ":memory:"):
        raise ConfigError(
            "an in-memory DuckDB URL has nothing to read; pass a database file "
            "(duckdb:///path.duckdb) or the read-only connection itself"
        )
    rel = rest[1:] if rest.startswith("/") else rest
    candidates = [Path(rel)] if rel.startswith("/") else [Path("/" + rel), Path(rel)]
    p = next((c for c in candidates if c.exists()), None)
    if p is None:
        raise BackendUnavailableError(f"DuckDB database {rel!r} does not exist")
    return p


def _sql_list(values: Sequence[str]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


class DuckDBEngine(Engine):
    """DuckDB: a locked-down read-only database and a pool of its cursors."""

    dialect = "duckdb"

    def __init__(
        self,
        db: str | Any,
        *,
        pool_size: int,
        schemas: Sequence[str] | None,
        limits: Limits,
    ) -> None:
        self._duckdb = require("duckdb", extra="duckdb")
        self._schemas = list(schemas) if schemas is not None else None
        self._qualified: dict[str, tuple[str, str]] = {}
        if isinstance(db, str):
            self._base = self._open(_path_of(db), limits)
        else:
            self._check_borrowed(db)
            self.owned = False
            self._base = db
        self.pool_size = pool_size
        self._value_limit = int(limits.max_value_bytes)
        self._pool = BoundedPool(self._cursor, max_size=pool_size, name="DuckDB")

    def _cursor(self) -> Any:
        """A new cursor whose size-producing string functions check their result's
        length first (temporary macros shadow the built-ins on this connection)."""
        cur = self._base.cursor()
        n = self._value_limit
        # the check sits in the count argument: the optimizer folds constant calls
        # before a CASE around them could skip one
        for name, args, size, call in (
            ("repeat", "s, k", "length(s) * k", "s, {k}"),
            ("lpad", "s, k, c", "k", "s, {k}, c"),
            ("rpad", "s, k, c", "k", "s, {k}, c"),
        ):
            k = (
                f"CASE WHEN {size} > {n} THEN error('{name}: the result would pass the "
                f"{n}-byte value limit') ELSE k END"
            )
            cur.execute(
                f"CREATE OR REPLACE TEMP MACRO {name}({args}) AS "
                f"system.main.{name}({call.format(k=k)})"
            )
        # scalar range/generate_series build a whole list: its length is bounded too
        items = max(1, n // 8)
        for name in ("range", "generate_series"):
            fn = f"system.main.{name}"

            def span(count: str, name: str = name) -> str:
                return (
                    f"CASE WHEN {count} > {items} THEN error('{name}: the list would pass "
                    f"{items} items') ELSE 0 END"
                )

            cur.execute(
                f"CREATE OR REPLACE TEMP MACRO {name}(a) AS {fn}(a + {span('a')}), "
                f"(a, b) AS {fn}(a, b + {span('b - a')}), "
                # with a step (also timestamps with an interval) the call is left as is
                f"(a, b, c) AS {fn}(a, b, c)"
            )
        return cur

    def _open(self, path: Path, limits: Limits) -> Any:
        duckdb = self._duckdb
        try:
            base = duckdb.connect(
                str(path),
                read_only=True,
                config={
                    "threads": 2,
                    # the buffer manager's share; strings and lists come on top
                    "memory_limit": f"{max(16, int(limits.memory_mb) // 2)}MB",
                    "max_temp_directory_size": f"{int(limits.temp_mb)}MB",
                    "autoinstall_known_extensions": False,
                    "autoload_known_extensions": False,
                },
            )
        except duckdb.Error as exc:
            raise BackendUnavailableError(
                f"cannot open DuckDB database {str(path)!r} read-only: {exc}"
            ) from exc
        try:
            views = [
                str(r[0])
                for r in base.execute(
                    "SELECT sql FROM duckdb_views() WHERE NOT internal AND sql IS NOT NULL"
                ).fetchall()
            ]
            paths, dirs = view_paths(views)
            if paths:
                base.execute(f"SET allowed_paths = {_sql_list(paths)}")
            if dirs:
                base.execute(f"SET allowed_directories = {_sql_list(dirs)}")
            base.execute("SET enable_external_access = false")
            base.execute("SET lock_configuration = true")
        except duckdb.Error as exc:
            base.close()
            raise BackendUnavailableError(
                f"cannot lock down DuckDB database {str(path)!r}: {exc}"
            ) from exc
        return base

    def _check_borrowed(self, conn: Any) -> None:
        try:
            mode, external = conn.execute(
                "SELECT current_setting('access_mode'), current_setting('enable_external_access')"
            ).fetchone()
        except self._duckdb.Error as exc:
            raise ConfigError(f"cannot read the DuckDB connection's settings: {exc}") from exc
        if str(mode).lower() != "read_only" or str(external).lower() not in ("false", "0"):
            raise ConfigError(
                "a DuckDB connection must be read-only with external access off: "
                "duckdb.connect(path, read_only=True, config={'enable_external_access': "
                "False}), or pass the URL duckdb:///path.duckdb and avl opens it so"
            )

    def run(
        self,
        sql: str,
        params: Any,
        *,
        max_rows: int,
        limits: Limits,
        cancel: threading.Event | None,
    ) -> QueryResult:
        with self._pool.lease() as lease:
            cur = lease.conn
            statements = cur.extract_statements(sql)
            if len(statements) != 1:
                raise QueryError(
                    f"cannot run multiple commands in one call ({len(statements)} given)", sql=sql
                )
            kind = str(getattr(statements[0].type, "name", statements[0].type)).upper()
            select = sql
            if kind == "EXPLAIN":
                m = _EXPLAIN.match(sql)
                select = sql[m.end() :] if m else ""
                inner = cur.extract_statements(select) if m else []
                kinds = [str(getattr(t.type, "name", t.type)).upper() for t in inner]
                if kinds != ["SELECT"]:
                    raise QueryError("only a SELECT statement may be explained here", sql=sql)
            elif kind not in _STATEMENTS:
                raise QueryError(
                    f"the database is read-only: a {kind} statement cannot run here", sql=sql
                )
            self._check_calls(cur, select, sql)
            with Watchdog(cur.interrupt, timeout_s=limits.timeout_s, cancel=cancel) as dog:
                try:
                    cur.execute(sql, params)
                    if not cur.description:
                        return QueryResult(columns=(), rows=())
                    cols = [d[0] for d in cur.description]
                    return collect_rows(
                        cols, cur.fetchmany, max_rows=max_rows, max_bytes=limits.max_result_bytes
                    )
                except self._duckdb.Error:
                    if dog.fired == "timeout":
                        lease.discard()
                    raise
                finally:
                    # a cursor stopped mid-result is not reused
                    if dog.fired:
                        lease.discard()

    @staticmethod
    def _check_calls(cur: Any, select: str, sql: str) -> None:
        """Refuse a schema-qualified call of a guarded function
        (``system.main.repeat(...)`` would step around the macro), reading DuckDB's
        own parse tree (``json_serialize_sql``); a statement it cannot serialise is
        refused too."""
        import json

        row = cur.execute("SELECT json_serialize_sql(?)", [select]).fetchone()
        tree = json.loads(row[0]) if row and row[0] else {"error": True}
        if tree.get("error"):
            raise QueryError(
                "the statement could not be read for its function calls: "
                f"{tree.get('error_message', 'unknown form')}",
                sql=sql,
            )
        stack: list[Any] = [tree]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                if (
                    node.get("class") == "FUNCTION"
                    and str(node.get("function_name", "")).lower() in _GUARDED
                    and (node.get("schema") or node.get("catalog"))
                ):
                    raise QueryError(
                        f"a schema-qualified call of {node['function_name']}() cannot run "
                        "here (its result size is checked on the plain name)",
                        sql=sql,
                    )
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)

    def meta(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._pool.lease() as lease:
            return [tuple(r) for r in lease.conn.execute(sql, list(params)).fetchall()]

    def in_transaction(self) -> bool:
        # each statement commits on its own (avl never opens a transaction here)
        return False

    def _schema_list(self) -> tuple[list[str], str]:
        default = str(self.meta("SELECT current_schema()")[0][0] or "main")
        if self._schemas is not None:
            return list(self._schemas), default
        got = self.meta(
            "SELECT schema_name FROM duckdb_schemas() WHERE database_name = current_database() "
            "AND schema_name NOT IN ('information_schema', 'pg_catalog') "
            "ORDER BY schema_name"
        )
        names = [str(r[0]) for r in got]
        return (names or [default]), default

    def introspect(
        self, want: set[str] | None, schemas: Sequence[str] | None
    ) -> tuple[list[TableSpec], list[ForeignKeySpec]]:
        names, default = self._schema_list()
        if schemas is not None:
            names = list(schemas)
        if not names:
            return [], []
        ph = ", ".join(["?"] * len(names))
        rels = self.meta(
            "SELECT schema_name, table_name, COALESCE(comment, ''), estimated_size "
            "FROM duckdb_tables() WHERE database_name = current_database() "
            f"AND schema_name IN ({ph}) UNION ALL "
            "SELECT schema_name, view_name, COALESCE(comment, ''), NULL FROM duckdb_views() "
            f"WHERE database_name = current_database() AND NOT internal AND schema_name IN ({ph})",
            [*names, *names],
        )
        cols = self.meta(
            "SELECT schema_name, table_name, column_name, data_type, COALESCE(comment, '') "
            "FROM duckdb_columns() WHERE database_name = current_database() "
            f"AND schema_name IN ({ph}) ORDER BY schema_name, table_name, column_index",
            names,
        )
        cons = self.meta(
            "SELECT schema_name, table_name, constraint_type, constraint_column_names, "
            "referenced_table, referenced_column_names FROM duckdb_constraints() "
            "WHERE database_name = current_database() AND constraint_type IN "
            f"('PRIMARY KEY', 'FOREIGN KEY') AND schema_name IN ({ph})",
            names,
        )
        pks = {
            (str(s), str(t), str(c))
            for s, t, kind, columns, _, _ in cons
            if kind == "PRIMARY KEY"
            for c in (columns or ())
        }
        by_table: dict[tuple[str, str], list[ColumnSpec]] = {}
        for s, t, c, dtype, comment in cols:
            key = (str(s), str(t))
            by_table.setdefault(key, []).append(
                ColumnSpec(
                    name=str(c),
                    type=str(dtype),
                    primary_key=(key[0], key[1], str(c)) in pks,
                    comment=str(comment or ""),
                )
            )
        specs: list[TableSpec] = []
        for s, t, comment, size in rels:
            key = (str(s), str(t))
            if not wanted(want, key[0], key[1], default) or key not in by_table:
                continue
            name = display_name(key[0], key[1], default)
            if key[0] != default:
                self._qualified[name] = key
            specs.append(
                TableSpec(
                    name=name,
                    columns=by_table[key],
                    comment=str(comment or ""),
                    row_count=None if size is None else int(size),
                )
            )
        present = {(s, t) for s, t in by_table}
        fks = [
            ForeignKeySpec(
                table=display_name(str(s), str(t), default),
                columns=[str(c) for c in (columns or ())],
                ref_table=display_name(str(s), str(ref), default),
                ref_columns=[str(c) for c in (ref_cols or ())],
            )
            for s, t, kind, columns, ref, ref_cols in cons
            if kind == "FOREIGN KEY"
            and (str(s), str(t)) in present
            and wanted(want, str(s), str(t), default)
        ]
        return specs, fks

    def quote(self, name: str) -> str:
        parts = self._qualified.get(name)
        if parts is not None:
            return ".".join('"' + p.replace('"', '""') + '"' for p in parts)
        return super().quote(name)

    def indexed_columns(self) -> set[tuple[str, str]]:
        names, default = self._schema_list()
        out: set[tuple[str, str]] = set()
        for s, t, expressions in self.meta(
            "SELECT schema_name, table_name, expressions FROM duckdb_indexes() "
            "WHERE database_name = current_database()"
        ):
            if str(s) not in names:
                continue
            first = str(expressions or "").strip("[]'\" ").split(",")[0].strip("'\" ")
            if first:
                out.add((display_name(str(s), str(t), default).lower(), first.lower()))
        return out

    def close(self) -> None:
        self._pool.close()
        if self.owned:
            self._base.close()
