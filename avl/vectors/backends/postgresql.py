"""``postgresql://...``: pgvector with an HNSW index, shared by many processes.

One table per store::

    id text PRIMARY KEY, embedding vector(dim) NOT NULL, metadata jsonb NOT NULL

Options go in the URL's query string and are removed before connecting:
``table`` (default ``avl_vectors``; an identifier), ``index_after`` (create the
HNSW index once the table holds this many rows, default 1000: bulk loads are much
faster into an unindexed table; 0 never), ``m`` and ``ef_construction`` (HNSW build
parameters, 16 and 64) and ``ef_search`` (40). Other query parameters (``host=``,
``sslmode=``...) are passed to libpq unchanged.

Filters are compiled to SQL with bound parameters only: keys are validated against
:data:`~avl.vectors._filters.KEY_PATTERN` and passed as parameters
(``metadata -> %s``), values as ``jsonb`` parameters; no key or value is ever
formatted into the SQL text. Filtered searches use pgvector's iterative index scans
(``hnsw.iterative_scan = strict_order``), so filtering happens before the ``LIMIT``.
The HNSW index is approximate; below ``index_after`` rows the search is exact.
String ranges compare with the database's collation.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from avl._optional import require
from avl._registry import redact_url
from avl.errors import (
    BackendError,
    BackendUnavailableError,
    ConfigError,
    InvalidInputError,
)
from avl.vectors._filters import Condition, Filter, validate_key
from avl.vectors._types import FloatMatrix, Hit, Metric, Record
from avl.vectors.backends.file import check_options

__all__ = ["PgVectorBackend", "compile_where", "open_backend"]

_TABLE = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_OPS = {
    Metric.COSINE: ("<=>", "vector_cosine_ops"),
    Metric.IP: ("<#>", "vector_ip_ops"),
    Metric.L2: ("<->", "vector_l2_ops"),
}
_CMP = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}


def _vec(v: Any) -> str:
    return "[" + ",".join(repr(float(x)) for x in v.tolist()) + "]"


def compile_where(where: Filter, jsonb: Any) -> tuple[str, list[Any]]:
    """Compile a filter to a SQL condition and its parameters.

    The SQL text depends only on the operators; keys and values are parameters.

    Args:
        where: the parsed filter.
        jsonb: the JSONB parameter wrapper (``psycopg.types.json.Jsonb``).

    Returns:
        ``(sql, params)``; ``sql`` is ``"TRUE"`` for an empty filter.

    Raises:
        InvalidInputError: a key is not a valid identifier.
    """
    parts: list[str] = []
    params: list[Any] = []
    for cond in where.conditions:
        sql, p = _compile_one(cond, jsonb)
        parts.append(sql)
        params.extend(p)
    return (" AND ".join(parts) if parts else "TRUE"), params


def _compile_one(cond: Condition, jsonb: Any) -> tuple[str, list[Any]]:
    key = validate_key(cond.key)
    op, value = cond.op, cond.value
    if op == "$eq":
        return "(metadata -> %s) = %s::jsonb", [key, jsonb(value)]
    if op == "$ne":
        return "(metadata -> %s) IS DISTINCT FROM %s::jsonb", [key, jsonb(value)]
    if op == "$in":
        return "COALESCE((metadata -> %s) = ANY(%s::jsonb[]), FALSE)", [
            key,
            [jsonb(v) for v in value],
        ]
    if op == "$nin":
        return "NOT COALESCE((metadata -> %s) = ANY(%s::jsonb[]), FALSE)", [
            key,
            [jsonb(v) for v in value],
        ]
    kind = "string" if isinstance(value, str) else "number"
    return (
        f"(jsonb_typeof(metadata -> %s) = %s AND (metadata -> %s) {_CMP[op]} %s::jsonb)",
        [key, kind, key, jsonb(value)],
    )


class PgVectorBackend:
    """A pgvector table with an HNSW index.

    Args:
        conninfo: a libpq URI or DSN (without avl's options).
        dim: the vector dimension.
        metric: the metric.
        table: the table name (lower-case identifier).
        index_after: build the HNSW index once this many rows exist (0: never).
        m: HNSW ``m`` (2-100).
        ef_construction: HNSW ``ef_construction`` (at least ``2 * m`` and 4, at most 1000).
        ef_search: HNSW ``ef_search`` for queries (1-1000).

    Raises:
        MissingDependencyError: psycopg is not installed.
        ConfigError: an option outside pgvector's limits (above), a bad table
            name, or the table exists with another dimension.
        BackendUnavailableError: the server could not be reached.
        BackendError: pgvector is missing or the server refused a statement.
    """

    def __init__(
        self,
        conninfo: str,
        dim: int,
        metric: Metric | str = Metric.COSINE,
        *,
        table: str = "avl_vectors",
        index_after: int = 1000,
        m: int = 16,
        ef_construction: int = 64,
        ef_search: int = 40,
    ) -> None:
        # pgvector's own limits, checked here: it would refuse m and ef_construction
        # only when the index is created, inside a later add() after its rows went in
        check_options(
            "pgvector",
            {
                "index_after": (index_after, 0, None),
                "m": (m, 2, 100),
                "ef_construction": (ef_construction, max(4, 2 * m), 1000),
                "ef_search": (ef_search, 1, 1000),
            },
        )
        self._psycopg = require("psycopg", extra="postgres")
        self._sql = require("psycopg.sql", extra="postgres")
        self._jsonb = require("psycopg.types.json", extra="postgres").Jsonb
        if not _TABLE.fullmatch(table):
            raise ConfigError(f"table name {table!r} must match {_TABLE.pattern}")
        self._dim = dim
        self._metric = Metric(metric)
        self._table = table
        self._index_after = index_after
        self._m = m
        self._ef_construction = ef_construction
        self._where_url = redact_url(conninfo)
        with self._translate("connecting"):
            self._conn = self._psycopg.connect(conninfo, autocommit=True)
        try:
            self._setup(ef_search)
        except BaseException:
            self._conn.close()
            raise

    @contextlib.contextmanager
    def _translate(self, what: str) -> Iterator[None]:
        psycopg = self._psycopg
        try:
            yield
        except psycopg.OperationalError as exc:
            raise BackendUnavailableError(
                f"pgvector store {self._where_url}: {what} failed: {exc}"
            ) from exc
        except psycopg.errors.UniqueViolation as exc:
            raise InvalidInputError(f"ids already exist ({exc.diag.message_detail})") from exc
        except psycopg.Error as exc:
            raise BackendError(f"pgvector store: {what} failed: {exc}") from exc

    def _ident(self) -> Any:
        return self._sql.Identifier(self._table)

    def _setup(self, ef_search: int) -> None:
        sql = self._sql
        with self._translate("creating the table"), self._conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'")
            if cur.fetchone() is None:
                cur.execute("CREATE EXTENSION IF NOT EXISTS vector")
            cur.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (id text PRIMARY KEY, "
                    "embedding vector({}) NOT NULL, metadata jsonb NOT NULL DEFAULT '{{}}')"
                ).format(self._ident(), sql.Literal(self._dim))
            )
            cur.execute(
                "SELECT atttypmod FROM pg_attribute WHERE attrelid = %s::regclass "
                "AND attname = 'embedding'",
                [self._table],
            )
            row = cur.fetchone()
            if row is not None and int(row[0]) != self._dim:
                raise ConfigError(
                    f"table {self._table!r} holds dim={row[0]}; opened with dim={self._dim}"
                )
            cur.execute(sql.SQL("SET hnsw.ef_search = {}").format(sql.Literal(int(ef_search))))
            cur.execute("SET hnsw.iterative_scan = strict_order")

    # -- properties ----------------------------------------------------------
    @property
    def dim(self) -> int:
        """The vector dimension."""
        return self._dim

    @property
    def metric(self) -> Metric:
        """The metric."""
        return self._metric

    @property
    def table(self) -> str:
        """The table name."""
        return self._table

    # -- index ---------------------------------------------------------------
    def has_index(self) -> bool:
        """Whether the HNSW index exists."""
        with self._translate("checking the index"), self._conn.cursor() as cur:
            cur.execute("SELECT to_regclass(%s)", [f"{self._table}_hnsw"])
            row = cur.fetchone()
            return row is not None and row[0] is not None

    def create_index(self) -> None:
        """Build the HNSW index now (no-op if it exists).

        Raises:
            BackendError: the server refused.
        """
        sql = self._sql
        opclass = _OPS[self._metric][1]
        with self._translate("creating the HNSW index"), self._conn.cursor() as cur:
            cur.execute(
                sql.SQL(
                    "CREATE INDEX IF NOT EXISTS {} ON {} USING hnsw (embedding {}) "
                    "WITH (m = {}, ef_construction = {})"
                ).format(
                    sql.Identifier(f"{self._table}_hnsw"),
                    self._ident(),
                    sql.SQL(opclass),
                    sql.Literal(int(self._m)),
                    sql.Literal(int(self._ef_construction)),
                )
            )

    def _maybe_index(self) -> None:
        if self._index_after > 0 and self.count() >= self._index_after and not self.has_index():
            self.create_index()

    # -- writes --------------------------------------------------------------
    def add(
        self, ids: Sequence[str], vectors: FloatMatrix, metadata: Sequence[dict[str, Any]]
    ) -> None:
        """Insert new ids in one transaction (existing ids: ``InvalidInputError``)."""
        sql = self._sql
        with self._translate("adding"), self._conn.transaction(), self._conn.cursor() as cur:
            cur.execute(
                sql.SQL("SELECT id FROM {} WHERE id = ANY(%s)").format(self._ident()), [list(ids)]
            )
            existing = sorted(r[0] for r in cur.fetchall())
            if existing:
                raise InvalidInputError(
                    f"ids already exist: {existing[:10]} (use upsert() to replace them)"
                )
            with cur.copy(
                sql.SQL("COPY {} (id, embedding, metadata) FROM STDIN").format(self._ident())
            ) as copy:
                for i, ident in enumerate(ids):
                    copy.write_row((ident, _vec(vectors[i]), self._jsonb(metadata[i])))
        self._maybe_index()

    def upsert(
        self, ids: Sequence[str], vectors: FloatMatrix, metadata: Sequence[dict[str, Any]]
    ) -> None:
        """Insert or replace, in one transaction."""
        sql = self._sql
        stmt = sql.SQL(
            "INSERT INTO {} (id, embedding, metadata) VALUES (%s, %s::vector, %s) "
            "ON CONFLICT (id) DO UPDATE SET embedding = EXCLUDED.embedding, "
            "metadata = EXCLUDED.metadata"
        ).format(self._ident())
        rows = [(ident, _vec(vectors[i]), self._jsonb(metadata[i])) for i, ident in enumerate(ids)]
        with self._translate("upserting"), self._conn.transaction(), self._conn.cursor() as cur:
            cur.executemany(stmt, rows)
        self._maybe_index()

    def delete(self, ids: Sequence[str]) -> int:
        """Remove ids; return how many were removed."""
        sql = self._sql
        with self._translate("deleting"), self._conn.cursor() as cur:
            cur.execute(
                sql.SQL("DELETE FROM {} WHERE id = ANY(%s)").format(self._ident()), [list(ids)]
            )
            return int(cur.rowcount)

    # -- reads ---------------------------------------------------------------
    def get(self, ids: Sequence[str]) -> list[Record | None]:
        """Records for ``ids`` (``None`` where unknown)."""
        import numpy as np

        sql = self._sql
        with self._translate("reading"), self._conn.cursor() as cur:
            cur.execute(
                sql.SQL("SELECT id, embedding::text, metadata FROM {} WHERE id = ANY(%s)").format(
                    self._ident()
                ),
                [list(ids)],
            )
            found = {r[0]: r for r in cur.fetchall()}
        out: list[Record | None] = []
        for ident in ids:
            row = found.get(ident)
            if row is None:
                out.append(None)
                continue
            vec = np.asarray(row[1].strip("[]").split(","), dtype=np.float32)
            vec.flags.writeable = False
            out.append(Record(id=ident, vector=vec, metadata=row[2]))
        return out

    def count(self) -> int:
        """How many vectors are stored."""
        with self._translate("counting"), self._conn.cursor() as cur:
            cur.execute(self._sql.SQL("SELECT count(*) FROM {}").format(self._ident()))
            row = cur.fetchone()
            return int(row[0]) if row else 0

    def search_many(self, queries: FloatMatrix, k: int, where: Filter) -> list[list[Hit]]:
        """Top-``k`` per query, nearest first (HNSW once the index exists)."""
        sql = self._sql
        op = _OPS[self._metric][0]
        cond, params = compile_where(where, self._jsonb)
        stmt = sql.SQL(
            "SELECT id, embedding {op} %s::vector AS d, metadata FROM {t} WHERE {cond} "
            "ORDER BY embedding {op} %s::vector LIMIT %s"
        ).format(op=sql.SQL(op), t=self._ident(), cond=sql.SQL(cond))
        out: list[list[Hit]] = []
        with self._translate("searching"), self._conn.cursor() as cur:
            for q in queries:
                v = _vec(q)
                cur.execute(stmt, [v, *params, v, k])
                out.append([self._hit(r) for r in cur.fetchall()])
        return out

    def _hit(self, row: tuple[Any, ...]) -> Hit:
        d = float(row[1])
        if self._metric is Metric.COSINE:
            score = 1.0 - d
        elif self._metric is Metric.IP:
            score = -d
        else:
            score = d
        return Hit(id=row[0], score=score, metadata=row[2])

    def drop(self) -> None:
        """Drop the table (and its index). The backend is unusable afterwards."""
        with self._translate("dropping the table"), self._conn.cursor() as cur:
            cur.execute(self._sql.SQL("DROP TABLE IF EXISTS {}").format(self._ident()))

    def close(self) -> None:
        """Close the connection (idempotent)."""
        self._conn.close()


_OPTIONS = {"table", "index_after", "m", "ef_construction", "ef_search"}


def open_backend(url: str, *, dim: int, metric: Metric) -> PgVectorBackend:
    """Open ``postgresql://...[?table=..&index_after=..&m=..&ef_construction=..&ef_search=..]``.

    Raises:
        ConfigError: bad option.
        MissingDependencyError: psycopg is not installed.
        BackendUnavailableError: the server could not be reached.
        BackendError: the server refused.
    """
    parts = urlsplit(url)
    ours: dict[str, str] = {}
    rest: list[tuple[str, str]] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        (ours.__setitem__(key, value) if key in _OPTIONS else rest.append((key, value)))
    ints: dict[str, int] = {}
    for key in ("index_after", "m", "ef_construction", "ef_search"):
        if key in ours:
            try:
                ints[key] = int(ours[key])
            except ValueError:
                raise ConfigError(f"option {key!r} must be an int, got {ours[key]!r}") from None
    scheme = "postgresql"
    conninfo = parts._replace(scheme=scheme, query=urlencode(rest)).geturl()
    return PgVectorBackend(
        conninfo,
        dim,
        metric,
        table=ours.get("table", "avl_vectors"),
        **ints,
    )
