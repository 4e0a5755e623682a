"""Database connectors: read-only execution, introspection and EXPLAIN.

One :class:`Database` wraps a URL (``sqlite:///path``, ``postgresql://...``,
``mysql://...``) or a DB-API connection. Every query runs read-only with a statement
timeout and a row cap:

- SQLite: the file is opened with ``file:...?mode=ro`` (a given connection gets
  ``PRAGMA query_only``), an authorizer refuses ``ATTACH`` (and so ``VACUUM INTO``),
  ``DETACH`` and ``PRAGMA`` while the query runs (a borrowed connection's own
  authorizer is cleared), and a progress handler enforces the timeout.
- PostgreSQL: ``BEGIN READ ONLY`` + ``SET LOCAL statement_timeout``, then rollback;
  the statement is prepared, so it is exactly one (``COMMIT; ...`` is refused).
- MySQL/MariaDB: ``SET SESSION max_statement_time``/``max_execution_time`` +
  ``SET SESSION TRANSACTION READ ONLY`` (DDL commits implicitly, and a read-only
  session refuses it too; a borrowed connection is set back) +
  ``START TRANSACTION READ ONLY``, then rollback.

The database account's own privileges remain the last line: give avl a read-only
role where the database has one.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import attrs

from avl._clock import Clock, SystemClock
from avl._optional import require
from avl._registry import redact_url, scheme_of
from avl.errors import (
    BackendUnavailableError,
    CancelledError,
    ConfigError,
    QueryError,
    QueryTimeoutError,
)
from avl.schema import ColumnSpec, ForeignKeySpec, TableSpec, as_foreign_keys, as_tables

__all__ = ["Database", "QueryResult", "SchemaSnapshot"]


@attrs.frozen(kw_only=True)
class QueryResult:
    """Rows of one read-only query.

    Attributes:
        columns: column names.
        rows: the rows (at most the row cap).
        truncated: whether more rows existed than the cap.
    """

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    truncated: bool = False


def _names(value: Sequence[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen(kw_only=True)
class SchemaSnapshot:
    """The introspected schema of a database.

    Attributes:
        dialect: the SQL dialect.
        tables: the data tables (never avl's own).
        foreign_keys: the foreign keys between them.
        skipped: avl's own tables found in the database (names starting with
            ``avl_``: a History, a vector store or a training store kept there),
            which are never data.
    """

    dialect: str
    tables: tuple[TableSpec, ...] = attrs.field(converter=as_tables)
    foreign_keys: tuple[ForeignKeySpec, ...] = attrs.field(converter=as_foreign_keys)
    skipped: tuple[str, ...] = attrs.field(default=(), converter=_names)


#: avl's own tables (History, vectors, training) start with this; they are never data.
OWN_TABLE_PREFIX = "avl_"


def _dialect_of(conn: object) -> str:
    mod = type(conn).__module__.split(".")[0]
    if isinstance(conn, sqlite3.Connection) or mod == "sqlite3":
        return "sqlite"
    if mod in ("psycopg", "psycopg2"):
        return "postgres"
    if mod in ("pymysql", "MySQLdb", "mysql"):
        return "mysql"
    raise ConfigError(
        f"unsupported DB-API connection {type(conn).__module__}.{type(conn).__name__}; "
        "pass a sqlite3, psycopg or pymysql connection, or a URL"
    )


_MULTI_STATEMENTS = 1 << 16  # pymysql.constants.CLIENT.MULTI_STATEMENTS
_SQLITE_DENIED = frozenset({sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH, sqlite3.SQLITE_PRAGMA})


def _sqlite_authorizer(
    action: int, arg1: str | None, arg2: str | None, db: str | None, trigger: str | None
) -> int:
    return sqlite3.SQLITE_DENY if action in _SQLITE_DENIED else sqlite3.SQLITE_OK


class Database:
    """A read-only view of one database.

    Args:
        db: a URL (``sqlite:///path.db``, ``postgresql://...``, ``mysql://...``) or a
            DB-API connection (sqlite3, psycopg, pymysql).
        timeout_s: the statement timeout of each query.
        clock: the clock used for the SQLite timeout.

    Raises:
        ConfigError: unsupported URL or connection (or a multi-statement MySQL one).
        BackendUnavailableError: the database cannot be opened.
        MissingDependencyError: the driver for the URL is not installed.

    Example:
        >>> db = Database("sqlite:///:memory:")  # doctest: +SKIP
    """

    def __init__(
        self, db: str | object, *, timeout_s: float = 10.0, clock: Clock | None = None
    ) -> None:
        self.timeout_s = float(timeout_s)
        self._clock = clock or SystemClock()
        self._lock = threading.RLock()
        self._owned = False
        self.url = ""
        if isinstance(db, (str, Path)):
            url = str(db)
            if "://" not in url:
                url = f"sqlite:///{url}"
            self.url = redact_url(url)
            scheme = scheme_of(url)
            if scheme == "sqlite":
                self.dialect = "sqlite"
                self._conn: Any = self._open_sqlite(url)
            elif scheme == "postgresql":
                self.dialect = "postgres"
                psycopg = require("psycopg", extra="postgres")
                try:
                    self._conn = psycopg.connect(url.replace("postgresql+psycopg", "postgresql"))
                except psycopg.Error as exc:
                    raise BackendUnavailableError(
                        f"cannot connect to {redact_url(url)}: {exc}"
                    ) from exc
            elif scheme == "mysql":
                self.dialect = "mysql"
                self._conn = _connect_mysql(url)
            else:
                raise ConfigError(
                    f"unsupported database URL scheme {scheme!r} in {redact_url(url)!r} "
                    "(expected sqlite://, postgresql:// or mysql://)"
                )
            self._owned = True
        else:
            self.dialect = _dialect_of(db)
            self._conn = db
            self.url = f"<{type(db).__module__}.{type(db).__name__}>"
            if self.dialect == "mysql" and int(getattr(db, "client_flag", 0)) & _MULTI_STATEMENTS:
                raise ConfigError(
                    "a MySQL connection opened with CLIENT.MULTI_STATEMENTS runs "
                    "'COMMIT; ...' and cannot be kept read-only; connect without it"
                )

    @staticmethod
    def _open_sqlite(url: str) -> sqlite3.Connection:
        # sqlite:///rel.db is relative and sqlite:////abs.db absolute; with three
        # slashes an absolute path that exists is accepted too.
        rest = unquote(url.split("://", 1)[1]).split("?", 1)[0]
        if rest in ("", "/", "/:memory:", ":memory:"):
            raise ConfigError(
                "an in-memory SQLite URL cannot be shared read-only; pass the sqlite3 "
                "connection itself, or a file path"
            )
        rel = rest[1:] if rest.startswith("/") else rest
        candidates = [Path(rel)] if rel.startswith("/") else [Path("/" + rel), Path(rel)]
        p = next((c for c in candidates if c.exists()), None)
        if p is None:
            raise BackendUnavailableError(f"SQLite database {rel!r} does not exist")
        try:
            conn = sqlite3.connect(
                f"file:{p.resolve().as_posix()}?mode=ro", uri=True, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise BackendUnavailableError(f"cannot open SQLite database {str(p)!r}: {exc}") from exc
        return conn

    # ------------------------------------------------------------- execution
    @contextlib.contextmanager
    def _translate(self, sql: str, cancel: threading.Event | None = None) -> Iterator[None]:
        try:
            yield
        except QueryError:
            raise
        except Exception as exc:
            name = type(exc).__name__
            text = str(exc).strip() or name
            if cancel is not None and cancel.is_set() and _is_db_error(exc):
                raise CancelledError(f"the query was cancelled by the caller: {text}") from exc
            if (
                "interrupted" in text.lower()
                or "timeout" in text.lower()
                or "canceling statement" in text.lower()
                or "max_statement_time" in text.lower()
                or "maximum statement execution time" in text.lower()
            ):
                raise QueryTimeoutError(
                    f"query ran past the {self.timeout_s:g} s statement timeout: {text}", sql=sql
                ) from exc
            if _is_db_error(exc):
                raise QueryError(f"the database rejected the query: {text}", sql=sql) from exc
            raise

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
                a cancel request, MySQL/MariaDB a ``KILL QUERY``.

        Returns:
            The rows.

        Raises:
            QueryError: the database rejected the statement.
            QueryTimeoutError: it ran past the statement timeout.
            CancelledError: ``cancel`` was set before or while it ran.
        """
        if cancel is not None and cancel.is_set():
            raise CancelledError("the query was cancelled by the caller before it ran")
        with self._lock, self._translate(sql, cancel):
            if self.dialect == "sqlite":
                return self._exec_sqlite(sql, params, max_rows, cancel)
            if self.dialect == "postgres":
                return self._exec_postgres(sql, params, max_rows, cancel)
            return self._exec_mysql(sql, params, max_rows, cancel)

    def _fetch(self, cur: Any, max_rows: int) -> QueryResult:
        cols = tuple(d[0] for d in (cur.description or ()))
        rows = cur.fetchmany(max_rows + 1) if cur.description else []
        truncated = len(rows) > max_rows
        return QueryResult(
            columns=cols, rows=tuple(tuple(r) for r in rows[:max_rows]), truncated=truncated
        )

    def _exec_sqlite(
        self, sql: str, params: Any, max_rows: int, cancel: threading.Event | None = None
    ) -> QueryResult:
        conn: sqlite3.Connection = self._conn
        deadline = self._clock.monotonic() + self.timeout_s
        if cancel is None:
            conn.set_progress_handler(lambda: int(self._clock.monotonic() > deadline), 10_000)
        else:
            conn.set_progress_handler(
                lambda: int(cancel.is_set() or self._clock.monotonic() > deadline), 10_000
            )
        if not self._owned:
            conn.execute("PRAGMA query_only = ON")
        # mode=ro guards the file; ATTACH and VACUUM INTO would write others, and a
        # PRAGMA could lift query_only
        conn.set_authorizer(_sqlite_authorizer)
        try:
            cur = conn.execute(sql, params if params is not None else ())
            return self._fetch(cur, max_rows)
        finally:
            conn.set_authorizer(None)
            conn.set_progress_handler(None, 0)
            # a refused write still opened the driver's implicit transaction: end it
            if conn.in_transaction:
                conn.rollback()
            if not self._owned:
                conn.execute("PRAGMA query_only = OFF")

    def _exec_postgres(
        self, sql: str, params: Any, max_rows: int, cancel: threading.Event | None = None
    ) -> QueryResult:
        conn = self._conn
        if conn.info.transaction_status != 0:  # not idle: leave the user's work alone
            conn.rollback()
        ms = max(1, int(self.timeout_s * 1000))
        done = threading.Event()
        watcher = None
        try:
            with conn.cursor() as cur:
                cur.execute("BEGIN READ ONLY")
                cur.execute(f"SET LOCAL statement_timeout = {ms}")
                if cancel is not None:
                    watcher = threading.Thread(
                        target=_cancel_when_set, args=(conn, cancel, done), daemon=True
                    )
                    watcher.start()
                # prepared: exactly one statement (no "COMMIT; ..." out of READ ONLY)
                cur.execute(sql, params, prepare=True)
                return self._fetch(cur, max_rows)
        finally:
            done.set()
            if watcher is not None:
                watcher.join()
            conn.rollback()

    def _exec_mysql(
        self, sql: str, params: Any, max_rows: int, cancel: threading.Event | None = None
    ) -> QueryResult:
        conn = self._conn
        ms = max(1, int(self.timeout_s * 1000))
        done = threading.Event()
        watcher = None
        restore = False
        try:
            with conn.cursor() as cur:
                self._mysql_timeout(cur, ms)
                # DDL commits the open transaction implicitly and would run read-write;
                # a read-only session refuses it too
                restore = self._mysql_session_read_only(cur)
                cur.execute("START TRANSACTION READ ONLY")
                if cancel is not None:
                    watcher = threading.Thread(
                        target=_cancel_when_set,
                        args=(_MySQLKiller(conn), cancel, done),
                        daemon=True,
                    )
                    watcher.start()
                cur.execute(sql, params)
                return self._fetch(cur, max_rows)
        finally:
            done.set()
            if watcher is not None:
                watcher.join()
            conn.rollback()
            if restore:
                with conn.cursor() as cur:
                    cur.execute("SET SESSION TRANSACTION READ WRITE")

    def _mysql_session_read_only(self, cur: Any) -> bool:
        """Make the session read-only; True when a borrowed one must be set back."""
        restore = False
        if not self._owned:
            var = "tx_read_only" if self._mysql_var == "mariadb" else "transaction_read_only"
            cur.execute(f"SELECT @@session.{var}")
            row = cur.fetchone()
            restore = not (row and int(row[0]))
        cur.execute("SET SESSION TRANSACTION READ ONLY")
        return restore

    def _mysql_timeout(self, cur: Any, ms: int) -> None:
        if getattr(self, "_mysql_var", None) is None:
            cur.execute("SELECT VERSION()")
            version = str(cur.fetchone()[0]).lower()
            self._mysql_var = "mariadb" if "mariadb" in version else "mysql"
        if self._mysql_var == "mariadb":
            cur.execute(f"SET SESSION max_statement_time = {ms / 1000:.3f}")
        else:
            cur.execute(f"SET SESSION max_execution_time = {ms}")

    def in_transaction(self) -> bool:
        """Whether the underlying connection has an open transaction."""
        if self.dialect == "sqlite":
            return bool(self._conn.in_transaction)
        if self.dialect == "postgres":
            return bool(self._conn.info.transaction_status != 0)
        with self._conn.cursor() as cur:
            cur.execute("SELECT @@in_transaction")
            row = cur.fetchone()
            return bool(row and row[0])

    # ---------------------------------------------------------- introspection
    def _meta(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock, self._translate(sql):
            if self.dialect == "sqlite":
                return [tuple(r) for r in self._conn.execute(sql, params).fetchall()]
            try:
                with self._conn.cursor() as cur:
                    cur.execute(sql, params or None)
                    return [tuple(r) for r in cur.fetchall()]
            finally:
                self._conn.rollback()

    def introspect(
        self, *, tables: Sequence[str] | None = None, sample_values: int = 0
    ) -> SchemaSnapshot:
        """Read tables, columns, types, keys and comments (never avl's own tables).

        Args:
            tables: only these tables (case-insensitive); all when ``None``.
            sample_values: this many distinct sample values per text column.

        Returns:
            The schema.

        Raises:
            QueryError: the catalogue could not be read.
        """
        want = {t.lower() for t in tables} if tables is not None else None
        if self.dialect == "sqlite":
            specs, fks = self._introspect_sqlite(want)
        elif self.dialect == "postgres":
            specs, fks = self._introspect_info_schema(want, "current_schema()")
        else:
            specs, fks = self._introspect_info_schema(want, "DATABASE()")
        own = tuple(t.name for t in specs if t.name.lower().startswith(OWN_TABLE_PREFIX))
        if own:  # avl's own tables are never data
            specs = [t for t in specs if t.name not in own]
            fks = [fk for fk in fks if fk.table not in own and fk.ref_table not in own]
        if sample_values > 0:
            specs = [self._with_samples(t, sample_values) for t in specs]
        return SchemaSnapshot(dialect=self.dialect, tables=specs, foreign_keys=fks, skipped=own)

    def _introspect_sqlite(
        self, want: set[str] | None
    ) -> tuple[list[TableSpec], list[ForeignKeySpec]]:
        names = [
            r[0]
            for r in self._meta(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
                "AND name NOT LIKE 'sqlite_%' ORDER BY rowid"
            )
        ]
        specs: list[TableSpec] = []
        fks: list[ForeignKeySpec] = []
        for name in names:
            if want is not None and name.lower() not in want:
                continue
            q = '"' + name.replace('"', '""') + '"'
            cols = [
                ColumnSpec(name=r[1], type=str(r[2] or ""), primary_key=bool(r[5]))
                for r in self._meta(f"PRAGMA table_info({q})")
            ]
            count = self._meta(f"SELECT COUNT(*) FROM {q}")[0][0]
            specs.append(TableSpec(name=name, columns=cols, row_count=int(count)))
            groups: dict[int, list[tuple[Any, ...]]] = {}
            for r in self._meta(f"PRAGMA foreign_key_list({q})"):
                groups.setdefault(int(r[0]), []).append(r)
            for rows in groups.values():
                ref = str(rows[0][2])
                ref_cols = [str(r[4]) if r[4] is not None else "" for r in rows]
                if not all(ref_cols):
                    ref_cols = self._sqlite_pk(ref) or ref_cols
                fks.append(
                    ForeignKeySpec(
                        table=name,
                        columns=[str(r[3]) for r in rows],
                        ref_table=_canonical(ref, names),
                        ref_columns=ref_cols,
                    )
                )
        return specs, fks

    def _sqlite_pk(self, table: str) -> list[str]:
        q = '"' + table.replace('"', '""') + '"'
        return [r[1] for r in self._meta(f"PRAGMA table_info({q})") if r[5]]

    def _introspect_info_schema(
        self, want: set[str] | None, schema_fn: str
    ) -> tuple[list[TableSpec], list[ForeignKeySpec]]:
        pg = self.dialect == "postgres"
        comment = (
            "COALESCE(col_description((quote_ident(c.table_schema) || '.' || "
            "quote_ident(c.table_name))::regclass, c.ordinal_position::int), '')"
            if pg
            else "c.COLUMN_COMMENT"
        )
        rows = self._meta(
            f"SELECT c.table_name, c.column_name, c.data_type, {comment} "
            "FROM information_schema.columns c "
            f"WHERE c.table_schema = {schema_fn} ORDER BY c.table_name, c.ordinal_position"
        )
        pk_rows = self._meta(
            "SELECT k.table_name, k.column_name FROM information_schema.table_constraints t "
            "JOIN information_schema.key_column_usage k ON k.constraint_name = t.constraint_name "
            "AND k.table_schema = t.table_schema AND k.table_name = t.table_name "
            f"WHERE t.constraint_type = 'PRIMARY KEY' AND t.table_schema = {schema_fn}"
        )
        pks = {(str(a), str(b)) for a, b in pk_rows}
        if pg:
            fk_rows = self._meta(
                "SELECT k.table_name, k.column_name, u.table_name, u.column_name, "
                "k.constraint_name FROM information_schema.referential_constraints r "
                "JOIN information_schema.key_column_usage k ON k.constraint_name = "
                "r.constraint_name AND k.constraint_schema = r.constraint_schema "
                "JOIN information_schema.key_column_usage u ON u.constraint_name = "
                "r.unique_constraint_name AND u.constraint_schema = r.unique_constraint_schema "
                "AND u.ordinal_position = k.position_in_unique_constraint "
                f"WHERE k.table_schema = {schema_fn}"
            )
            tcomments = dict(
                self._meta(
                    "SELECT c.relname, COALESCE(obj_description(c.oid, 'pg_class'), '') "
                    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    f"WHERE n.nspname = {schema_fn} AND c.relkind IN ('r', 'v', 'p')"
                )
            )
        else:
            fk_rows = self._meta(
                "SELECT TABLE_NAME, COLUMN_NAME, REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME, "
                "CONSTRAINT_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE "
                f"TABLE_SCHEMA = {schema_fn} AND REFERENCED_TABLE_NAME IS NOT NULL"
            )
            tcomments = dict(
                self._meta(
                    "SELECT TABLE_NAME, TABLE_COMMENT FROM information_schema.TABLES "
                    f"WHERE TABLE_SCHEMA = {schema_fn}"
                )
            )
        cols: dict[str, list[ColumnSpec]] = {}
        for table, column, dtype, ccomment in rows:
            t = str(table)
            if want is not None and t.lower() not in want:
                continue
            cols.setdefault(t, []).append(
                ColumnSpec(
                    name=str(column),
                    type=str(dtype),
                    primary_key=(t, str(column)) in pks,
                    comment=str(ccomment or ""),
                )
            )
        specs = [
            TableSpec(name=t, columns=c, comment=str(tcomments.get(t, "") or ""))
            for t, c in cols.items()
        ]
        groups: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
        for r in fk_rows:
            if str(r[0]) in cols:
                groups.setdefault((str(r[0]), str(r[4])), []).append(r)
        fks = [
            ForeignKeySpec(
                table=str(g[0][0]),
                columns=[str(r[1]) for r in g],
                ref_table=str(g[0][2]),
                ref_columns=[str(r[3]) for r in g],
            )
            for g in groups.values()
        ]
        return specs, fks

    def _with_samples(self, table: TableSpec, n: int) -> TableSpec:
        cols = []
        for c in table.columns:
            if c.is_numeric:
                cols.append(c)
                continue
            cols.append(attrs.evolve(c, samples=self.distinct_values(table.name, c.name, n)))
        return attrs.evolve(table, columns=cols)

    def quote(self, name: str) -> str:
        """Quote an identifier in this database's dialect."""
        if self.dialect == "mysql":
            return "`" + name.replace("`", "``") + "`"
        return '"' + name.replace('"', '""') + '"'

    def distinct_values(self, table: str, column: str, limit: int) -> tuple[str, ...]:
        """Up to ``limit`` distinct non-null text values of ``table.column``."""
        sql = (
            f"SELECT DISTINCT {self.quote(column)} FROM {self.quote(table)} "
            f"WHERE {self.quote(column)} IS NOT NULL LIMIT {int(limit)}"
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
        prefix = "EXPLAIN QUERY PLAN " if self.dialect == "sqlite" else "EXPLAIN "
        return self.execute(prefix + sql, max_rows=10_000)

    def indexed_columns(self) -> set[tuple[str, str]]:
        """``(table, first column)`` of every index (lower-cased)."""
        out: set[tuple[str, str]] = set()
        if self.dialect == "sqlite":
            for (t,) in self._meta("SELECT name FROM sqlite_master WHERE type = 'table'"):
                q = '"' + str(t).replace('"', '""') + '"'
                for idx in self._meta(f"PRAGMA index_list({q})"):
                    iq = '"' + str(idx[1]).replace('"', '""') + '"'
                    cols = self._meta(f"PRAGMA index_info({iq})")
                    if cols:
                        out.add((str(t).lower(), str(cols[0][2]).lower()))
        elif self.dialect == "postgres":
            for t, c in self._meta(
                "SELECT t.relname, a.attname FROM pg_index i JOIN pg_class t ON t.oid = "
                "i.indrelid JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = "
                "i.indkey[0] JOIN pg_namespace n ON n.oid = t.relnamespace WHERE "
                "n.nspname = current_schema()"
            ):
                out.add((str(t).lower(), str(c).lower()))
        else:
            for t, c in self._meta(
                "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.STATISTICS WHERE "
                "TABLE_SCHEMA = DATABASE() AND SEQ_IN_INDEX = 1"
            ):
                out.add((str(t).lower(), str(c).lower()))
        return out

    def close(self) -> None:
        """Close the connection if this object opened it."""
        if self._owned:
            with contextlib.suppress(Exception):
                self._conn.close()

    def __repr__(self) -> str:
        return f"Database({self.url!r}, dialect={self.dialect!r})"


def _canonical(name: str, names: Sequence[str]) -> str:
    for n in names:
        if n.lower() == name.lower():
            return n
    return name


def _cancel_when_set(conn: Any, cancel: threading.Event, done: threading.Event) -> None:
    """Ask the server to stop the running statement once ``cancel`` is set (until
    ``done``): ``conn`` is a psycopg connection or a :class:`_MySQLKiller`."""
    while not done.wait(0.02):
        if cancel.is_set():
            with contextlib.suppress(Exception):  # the statement may have just ended
                conn.cancel_safe() if hasattr(conn, "cancel_safe") else conn.cancel()
            return


class _MySQLKiller:
    """``cancel()`` for a pymysql connection: ``KILL QUERY`` from a second connection."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def cancel(self) -> None:
        import pymysql

        c = self.conn
        other = pymysql.connect(
            host=c.host, port=c.port, user=c.user, password=c.password, connect_timeout=5
        )
        try:
            with other.cursor() as cur:
                cur.execute(f"KILL QUERY {int(c.thread_id())}")
        finally:
            other.close()


def _is_db_error(exc: BaseException) -> bool:
    mod = type(exc).__module__.split(".")[0]
    return isinstance(exc, sqlite3.Error) or mod in ("psycopg", "pymysql", "psycopg2")


def _connect_mysql(url: str) -> Any:
    pymysql = require("pymysql", extra="mysql")
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    try:
        return pymysql.connect(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 3306,
            user=unquote(parts.username or "root"),
            password=unquote(parts.password or ""),
            database=(parts.path or "/").lstrip("/") or None,
            charset=query.get("charset", "utf8mb4"),
            autocommit=False,
        )
    except pymysql.MySQLError as exc:
        raise BackendUnavailableError(f"cannot connect to {redact_url(url)}: {exc}") from exc
