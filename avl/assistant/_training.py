"""Training stores: where the Assistant's training items live, shared by every worker.

An Assistant keeps no training of its own: every item (a table's schema, DDL,
documentation, a question->SQL pair) is in a :class:`~avl.typing.TrainingStore`,
and each store has a version per source that changes with every write, in any
process. An Assistant checks the version before it answers and reloads the items
(and what it derives from them: tables, foreign keys, its vector index, its
stored-value index) only when it changed.

- ``memory://`` (default): :class:`MemoryTrainingStore`, for one process.
- ``sqlite:///path.db``: a file, shared by the processes of one machine.
- ``postgresql://...``: shared by every worker on every machine.

The SQL stores keep two tables (prefix ``avl_training``, ``?table=`` to change it):
``<prefix>_items`` (one JSON document per item) and ``<prefix>_versions``; the
Assistant's introspection never shows tables whose name starts with ``avl_``.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from avl._optional import require
from avl._registry import redact_url, scheme_of
from avl.assistant._answer import TrainingItem
from avl.errors import BackendError, BackendUnavailableError, ConfigError, InvalidInputError
from avl.schema import ColumnSpec, ForeignKeySpec, TableSpec
from avl.typing import TrainingStore

__all__ = [
    "MemoryTrainingStore",
    "SqlTrainingStore",
    "item_from_json",
    "item_to_json",
    "open_training_store",
]

_PREFIX = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")


# ------------------------------------------------------------------ serialising
def _table_dict(t: TableSpec) -> dict[str, Any]:
    return {
        "name": t.name,
        "comment": t.comment,
        "row_count": t.row_count,
        "columns": [
            {
                "name": c.name,
                "type": c.type,
                "primary_key": c.primary_key,
                "comment": c.comment,
                "samples": list(c.samples),
            }
            for c in t.columns
        ],
    }


def _table_of(d: Mapping[str, Any]) -> TableSpec:
    return TableSpec(
        name=str(d["name"]),
        comment=str(d.get("comment", "")),
        row_count=d.get("row_count"),
        columns=[
            ColumnSpec(
                name=str(c["name"]),
                type=str(c.get("type", "")),
                primary_key=bool(c.get("primary_key", False)),
                comment=str(c.get("comment", "")),
                samples=[str(s) for s in c.get("samples", ())],
            )
            for c in d.get("columns", ())
        ],
    )


def item_to_json(item: TrainingItem) -> str:
    """One item as a JSON document (ASCII: NUL and lone surrogates are escaped)."""
    doc: dict[str, Any] = {
        "id": item.id,
        "kind": item.kind,
        "text": item.text,
        "question": item.question,
        "sql": item.sql,
        "table": item.table,
        "added_by": item.added_by,
        "source": item.source,
    }
    if item.scope:
        doc["scope"] = item.scope
    if item.spec is not None:
        doc["spec"] = _table_dict(item.spec)
    if item.foreign_keys:
        doc["foreign_keys"] = [
            {
                "table": f.table,
                "columns": list(f.columns),
                "ref_table": f.ref_table,
                "ref_columns": list(f.ref_columns),
            }
            for f in item.foreign_keys
        ]
    return json.dumps(doc, ensure_ascii=True, sort_keys=True)


def item_from_json(text: str) -> TrainingItem:
    """The item :func:`item_to_json` wrote.

    Raises:
        BackendError: the document is not a training item.
    """
    try:
        d = json.loads(text)
        spec = d.get("spec")
        return TrainingItem(
            id=str(d["id"]),
            kind=str(d["kind"]),
            text=str(d.get("text", "")),
            question=str(d.get("question", "")),
            sql=str(d.get("sql", "")),
            table=str(d.get("table", "")),
            added_by=str(d.get("added_by", "")),
            source=str(d.get("source", "default")),
            spec=None if spec is None else _table_of(spec),
            scope=str(d.get("scope", "")),
            foreign_keys=[
                ForeignKeySpec(
                    table=str(f["table"]),
                    columns=[str(c) for c in f["columns"]],
                    ref_table=str(f["ref_table"]),
                    ref_columns=[str(c) for c in f["ref_columns"]],
                )
                for f in d.get("foreign_keys", ())
            ],
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise BackendError(f"a stored training item cannot be read: {exc}") from exc


def _check_source(source: str) -> str:
    if not isinstance(source, str) or not source:
        raise InvalidInputError(f"source must be a non-empty string, got {source!r}")
    return source


# ----------------------------------------------------------------------- memory
class MemoryTrainingStore:
    """Training items in this process (the default; one process only).

    Example:
        >>> store = MemoryTrainingStore()
        >>> store.version("shop")
        '0'
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, dict[str, TrainingItem]] = {}
        self._versions: dict[str, int] = {}

    def put(self, source: str, items: Sequence[TrainingItem]) -> None:
        """Add or replace items (by id)."""
        _check_source(source)
        with self._lock:
            bucket = self._items.setdefault(source, {})
            for item in items:
                bucket[item.id] = item
            self._versions[source] = self._versions.get(source, 0) + 1

    def remove(self, source: str, ids: Sequence[str]) -> int:
        """Remove items by id; return how many existed."""
        _check_source(source)
        with self._lock:
            bucket = self._items.get(source, {})
            n = sum(1 for i in ids if bucket.pop(i, None) is not None)
            if n:
                self._versions[source] = self._versions.get(source, 0) + 1
            return n

    def items(self, source: str) -> list[TrainingItem]:
        """Every item of ``source``, in the order first added."""
        with self._lock:
            return list(self._items.get(source, {}).values())

    def version(self, source: str) -> str:
        """The number of writes to ``source`` so far."""
        with self._lock:
            return str(self._versions.get(source, 0))

    def close(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return "MemoryTrainingStore()"


# -------------------------------------------------------------------------- SQL
class SqlTrainingStore:
    """Training items in a SQLite file or PostgreSQL tables, shared by every process.

    Every write (``put``, ``remove``) and the source's version counter change in
    one transaction, so a reader that sees the new version sees the new items.

    Args:
        url: ``sqlite:///path.db`` or ``postgresql://...``; ``?table=<prefix>``
            (default ``avl_training``).

    Raises:
        ConfigError: another scheme or a bad prefix.
        MissingDependencyError: ``psycopg`` is not installed (PostgreSQL).
        BackendUnavailableError: the database cannot be opened.

    Example:
        >>> store = SqlTrainingStore("sqlite:///training.db")  # doctest: +SKIP
    """

    def __init__(self, url: str) -> None:
        scheme = scheme_of(url)
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        prefix = query.pop("table", "avl_training")
        if not _PREFIX.fullmatch(prefix):
            raise ConfigError(f"table prefix {prefix!r} must match {_PREFIX.pattern}")
        self._items_t = f"{prefix}_items"
        self._versions_t = f"{prefix}_versions"
        self._lock = threading.RLock()
        self.url = redact_url(url)
        self._pg = scheme == "postgresql"
        if scheme == "sqlite":
            raw = unquote(parts.path)
            path = Path(raw[1:] if raw.startswith("/") else raw)
            if str(path) in ("", ".", ":memory:"):
                raise ConfigError("a SQLite training store needs a file path (sqlite:///path.db)")
            # "sqlite:///tmp/x/t.db" written for an absolute path: use it when only that exists
            absolute = Path("/") / path
            if not path.is_absolute() and not path.parent.is_dir() and absolute.parent.is_dir():
                path = absolute
            try:
                self._conn: Any = sqlite3.connect(
                    path, timeout=30.0, isolation_level=None, check_same_thread=False
                )
                self._conn.execute("PRAGMA journal_mode=WAL")
            except sqlite3.Error as exc:
                raise BackendUnavailableError(
                    f"cannot open training store {str(path)!r}: {exc}"
                ) from exc
            self._ph = "?"
        elif self._pg:
            psycopg = require("psycopg", extra="postgres")
            dsn = urlunsplit(
                ("postgresql", parts.netloc, parts.path, urlencode(query), parts.fragment)
            )
            try:
                self._conn = psycopg.connect(dsn, autocommit=True, connect_timeout=10)
            except psycopg.Error as exc:
                raise BackendUnavailableError(f"cannot connect to {self.url}: {exc}") from exc
            self._ph = "%s"
        else:
            raise ConfigError(
                f"a training store URL is memory://, sqlite:///path or postgresql://..., "
                f"got {self.url!r}"
            )
        serial = "BIGSERIAL" if self._pg else "INTEGER"
        with self._write() as cur:
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {self._items_t} ("
                f"position {serial} {'' if self._pg else 'PRIMARY KEY AUTOINCREMENT'}, "
                "source TEXT NOT NULL, id TEXT NOT NULL, doc TEXT NOT NULL, "
                f"UNIQUE (source, id){', PRIMARY KEY (position)' if self._pg else ''})"
            )
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {self._versions_t} ("
                "source TEXT PRIMARY KEY, version BIGINT NOT NULL)"
            )

    @contextlib.contextmanager
    def _translate(self, what: str) -> Iterator[None]:
        try:
            yield
        except (BackendError, InvalidInputError):
            raise
        except Exception as exc:
            mod = type(exc).__module__.split(".")[0]
            if isinstance(exc, sqlite3.Error) or mod == "psycopg":
                raise BackendUnavailableError(f"training store ({what}): {exc}") from exc
            raise

    @contextlib.contextmanager
    def _write(self) -> Iterator[Any]:
        with self._lock, self._translate("writing"):
            if self._pg:
                with self._conn.transaction(), self._conn.cursor() as cur:
                    yield cur
            else:
                cur = self._conn.cursor()
                cur.execute("BEGIN IMMEDIATE")
                try:
                    yield cur
                except BaseException:
                    cur.execute("ROLLBACK")
                    raise
                cur.execute("COMMIT")

    def _bump(self, cur: Any, source: str) -> None:
        p = self._ph
        cur.execute(
            f"INSERT INTO {self._versions_t} (source, version) VALUES ({p}, 1) "
            f"ON CONFLICT (source) DO UPDATE SET version = {self._versions_t}.version + 1",
            (source,),
        )

    def put(self, source: str, items: Sequence[TrainingItem]) -> None:
        """Add or replace items (by id), and bump the version, in one transaction.

        Raises:
            BackendUnavailableError: the write failed (nothing was stored).
        """
        _check_source(source)
        rows = [(source, i.id, item_to_json(i)) for i in items]
        p = self._ph
        with self._write() as cur:
            for row in rows:
                cur.execute(
                    f"INSERT INTO {self._items_t} (source, id, doc) VALUES ({p}, {p}, {p}) "
                    "ON CONFLICT (source, id) DO UPDATE SET doc = excluded.doc",
                    row,
                )
            self._bump(cur, source)

    def remove(self, source: str, ids: Sequence[str]) -> int:
        """Remove items by id; return how many existed.

        Raises:
            BackendUnavailableError: the write failed (nothing was removed).
        """
        _check_source(source)
        p = self._ph
        n = 0
        with self._write() as cur:
            for i in ids:
                cur.execute(
                    f"DELETE FROM {self._items_t} WHERE source = {p} AND id = {p}", (source, i)
                )
                n += max(0, int(cur.rowcount or 0))
            if n:
                self._bump(cur, source)
        return n

    def _read(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        with self._lock, self._translate("reading"):
            cur = self._conn.cursor()
            try:
                cur.execute(sql, args)
                return [tuple(r) for r in cur.fetchall()]
            finally:
                cur.close()

    def items(self, source: str) -> list[TrainingItem]:
        """Every item of ``source``, in the order first added.

        Raises:
            BackendUnavailableError: the read failed.
            BackendError: a stored document is not a training item.
        """
        rows = self._read(
            f"SELECT doc FROM {self._items_t} WHERE source = {self._ph} ORDER BY position",
            (source,),
        )
        return [item_from_json(str(r[0])) for r in rows]

    def version(self, source: str) -> str:
        """The source's write counter (``"0"`` before any write).

        Raises:
            BackendUnavailableError: the read failed.
        """
        rows = self._read(
            f"SELECT version FROM {self._versions_t} WHERE source = {self._ph}", (source,)
        )
        return str(rows[0][0]) if rows else "0"

    def close(self) -> None:
        """Close the connection."""
        with self._lock, contextlib.suppress(Exception):
            self._conn.close()

    def __repr__(self) -> str:
        return f"SqlTrainingStore({self.url!r})"


def open_training_store(spec: str | TrainingStore | None) -> TrainingStore:
    """A training store from a URL (``memory://``, ``sqlite:///...``,
    ``postgresql://...``) or an object; ``None`` is a new memory store.

    Raises:
        ConfigError: an unknown scheme or an object that is not a TrainingStore.
    """
    if spec is None or spec == "memory://":
        return MemoryTrainingStore()
    if isinstance(spec, str):
        return SqlTrainingStore(spec)
    if not isinstance(spec, TrainingStore):
        raise ConfigError(f"training must be a URL or a TrainingStore, got {type(spec).__name__}")
    return spec


def new_token() -> str:
    """A random version token."""
    return uuid.uuid4().hex
