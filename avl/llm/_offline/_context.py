"""Structured context for the offline generator (pure values, no I/O)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

import attrs

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


def _columns(value: Iterable[ColumnSpec]) -> tuple[ColumnSpec, ...]:
    return tuple(value)


def _tables(value: Iterable[TableSpec]) -> tuple[TableSpec, ...]:
    return tuple(value)


def _fks(value: Iterable[ForeignKeySpec]) -> tuple[ForeignKeySpec, ...]:
    return tuple(value)


def _pairs(value: Iterable[ExamplePair]) -> tuple[ExamplePair, ...]:
    return tuple(value)


@attrs.frozen(kw_only=True)
class ColumnSpec:
    """One column of a table.

    Attributes:
        name: the column name as the database spells it.
        type: the declared type (``""`` when unknown).
        primary_key: whether the column is part of the primary key.
        comment: the column's comment, if any.
        samples: a few stored values (only when sample values were opted in).
    """

    name: str
    type: str = ""
    primary_key: bool = False
    comment: str = ""
    samples: tuple[str, ...] = attrs.field(default=(), converter=_strs)

    @property
    def is_numeric(self) -> bool:
        """Whether the declared type is a number type."""
        t = self.type.lower()
        return any(
            k in t
            for k in ("int", "real", "num", "dec", "float", "double", "money", "serial", "year")
        )


@attrs.frozen(kw_only=True)
class ForeignKeySpec:
    """A foreign key ``table.columns -> ref_table.ref_columns``."""

    table: str
    columns: tuple[str, ...] = attrs.field(converter=_strs)
    ref_table: str
    ref_columns: tuple[str, ...] = attrs.field(converter=_strs)


@attrs.frozen(kw_only=True)
class TableSpec:
    """One table: its name, columns and comment.

    Attributes:
        name: the table name as the database spells it.
        columns: the columns in declaration order.
        comment: the table's comment, if any.
        row_count: rows in the table when introspected, if known.
    """

    name: str
    columns: tuple[ColumnSpec, ...] = attrs.field(converter=_columns)
    comment: str = ""
    row_count: int | None = None

    def column(self, name: str) -> ColumnSpec | None:
        """The column called ``name`` (case-insensitive), or ``None``."""
        low = name.lower()
        for col in self.columns:
            if col.name.lower() == low:
                return col
        return None

    def ddl(self, *, foreign_keys: tuple[ForeignKeySpec, ...] = (), samples: bool = False) -> str:
        """A ``CREATE TABLE`` statement describing the table (for prompts)."""
        lines = []
        for col in self.columns:
            line = f"  {_quote(col.name)} {col.type or 'TEXT'}"
            if col.primary_key:
                line += " PRIMARY KEY"
            notes = []
            if col.comment:
                notes.append(col.comment)
            if samples and col.samples:
                notes.append("e.g. " + ", ".join(repr(s) for s in col.samples[:3]))
            if notes:
                line += " -- " + "; ".join(n.replace("\n", " ") for n in notes)
            lines.append(line)
        for fk in foreign_keys:
            if fk.table == self.name:
                cols = ", ".join(_quote(c) for c in fk.columns)
                refs = ", ".join(_quote(c) for c in fk.ref_columns)
                lines.append(f"  FOREIGN KEY ({cols}) REFERENCES {_quote(fk.ref_table)}({refs})")
        head = f"CREATE TABLE {_quote(self.name)} ("
        if self.comment:
            head = f"-- {self.comment.replace(chr(10), ' ')}\n" + head
        body = []
        for i, line in enumerate(lines):
            if " -- " in line:
                code, _, note = line.partition(" -- ")
                sep = "," if i < len(lines) - 1 else ""
                body.append(f"{code}{sep} -- {note}")
            else:
                body.append(line + ("," if i < len(lines) - 1 else ""))
        return head + "\n" + "\n".join(body) + "\n);"


def _quote(name: str) -> str:
    if name.replace("_", "").isalnum() and not name[:1].isdigit():
        return name
    return '"' + name.replace('"', '""') + '"'


@attrs.frozen(kw_only=True)
class ExamplePair:
    """A trained question and its SQL."""

    question: str
    sql: str


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

    tables: tuple[TableSpec, ...] = attrs.field(converter=_tables)
    foreign_keys: tuple[ForeignKeySpec, ...] = attrs.field(default=(), converter=_fks)
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

    from avl.llm._offline._text import stem

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
