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

Text is stored through :func:`~avl.history._chain.escape_text` (a NUL, a lone
surrogate and the escape character itself become an escape sequence), so whatever a
caller typed is recorded and read back exactly. A damaged file (``file is not a
database``, ``database disk image is malformed``, undecodable text) raises
:class:`~avl.errors.CorruptionError` naming the file.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from avl._args import describe
from avl.errors import (
    BackendError,
    BackendUnavailableError,
    ConfigError,
    CorruptionError,
    InvalidInputError,
    LockedError,
    NotFoundError,
)
from avl.history._chain import (
    CONTENT_FIELDS,
    GENESIS,
    Sealer,
    check_chain,
    escape_text,
    fts5_query,
    to_json,
)
from avl.history._entry import Entry, VerifyReport
from avl.history._types import Query
from avl.history.backends._common import (
    DEFAULT_PREFIX,
    TEXT_FIELDS,
    check_prefix,
    entry_of_row,
    record_of_row,
    sealed_rows,
    stored_json,
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
def _translate(what: str, path: Path | str = "") -> Iterator[None]:
    where = f" ({path})" if path else ""
    try:
        yield
    except sqlite3.IntegrityError as exc:
        if "UNIQUE" in str(exc) and ".id" in str(exc):
            raise InvalidInputError(f"{what}: an entry with this id already exists") from exc
        raise BackendError(f"{what}{where}: {exc}") from exc
    except sqlite3.OperationalError as exc:
        msg = str(exc)
        if "locked" in msg or "busy" in msg:
            raise LockedError(f"{what}{where}: the database stayed locked ({msg})") from exc
        if "unable to open" in msg or "disk I/O" in msg or "readonly" in msg:
            raise BackendUnavailableError(f"{what}{where}: {msg}") from exc
        if (
            "decode" in msg
            or "malformed" in msg
            or "no such column" in msg
            or "no such table" in msg
        ):
            raise CorruptionError(
                f"{what}: the history database {path} is damaged: {msg}", path=str(path)
            ) from exc
        raise BackendError(f"{what}{where}: {msg}") from exc
    except sqlite3.DatabaseError as exc:
        # SQLITE_CORRUPT / SQLITE_NOTADB: "database disk image is malformed",
        # "file is not a database".
        if type(exc) is sqlite3.DatabaseError:
            raise CorruptionError(
                f"{what}: the history database {path} is damaged: {exc}", path=str(path)
            ) from exc
        raise BackendError(f"{what}{where}: {exc}") from exc
    except sqlite3.Error as exc:
        raise BackendError(f"{what}{where}: {exc}") from exc
    except UnicodeDecodeError as exc:
        # text (or an error message) read back from the file is not UTF-8
        raise CorruptionError(
            f"{what}: the history database {path} is damaged: {exc}", path=str(path)
        ) from exc


def _lenient_text(raw: bytes) -> str:
    """Text whose bytes are not UTF-8 (a tampered file) becomes lone surrogates, which
    no stored hash covers: verification then reports the row instead of crashing."""
    return raw.decode("utf-8", "surrogateescape")


_TEXT = frozenset(TEXT_FIELDS)
_JSON = frozenset(("violations", "timings", "tags"))


def _row_params(record: dict[str, Any], seq: int, prev: str, digest: str) -> tuple[Any, ...]:
    values = []
    for field in CONTENT_FIELDS:
        v = record[field]
        if field in _TEXT:
            v = escape_text(v)
        elif field in _JSON:
            v = stored_json(v)
        elif field == "allowed" and v is not None:
            v = int(v)
        values.append(v)
    return (seq, *values, prev, digest)


class SQLiteBackend:
    """History in a SQLite file.

    Args:
        url: ``sqlite:///relative.db`` or ``sqlite:////absolute.db`` plus options.
        table_prefix: overrides ``?table=``.
        create: create the file and the tables when missing (default). With
            ``False`` nothing is created or converted (not even the journal mode): a
            missing file or missing tables raise :class:`~avl.errors.NotFoundError`,
            so reading history never writes into a user's database.

    Raises:
        ConfigError: no path, a bad option or prefix.
        NotFoundError: ``create=False`` and no history there.
        BackendUnavailableError: the file cannot be opened.
        CorruptionError: the file is not a SQLite database, or is damaged.
    """

    def __init__(self, url: str, *, table_prefix: str | None = None, create: bool = True) -> None:
        opts = url_options(url, ("table", "synchronous", "busy_timeout_s"))
        raw = unquote(urlsplit(url).path)
        path = raw[1:] if raw.startswith("/") else raw
        if not path:
            raise ConfigError("sqlite history URL needs a file path: sqlite:///history.db")
        if "\x00" in path:
            raise ConfigError("sqlite history path must not contain NUL")
        self.path = Path(path)
        if not self.path.is_absolute() and not self.path.parent.is_dir():
            # "sqlite:///tmp/x/h.db" written for an absolute path: use it when only that exists.
            absolute = Path("/") / self.path
            if absolute.parent.is_dir():
                self.path = absolute
        self.prefix = check_prefix(table_prefix or opts.get("table", DEFAULT_PREFIX))
        sync = opts.get("synchronous", "normal").lower()
        if sync not in ("normal", "full"):
            raise ConfigError(f"synchronous must be 'normal' or 'full', got {describe(sync)}")
        self._sync = sync.upper()
        try:
            busy_s = float(opts.get("busy_timeout_s", "30"))
        except ValueError:
            raise ConfigError("busy_timeout_s must be a number") from None
        if not 0 <= busy_s <= 86_400:
            raise ConfigError(f"busy_timeout_s must be within 0..86400, got {describe(busy_s)}")
        self._busy_ms = int(busy_s * 1000)
        self._create = bool(create)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        # Threads of this process take turns to write (no busy-handler sleeps between
        # them); other processes are serialised by BEGIN IMMEDIATE and busy_timeout.
        self._write_lock = threading.Lock()
        self._closed = False
        if not self._create and not self.path.is_file():
            raise NotFoundError(f"no history database at {self.path}")
        conn = self._conn()
        if self._create:
            with _translate("creating the history schema", self.path):
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for stmt in schema_sql(self.prefix):
                        conn.execute(stmt)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
        else:
            p = self.prefix
            with _translate("opening the history", self.path):
                names = {
                    r[0]
                    for r in conn.execute(
                        "SELECT name FROM sqlite_master WHERE name IN (?, ?)",
                        (f"{p}_entries", f"{p}_meta"),
                    )
                }
            if len(names) != 2:
                self.close()
                raise NotFoundError(f"no history tables with prefix {describe(p)} in {self.path}")

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        if self._closed:
            raise BackendError("the history backend is closed")
        with _translate("opening the history", self.path):
            try:
                if self._create:
                    conn = sqlite3.connect(
                        str(self.path), isolation_level=None, check_same_thread=False, timeout=0
                    )
                else:
                    # mode=rw: never create the file; no journal-mode change below.
                    conn = sqlite3.connect(
                        f"file:{quote(str(self.path.absolute()))}?mode=rw",
                        uri=True,
                        isolation_level=None,
                        check_same_thread=False,
                        timeout=0,
                    )
            except sqlite3.OperationalError as exc:
                raise BackendUnavailableError(f"cannot open {self.path}: {exc}") from exc
            try:
                conn.execute(f"PRAGMA busy_timeout={self._busy_ms}")
                if self._create:
                    conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(f"PRAGMA synchronous={self._sync}")
            except BaseException:
                conn.close()
                raise
        self._local.conn = conn
        with self._all_lock:
            self._all.append(conn)
        return conn

    def append(self, items: Sequence[tuple[Entry, dict[str, Any]]], sealer: Sealer) -> list[Entry]:
        """Store ``entries`` at the head of the chain in one ``BEGIN IMMEDIATE`` transaction."""
        p = self.prefix
        conn = self._conn()
        with self._write_lock, _translate("recording history entries", self.path):
            conn.execute("BEGIN IMMEDIATE")
            try:
                seq, prev = conn.execute(
                    f"SELECT seq, hash FROM {p}_meta WHERE name = 'head'"
                ).fetchone()
                if type(seq) is not int or type(prev) is not str:
                    raise CorruptionError(
                        f"the history head row in {self.path} is damaged ({describe(seq)}, {describe(prev)}): "
                        "verify() names the problem",
                        path=str(self.path),
                    )
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
                    f"UPDATE {p}_meta SET seq = ?, hash = ?, sig = ? WHERE name = 'head'",
                    (seq, prev, sealer.sign_head(seq, prev)),
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
            out.append(entry_of_row(record, row[0], row[-2], row[-1], str(self.path)))
        return out

    def get(self, id: str) -> Entry | None:
        """The entry with ``id``, or ``None``."""
        with _translate("reading a history entry", self.path):
            cur = self._conn().execute(
                f"SELECT {_SELECT} FROM {self.prefix}_entries e WHERE e.id = ?",
                (escape_text(id),),
            )
            found = self._entries(cur)
        return found[0] if found else None

    def _where(self, q: Query) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if q.user is not None:
            clauses.append('e."user" = ?')
            params.append(escape_text(q.user))
        if q.session is not None:
            clauses.append("e.session = ?")
            params.append(escape_text(q.session))
        if q.role is not None:
            clauses.append("e.role = ?")
            params.append(escape_text(q.role))
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
            # The tags column is a compact JSON list of strings (escaped like all text):
            # the element, quoted, between separators. A quote inside a string is
            # always escaped in JSON, so this never matches part of another tag.
            clauses.append("instr(',' || substr(e.tags, 2, length(e.tags) - 2) || ',', ?) > 0")
            params.append(_json_tag(tag))
        if q.ids is not None:
            clauses.append(f"e.id IN ({', '.join('?' * len(q.ids))})" if q.ids else "0")
            params.extend(escape_text(i) for i in q.ids)
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
        with _translate("searching history", self.path):
            return self._entries(self._conn().execute(sql, params))

    def scan(self, query: Query) -> Iterator[Entry]:
        """Every entry matching ``query``, oldest first (read in pages of 1000)."""
        after = 0
        p = self.prefix
        where, params = self._where(query)
        extra = f" AND {where}" if where else ""
        while True:
            with _translate("reading history", self.path):
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

    def head(self) -> tuple[int, str]:
        """The chain head ``(seq, hash)`` as the head row records it.

        Raises:
            CorruptionError: the head row is missing or holds values of the wrong type.
        """
        with _translate("reading the history head", self.path):
            row = (
                self._conn()
                .execute(f"SELECT seq, hash FROM {self.prefix}_meta WHERE name = 'head'")
                .fetchone()
            )
        if row is None or type(row[0]) is not int or type(row[1]) is not str:
            raise CorruptionError(
                f"the history head row in {self.path} is missing or damaged: {describe(row)}",
                path=str(self.path),
            )
        return int(row[0]), str(row[1])

    def ping(self) -> None:
        """Read the head row: raises when the file cannot be read.

        Raises:
            BackendUnavailableError: the file cannot be opened or read.
            LockedError: the database stayed locked.
            CorruptionError: the file is damaged.
        """
        with _translate("pinging the history", self.path):
            self._conn().execute(f"SELECT seq FROM {self.prefix}_meta WHERE name = 'head'")

    def verify(self, sealer: Sealer, anchor: tuple[int, str] | None = None) -> VerifyReport:
        """Check the chain inside one read transaction (a consistent WAL snapshot)."""
        p = self.prefix
        conn = self._conn()
        with _translate("verifying history", self.path):
            conn.execute("BEGIN")
            conn.text_factory = _lenient_text
            try:
                meta = {
                    r[0]: (r[1], r[2], r[3])
                    for r in conn.execute(f"SELECT name, seq, hash, sig FROM {p}_meta")
                }

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
                        f"SELECT seq FROM {p}_entries WHERE hash = ? LIMIT 1",
                        (escape_text(h),),
                    ).fetchone()
                    return None if found is None or type(found[0]) is not int else found[0]

                return check_chain(
                    rows(),
                    sealer=sealer,
                    checkpoint=meta.get("checkpoint"),
                    head=meta.get("head"),
                    locate_hash=locate,
                    anchor=anchor,
                )
            finally:
                conn.text_factory = str
                conn.execute("COMMIT")

    def prune(self, before_time: float, sealer: Sealer) -> int:
        """Delete the oldest prefix of entries older than ``before_time``; store a checkpoint."""
        p = self.prefix
        conn = self._conn()
        with self._write_lock, _translate("pruning history", self.path):
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
                if type(digest) is not str:
                    raise CorruptionError(
                        f"history entry seq {last} in {self.path} has a damaged hash; "
                        "nothing was pruned",
                        path=str(self.path),
                    )
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


def _json_tag(tag: str) -> str:
    """``,"tag",`` exactly as the tag is written inside the stored tags column."""
    return "," + escape_text(to_json([tag])[1:-1]) + ","
