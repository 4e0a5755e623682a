"""Values shared by every engine: results, schema snapshots, resource limits, and the
byte-capped row collector."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs

from avl.errors import ConfigError
from avl.schema import ColumnSpec, ForeignKeySpec, TableSpec, as_foreign_keys, as_tables

__all__ = [
    "ColumnSpec",
    "ForeignKeySpec",
    "Limits",
    "QueryResult",
    "SchemaSnapshot",
    "TableSpec",
    "collect_rows",
]

MiB = 1024 * 1024


@attrs.frozen(kw_only=True)
class QueryResult:
    """Rows of one read-only query.

    Attributes:
        columns: column names.
        rows: the rows (at most the row cap, and at most ``max_result_bytes``).
        truncated: whether the result was cut: more rows existed than the row cap,
            or the next row would have passed the byte cap.
    """

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    truncated: bool = False


def _names(value: Sequence[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen(kw_only=True)
class SchemaSnapshot:
    """The introspected schema of a database.

    Tables outside the connection's default schema have schema-qualified names
    (``"sales.invoices"``).

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


def is_own_table(name: str) -> bool:
    """Whether ``name`` (maybe ``schema.table``) is one of avl's own tables."""
    return name.rpartition(".")[2].lower().startswith(OWN_TABLE_PREFIX)


def _positive_or_none(instance: Any, attribute: Any, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(f"Database {attribute.name} must be a positive number, got {value!r}")


@attrs.frozen(kw_only=True)
class Limits:
    """What one statement may use; each engine applies what it can (see the docs page
    "Databases" for the per-engine table).

    Attributes:
        timeout_s: the statement timeout.
        max_result_bytes: the result's size cap (rows are streamed and cut with
            ``truncated=True``); ``None``: no cap.
        max_value_bytes: the longest string or blob one value may be (SQLite
            ``SQLITE_LIMIT_LENGTH``, MySQL/MariaDB ``group_concat_max_len``).
        memory_mb: the memory budget of one statement (PostgreSQL ``work_mem`` is
            a quarter of it and parallel workers are off; MySQL/MariaDB
            ``max_heap_table_size``/``tmp_table_size`` a quarter; DuckDB's
            ``memory_limit``; SQLite's page cache and sorter).
        temp_mb: spill files of one statement (PostgreSQL ``temp_file_limit``
            where the role may set it; DuckDB ``max_temp_directory_size``).
    """

    timeout_s: float = attrs.field(default=10.0, validator=_positive_or_none)
    max_result_bytes: int | None = attrs.field(default=64 * MiB, validator=_positive_or_none)
    max_value_bytes: int = attrs.field(default=16 * MiB, validator=_positive_or_none)
    memory_mb: int = attrs.field(default=256, validator=_positive_or_none)
    temp_mb: int = attrs.field(default=1024, validator=_positive_or_none)


def value_size(value: Any) -> int:
    """The approximate size of one value in a result, in bytes."""
    if value is None or isinstance(value, (bool, int, float)):
        return 8
    if isinstance(value, (str, bytes, bytearray, memoryview)):
        return len(value) + 8
    return len(str(value)) + 8


def collect_rows(
    columns: Sequence[str],
    fetchmany: Callable[[int], Sequence[Sequence[Any]]],
    *,
    max_rows: int,
    max_bytes: int | None,
    batch: int = 256,
) -> QueryResult:
    """Read rows in batches until the row cap or the byte cap cuts the result.

    Args:
        columns: the column names.
        fetchmany: the cursor's ``fetchmany`` (or any callable returning up to
            ``n`` rows, fewer at the end).
        max_rows: the row cap.
        max_bytes: the byte cap (``None``: none).
        batch: rows fetched at once.

    Returns:
        The result; ``truncated`` when a cap cut it.
    """
    rows: list[tuple[Any, ...]] = []
    total = 0
    truncated = False
    while not truncated:
        got = fetchmany(max(1, min(batch, max_rows + 1 - len(rows))))
        if not got:
            break
        for row in got:
            if len(rows) >= max_rows:
                truncated = True
                break
            if max_bytes is not None:
                size = sum(value_size(v) for v in row)
                if total + size > max_bytes:
                    truncated = True
                    break
                total += size
            rows.append(tuple(row))
    return QueryResult(columns=tuple(columns), rows=tuple(rows), truncated=truncated)
