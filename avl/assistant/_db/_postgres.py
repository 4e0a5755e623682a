"""PostgreSQL through psycopg 3: a ``psycopg_pool`` pool for a URL, or one borrowed
connection behind a lock.

Each statement runs in its own ``READ ONLY`` transaction that is always rolled
back, with ``SET LOCAL`` settings that die with it:

- ``statement_timeout`` (the server stops the statement at the deadline);
- ``work_mem`` (a quarter of ``memory_mb``; sorts and hashes spill to disk
  beyond it), ``hash_mem_multiplier = 1``, and no parallel workers (each would
  get its own ``work_mem``);
- ``temp_file_limit`` where the role may set it (a superuser, or a role granted
  ``SET`` on it in PostgreSQL 15+).

The statement is sent with the extended protocol (``Cursor.stream``), so it is
exactly one statement (``COMMIT; ...`` is refused), and its rows are streamed: the
row and byte caps stop reading, and a cut result cancels the rest on the server.
PostgreSQL has no setting that bounds the memory of one expression
(``repeat(repeat('x', 100000), 10000)`` builds its 1 GB value before the row is
sent): that class is SafeQuery's to refuse (see the docs page "Databases").
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Sequence
from typing import Any

from avl._optional import require
from avl._registry import redact_url
from avl.assistant._db._engine import Engine, Watchdog
from avl.assistant._db._infoschema import display_name, introspect_info_schema
from avl.assistant._db._pool import Lease, SingleConnection
from avl.assistant._db._types import ForeignKeySpec, Limits, QueryResult, TableSpec, collect_rows
from avl.errors import BackendUnavailableError

__all__ = ["PostgresEngine", "may_set_temp_limit", "run_postgres"]


def may_set_temp_limit(conn: Any) -> bool:
    """Whether the connection's role may set ``temp_file_limit``."""
    with conn.cursor() as cur:
        if conn.info.server_version >= 150000:
            cur.execute("SELECT has_parameter_privilege('temp_file_limit', 'SET')")
        else:
            cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        row = cur.fetchone()
    return bool(row and row[0])


def run_postgres(
    conn: Any,
    sql: str,
    params: Any,
    *,
    max_rows: int,
    limits: Limits,
    cancel: threading.Event | None,
    temp_ok: bool,
) -> QueryResult:
    """Run one statement in a rolled-back ``READ ONLY`` transaction on a psycopg 3
    connection (idle on entry, idle on exit)."""
    if conn.info.transaction_status != 0:  # not idle: leave the user's work alone
        conn.rollback()
    ms = max(1, int(limits.timeout_s * 1000))
    work_kb = max(64, limits.memory_mb * 1024 // 4)
    try:
        with conn.cursor() as cur:
            # psycopg opens the transaction itself when autocommit is off
            cur.execute("BEGIN READ ONLY" if conn.autocommit else "SET TRANSACTION READ ONLY")
            # the transaction's settings in one round trip (they end with it)
            settings = [
                ("statement_timeout", f"{ms}"),
                ("work_mem", f"{int(work_kb)}kB"),
                ("hash_mem_multiplier", "1"),
                ("max_parallel_workers_per_gather", "0"),
            ]
            if temp_ok:
                settings.append(("temp_file_limit", f"{int(limits.temp_mb)}MB"))
            cur.execute(
                "SELECT " + ", ".join("set_config(%s, %s, true)" for _ in settings),
                [x for pair in settings for x in pair],
            )
            with Watchdog(conn.cancel_safe, timeout_s=None, cancel=cancel):
                # the extended protocol: exactly one statement
                rows = cur.stream(sql, params, size=256)
                try:
                    first = list(itertools.islice(rows, 1))
                    cols = [d[0] for d in (cur.description or ())]

                    def fetch(n: int) -> list[Any]:
                        got = first + list(itertools.islice(rows, n - len(first)))
                        first.clear()
                        return got

                    return collect_rows(
                        cols, fetch, max_rows=max_rows, max_bytes=limits.max_result_bytes
                    )
                finally:
                    rows.close()  # a cut result: psycopg cancels the rest
    finally:
        conn.rollback()


class _PsycopgPool:
    """``psycopg_pool.ConnectionPool`` behind the ``lease()`` interface."""

    def __init__(self, dsn: str, *, pool_size: int, configure: Any, safe_url: str) -> None:
        psycopg_pool = require("psycopg_pool", extra="postgres")
        self.max_size = pool_size
        self._conns: weakref.WeakSet[Any] = weakref.WeakSet()

        def _configure(conn: Any) -> None:
            self._conns.add(conn)
            configure(conn)

        psycopg = require("psycopg", extra="postgres")
        try:  # the server's own error, at once, rather than a pool timeout
            psycopg.connect(dsn, connect_timeout=10).close()
        except psycopg.Error as exc:
            raise BackendUnavailableError(f"cannot connect to {safe_url}: {exc}") from exc
        self._pool = psycopg_pool.ConnectionPool(
            dsn,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True, "connect_timeout": 10},
            configure=_configure,
            open=False,
            name="avl-db",
        )
        try:
            self._pool.open(wait=True, timeout=15.0)
        except psycopg_pool.PoolTimeout as exc:
            self._pool.close()
            raise BackendUnavailableError(f"cannot connect to {safe_url}: {exc}") from exc
        self._timeout = psycopg_pool.PoolTimeout

    def lease(self) -> Any:
        import contextlib

        @contextlib.contextmanager
        def _lease() -> Any:
            try:
                cm = self._pool.connection(timeout=30.0)
                conn = cm.__enter__()
            except self._timeout as exc:
                raise BackendUnavailableError(
                    f"no free PostgreSQL connection within 30 s (pool_size={self.max_size})"
                ) from exc
            lease = Lease(conn)
            try:
                yield lease
            finally:
                if lease.discarded:
                    conn.close()
                cm.__exit__(None, None, None)

        return _lease()

    def connections(self) -> list[Any]:
        return [c for c in list(self._conns) if not c.closed]

    def close(self) -> None:
        self._pool.close()


class PostgresEngine(Engine):
    """PostgreSQL: pooled (URL) or borrowed (psycopg connection)."""

    dialect = "postgres"

    def __init__(
        self, db: str | Any, *, pool_size: int, schemas: Sequence[str] | None = None
    ) -> None:
        self._psycopg = require("psycopg", extra="postgres")
        self._temp_ok: bool | None = None
        self._schemas = list(schemas) if schemas is not None else None
        self._qualified: dict[str, tuple[str, str]] = {}
        self._pool: _PsycopgPool | SingleConnection
        if isinstance(db, str):
            dsn = db.replace("postgresql+psycopg://", "postgresql://", 1).replace(
                "postgres://", "postgresql://", 1
            )
            self._pool = _PsycopgPool(
                dsn, pool_size=pool_size, configure=self._configure, safe_url=redact_url(db)
            )
            self.pool_size = pool_size
        else:
            self.owned = False
            self._pool = SingleConnection(db)
            self.pool_size = 1

    def _configure(self, conn: Any) -> None:
        """A new pooled connection: learn once whether the role may set temp_file_limit."""
        if self._temp_ok is None:
            self._temp_ok = may_set_temp_limit(conn)
            conn.rollback()

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
            conn = lease.conn
            if conn.info.transaction_status != 0:  # not idle: leave the user's work alone
                conn.rollback()
            if self._temp_ok is None:
                self._temp_ok = may_set_temp_limit(conn)
                conn.rollback()
            return run_postgres(
                conn,
                sql,
                params,
                max_rows=max_rows,
                limits=limits,
                cancel=cancel,
                temp_ok=self._temp_ok,
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
        return any(c.info.transaction_status != 0 for c in self._pool.connections())

    def _schema_list(self) -> tuple[list[str], str]:
        default = str(self.meta("SELECT current_schema()")[0][0] or "public")
        if self._schemas is not None:
            return list(self._schemas), default
        got = self.meta("SELECT unnest(current_schemas(false))")
        return [str(r[0]) for r in got], default

    def introspect(
        self, want: set[str] | None, schemas: Sequence[str] | None
    ) -> tuple[list[TableSpec], list[ForeignKeySpec]]:
        names, default = self._schema_list()
        if schemas is not None:
            names = list(schemas)
        specs, fks, qualified = introspect_info_schema(
            self.meta, postgres=True, schemas=names, default=default, want=want
        )
        self._qualified.update(qualified)
        return specs, fks

    def quote(self, name: str) -> str:
        parts = self._qualified.get(name)
        if parts is not None:
            return ".".join(super(PostgresEngine, self).quote(p) for p in parts)
        return super().quote(name)

    def indexed_columns(self) -> set[tuple[str, str]]:
        names, default = self._schema_list()
        ph = ", ".join(["%s"] * len(names))
        out: set[tuple[str, str]] = set()
        for s, t, c in self.meta(
            "SELECT n.nspname, t.relname, a.attname FROM pg_index i JOIN pg_class t ON t.oid = "
            "i.indrelid JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = "
            "i.indkey[0] JOIN pg_namespace n ON n.oid = t.relnamespace WHERE "
            f"n.nspname IN ({ph})",
            names,
        ):
            out.add((display_name(str(s), str(t), default).lower(), str(c).lower()))
        return out

    def close(self) -> None:
        self._pool.close()
