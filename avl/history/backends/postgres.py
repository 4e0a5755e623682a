"""PostgreSQL history backend (``postgresql://...``, psycopg 3).

Full text uses a generated ``tsvector`` column (``simple`` configuration, over the
question and the SQL) with a GIN index. Writers lock the head row of the meta table
(``SELECT ... FOR UPDATE``) in the same transaction as the insert, so any number of
processes appending at once keep one chain. Threads share a ``psycopg_pool`` pool
of connections (each call checks one out for its duration).

URL options: ``?table=<prefix>`` (default ``avl_history``), ``?pool_size=<n>`` (the
most connections, default 4); other query parameters are passed to libpq.

Text is stored through :func:`~avl.history._chain.escape_text` (PostgreSQL refuses
NUL in text; UTF-8 cannot carry a lone surrogate), so whatever a caller typed is
recorded and read back exactly.
"""

from __future__ import annotations

import contextlib
import threading
import zlib
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from avl._args import describe
from avl._optional import require
from avl._registry import redact_url
from avl.errors import (
    BackendError,
    BackendUnavailableError,
    ConfigError,
    CorruptionError,
    InvalidInputError,
    NotFoundError,
)
from avl.history._chain import CONTENT_FIELDS, GENESIS, Sealer, check_chain, escape_text
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
)

__all__ = ["PostgresBackend", "schema_sql"]

_COLS = ", ".join(f'"{c}"' for c in CONTENT_FIELDS)
_SELECT = f"seq, {', '.join(f'e.{chr(34)}{c}{chr(34)}' for c in CONTENT_FIELDS)}, prev_hash, hash"


def schema_sql(p: str) -> list[str]:
    """The idempotent DDL for prefix ``p`` (also used by the benchmark's raw baseline)."""
    return [
        f"""CREATE TABLE IF NOT EXISTS {p}_entries (
            seq BIGINT PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            time DOUBLE PRECISION NOT NULL,
            "user" TEXT NOT NULL,
            role TEXT NOT NULL,
            session TEXT NOT NULL,
            question TEXT NOT NULL,
            sql TEXT NOT NULL,
            allowed BOOLEAN,
            violations TEXT NOT NULL,
            outcome TEXT NOT NULL,
            error TEXT NOT NULL,
            row_count BIGINT,
            timings TEXT NOT NULL,
            model TEXT NOT NULL,
            tokens_in BIGINT NOT NULL,
            tokens_out BIGINT NOT NULL,
            cost_usd DOUBLE PRECISION,
            tags TEXT[] NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL,
            tsv TSVECTOR GENERATED ALWAYS AS
                (to_tsvector('simple', question || ' ' || sql)) STORED)""",
        f'CREATE INDEX IF NOT EXISTS {p}_entries_user ON {p}_entries("user", seq)',
        f"CREATE INDEX IF NOT EXISTS {p}_entries_time ON {p}_entries(time)",
        f"CREATE INDEX IF NOT EXISTS {p}_entries_tsv ON {p}_entries USING GIN (tsv)",
        f"""CREATE TABLE IF NOT EXISTS {p}_meta (
            name TEXT PRIMARY KEY, seq BIGINT NOT NULL, hash TEXT NOT NULL,
            sig TEXT NOT NULL DEFAULT '')""",
        f"INSERT INTO {p}_meta(name, seq, hash) VALUES ('head', 0, '{GENESIS}') "
        "ON CONFLICT (name) DO NOTHING",
    ]


_TEXT = frozenset(TEXT_FIELDS)


def _pool_size(value: str) -> int:
    try:
        size = int(value)
    except ValueError:
        size = 0
    if size < 1:
        raise ConfigError(f"history URL: pool_size must be a positive integer, got {value!r}")
    return size


def _row_params(record: dict[str, Any], seq: int, prev: str, digest: str) -> tuple[Any, ...]:
    values = []
    for field in CONTENT_FIELDS:
        v = record[field]
        if field in _TEXT:
            v = escape_text(v)
        elif field in ("violations", "timings"):
            v = stored_json(v)
        elif field == "tags":
            v = [escape_text(t) for t in v]
        values.append(v)
    return (seq, *values, prev, digest)


class PostgresBackend:
    """History in PostgreSQL tables ``<prefix>_entries`` and ``<prefix>_meta``.

    Args:
        url: a libpq URL, plus ``?table=<prefix>``.
        table_prefix: overrides ``?table=``.
        create: create the tables when missing (default); with ``False`` nothing is
            created and missing tables raise :class:`~avl.errors.NotFoundError`.

    Raises:
        ConfigError: a bad prefix.
        NotFoundError: ``create=False`` and no history tables.
        MissingDependencyError: psycopg is not installed (``avl[postgres]``).
        BackendUnavailableError: the server cannot be reached.
    """

    def __init__(self, url: str, *, table_prefix: str | None = None, create: bool = True) -> None:
        self._psycopg = require("psycopg", extra="postgres")
        parts = urlsplit(url)
        params = parse_qsl(parts.query, keep_blank_values=True)
        opts = dict(params)
        self.prefix = check_prefix(table_prefix or opts.get("table", DEFAULT_PREFIX))
        self.pool_size = _pool_size(opts.get("pool_size", "4"))
        rest = [(k, v) for k, v in params if k not in ("table", "pool_size")]
        self._dsn = urlunsplit(
            ("postgresql", parts.netloc, parts.path, urlencode(rest, quote_via=quote), "")
        )
        self._safe_url = redact_url(url)
        self._lock = threading.RLock()
        self._closed = False
        self._local = threading.local()  # the connection a thread holds inside _translate
        self._append_lock = threading.Lock()
        try:  # the server's own error at once, rather than a pool timeout
            self._psycopg.connect(self._dsn, autocommit=True, connect_timeout=10).close()
        except self._psycopg.Error as exc:
            raise BackendUnavailableError(
                f"cannot connect to PostgreSQL at {self._safe_url}: {exc}"
            ) from exc
        psycopg_pool = require("psycopg_pool", extra="postgres")
        self._pool = psycopg_pool.ConnectionPool(
            self._dsn,
            min_size=1,
            max_size=self.pool_size,
            kwargs={"autocommit": True, "connect_timeout": 10},
            open=False,
            name="avl-history",
        )
        # the first connection before any call: a call that had to wait would make
        # the pool grow at once
        try:
            self._pool.open(wait=True, timeout=15.0)
        except psycopg_pool.PoolTimeout as exc:
            self._pool.close()
            raise BackendUnavailableError(
                f"cannot connect to PostgreSQL at {self._safe_url}: {exc}"
            ) from exc
        if not create:
            p = self.prefix
            with self._translate("opening the history"):
                row = self._conn.execute(
                    "SELECT to_regclass(%s) IS NOT NULL AND to_regclass(%s) IS NOT NULL",
                    (f"{p}_entries", f"{p}_meta"),
                ).fetchone()
            if not row or not row[0]:
                self.close()
                raise NotFoundError(
                    f"no history tables with prefix {describe(p)} at {self._safe_url}"
                )
            return
        lock_id = zlib.crc32(f"avl.history:{self.prefix}".encode())
        with self._translate("creating the history schema"), self._conn.transaction():
            self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_id,))
            for stmt in schema_sql(self.prefix):
                self._conn.execute(stmt)

    @property
    def _conn(self) -> Any:
        """The connection this thread checked out in :meth:`_translate`."""
        return self._local.conn

    @contextlib.contextmanager
    def _checkout(self, timeout_s: float = 30.0) -> Iterator[None]:
        if getattr(self._local, "conn", None) is not None:  # nested: keep the one held
            yield
            return
        if self._closed:
            raise BackendError("the history backend is closed")
        # a broken connection is discarded when it is returned: the next call gets a
        # fresh one
        with self._pool.connection(timeout=timeout_s) as conn:
            self._local.conn = conn
            try:
                yield
            finally:
                self._local.conn = None

    @contextlib.contextmanager
    def _translate(self, what: str, timeout_s: float = 30.0) -> Iterator[None]:
        pg = self._psycopg
        pool_timeout = require("psycopg_pool", extra="postgres").PoolTimeout
        try:
            with self._checkout(timeout_s):
                yield
        except pool_timeout as exc:
            raise BackendUnavailableError(
                f"{what}: no PostgreSQL connection within {timeout_s:g} s "
                f"(pool_size={self.pool_size})"
            ) from exc
        except pg.errors.UniqueViolation as exc:
            raise InvalidInputError(f"{what}: an entry with this id already exists") from exc
        except pg.OperationalError as exc:
            raise BackendUnavailableError(f"{what} ({self._safe_url}): {exc}") from exc
        except pg.Error as exc:
            raise BackendError(f"{what}: {exc}") from exc

    def append(self, items: Sequence[tuple[Entry, dict[str, Any]]], sealer: Sealer) -> list[Entry]:
        """Store ``entries`` at the head of the chain (head row locked ``FOR UPDATE``).

        A process's threads append one at a time (they would only queue on the head
        row's lock on the server); reads run beside them on the pool.
        """
        p = self.prefix
        with (
            self._append_lock,
            self._translate("recording history entries"),
            self._conn.transaction(),
        ):
            cur = self._conn.cursor()
            seq, prev = cur.execute(
                f"SELECT seq, hash FROM {p}_meta WHERE name = 'head' FOR UPDATE"
            ).fetchone()
            out: list[Entry] = []
            rows = sealed_rows(items, sealer, seq, prev, _row_params, out)
            if type(seq) is not int or type(prev) is not str:
                raise CorruptionError(
                    f"the history head row ({p}_meta) is damaged ({describe(seq)}, {describe(prev)}): "
                    "verify() names the problem"
                )
            head_sql = f"UPDATE {p}_meta SET seq = %s, hash = %s, sig = %s WHERE name = 'head'"
            if len(items) >= 64:
                # rows are sealed while COPY streams: the server works on the rows
                # already sent while the next ones are hashed
                with cur.copy(
                    f"COPY {p}_entries(seq, {_COLS}, prev_hash, hash) FROM STDIN"
                ) as copy:
                    for row in rows:
                        copy.write_row(row)
                if out:
                    seq, prev = out[-1].seq, out[-1].hash
                cur.execute(head_sql, (seq, prev, sealer.sign_head(seq, prev)))
            else:
                params = list(rows)
                if out:
                    seq, prev = out[-1].seq, out[-1].hash
                # One round trip for the inserts and the head (the row lock is held
                # for as short a time as possible).
                with self._conn.pipeline():
                    cur.executemany(
                        f"INSERT INTO {p}_entries(seq, {_COLS}, prev_hash, hash) "
                        f"VALUES ({', '.join(['%s'] * (len(CONTENT_FIELDS) + 3))})",
                        params,
                    )
                    cur.execute(head_sql, (seq, prev, sealer.sign_head(seq, prev)))
        return out

    def _entries(self, rows: Sequence[Sequence[Any]]) -> list[Entry]:
        out = []
        for row in rows:
            record = record_of_row(tuple(row[1:-2]), tags_are_json=False)
            out.append(entry_of_row(record, row[0], row[-2], row[-1], f"{self.prefix}_entries"))
        return out

    def get(self, id: str) -> Entry | None:
        """The entry with ``id``, or ``None``."""
        with self._translate("reading a history entry"):
            rows = self._conn.execute(
                f"SELECT {_SELECT} FROM {self.prefix}_entries e WHERE e.id = %s",
                (escape_text(id),),
            ).fetchall()
        found = self._entries(rows)
        return found[0] if found else None

    def _where(self, q: Query) -> tuple[list[str], list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if q.tokens is not None:
            clauses.append("e.tsv @@ plainto_tsquery('simple', %s)")
            params.append(" ".join(q.tokens))
        if q.user is not None:
            clauses.append('e."user" = %s')
            params.append(escape_text(q.user))
        if q.session is not None:
            clauses.append("e.session = %s")
            params.append(escape_text(q.session))
        if q.role is not None:
            clauses.append("e.role = %s")
            params.append(escape_text(q.role))
        if q.since is not None:
            clauses.append("e.time >= %s")
            params.append(q.since)
        if q.until is not None:
            clauses.append("e.time < %s")
            params.append(q.until)
        if q.outcomes:
            clauses.append("e.outcome = ANY(%s)")
            params.append(list(q.outcomes))
        if q.tags:
            clauses.append("e.tags @> %s::text[]")
            params.append([escape_text(t) for t in q.tags])
        if q.ids is not None:
            clauses.append("e.id = ANY(%s)")
            params.append([escape_text(i) for i in q.ids])
        if q.before_seq is not None:
            clauses.append("e.seq < %s")
            params.append(q.before_seq)
        return clauses, params

    def search(self, query: Query) -> list[Entry]:
        """Entries matching ``query``, newest first."""
        clauses, params = self._where(query)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        limit = "" if query.limit is None else f" LIMIT {int(query.limit)}"
        sql = f"SELECT {_SELECT} FROM {self.prefix}_entries e{where} ORDER BY e.seq DESC{limit}"
        with self._translate("searching history"):
            rows = self._conn.execute(sql, params).fetchall()
        return self._entries(rows)

    def scan(self, query: Query) -> Iterator[Entry]:
        """Every entry matching ``query``, oldest first (read in pages of 1000)."""
        after = 0
        clauses, params = self._where(query)
        extra = "".join(f" AND {c}" for c in clauses)
        while True:
            with self._translate("reading history"):
                rows = self._conn.execute(
                    f"SELECT {_SELECT} FROM {self.prefix}_entries e WHERE e.seq > %s{extra} "
                    "ORDER BY e.seq LIMIT 1000",
                    [after, *params],
                ).fetchall()
            page = self._entries(rows)
            yield from page
            if len(page) < 1000:
                return
            after = int(page[-1].seq or 0)

    def head(self) -> tuple[int, str]:
        """The chain head ``(seq, hash)`` as the head row records it.

        Raises:
            CorruptionError: the head row is missing or damaged.
        """
        with self._translate("reading the history head"):
            row = self._conn.execute(
                f"SELECT seq, hash FROM {self.prefix}_meta WHERE name = 'head'"
            ).fetchone()
        if row is None or type(row[0]) is not int or type(row[1]) is not str:
            raise CorruptionError(
                f"the history head row ({self.prefix}_meta) is missing or damaged: {describe(row)}"
            )
        return int(row[0]), str(row[1])

    def ping(self) -> None:
        """One round trip (reconnecting once if the connection was lost).

        Raises:
            BackendUnavailableError: the server cannot be reached.
            BackendError: the query failed otherwise.
        """
        try:
            with self._translate("pinging the history"):
                self._conn.execute("SELECT 1").fetchone()
        except BackendUnavailableError:
            # a pooled connection the server dropped earlier is discarded on the
            # way back: the second try gets a fresh one (or fails within 5 s)
            with self._translate("pinging the history", timeout_s=5.0):
                self._conn.execute("SELECT 1").fetchone()

    def verify(self, sealer: Sealer, anchor: tuple[int, str] | None = None) -> VerifyReport:
        """Check the chain in one REPEATABLE READ snapshot."""
        p = self.prefix
        with self._translate("verifying history"), self._conn.transaction():
            self._conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            meta = {
                r[0]: (r[1], r[2], r[3])
                for r in self._conn.execute(f"SELECT name, seq, hash, sig FROM {p}_meta")
            }
            head = meta.get("head")

            def rows() -> Iterator[tuple[int, dict[str, Any], str, str]]:
                cur = self._conn.cursor(name="avl_history_verify")
                cur.itersize = 2000
                cur.execute(f"SELECT {_SELECT} FROM {p}_entries e ORDER BY e.seq")
                for row in cur:
                    rec = record_of_row(tuple(row[1:-2]), tags_are_json=False)
                    yield row[0], rec, row[-2], row[-1]
                cur.close()

            def locate(h: str) -> int | None:
                found = self._conn.execute(
                    f"SELECT seq FROM {p}_entries WHERE hash = %s LIMIT 1", (escape_text(h),)
                ).fetchone()
                return None if found is None else int(found[0])

            return check_chain(
                rows(),
                sealer=sealer,
                checkpoint=meta.get("checkpoint"),
                head=head,
                locate_hash=locate,
                anchor=anchor,
            )

    def prune(self, before_time: float, sealer: Sealer) -> int:
        """Delete the oldest prefix of entries older than ``before_time``; store a checkpoint."""
        p = self.prefix
        with self._translate("pruning history"), self._conn.transaction():
            self._conn.execute(f"SELECT seq FROM {p}_meta WHERE name = 'head' FOR UPDATE")
            first_kept = self._conn.execute(
                f"SELECT min(seq) FROM {p}_entries WHERE time >= %s", (before_time,)
            ).fetchone()[0]
            if first_kept is None:
                last = self._conn.execute(f"SELECT max(seq) FROM {p}_entries").fetchone()[0]
            else:
                last = self._conn.execute(
                    f"SELECT max(seq) FROM {p}_entries WHERE seq < %s", (first_kept,)
                ).fetchone()[0]
            if last is None:
                return 0
            digest = self._conn.execute(
                f"SELECT hash FROM {p}_entries WHERE seq = %s", (last,)
            ).fetchone()[0]
            removed = self._conn.execute(f"DELETE FROM {p}_entries WHERE seq <= %s", (last,))
            self._conn.execute(
                f"INSERT INTO {p}_meta(name, seq, hash, sig) VALUES ('checkpoint', %s, %s, %s) "
                "ON CONFLICT (name) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, "
                "sig = excluded.sig",
                (last, digest, sealer.sign_checkpoint(last, digest)),
            )
            return int(removed.rowcount)

    def drop(self) -> None:
        """Drop this prefix's tables (tests and benchmarks clean up with it)."""
        with self._translate("dropping history tables"), self._conn.transaction():
            self._conn.execute(f"DROP TABLE IF EXISTS {self.prefix}_entries")
            self._conn.execute(f"DROP TABLE IF EXISTS {self.prefix}_meta")

    def close(self) -> None:
        """Close the pool's connections."""
        with self._lock:
            if not self._closed:
                self._closed = True
                with contextlib.suppress(self._psycopg.Error):
                    self._pool.close()
