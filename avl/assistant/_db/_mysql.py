"""MySQL and MariaDB through PyMySQL: a bounded pool of connections for a URL, or one
borrowed connection behind a lock.

Each statement runs in ``START TRANSACTION READ ONLY`` in a read-only session (DDL
commits implicitly, and a read-only session refuses it too; a borrowed connection
is set back), always rolled back, with session limits set first:

- the statement timeout: ``max_statement_time`` (MariaDB, seconds) or
  ``max_execution_time`` (MySQL, milliseconds, SELECT only);
- ``max_heap_table_size`` and ``tmp_table_size`` (a quarter of ``memory_mb``:
  bigger internal temporary tables go to disk);
- ``group_concat_max_len`` (``max_value_bytes``); ``REPEAT``, ``LPAD`` and the
  like already return NULL past the server's ``max_allowed_packet``;
- MariaDB ``max_recursive_iterations`` / MySQL ``cte_max_recursion_depth``.

Rows are read with an unbuffered cursor, so the row and byte caps stop reading;
a cut result is stopped with ``KILL QUERY`` from a second connection and the
little still in flight is drained.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from avl._optional import require
from avl._registry import redact_url
from avl.assistant._db._engine import Engine, Watchdog
from avl.assistant._db._infoschema import display_name, introspect_info_schema
from avl.assistant._db._pool import BoundedPool, SingleConnection
from avl.assistant._db._types import ForeignKeySpec, Limits, QueryResult, TableSpec, collect_rows
from avl.errors import BackendUnavailableError, ConfigError

__all__ = ["MULTI_STATEMENTS", "MySQLEngine", "flavour", "run_mysql"]

MULTI_STATEMENTS = 1 << 16  # pymysql.constants.CLIENT.MULTI_STATEMENTS
_RECURSION = 100_000


def connect_args(url: str) -> dict[str, Any]:
    """PyMySQL ``connect()`` arguments of a ``mysql://`` URL."""
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 3306,
        "user": unquote(parts.username or "root"),
        "password": unquote(parts.password or ""),
        "database": (parts.path or "/").lstrip("/") or None,
        "charset": query.get("charset", "utf8mb4"),
        "autocommit": False,
        "connect_timeout": 10,
    }


class _Killer:
    """Stops the statement running on ``conn``: ``KILL QUERY`` from a second connection."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def __call__(self) -> None:
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


def flavour(conn: Any) -> str:
    """``"mariadb"`` or ``"mysql"``: which server a PyMySQL connection talks to."""
    with conn.cursor() as cur:
        cur.execute("SELECT VERSION()")
        version = str(cur.fetchone()[0]).lower()
    conn.rollback()
    return "mariadb" if "mariadb" in version else "mysql"


def _session(cur: Any, limits: Limits, mariadb: bool) -> None:
    heap = max(16 * 1024, limits.memory_mb * 1024 * 1024 // 4)
    if mariadb:
        cur.execute(
            f"SET SESSION max_statement_time = {limits.timeout_s:.3f}, "
            f"max_heap_table_size = {heap}, tmp_table_size = {heap}, "
            f"group_concat_max_len = {int(limits.max_value_bytes)}, "
            f"max_recursive_iterations = {_RECURSION}"
        )
    else:
        cur.execute(
            f"SET SESSION max_execution_time = {max(1, int(limits.timeout_s * 1000))}, "
            f"max_heap_table_size = {heap}, tmp_table_size = {heap}, "
            f"group_concat_max_len = {int(limits.max_value_bytes)}, "
            f"cte_max_recursion_depth = {_RECURSION}"
        )


def _read_only(cur: Any, mariadb: bool, borrowed: bool) -> bool:
    """Make the session read-only; True when a borrowed one must be set back."""
    restore = False
    if borrowed:
        var = "tx_read_only" if mariadb else "transaction_read_only"
        cur.execute(f"SELECT @@session.{var}")
        row = cur.fetchone()
        restore = not (row and int(row[0]))
    cur.execute("SET SESSION TRANSACTION READ ONLY")
    return restore


def run_mysql(
    conn: Any,
    sql: str,
    params: Any,
    *,
    max_rows: int,
    limits: Limits,
    cancel: threading.Event | None,
    mariadb: bool,
    borrowed: bool,
    discard: Any,
) -> QueryResult:
    """Run one statement read-only on a PyMySQL connection under ``limits``.

    A cut result gets ``KILL QUERY`` and is drained; a connection that fails on the
    way is ``discard()``-ed (the pool does not reuse it).
    """
    from pymysql.cursors import SSCursor

    restore = False
    cut = False
    cur: Any = None
    try:
        with conn.cursor() as setup:
            _session(setup, limits, mariadb)
            restore = _read_only(setup, mariadb, borrowed)
            setup.execute("START TRANSACTION READ ONLY")
        cur = conn.cursor(SSCursor)
        with Watchdog(_Killer(conn), timeout_s=None, cancel=cancel):
            cur.execute(sql, params)
            if not cur.description:
                return QueryResult(columns=(), rows=())
            cols = [d[0] for d in cur.description]
            res = collect_rows(
                cols, cur.fetchmany, max_rows=max_rows, max_bytes=limits.max_result_bytes
            )
            cut = res.truncated
            return res
    finally:
        if cut:
            # the rest of the result is still coming: stop the statement, then drain
            # what is in flight (the server ends the result with an error packet)
            try:
                _Killer(conn)()
            except Exception:  # cannot reach the server: the connection is not reused
                discard()
        if cur is not None:
            try:
                cur.close()
            except Exception:  # the interrupted result's error, or a broken connection
                discard()
        if conn.open:
            try:
                conn.rollback()
                if restore:
                    with conn.cursor() as c2:
                        c2.execute("SET SESSION TRANSACTION READ WRITE")
            except Exception:
                discard()
                raise


class MySQLEngine(Engine):
    """MySQL/MariaDB: pooled (URL) or borrowed (PyMySQL connection)."""

    dialect = "mysql"

    def __init__(
        self, db: str | Any, *, pool_size: int, schemas: Sequence[str] | None = None
    ) -> None:
        self._pymysql = require("pymysql", extra="mysql")
        self._flavour: str | None = None
        self._schemas = list(schemas) if schemas is not None else None
        self._qualified: dict[str, tuple[str, str]] = {}
        self._pool: BoundedPool | SingleConnection
        if isinstance(db, str):
            self._args = connect_args(db)
            self._safe_url = redact_url(db)
            self._pool = BoundedPool(
                self._connect,
                max_size=pool_size,
                alive=lambda c: bool(c.open),
                name=self._safe_url,
            )
            self.pool_size = pool_size
            with self._pool.lease():  # fail now, not on the first question
                pass
        else:
            if int(getattr(db, "client_flag", 0)) & MULTI_STATEMENTS:
                raise ConfigError(
                    "a MySQL connection opened with CLIENT.MULTI_STATEMENTS runs "
                    "'COMMIT; ...' and cannot be kept read-only; connect without it"
                )
            self.owned = False
            self._pool = SingleConnection(db)
            self.pool_size = 1

    def _connect(self) -> Any:
        try:
            return self._pymysql.connect(**self._args)
        except self._pymysql.MySQLError as exc:
            raise BackendUnavailableError(f"cannot connect to {self._safe_url}: {exc}") from exc

    def quote(self, name: str) -> str:
        parts = self._qualified.get(name)
        if parts is not None:
            return ".".join("`" + p.replace("`", "``") + "`" for p in parts)
        return "`" + name.replace("`", "``") + "`"

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
            if self._flavour is None:
                self._flavour = flavour(lease.conn)
            return run_mysql(
                lease.conn,
                sql,
                params,
                max_rows=max_rows,
                limits=limits,
                cancel=cancel,
                mariadb=self._flavour == "mariadb",
                borrowed=not self.owned,
                discard=lease.discard,
            )

    def meta(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._pool.lease() as lease:
            conn = lease.conn
            try:
                with conn.cursor() as cur:
                    cur.execute(sql, list(params) or None)
                    return [tuple(r) for r in cur.fetchall()]
            finally:
                conn.rollback()

    def in_transaction(self) -> bool:
        # the server reports SERVER_STATUS_IN_TRANS (1) with every reply; PyMySQL keeps it
        return any(
            bool(int(getattr(c, "server_status", 0) or 0) & 1)
            for c in self._pool.connections()
            if c.open
        )

    def _schema_list(self) -> tuple[list[str], str]:
        default = str(self.meta("SELECT DATABASE()")[0][0] or "")
        if self._schemas is not None:
            return list(self._schemas), default
        return [default], default

    def introspect(
        self, want: set[str] | None, schemas: Sequence[str] | None
    ) -> tuple[list[TableSpec], list[ForeignKeySpec]]:
        names, default = self._schema_list()
        if schemas is not None:
            names = list(schemas)
        specs, fks, qualified = introspect_info_schema(
            self.meta, postgres=False, schemas=names, default=default, want=want
        )
        self._qualified.update(qualified)
        return specs, fks

    def indexed_columns(self) -> set[tuple[str, str]]:
        names, default = self._schema_list()
        ph = ", ".join(["%s"] * len(names))
        out: set[tuple[str, str]] = set()
        for s, t, c in self.meta(
            "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME FROM information_schema.STATISTICS "
            f"WHERE TABLE_SCHEMA IN ({ph}) AND SEQ_IN_INDEX = 1",
            names,
        ):
            out.add((display_name(str(s), str(t), default).lower(), str(c).lower()))
        return out

    def close(self) -> None:
        self._pool.close()
