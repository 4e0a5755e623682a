"""SQLite: read-only files, an authorizer, a progress handler with the deadline, and a
limit on the length of one value.

A URL opens the file with ``mode=ro`` (a pool of such connections, one per thread
at a time); a borrowed ``sqlite3.Connection`` gets ``PRAGMA query_only`` while avl
uses it, and its own settings back afterwards. While a statement runs:

- an authorizer refuses ``ATTACH`` (and so ``VACUUM INTO``), ``DETACH`` and
  ``PRAGMA``;
- a progress handler stops it at the deadline or when ``cancel`` is set (every
  10,000 virtual-machine steps);
- ``SQLITE_LIMIT_LENGTH`` caps one string or blob at ``max_value_bytes``, so a
  single function call that builds a huge value (``printf('%.*c', 1e9, 'x')``,
  ``zeroblob``, a doubling recursive CTE) fails at once with "string or blob too
  big" instead of allocating; ``Connection.setlimit`` on Python 3.11+, the
  ``sqlite3_limit`` C function through ctypes on 3.10;
- ``printf``/``format`` refuse a width or precision above that limit before
  formatting (SQLite's own ``printf`` may still loop once per requested
  character after the limit stopped it growing, for seconds, in one call); on
  connections avl opens only: Python cannot take the override off a borrowed one;
- the page cache and the sorter are held to ``memory_mb`` (temporary b-trees
  spill to a file).
"""

from __future__ import annotations

import sqlite3
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from avl._clock import Clock
from avl.assistant._db._engine import Engine, canonical
from avl.assistant._db._pool import BoundedPool, SingleConnection
from avl.assistant._db._types import (
    ColumnSpec,
    ForeignKeySpec,
    Limits,
    QueryResult,
    TableSpec,
    collect_rows,
)
from avl.errors import BackendUnavailableError, ConfigError

__all__ = ["SQLiteEngine", "run_sqlite", "set_length_limit"]

_DENIED = frozenset({sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH, sqlite3.SQLITE_PRAGMA})
_LIMIT_LENGTH = 0  # SQLITE_LIMIT_LENGTH


def _authorizer(
    action: int, arg1: str | None, arg2: str | None, db: str | None, trigger: str | None
) -> int:
    return sqlite3.SQLITE_DENY if action in _DENIED else sqlite3.SQLITE_OK


def _allow_all(
    action: int, arg1: str | None, arg2: str | None, db: str | None, trigger: str | None
) -> int:
    return sqlite3.SQLITE_OK


def _clear_authorizer(conn: sqlite3.Connection) -> None:
    """Take the authorizer off (Python 3.10 cannot pass ``None``: it installs an
    allow-everything one instead)."""
    if sys.version_info >= (3, 11):
        conn.set_authorizer(None)
    else:  # pragma: no cover - Python 3.10
        conn.set_authorizer(_allow_all)


def set_length_limit(conn: sqlite3.Connection, value: int) -> int:
    """Set ``SQLITE_LIMIT_LENGTH`` on ``conn``; return the previous value.

    Python 3.11+ has ``Connection.setlimit``; on 3.10 the C function
    ``sqlite3_limit`` is called through ctypes on the connection's ``sqlite3*``
    handle (CPython keeps it as the object's first field).

    Raises:
        ConfigError: neither way is available (not CPython, or the SQLite library
            does not export ``sqlite3_limit``).
    """
    setlimit = getattr(conn, "setlimit", None)
    if setlimit is not None:
        previous: int = setlimit(_LIMIT_LENGTH, int(value))
        return previous
    return _ctypes_limit(conn, _LIMIT_LENGTH, int(value))  # pragma: no cover - Python 3.10


_CTYPES: list[Any] = []  # the resolved sqlite3_limit, found once per process


def _ctypes_limit(conn: sqlite3.Connection, limit_id: int, value: int) -> int:
    import ctypes

    if sys.implementation.name != "cpython":
        raise ConfigError(
            "limiting SQLite value sizes needs Python 3.11+ or CPython 3.10 "
            f"(this is {sys.implementation.name})"
        )
    if not _CTYPES:
        import _sqlite3

        fn = None
        for lib in (_sqlite3.__file__, None, "libsqlite3.so.0", "libsqlite3.dylib", "sqlite3"):
            try:
                fn = ctypes.CDLL(lib).sqlite3_limit
                break
            except (OSError, AttributeError):
                continue
        if fn is None:
            raise ConfigError(
                "cannot find sqlite3_limit in the SQLite library; use Python 3.11+ "
                "(Connection.setlimit)"
            )
        fn.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
        fn.restype = ctypes.c_int
        _CTYPES.append(fn)
    handle = ctypes.c_void_p.from_address(id(conn) + object.__basicsize__).value
    if not handle:
        raise ConfigError("the SQLite connection is closed")
    previous: int = _CTYPES[0](handle, limit_id, value)
    return previous


_FLAGS = frozenset("-+ 0#!,")


def printf_widths(fmt: str, args: Sequence[Any]) -> list[int]:
    """The widths and precisions a SQLite ``printf`` format asks for (``*`` read from
    ``args``), so a huge one can be refused before the call."""
    out: list[int] = []
    i, n, arg = 0, len(fmt), 0
    while i < n:
        if fmt[i] != "%":
            i += 1
            continue
        i += 1
        if i < n and fmt[i] == "%":
            i += 1
            continue
        while i < n and fmt[i] in _FLAGS:
            i += 1
        for part in ("width", "precision"):
            if part == "precision":
                if i >= n or fmt[i] != ".":
                    break
                i += 1
            if i < n and fmt[i] == "*":
                value = args[arg] if arg < len(args) else 0
                arg += 1
                i += 1
                try:
                    out.append(abs(int(value)))
                except (TypeError, ValueError):
                    out.append(0)
            else:
                start = i
                while i < n and fmt[i].isdigit():
                    i += 1
                if i > start:
                    out.append(int(fmt[start:i]))
        if i < n:
            i += 1  # the conversion
            arg += 1
    return out


class _PrintfGuard:
    """``printf``/``format`` that refuse a width or precision above the value-length
    limit, then format with the built-in (on a private in-memory connection, where it
    is not overridden). SQLite's own ``printf`` can loop once per requested character
    after the length limit stops it from growing (seconds for ``%.*c`` of 1e9, in one
    function call that no progress handler or interrupt reaches)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._helper = sqlite3.connect(":memory:", check_same_thread=False)
        set_length_limit(self._helper, limit)

    def __call__(self, fmt: Any, *args: Any) -> Any:
        if fmt is None:
            return None
        text = str(fmt)
        if any(w > self.limit for w in printf_widths(text, args)):
            raise ValueError(f"printf width or precision above the {self.limit}-byte value limit")
        marks = ", ".join("?" for _ in range(len(args) + 1))
        return self._helper.execute(f"SELECT printf({marks})", (text, *args)).fetchone()[0]

    def install(self, conn: sqlite3.Connection) -> None:
        """Override ``printf``/``format`` on ``conn`` for good (Python's sqlite3 cannot
        remove a function again, so only connections avl opened get it)."""
        for name in ("printf", "format"):
            conn.create_function(name, -1, self, deterministic=True)


def _sqlite_path(url: str) -> Path:
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
    return p


def run_sqlite(
    conn: sqlite3.Connection,
    sql: str,
    params: Any,
    *,
    max_rows: int,
    limits: Limits,
    cancel: threading.Event | None,
    clock: Clock,
    borrowed: bool,
) -> QueryResult:
    """Run one statement read-only on ``conn`` under ``limits``.

    A ``borrowed`` connection gets ``PRAGMA query_only`` for the statement and its
    own value back afterwards.
    """
    deadline = clock.monotonic() + limits.timeout_s
    if cancel is None:
        conn.set_progress_handler(lambda: int(clock.monotonic() > deadline), 10_000)
    else:
        conn.set_progress_handler(
            lambda: int(cancel.is_set() or clock.monotonic() > deadline), 10_000
        )
    was_query_only = False
    if borrowed:
        was_query_only = bool(conn.execute("PRAGMA query_only").fetchone()[0])
        conn.execute("PRAGMA query_only = ON")
    previous = set_length_limit(conn, limits.max_value_bytes)
    # mode=ro guards the file; ATTACH and VACUUM INTO would write others, and a
    # PRAGMA could lift query_only
    conn.set_authorizer(_authorizer)
    cur = None
    try:
        cur = conn.execute(sql, params if params is not None else ())
        if not cur.description:
            return QueryResult(columns=(), rows=())
        cols = [d[0] for d in cur.description]
        return collect_rows(
            cols, cur.fetchmany, max_rows=max_rows, max_bytes=limits.max_result_bytes
        )
    finally:
        if cur is not None:
            cur.close()
        _clear_authorizer(conn)
        conn.set_progress_handler(None, 0)
        set_length_limit(conn, previous)
        # a refused write still opened the driver's implicit transaction: end it
        if conn.in_transaction:
            conn.rollback()
        if borrowed and not was_query_only:
            conn.execute("PRAGMA query_only = OFF")


class SQLiteEngine(Engine):
    """SQLite behind a pool of read-only connections, or one borrowed connection."""

    dialect = "sqlite"
    explain_prefix = "EXPLAIN QUERY PLAN "

    def __init__(
        self, db: str | sqlite3.Connection, *, clock: Clock, pool_size: int, limits: Limits
    ) -> None:
        self._clock = clock
        self._limits = limits
        self._pool: BoundedPool | SingleConnection
        if isinstance(db, sqlite3.Connection):
            self.owned = False
            self._pool = SingleConnection(db)
            self.pool_size = 1
            return
        path = _sqlite_path(db)
        self._uri = f"file:{path.resolve().as_posix()}?mode=ro"
        self._path = path
        self._pool = BoundedPool(self._open, max_size=pool_size, name=f"SQLite {str(path)!r}")
        self.pool_size = pool_size
        with self._pool.lease():  # fail now, not on the first question
            pass

    def _open(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self._uri, uri=True, check_same_thread=False)
            kib = max(1024, self._limits.memory_mb * 1024 // 4)
            conn.execute(f"PRAGMA cache_size = -{int(kib)}")
            _PrintfGuard(self._limits.max_value_bytes).install(conn)
            conn.execute("PRAGMA temp_store = FILE")
        except sqlite3.Error as exc:
            raise BackendUnavailableError(
                f"cannot open SQLite database {str(self._path)!r}: {exc}"
            ) from exc
        return conn

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
            return run_sqlite(
                lease.conn,
                sql,
                params,
                max_rows=max_rows,
                limits=limits,
                cancel=cancel,
                clock=self._clock,
                borrowed=not self.owned,
            )

    def meta(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._pool.lease() as lease:
            return [tuple(r) for r in lease.conn.execute(sql, params).fetchall()]

    def in_transaction(self) -> bool:
        return any(bool(c.in_transaction) for c in self._pool.connections())

    def introspect(
        self, want: set[str] | None, schemas: Sequence[str] | None
    ) -> tuple[list[TableSpec], list[ForeignKeySpec]]:
        names = [
            r[0]
            for r in self.meta(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
                "AND name NOT LIKE 'sqlite_%' ORDER BY rowid"
            )
        ]
        specs: list[TableSpec] = []
        fks: list[ForeignKeySpec] = []
        for name in names:
            if want is not None and name.lower() not in want:
                continue
            q = self.quote(name)
            cols = [
                ColumnSpec(name=r[1], type=str(r[2] or ""), primary_key=bool(r[5]))
                for r in self.meta(f"PRAGMA table_info({q})")
            ]
            count = self.meta(f"SELECT COUNT(*) FROM {q}")[0][0]
            specs.append(TableSpec(name=name, columns=cols, row_count=int(count)))
            groups: dict[int, list[tuple[Any, ...]]] = {}
            for r in self.meta(f"PRAGMA foreign_key_list({q})"):
                groups.setdefault(int(r[0]), []).append(r)
            for rows in groups.values():
                ref = str(rows[0][2])
                ref_cols = [str(r[4]) if r[4] is not None else "" for r in rows]
                if not all(ref_cols):
                    ref_cols = self._pk(ref) or ref_cols
                fks.append(
                    ForeignKeySpec(
                        table=name,
                        columns=[str(r[3]) for r in rows],
                        ref_table=canonical(ref, names),
                        ref_columns=ref_cols,
                    )
                )
        return specs, fks

    def _pk(self, table: str) -> list[str]:
        return [r[1] for r in self.meta(f"PRAGMA table_info({self.quote(table)})") if r[5]]

    def indexed_columns(self) -> set[tuple[str, str]]:
        out: set[tuple[str, str]] = set()
        for (t,) in self.meta("SELECT name FROM sqlite_master WHERE type = 'table'"):
            for idx in self.meta(f"PRAGMA index_list({self.quote(str(t))})"):
                cols = self.meta(f"PRAGMA index_info({self.quote(str(idx[1]))})")
                if cols:
                    out.add((str(t).lower(), str(cols[0][2]).lower()))
        return out

    def close(self) -> None:
        self._pool.close()
