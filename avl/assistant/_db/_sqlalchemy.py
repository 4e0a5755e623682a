"""Any SQLAlchemy engine: its pool and dialect, introspection through the Inspector.

``Database(engine)`` or ``Database("sqlalchemy+<SQLAlchemy URL>")``. The sqlglot
dialect comes from the engine's dialect name (``postgresql`` -> ``postgres``,
``mssql`` -> ``tsql``...; ``dialect=`` for the others).

Every statement runs on a connection checked out of the engine's pool, in a
transaction that is always rolled back. Where avl knows the driver it runs its own
engine's code on the driver connection (the same guarantees as the native URLs):

- ``sqlite+pysqlite``: ``PRAGMA query_only`` for the statement (set back after),
  the authorizer, the progress-handler deadline and the value-length limit;
- ``postgresql+psycopg``: ``READ ONLY`` transaction, ``SET LOCAL``
  ``statement_timeout``/``work_mem``, one statement (extended protocol),
  streamed rows;
- ``mysql+pymysql``/``mariadb+pymysql``: read-only session and ``START
  TRANSACTION READ ONLY``, the session limits, an unbuffered cursor.

Any other dialect takes the generic path: one statement (sqlglot's tokenizer must
find no ``;`` before the end), the dialect's read-only session statement where one
exists (table ``READ_ONLY`` below), the statement, the rows under the caps, then
``ROLLBACK``. A watchdog asks the driver to cancel at the timeout where the driver
connection has ``cancel()``. What the generic path does **not** guarantee is on
the docs page "Databases": DDL that commits implicitly (Snowflake, Oracle, MySQL
without the read-only session) is not undone by the rollback, so give avl a
read-only account.
"""

from __future__ import annotations

import difflib
import threading
from collections.abc import Sequence
from typing import Any

from avl._clock import Clock
from avl._optional import require
from avl.assistant._db._engine import Engine, Watchdog
from avl.assistant._db._infoschema import display_name, wanted
from avl.assistant._db._types import (
    ColumnSpec,
    ForeignKeySpec,
    Limits,
    QueryResult,
    TableSpec,
    collect_rows,
)
from avl.errors import BackendUnavailableError, ConfigError, QueryError

__all__ = ["DIALECTS", "READ_ONLY", "SQLAlchemyEngine", "sqlglot_dialect"]

#: SQLAlchemy dialect name -> sqlglot dialect name (where they differ or are known).
DIALECTS = {
    "sqlite": "sqlite",
    "postgresql": "postgres",
    "mysql": "mysql",
    "mariadb": "mysql",
    "mssql": "tsql",
    "oracle": "oracle",
    "snowflake": "snowflake",
    "bigquery": "bigquery",
    "redshift": "redshift",
    "duckdb": "duckdb",
    "trino": "trino",
    "presto": "presto",
    "databricks": "databricks",
    "hive": "hive",
    "clickhouse": "clickhouse",
    "awsathena": "athena",
    "teradata": "teradata",
    "exasol": "exasol",
    "doris": "doris",
    "starrocks": "starrocks",
    "drill": "drill",
    "spark": "spark",
}

#: sqlglot dialect -> statements that make the transaction read-only on the generic
#: path (run first, inside the transaction); "{ms}" is the statement timeout.
READ_ONLY: dict[str, tuple[str, ...]] = {
    "postgres": (
        "SET TRANSACTION READ ONLY",
        "SET LOCAL statement_timeout = {ms}",
        "SET LOCAL max_parallel_workers_per_gather = 0",
    ),
    "redshift": ("SET TRANSACTION READ ONLY", "SET statement_timeout TO {ms}"),
    "oracle": ("SET TRANSACTION READ ONLY",),
    # DDL commits implicitly: the session is made read-only too, and set back after
    "mysql": ("SET SESSION TRANSACTION READ ONLY", "START TRANSACTION READ ONLY"),
    "sqlite": ("PRAGMA query_only = ON",),
}

#: statements that undo a session-level setting of READ_ONLY after the rollback.
_AFTER: dict[str, tuple[str, ...]] = {
    "sqlite": ("PRAGMA query_only = OFF",),
    "mysql": ("SET SESSION TRANSACTION READ WRITE",),
}


def sqlglot_dialect(name: str) -> str:
    """The sqlglot dialect of a SQLAlchemy dialect name.

    Raises:
        ConfigError: the name is unknown to avl and to sqlglot (with a suggestion).
    """
    low = name.lower()
    if low in DIALECTS:
        return DIALECTS[low]
    from sqlglot.dialects.dialect import Dialect

    try:
        Dialect.get_or_raise(low)
    except ValueError as exc:
        close = difflib.get_close_matches(low, list(DIALECTS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"no sqlglot dialect for the SQLAlchemy dialect {name!r}{hint}; pass "
            "Database(engine, dialect='<sqlglot dialect>')"
        ) from exc
    return low


def _one_statement(sql: str, dialect: str) -> None:
    """Refuse text with a ``;`` before its end (sqlglot's tokenizer, so quotes and
    comments are read as the dialect reads them)."""
    import sqlglot
    from sqlglot.tokenizer_core import TokenType

    try:
        tokens = sqlglot.tokenize(sql, read=dialect)
    except sqlglot.errors.SqlglotError as exc:
        raise QueryError(f"cannot read the statement: {exc}", sql=sql) from exc
    last = len(tokens)
    while last > 0 and tokens[last - 1].token_type == TokenType.SEMICOLON:
        last -= 1
    if any(t.token_type == TokenType.SEMICOLON for t in tokens[:last]):
        raise QueryError("cannot run multiple commands in one call", sql=sql)


class SQLAlchemyEngine(Engine):
    """A SQLAlchemy ``Engine``: pooled by SQLAlchemy, introspected by its Inspector."""

    #: tests set this to False to run the generic path on drivers avl knows
    native = True

    def __init__(
        self,
        db: str | Any,
        *,
        clock: Clock,
        pool_size: int,
        schemas: Sequence[str] | None,
        limits: Limits,
        dialect: str | None,
    ) -> None:
        sa = require("sqlalchemy", extra="sqlalchemy")
        self._sa = sa
        self._clock = clock
        self._schemas = list(schemas) if schemas is not None else None
        self._qualified: dict[str, tuple[str | None, str]] = {}
        # the driver connections used so far (sqlite3 ones cannot be weakly referenced)
        self._seen: dict[int, Any] = {}
        self._temp_ok: bool | None = None
        self._flavour: str | None = None
        self._lock = threading.Lock()
        if isinstance(db, str):
            try:
                engine = sa.create_engine(db, pool_size=pool_size, max_overflow=0)
            except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as exc:
                raise ConfigError(f"bad SQLAlchemy URL: {exc}") from exc
            except ImportError as exc:
                raise ConfigError(f"the SQLAlchemy URL's driver is not installed: {exc}") from exc
            self.owned = True
        elif isinstance(db, sa.engine.Engine):
            engine = db
            self.owned = False
        else:
            raise ConfigError(
                f"expected a SQLAlchemy Engine, got {type(db).__module__}.{type(db).__name__}"
            )
        self._engine = engine
        self.sa_dialect = str(engine.dialect.name)
        self.driver = str(getattr(engine.dialect, "driver", ""))
        self.dialect = dialect if dialect is not None else sqlglot_dialect(self.sa_dialect)
        if self.dialect == "sqlite":
            self.explain_prefix = "EXPLAIN QUERY PLAN "
        self.pool_size = int(getattr(engine.pool, "size", lambda: pool_size)() or pool_size)
        try:
            with engine.connect():
                pass
        except sa.exc.SQLAlchemyError as exc:
            raise BackendUnavailableError(f"cannot connect through SQLAlchemy: {exc}") from exc

    # ------------------------------------------------------------ execution
    def _native_kind(self, raw: Any) -> str:
        if not self.native:
            return ""
        mod = type(raw).__module__.split(".")[0]
        if mod == "sqlite3":
            return "sqlite"
        if mod == "psycopg":
            return "postgres"
        if mod == "pymysql":
            return "mysql"
        return ""

    def run(
        self,
        sql: str,
        params: Any,
        *,
        max_rows: int,
        limits: Limits,
        cancel: threading.Event | None,
    ) -> QueryResult:
        with self._engine.connect() as conn:
            raw = conn.connection.dbapi_connection
            if id(raw) not in self._seen:
                with self._lock:
                    if len(self._seen) > 4 * max(1, self.pool_size):
                        self._seen = {k: v for k, v in self._seen.items() if _is_open(v)}
                    self._seen[id(raw)] = raw
            kind = self._native_kind(raw)
            if kind == "sqlite":
                from avl.assistant._db._sqlite import run_sqlite

                return run_sqlite(
                    raw,
                    sql,
                    params,
                    max_rows=max_rows,
                    limits=limits,
                    cancel=cancel,
                    clock=self._clock,
                    borrowed=True,
                )
            if kind == "postgres":
                from avl.assistant._db._postgres import may_set_temp_limit, run_postgres

                if self._temp_ok is None:
                    self._temp_ok = may_set_temp_limit(raw)
                    raw.rollback()
                return run_postgres(
                    raw,
                    sql,
                    params,
                    max_rows=max_rows,
                    limits=limits,
                    cancel=cancel,
                    temp_ok=self._temp_ok,
                )
            if kind == "mysql":
                from avl.assistant._db._mysql import MULTI_STATEMENTS, flavour, run_mysql

                if int(getattr(raw, "client_flag", 0)) & MULTI_STATEMENTS:
                    raise ConfigError(
                        "this engine's MySQL connections allow several statements per call "
                        "(CLIENT.MULTI_STATEMENTS) and cannot be kept read-only"
                    )
                if self._flavour is None:
                    self._flavour = flavour(raw)
                return run_mysql(
                    raw,
                    sql,
                    params,
                    max_rows=max_rows,
                    limits=limits,
                    cancel=cancel,
                    mariadb=self._flavour == "mariadb",
                    borrowed=True,
                    discard=conn.invalidate,
                )
            return self._run_generic(conn, raw, sql, params, max_rows, limits, cancel)

    def _run_generic(
        self,
        conn: Any,
        raw: Any,
        sql: str,
        params: Any,
        max_rows: int,
        limits: Limits,
        cancel: threading.Event | None,
    ) -> QueryResult:
        _one_statement(sql, self.dialect)
        ms = max(1, int(limits.timeout_s * 1000))
        stop = getattr(raw, "cancel", None) or getattr(raw, "interrupt", None)
        trans = conn.begin()
        try:
            for stmt in self._timeout_statements(limits):
                conn.exec_driver_sql(stmt)
            for stmt in READ_ONLY.get(self.dialect, ()):
                conn.exec_driver_sql(stmt.format(ms=ms))
            with Watchdog(
                stop or (lambda: None),
                timeout_s=limits.timeout_s if stop else None,
                cancel=cancel if stop else None,
            ):
                result = conn.exec_driver_sql(sql, params if params is not None else ())
                if not result.returns_rows:
                    return QueryResult(columns=(), rows=())
                cols = [str(k) for k in result.keys()]  # noqa: SIM118 - a Result, not a dict
                res = collect_rows(
                    cols, result.fetchmany, max_rows=max_rows, max_bytes=limits.max_result_bytes
                )
                result.close()
                return res
        finally:
            trans.rollback()
            for stmt in _AFTER.get(self.dialect, ()):
                conn.exec_driver_sql(stmt)
                conn.rollback()

    def _timeout_statements(self, limits: Limits) -> tuple[str, ...]:
        """Session settings that bound the statement on the generic path (before the
        transaction; MySQL/MariaDB take them per session)."""
        if self.dialect != "mysql":
            return ()
        if getattr(self._engine.dialect, "is_mariadb", False):
            return (f"SET SESSION max_statement_time = {limits.timeout_s:.3f}",)
        return (f"SET SESSION max_execution_time = {max(1, int(limits.timeout_s * 1000))}",)

    def meta(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._engine.connect() as conn:
            try:
                result = conn.exec_driver_sql(sql, tuple(params))
                return [tuple(r) for r in result.fetchall()]
            finally:
                conn.rollback()

    def in_transaction(self) -> bool:
        for raw in list(self._seen.values()):
            if not _is_open(raw):
                continue
            mod = type(raw).__module__.split(".")[0]
            if mod == "sqlite3" and raw.in_transaction:
                return True
            if mod == "psycopg" and not raw.closed and raw.info.transaction_status != 0:
                return True
            if mod == "pymysql" and raw.open and int(raw.server_status or 0) & 1:
                return True
        return False

    # -------------------------------------------------------- introspection
    def _schema_list(self, insp: Any) -> tuple[list[str | None], str | None]:
        default = insp.default_schema_name
        if self._schemas is not None:
            return list(self._schemas), default
        if self.sa_dialect == "postgresql":
            got = [str(r[0]) for r in self.meta("SELECT unnest(current_schemas(false))")]
            if got:
                return list(got), default
        return [default], default

    def introspect(
        self, want: set[str] | None, schemas: Sequence[str] | None
    ) -> tuple[list[TableSpec], list[ForeignKeySpec]]:
        insp = self._sa.inspect(self._engine)
        names, default = self._schema_list(insp)
        if schemas is not None:
            names = list(schemas)
        dflt = default or ""
        specs: list[TableSpec] = []
        fks: list[ForeignKeySpec] = []
        for schema in names:
            sch = None if schema in (None, default) else schema
            key = schema or dflt
            tables = list(insp.get_table_names(schema=sch)) + list(insp.get_view_names(schema=sch))
            for table in tables:
                if not wanted(want, key, table, dflt):
                    continue
                name = display_name(key, table, dflt)
                if sch is not None:
                    self._qualified[name] = (sch, table)
                try:
                    pk = set(
                        insp.get_pk_constraint(table, schema=sch).get("constrained_columns") or ()
                    )
                except NotImplementedError:
                    pk = set()
                cols = [
                    ColumnSpec(
                        name=str(c["name"]),
                        type=_type_name(c.get("type")),
                        primary_key=str(c["name"]) in pk,
                        comment=str(c.get("comment") or ""),
                    )
                    for c in insp.get_columns(table, schema=sch)
                ]
                try:
                    comment = insp.get_table_comment(table, schema=sch).get("text") or ""
                except NotImplementedError:
                    comment = ""
                specs.append(TableSpec(name=name, columns=cols, comment=str(comment)))
                try:
                    fk_list = insp.get_foreign_keys(table, schema=sch)
                except NotImplementedError:
                    fk_list = []
                for fk in fk_list:
                    ref_schema = fk.get("referred_schema") or key
                    fks.append(
                        ForeignKeySpec(
                            table=name,
                            columns=[str(c) for c in fk.get("constrained_columns") or ()],
                            ref_table=display_name(
                                str(ref_schema), str(fk["referred_table"]), dflt
                            ),
                            ref_columns=[str(c) for c in fk.get("referred_columns") or ()],
                        )
                    )
        return specs, fks

    def quote(self, name: str) -> str:
        prep = self._engine.dialect.identifier_preparer
        parts = self._qualified.get(name)
        if parts is not None:
            return ".".join(prep.quote_identifier(p) for p in parts if p is not None)
        return str(prep.quote_identifier(name))

    def indexed_columns(self) -> set[tuple[str, str]]:
        insp = self._sa.inspect(self._engine)
        names, default = self._schema_list(insp)
        dflt = default or ""
        out: set[tuple[str, str]] = set()
        for schema in names:
            sch = None if schema in (None, default) else schema
            for table in insp.get_table_names(schema=sch):
                try:
                    indexes = insp.get_indexes(table, schema=sch)
                except NotImplementedError:
                    continue
                for idx in indexes:
                    cols = [c for c in idx.get("column_names") or () if c]
                    if cols:
                        name = display_name(schema or dflt, table, dflt)
                        out.add((name.lower(), str(cols[0]).lower()))
        return out

    def close(self) -> None:
        if self.owned:
            self._engine.dispose()


def _is_open(raw: Any) -> bool:
    mod = type(raw).__module__.split(".")[0]
    if mod == "sqlite3":
        try:
            raw.total_changes  # noqa: B018 - raises once the connection is closed
        except Exception:
            return False
        return True
    if mod == "psycopg":
        return not raw.closed
    if mod == "pymysql":
        return bool(raw.open)
    return True


def _type_name(t: Any) -> str:
    if t is None:
        return ""
    try:
        return str(t)
    except Exception:  # some dialect types cannot be compiled without their dialect
        return type(t).__name__
