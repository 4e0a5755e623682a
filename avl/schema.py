"""The shared vocabulary of schemas: tables, columns, foreign keys and example pairs.

These are pure, frozen values that every layer above uses: the Assistant's database
introspection produces them, the prompt and the offline SQL writer read them. They
live here, one layer below both, so neither imports the other's internals.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

__all__ = [
    "ColumnSpec",
    "ExamplePair",
    "ForeignKeySpec",
    "TableSpec",
    "as_foreign_keys",
    "as_tables",
]


def _strs(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _columns(value: Iterable[ColumnSpec]) -> tuple[ColumnSpec, ...]:
    return tuple(value)


def as_tables(value: Iterable[TableSpec]) -> tuple[TableSpec, ...]:
    """``value`` as a tuple of tables (an attrs converter)."""
    return tuple(value)


def as_foreign_keys(value: Iterable[ForeignKeySpec]) -> tuple[ForeignKeySpec, ...]:
    """``value`` as a tuple of foreign keys (an attrs converter)."""
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
