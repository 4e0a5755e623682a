"""Structured context for the offline generator (pure values, no I/O)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

import attrs

from avl.schema import (
    ColumnSpec,
    ExamplePair,
    ForeignKeySpec,
    TableSpec,
    as_foreign_keys,
    as_tables,
)

__all__ = [
    "ColumnSpec",
    "build_value_index",
    "ExamplePair",
    "ForeignKeySpec",
    "GenerationContext",
    "TableSpec",
]


def _strs(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _pairs(value: Iterable[ExamplePair]) -> tuple[ExamplePair, ...]:
    return tuple(value)


def _freeze_values(
    value: Mapping[tuple[str, str], tuple[str, ...]],
) -> Mapping[tuple[str, str], tuple[str, ...]]:
    return MappingProxyType({k: tuple(v) for k, v in value.items()})


def _freeze_index(
    value: Mapping[str, tuple[tuple[str, str, str], ...]],
) -> Mapping[str, tuple[tuple[str, str, str], ...]]:
    return value if isinstance(value, MappingProxyType) else MappingProxyType(dict(value))


@attrs.frozen(kw_only=True)
class GenerationContext:
    """Everything the offline generator may use to answer one question.

    Attributes:
        tables: the tables in the context (retrieved or the whole schema).
        foreign_keys: foreign keys between those tables.
        examples: trained question -> SQL pairs, most similar first.
        documentation: trained documentation snippets.
        values: ``(table, column) -> distinct stored values`` for linking words in
            the question to stored values. The offline generator runs in-process,
            so these never leave the machine.
        dialect: the SQL dialect (sqlglot name: ``sqlite``, ``postgres``, ``mysql``).
        value_index: ``values`` indexed by first lower-cased word, as
            :func:`build_value_index` makes it (built on the fly when empty; pass it
            to avoid rebuilding it for every question).
    """

    tables: tuple[TableSpec, ...] = attrs.field(converter=as_tables)
    foreign_keys: tuple[ForeignKeySpec, ...] = attrs.field(default=(), converter=as_foreign_keys)
    examples: tuple[ExamplePair, ...] = attrs.field(default=(), converter=_pairs)
    documentation: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    values: Mapping[tuple[str, str], tuple[str, ...]] = attrs.field(
        factory=dict, converter=_freeze_values
    )
    dialect: str = "sqlite"
    value_index: Mapping[str, tuple[tuple[str, str, str], ...]] = attrs.field(
        factory=dict, converter=_freeze_index
    )

    def table(self, name: str) -> TableSpec | None:
        """The table called ``name`` (case-insensitive), or ``None``."""
        low = name.lower()
        for t in self.tables:
            if t.name.lower() == low:
                return t
        return None


def build_value_index(
    values: Mapping[tuple[str, str], tuple[str, ...]],
) -> dict[str, tuple[tuple[str, str, str], ...]]:
    """Index stored values by their first lower-cased word.

    Args:
        values: ``(table, column) -> values``.

    Returns:
        ``first word -> ((table, column, value), ...)``; a value is also listed
        under the stem of its first word.
    """
    import re

    from avl.text import stem

    out: dict[str, list[tuple[str, str, str]]] = {}
    for (table, column), vals in values.items():
        for v in vals:
            ws = re.findall(r"\d+(?:\.\d+)?|[A-Za-z]+", v)
            if ws:
                out.setdefault(ws[0].lower(), []).append((table, column, v))
                first = stem(ws[0])
                if first != ws[0].lower():
                    out.setdefault(first, []).append((table, column, v))
    return {k: tuple(v) for k, v in out.items()}
