"""Database: the read-only view of one database that the Assistant asks.

One :class:`Database` wraps a URL or a connection object and picks the engine:

==============================  ===============================================
``sqlite:///path.db``           SQLite, read-only file (``mode=ro``), pooled
``postgresql://...``            PostgreSQL through a ``psycopg_pool`` pool
``mysql://...``, ``mariadb://`` MySQL/MariaDB through a bounded PyMySQL pool
``duckdb:///path.duckdb``       DuckDB, read-only, no file access beyond views
``sqlalchemy+<url>``            any SQLAlchemy dialect (``sqlalchemy+mssql+pyodbc://...``)
a ``sqlite3``/psycopg/PyMySQL   that connection, borrowed (threads take turns)
connection
a DuckDB connection             its read-only twin (a cursor)
a SQLAlchemy ``Engine``         its pool and dialect
==============================  ===============================================

Every query runs read-only with a statement timeout, a row cap, a byte cap on the
result and the engine's memory settings (see :class:`Limits` and the docs page
"Databases" for what each engine guarantees). The database account's own
privileges remain the last line: give avl a read-only role where the database has
one.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from avl._clock import Clock, SystemClock
from avl._registry import redact_url, scheme_of
from avl.assistant._db._engine import Engine
from avl.assistant._db._redact import driver_text, error_code, safe_message
from avl.assistant._db._types import Limits, MiB, QueryResult, SchemaSnapshot, is_own_table
from avl.errors import (
    CancelledError,
    ConfigError,
    QueryError,
    QueryTimeoutError,
)
from avl.metrics import SpanKind, sql_attributes, start_span, tracing_enabled

__all__ = ["Database", "QueryResult", "SchemaSnapshot"]

_SCHEMES = ("sqlite", "postgresql", "mysql", "duckdb", "sqlalchemy")

#: sqlglot dialect -> OpenTelemetry ``db.system.name``
_DB_SYSTEM = {"postgres": "postgresql", "mysql": "mysql", "sqlite": "sqlite", "duckdb": "duckdb"}


def _kind_of(conn: object) -> str:
    mod = type(conn).__module__.split(".")[0]
    if isinstance(conn, sqlite3.Connection) or mod == "sqlite3":
        return "sqlite"
    if mod in ("psycopg", "psycopg2"):
        return "postgres"
    if mod in ("pymysql", "MySQLdb", "mysql"):
        return "mysql"
    if mod in ("duckdb", "_duckdb"):
        return "duckdb"
    if mod == "sqlalchemy":
        return "sqlalchemy"
    raise ConfigError(
        f"unsupported connection {type(conn).__module__}.{type(conn).__name__}; pass a "
        "sqlite3, psycopg, PyMySQL or DuckDB connection, a SQLAlchemy Engine, or a URL"
    )


class Database:
    """A read-only view of one database.

    Args:
        db: a URL (``sqlite:///path.db``, ``postgresql://...``, ``mysql://...``,
            ``duckdb:///path.duckdb``, ``sqlalchemy+<any SQLAlchemy URL>``), a
            DB-API connection (sqlite3, psycopg, PyMySQL), a DuckDB connection or a
            SQLAlchemy ``Engine``.
        timeout_s: the statement timeout of each query.
        clock: the clock used for the SQLite timeout.
        pool_size: the most connections avl opens to the database (PostgreSQL,
            MySQL/MariaDB, SQLite files and DuckDB cursors); threads beyond it wait.
            A borrowed connection is one connection, shared under a lock.
        schemas: the schemas to introspect (PostgreSQL, MySQL/MariaDB databases,
            DuckDB, SQLAlchemy); default: PostgreSQL's ``search_path``, the current
            database elsewhere. Tables outside the default schema are named
            ``schema.table``.
        max_result_bytes: the result's size cap; rows are streamed and the result
            is cut with ``truncated=True`` (``None``: no cap).
        max_value_bytes: the longest string or blob one value may be (SQLite's
            ``SQLITE_LIMIT_LENGTH``, MySQL's ``group_concat_max_len``).
        memory_mb: the memory budget of one statement (see :class:`Limits`).
        temp_mb: the spill-file budget of one statement.
        dialect: the sqlglot dialect of a SQLAlchemy engine whose dialect name avl
            does not map itself.

    Raises:
        ConfigError: unsupported URL or connection (or a multi-statement MySQL one),
            or a bad limit.
        BackendUnavailableError: the database cannot be opened.
        MissingDependencyError: the driver for the URL is not installed.

    Example:
        >>> db = Database("sqlite:///shop.db", timeout_s=5, pool_size=8)  # doctest: +SKIP
        >>> db.execute("SELECT COUNT(*) FROM customers").rows  # doctest: +SKIP
        ((12,),)
    """

    def __init__(
        self,
        db: str | object,
        *,
        timeout_s: float = 10.0,
        clock: Clock | None = None,
        pool_size: int = 4,
        schemas: Sequence[str] | None = None,
        max_result_bytes: int | None = 64 * MiB,
        max_value_bytes: int = 16 * MiB,
        memory_mb: int = 256,
        temp_mb: int = 1024,
        dialect: str | None = None,
    ) -> None:
        self.timeout_s = float(timeout_s)
        self._clock = clock or SystemClock()
        if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 1:
            raise ConfigError(f"pool_size must be a positive integer, got {pool_size!r}")
        if schemas is not None and (
            isinstance(schemas, str) or not all(isinstance(s, str) and s for s in schemas)
        ):
            raise ConfigError(f"schemas must be a list of schema names, got {schemas!r}")
        self._limits = Limits(
            timeout_s=self.timeout_s,
            max_result_bytes=max_result_bytes,
            max_value_bytes=max_value_bytes,
            memory_mb=memory_mb,
            temp_mb=temp_mb,
        )
        self.max_result_bytes = max_result_bytes
        self.url = ""
        self._engine: Engine
        if isinstance(db, (str, Path)):
            url = str(db)
            if "://" not in url:
                url = f"sqlite:///{url}"
            self.url = redact_url(url)
            self._engine = self._open_url(url, pool_size, schemas, dialect)
        else:
            self._engine = self._wrap(db, pool_size, schemas, dialect)
            self.url = f"<{type(db).__module__}.{type(db).__name__}>"
        self.dialect: str = self._engine.dialect
        self._active = 0  # statements running now (the pool gauge's in_use)
        self._active_lock = threading.Lock()

    def _open_url(
        self, url: str, pool_size: int, schemas: Sequence[str] | None, dialect: str | None
    ) -> Engine:
        low = url.lower()
        if low.startswith("sqlalchemy+"):
            from avl.assistant._db._sqlalchemy import SQLAlchemyEngine

            return SQLAlchemyEngine(
                url[len("sqlalchemy+") :],
                clock=self._clock,
                pool_size=pool_size,
                schemas=schemas,
                limits=self._limits,
                dialect=dialect,
            )
        scheme = scheme_of(url)
        if scheme == "sqlite":
            from avl.assistant._db._sqlite import SQLiteEngine

            return SQLiteEngine(url, clock=self._clock, pool_size=pool_size, limits=self._limits)
        if scheme == "postgresql":
            from avl.assistant._db._postgres import PostgresEngine

            return PostgresEngine(url, pool_size=pool_size, schemas=schemas)
        if scheme == "mysql":
            from avl.assistant._db._mysql import MySQLEngine

            return MySQLEngine(url, pool_size=pool_size, schemas=schemas)
        if scheme == "duckdb":
            from avl.assistant._db._duckdb import DuckDBEngine

            return DuckDBEngine(url, pool_size=pool_size, schemas=schemas, limits=self._limits)
        import difflib

        close = difflib.get_close_matches(scheme, _SCHEMES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"unsupported database URL scheme {scheme!r} in {redact_url(url)!r} (expected "
            f"sqlite://, postgresql://, mysql://, duckdb:// or sqlalchemy+<url>){hint}"
        )

    def _wrap(
        self, conn: object, pool_size: int, schemas: Sequence[str] | None, dialect: str | None
    ) -> Engine:
        kind = _kind_of(conn)
        if kind == "sqlite":
            from avl.assistant._db._sqlite import SQLiteEngine

            assert isinstance(conn, sqlite3.Connection)
            return SQLiteEngine(conn, clock=self._clock, pool_size=1, limits=self._limits)
        if kind == "postgres":
            from avl.assistant._db._postgres import PostgresEngine

            return PostgresEngine(conn, pool_size=1, schemas=schemas)
        if kind == "mysql":
            from avl.assistant._db._mysql import MySQLEngine

            return MySQLEngine(conn, pool_size=1, schemas=schemas)
        if kind == "duckdb":
            from avl.assistant._db._duckdb import DuckDBEngine

            return DuckDBEngine(conn, pool_size=pool_size, schemas=schemas, limits=self._limits)
        from avl.assistant._db._sqlalchemy import SQLAlchemyEngine

        return SQLAlchemyEngine(
            conn,
            clock=self._clock,
            pool_size=pool_size,
            schemas=schemas,
            limits=self._limits,
            dialect=dialect,
        )

    _CONFIG_KEYS = (
        "url",
        "timeout_s",
        "pool_size",
        "schemas",
        "max_result_bytes",
        "max_value_bytes",
        "memory_mb",
        "temp_mb",
        "dialect",
    )

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], *, timeout_s: float = 10.0, clock: Clock | None = None
    ) -> Database:
        """Build from a config table (the Console's ``[db]``)::

            [db]
            url = "postgresql://avl_reader@db/shop"
            pool_size = 8
            schemas = ["public", "sales"]
            max_result_bytes = 16777216

        Args:
            config: ``url`` and any of this class's keyword arguments.
            timeout_s: the statement timeout when the table gives none.
            clock: the clock for the SQLite timeout.

        Returns:
            The database.

        Raises:
            ConfigError: not a table, no ``url``, an unknown key or a bad value.
            BackendUnavailableError: the database cannot be opened.
            MissingDependencyError: the driver for the URL is not installed.
        """
        if not isinstance(config, Mapping):
            raise ConfigError(f"db: expected a URL or a table, got {type(config).__name__}")
        unknown = sorted(set(config) - set(cls._CONFIG_KEYS))
        if unknown:
            raise ConfigError(
                f"db: unknown key(s) {', '.join(unknown)} (known: {', '.join(cls._CONFIG_KEYS)})"
            )
        url = config.get("url")
        if not isinstance(url, str) or not url:
            raise ConfigError('db: a table needs url = "sqlite:///..." (or another database URL)')
        kwargs = {k: v for k, v in config.items() if k != "url"}
        kwargs.setdefault("timeout_s", timeout_s)
        try:
            return cls(url, clock=clock, **kwargs)
        except TypeError as exc:
            raise ConfigError(f"db: {exc}") from exc

    @property
    def pool_size(self) -> int:
        """The most connections this Database opens at once."""
        return self._engine.pool_size

    def pool_stats(self) -> dict[str, int]:
        """``{"size": pool_size, "in_use": statements running now}`` (a metrics gauge)."""
        return {"size": self._engine.pool_size, "in_use": self._active}

    # ------------------------------------------------------------- execution
    @contextlib.contextmanager
    def _translate(self, sql: str, cancel: threading.Event | None = None) -> Iterator[None]:
        try:
            yield
        except (QueryError, CancelledError):
            raise
        except Exception as exc:
            inner = getattr(exc, "orig", None) or exc  # SQLAlchemy wraps the driver's error
            if not _is_db_error(exc):
                raise
            raw = driver_text(inner)
            low = raw.lower()
            # the one place a database's error text is made safe for any caller: it
            # may quote stored values (see _redact.py); the driver's own exception
            # stays chained as __cause__ for the operator's logs
            text = safe_message(raw, sql)
            code = error_code(inner)
            if cancel is not None and cancel.is_set():
                raise CancelledError(f"the query was cancelled by the caller: {text}") from exc
            if (
                "interrupted" in low
                or "timeout" in low
                or "canceling statement" in low
                or "max_statement_time" in low
                or "maximum statement execution time" in low
                or "query execution was interrupted" in low
            ):
                raise QueryTimeoutError(
                    f"query ran past the {self.timeout_s:g} s statement timeout: {text}",
                    sql=sql,
                    code=code,
                ) from exc
            raise QueryError(
                f"the database rejected the query: {text}", sql=sql, code=code
            ) from exc

    def _current_limits(self) -> Limits:
        limits = self._limits
        if limits.timeout_s != self.timeout_s or limits.max_result_bytes != self.max_result_bytes:
            limits = attrs.evolve(
                limits, timeout_s=self.timeout_s, max_result_bytes=self.max_result_bytes
            )
            self._limits = limits
        return limits

    def execute(
        self,
        sql: str,
        params: Mapping[str, Any] | Sequence[Any] | None = None,
        *,
        max_rows: int = 1000,
        cancel: threading.Event | None = None,
    ) -> QueryResult:
        """Run one statement read-only and return at most ``max_rows`` rows.

        Args:
            sql: the statement (already checked by SafeQuery).
            params: bound parameters, in the driver's style.
            max_rows: the row cap.
            cancel: an event another thread may set to stop the statement while it
                runs: SQLite is interrupted by its progress handler, PostgreSQL gets
                a cancel request, MySQL/MariaDB a ``KILL QUERY``, DuckDB an
                interrupt.

        Returns:
            The rows (``truncated`` when the row cap or ``max_result_bytes`` cut them).

        Raises:
            QueryError: the database rejected the statement.
            QueryTimeoutError: it ran past the statement timeout.
            CancelledError: ``cancel`` was set before or while it ran.
            BackendUnavailableError: no connection could be had.
        """
        if cancel is not None and cancel.is_set():
            raise CancelledError("the query was cancelled by the caller before it ran")
        if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 0:
            raise ConfigError(f"max_rows must be a non-negative integer, got {max_rows!r}")
        limits = self._current_limits()
        attributes = (
            sql_attributes(sql, system=_DB_SYSTEM.get(self.dialect), dialect=self.dialect)
            if tracing_enabled()
            else {}
        )
        with (
            start_span(
                str(attributes.get("db.operation.name", "query")),
                kind=SpanKind.CLIENT,
                attributes=attributes,
                tracer="avl.db",
            ) as span,
            self._translate(sql, cancel),
        ):
            with self._active_lock:
                self._active += 1
            try:
                result = self._engine.run(
                    sql, params, max_rows=max_rows, limits=limits, cancel=cancel
                )
            finally:
                with self._active_lock:
                    self._active -= 1
            span.set("db.response.returned_rows", len(result.rows))
            return result

    def in_transaction(self) -> bool:
        """Whether any connection avl holds to the database has a transaction open."""
        return self._engine.in_transaction()

    # ---------------------------------------------------------- introspection
    def _meta(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._translate(sql):
            return self._engine.meta(sql, params)

    def introspect(
        self,
        *,
        tables: Sequence[str] | None = None,
        sample_values: int = 0,
        schemas: Sequence[str] | None = None,
    ) -> SchemaSnapshot:
        """Read tables, columns, types, keys and comments (never avl's own tables).

        Args:
            tables: only these tables (case-insensitive; ``"schema.table"`` or the
                name shown in the snapshot); all when ``None``.
            sample_values: this many distinct sample values per text column.
            schemas: the schemas to read (default: the ``schemas`` given to the
                Database, else the search path / current database).

        Returns:
            The schema; tables outside the default schema are named ``schema.table``.

        Raises:
            QueryError: the catalogue could not be read.
        """
        want = {t.lower() for t in tables} if tables is not None else None
        with self._translate("<introspection>"):
            specs, fks = self._engine.introspect(want, schemas)
        own = tuple(t.name for t in specs if is_own_table(t.name))
        if own:  # avl's own tables are never data
            specs = [t for t in specs if t.name not in own]
            fks = [fk for fk in fks if fk.table not in own and fk.ref_table not in own]
        if sample_values > 0:
            specs = [self._with_samples(t, sample_values) for t in specs]
        return SchemaSnapshot(dialect=self.dialect, tables=specs, foreign_keys=fks, skipped=own)

    def _with_samples(self, table: Any, n: int) -> Any:
        cols = []
        for c in table.columns:
            if c.is_numeric:
                cols.append(c)
                continue
            cols.append(attrs.evolve(c, samples=self.distinct_values(table.name, c.name, n)))
        return attrs.evolve(table, columns=cols)

    def quote(self, name: str) -> str:
        """Quote an identifier in this database's dialect.

        A schema-qualified table name from :meth:`introspect` (``"sales.invoices"``)
        is quoted part by part (``"sales"."invoices"``).
        """
        return self._engine.quote(name)

    def distinct_values(self, table: str, column: str, limit: int) -> tuple[str, ...]:
        """Up to ``limit`` distinct non-null text values of ``table.column``."""
        col = self._engine.quote(column)
        sql = (
            f"SELECT DISTINCT {col} FROM {self._engine.quote(table)} "
            f"WHERE {col} IS NOT NULL LIMIT {int(limit)}"
        )
        try:
            res = self.execute(sql, max_rows=limit)
        except QueryError:
            return ()
        return tuple(str(r[0]) for r in res.rows if isinstance(r[0], str) and len(r[0]) <= 60)

    def explain(self, sql: str) -> QueryResult:
        """Run ``EXPLAIN QUERY PLAN`` (SQLite) or ``EXPLAIN`` on ``sql``.

        Raises:
            QueryError: the database rejected the statement.
        """
        return self.execute(self._engine.explain_prefix + sql, max_rows=10_000)

    def indexed_columns(self) -> set[tuple[str, str]]:
        """``(table, first column)`` of every index (lower-cased)."""
        with self._translate("<introspection>"):
            return self._engine.indexed_columns()

    def close(self) -> None:
        """Close the connections this object opened (a borrowed one stays open)."""
        with contextlib.suppress(Exception):
            self._engine.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Database({self.url!r}, dialect={self.dialect!r})"


def _is_db_error(exc: BaseException) -> bool:
    mod = type(exc).__module__.split(".")[0]
    return isinstance(exc, sqlite3.Error) or mod in (
        "psycopg",
        "pymysql",
        "psycopg2",
        "duckdb",
        "_duckdb",
        "sqlalchemy",
    )
