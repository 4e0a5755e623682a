"""SQLite history backend (``sqlite:///path.db``): WAL, FTS5, one connection per thread.

Writers serialise the chain head with ``BEGIN IMMEDIATE``, so threads and processes
appending to the same file keep one chain. The FTS5 index (external content over the
entries table) is kept in sync by triggers inside the same transaction.

Paths follow the SQLAlchemy convention (``sqlite:///relative.db``,
``sqlite:////absolute.db``); a relative path whose directory does not exist while the
same path from ``/`` does is read as absolute.

URL options: ``?table=<prefix>`` (default ``avl_history``), ``?synchronous=normal|full``
(default ``normal``: with WAL, a committed entry survives a process crash; ``full``
also survives power loss), ``?busy_timeout_s=<seconds>`` (default 30).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from avl.errors import (
    BackendError,
    BackendUnavailableError,
    ConfigError,
    InvalidInputError,
    LockedError,
)
from avl.history._chain import (
    CONTENT_FIELDS,
    GENESIS,
    Sealer,
    check_chain,
    fts5_query,
    to_json,
)
from avl.history._entry import Entry, VerifyReport
from avl.history._types import Query
from avl.history.backends._common import (
    DEFAULT_PREFIX,
    check_prefix,
    entry_of_row,
    record_of_row,
    sealed_rows,
    url_options,
)

__all__ = ["SQLiteBackend", "schema_sql"]

_COLS = ", ".join(f'"{c}"' for c in CONTENT_FIELDS)
_SELECT = f"seq, {', '.join(f'e.{chr(34)}{c}{chr(34)}' for c in CONTENT_FIELDS)}, prev_hash, hash"


def schema_sql(p: str) -> list[str]:
    """The idempotent DDL for prefix ``p`` (also used by the benchmark's raw baseline)."""
    return [
        f"""CREATE TABLE IF NOT EXISTS {p}_entries (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL,
            time REAL NOT NULL,
            "user" TEXT NOT NULL,
            role TEXT NOT NULL,
            session TEXT NOT NULL,
            question TEXT NOT NULL,
            sql TEXT NOT NULL,
            allowed INTEGER,
            violations TEXT NOT NULL,
            outcome TEXT NOT NULL,
            error TEXT NOT NULL,
            row_count INTEGER,
            timings TEXT NOT NULL,
            model TEXT NOT NULL,
            tokens_in INTEGER NOT NULL,
            tokens_out INTEGER NOT NULL,
            cost_usd REAL,
            tags TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL)""",
        f"CREATE UNIQUE INDEX IF NOT EXISTS {p}_entries_id ON {p}_entries(id)",
        f'CREATE INDEX IF NOT EXISTS {p}_entries_user ON {p}_entries("user", seq)',
        f"CREATE INDEX IF NOT EXISTS {p}_entries_time ON {p}_entries(time)",
        f"""CREATE VIRTUAL TABLE IF NOT EXISTS {p}_fts USING fts5(
            question, sql, content='{p}_entries', content_rowid='seq')""",
        f"""CREATE TRIGGER IF NOT EXISTS {p}_fts_ai AFTER INSERT ON {p}_entries BEGIN
            INSERT INTO {p}_fts(rowid, question, sql) VALUES (new.seq, new.question, new.sql);
        END""",
        f"""CREATE TRIGGER IF NOT EXISTS {p}_fts_ad AFTER DELETE ON {p}_entries BEGIN
            INSERT INTO {p}_fts({p}_fts, rowid, question, sql)
                VALUES ('delete', old.seq, old.question, old.sql);
        END""",
        f"""CREATE TRIGGER IF NOT EXISTS {p}_fts_au AFTER UPDATE ON {p}_entries BEGIN
            INSERT INTO {p}_fts({p}_fts, rowid, question, sql)
                VALUES ('delete', old.seq, old.question, old.sql);
            INSERT INTO {p}_fts(rowid, question, sql) VALUES (new.seq, new.question, new.sql);
        END""",
        f"""CREATE TABLE IF NOT EXISTS {p}_meta (
            name TEXT PRIMARY KEY, seq INTEGER NOT NULL, hash TEXT NOT NULL,
            sig TEXT NOT NULL DEFAULT '')""",
        f"INSERT OR IGNORE INTO {p}_meta(name, seq, hash) VALUES ('head', 0, '{GENESIS}')",
    ]


@contextlib.contextmanager
def _translate(what: str) -> Iterator[None]:
    try:
        yield
    except sqlite3.IntegrityError as exc:
        if "UNIQUE" in str(exc) and ".id" in str(exc):
            raise InvalidInputError(f"{what}: an entry with this id already exists") from exc
        raise BackendError(f"{what}: {exc}") from exc
    except sqlite3.OperationalError as exc:
        msg = str(exc)
        if "locked" in msg or "busy" in msg:
            raise LockedError(f"{what}: the database stayed locked ({msg})") from exc
        if "unable to open" in msg or "disk I/O" in msg:
            raise BackendUnavailableError(f"{what}: {msg}") from exc
        raise BackendError(f"{what}: {msg}") from exc
    except sqlite3.Error as exc:
        raise BackendError(f"{what}: {exc}") from exc


def _row_params(record: dict[str, Any], seq: int, prev: str, digest: str) -> tuple[Any, ...]:
    values = []
    for field in CONTENT_FIELDS:
        v = record[field]
        if field in ("violations", "timings", "tags"):
            v = to_json(v)
        elif field == "allowed" and v is not None:
            v = int(v)
        values.append(v)
    return (seq, *values, prev, digest)


class SQLiteBackend:
    """History in a SQLite file.

    Args:
        url: ``sqlite:///relative.db`` or ``sqlite:////absolute.db`` plus options.
        table_prefix: overrides ``?table=``.

    Raises:
        ConfigError: no path, a bad option or prefix.
        BackendUnavailableError: the file cannot be opened.
    """

    def __init__(self, url: str, *, table_prefix: str | None = None) -> None:
        opts = url_options(url, ("table", "synchronous", "busy_timeout_s"))
        raw = unquote(urlsplit(url).path)
        path = raw[1:] if raw.startswith("/") else raw
        if not path:
            raise ConfigError("sqlite history URL needs a file path: sqlite:///history.db")
        self.path = Path(path)
        if not self.path.is_absolute() and not self.path.parent.is_dir():
            # "sqlite:///tmp/x/h.db" written for an absolute path: use it when only that exists.
            absolute = Path("/") / self.path
            if absolute.parent.is_dir():
                self.path = absolute
        self.prefix = check_prefix(table_prefix or opts.get("table", DEFAULT_PREFIX))
        sync = opts.get("synchronous", "normal").lower()
        if sync not in ("normal", "full"):
            raise ConfigError(f"synchronous must be 'normal' or 'full', got {sync!r}")
        self._sync = sync.upper()
        try:
            self._busy_ms = int(float(opts.get("busy_timeout_s", "30")) * 1000)
        except ValueError:
            raise ConfigError("busy_timeout_s must be a number") from None
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        # Threads of this process take turns to write (no busy-handler sleeps between
        # them); other processes are serialised by BEGIN IMMEDIATE and busy_timeout.
        self._write_lock = threading.Lock()
        self._closed = False
        conn = self._conn()
        with _translate("creating the history schema"):
            conn.execute("BEGIN IMMEDIATE")
            try:
                for stmt in schema_sql(self.prefix):
                    conn.execute(stmt)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        if self._closed:
            raise BackendError("the history backend is closed")
        with _translate(f"opening {self.path}"):
            try:
                conn = sqlite3.connect(
                    str(self.path), isolation_level=None, check_same_thread=False, timeout=0
                )
            except sqlite3.OperationalError as exc:
                raise BackendUnavailableError(f"cannot open {self.path}: {exc}") from exc
            conn.execute(f"PRAGMA busy_timeout={self._busy_ms}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self._sync}")
        self._local.conn = conn
        with self._all_lock:
            self._all.append(conn)
        return conn

    def append(self, items: Sequence[tuple[Entry, dict[str, Any]]], sealer: Sealer) -> list[Entry]:
        """Store ``entries`` at the head of the chain in one ``BEGIN IMMEDIATE`` transaction."""
        p = self.prefix
        conn = self._conn()
        with self._write_lock, _translate("recording history entries"):
            conn.execute("BEGIN IMMEDIATE")
            try:
                seq, prev = conn.execute(
                    f"SELECT seq, hash FROM {p}_meta WHERE name = 'head'"
                ).fetchone()
                out: list[Entry] = []
                rows = list(sealed_rows(items, sealer, seq, prev, _row_params, out))
                if out:
                    seq, prev = out[-1].seq, out[-1].hash
                conn.executemany(
                    f"INSERT INTO {p}_entries(seq, {_COLS}, prev_hash, hash) "
                    f"VALUES ({', '.join('?' * (len(CONTENT_FIELDS) + 3))})",
                    rows,
                )
                conn.execute(
                    f"UPDATE {p}_meta SET seq = ?, hash = ? WHERE name = 'head'", (seq, prev)
                )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return out

    def _entries(self, cur: sqlite3.Cursor) -> list[Entry]:
        out = []
        for row in cur:
            record = record_of_row(tuple(row[1:-2]), tags_are_json=True)
            out.append(entry_of_row(record, row[0], row[-2], row[-1]))
        return out

    def get(self, id: str) -> Entry | None:
        """The entry with ``id``, or ``None``."""
        with _translate("reading a history entry"):
            cur = self._conn().execute(
                f"SELECT {_SELECT} FROM {self.prefix}_entries e WHERE e.id = ?", (id,)
            )
            found = self._entries(cur)
        return found[0] if found else None

    def _where(self, q: Query) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if q.user is not None:
            clauses.append('e."user" = ?')
            params.append(q.user)
        if q.since is not None:
            clauses.append("e.time >= ?")
            params.append(q.since)
        if q.until is not None:
            clauses.append("e.time < ?")
            params.append(q.until)
        if q.outcomes:
            clauses.append(f"e.outcome IN ({', '.join('?' * len(q.outcomes))})")
            params.extend(q.outcomes)
        for tag in q.tags:
            clauses.append("EXISTS (SELECT 1 FROM json_each(e.tags) WHERE json_each.value = ?)")
            params.append(tag)
        if q.ids is not None:
            clauses.append(f"e.id IN ({', '.join('?' * len(q.ids))})" if q.ids else "0")
            params.extend(q.ids)
        if q.before_seq is not None:
            clauses.append("e.seq < ?")
            params.append(q.before_seq)
        return " AND ".join(clauses), params

    def search(self, query: Query) -> list[Entry]:
        """Entries matching ``query``, newest first."""
        p = self.prefix
        where, params = self._where(query)
        limit = "" if query.limit is None else f" LIMIT {int(query.limit)}"
        if query.tokens is not None:
            sql = (
                f"SELECT {_SELECT} FROM {p}_fts f JOIN {p}_entries e ON e.seq = f.rowid "
                f"WHERE {p}_fts MATCH ?{' AND ' + where if where else ''} "
                f"ORDER BY f.rowid DESC{limit}"
            )
            params = [fts5_query(query.tokens), *params]
        else:
            sql = (
                f"SELECT {_SELECT} FROM {p}_entries e"
                f"{' WHERE ' + where if where else ''} ORDER BY e.seq DESC{limit}"
            )
        with _translate("searching history"):
            return self._entries(self._conn().execute(sql, params))

    def scan(self, query: Query) -> Iterator[Entry]:
        """Every entry matching ``query``, oldest first (read in pages of 1000)."""
        after = 0
        p = self.prefix
        where, params = self._where(query)
        extra = f" AND {where}" if where else ""
        while True:
            with _translate("reading history"):
                page = self._entries(
                    self._conn().execute(
                        f"SELECT {_SELECT} FROM {p}_entries e WHERE e.seq > ?{extra} "
                        "ORDER BY e.seq LIMIT 1000",
                        [after, *params],
                    )
                )
            yield from page
            if len(page) < 1000:
                return
            after = int(page[-1].seq or 0)

    def verify(self, sealer: Sealer) -> VerifyReport:
        """Check the chain inside one read transaction (a consistent WAL snapshot)."""
        p = self.prefix
        conn = self._conn()
        with _translate("verifying history"):
            conn.execute("BEGIN")
            try:
                meta = {
                    r[0]: (r[1], r[2], r[3])
                    for r in conn.execute(f"SELECT name, seq, hash, sig FROM {p}_meta")
                }
                head = meta.get("head")
                checkpoint = meta.get("checkpoint")

                def rows() -> Iterator[tuple[int, dict[str, Any], str, str]]:
                    cur = conn.execute(f"SELECT {_SELECT} FROM {p}_entries e ORDER BY e.seq")
                    while True:
                        batch = cur.fetchmany(2000)
                        if not batch:
                            return
                        for row in batch:
                            rec = record_of_row(tuple(row[1:-2]), tags_are_json=True)
                            yield row[0], rec, row[-2], row[-1]

                def locate(h: str) -> int | None:
                    found = conn.execute(
                        f"SELECT seq FROM {p}_entries WHERE hash = ? LIMIT 1", (h,)
                    ).fetchone()
                    return None if found is None else int(found[0])

                return check_chain(
                    rows(),
                    sealer=sealer,
                    checkpoint=checkpoint,
                    head=None if head is None else (head[0], head[1]),
                    locate_hash=locate,
                )
            finally:
                conn.execute("COMMIT")

    def prune(self, before_time: float, sealer: Sealer) -> int:
        """Delete the oldest prefix of entries older than ``before_time``; store a checkpoint."""
        p = self.prefix
        conn = self._conn()
        with self._write_lock, _translate("pruning history"):
            conn.execute("BEGIN IMMEDIATE")
            try:
                first_kept = conn.execute(
                    f"SELECT min(seq) FROM {p}_entries WHERE time >= ?", (before_time,)
                ).fetchone()[0]
                if first_kept is None:
                    last = conn.execute(f"SELECT max(seq) FROM {p}_entries").fetchone()[0]
                else:
                    last = conn.execute(
                        f"SELECT max(seq) FROM {p}_entries WHERE seq < ?", (first_kept,)
                    ).fetchone()[0]
                if last is None:
                    conn.execute("COMMIT")
                    return 0
                digest = conn.execute(
                    f"SELECT hash FROM {p}_entries WHERE seq = ?", (last,)
                ).fetchone()[0]
                removed = conn.execute(f"DELETE FROM {p}_entries WHERE seq <= ?", (last,)).rowcount
                conn.execute(
                    f"INSERT INTO {p}_meta(name, seq, hash, sig) VALUES ('checkpoint', ?, ?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, "
                    "sig = excluded.sig",
                    (last, digest, sealer.sign_checkpoint(last, digest)),
                )
                conn.execute("COMMIT")
                return int(removed)
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        """Close every thread's connection."""
        self._closed = True
        with self._all_lock:
            conns, self._all = self._all, []
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()
