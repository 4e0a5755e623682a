"""What the generator knows about the schema in its context (pure, built per context).

For every table and column: its name split into word stems, its distinguishing words,
whether it is a key, a number, a date, a naming column; the join edges (declared
foreign keys, plus the ones a column name states: ``teacher_id`` in one table and
the primary key ``teacher_id`` of another); and how informative each name word is
(rare words weigh more than ``id`` or ``name``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType

import attrs
from cachetools import LRUCache

from avl.llm._offline._lexicon import FALSE_VALUES, TRUE_VALUES
from avl.llm._offline._question import form_root
from avl.schema import ColumnSpec, ForeignKeySpec, TableSpec
from avl.text import ident_words

__all__ = ["ColumnInfo", "Edge", "SchemaIndex", "TableInfo", "flag_values"]


def flag_values(
    values: Mapping[tuple[str, str], Sequence[str]], table: str, column: str
) -> tuple[str, str] | None:
    """``(value meaning yes, value meaning no)`` of a two-valued flag column (T/F, Y/N,
    yes/no, 1/0), else ``None``."""
    vals = values.get((table, column))
    if vals is None:
        return None
    distinct = {str(v).strip() for v in vals}
    if not 1 <= len(distinct) <= 2:
        return None
    yes = [v for v in distinct if v.lower() in TRUE_VALUES]
    no = [v for v in distinct if v.lower() in FALSE_VALUES]
    if not yes:
        return None
    return yes[0], no[0] if no else ""


#: Words in table names that say nothing about the rows ("ref_", "_tbl", "_info").
_TABLE_NOISE = frozenset(
    {"ref", "tbl", "tab", "table", "info", "information", "detail", "data", "lookup", "master"}
)
#: Words that make a column an identifier or a code.
_KEY_WORDS = frozenset({"id", "code", "key", "uuid", "guid"})
_NAMING = ("name", "title")
_TEMPORAL_TYPES = ("date", "time", "year")
_TEMPORAL_WORDS = frozenset({"date", "time", "year", "day", "month", "timestamp", "datetime"})


@attrs.frozen(kw_only=True)
class ColumnInfo:
    """One column as the linker sees it."""

    table: str
    name: str
    spec: ColumnSpec
    words: tuple[str, ...]
    key: tuple[str, ...]
    numeric: bool
    temporal: bool
    is_key: bool
    primary: bool

    @property
    def measure(self) -> bool:
        """A number that can be summed, averaged, compared (not a key)."""
        return self.numeric and not self.is_key


@attrs.frozen(kw_only=True)
class TableInfo:
    """One table as the linker sees it."""

    name: str
    spec: TableSpec
    words: tuple[str, ...]
    key: tuple[str, ...]
    columns: tuple[ColumnInfo, ...]

    def column(self, name: str) -> ColumnInfo | None:
        """The column called ``name`` (case-insensitive)."""
        low = name.lower()
        for c in self.columns:
            if c.name.lower() == low:
                return c
        return None

    @property
    def primary(self) -> tuple[ColumnInfo, ...]:
        """The primary-key columns."""
        return tuple(c for c in self.columns if c.primary)


@attrs.frozen(kw_only=True)
class Edge:
    """A join between two tables: ``a.a_cols = b.b_cols``."""

    a: str
    a_cols: tuple[str, ...]
    b: str
    b_cols: tuple[str, ...]
    declared: bool = True

    def other(self, table: str) -> str:
        """The table at the other end."""
        return self.b if table == self.a else self.a

    def pairs_from(self, table: str) -> list[tuple[str, str]]:
        """``(column of table, column of the other table)`` pairs."""
        if table == self.a:
            return list(zip(self.a_cols, self.b_cols, strict=False))
        return list(zip(self.b_cols, self.a_cols, strict=False))


def _column_info(
    t: TableSpec, twords: Sequence[str], c: ColumnSpec, fk_cols: set[str]
) -> ColumnInfo:
    words = tuple(ident_words(c.name))
    key = list(words)
    # the table's own words as a prefix say nothing ("student_name" in "student")
    k = len(twords)
    if k and len(key) > k and tuple(key[:k]) == tuple(twords):
        key = key[k:]
    elif len(key) > 1 and key[0] in twords:
        key = key[1:]
    if len(key) > 1 and key[-1] in _KEY_WORDS:
        key = key[:-1]
    ctype = c.type.lower()
    is_key = (
        c.primary_key
        or c.name.lower() in fk_cols
        or (bool(words) and words[-1] in _KEY_WORDS)
        or (bool(words) and words[0] == "id")
    )
    temporal = any(x in ctype for x in _TEMPORAL_TYPES) or bool(_TEMPORAL_WORDS & set(words))
    return ColumnInfo(
        table=t.name,
        name=c.name,
        spec=c,
        words=words,
        key=tuple(key),
        numeric=c.is_numeric,
        temporal=temporal,
        is_key=is_key,
        primary=c.primary_key,
    )


class SchemaIndex:
    """Tables, columns, join edges and word weights of one context.

    Args:
        tables: the tables.
        foreign_keys: the declared foreign keys.
    """

    def __init__(self, tables: Iterable[TableSpec], foreign_keys: Iterable[ForeignKeySpec]) -> None:
        specs = list(tables)
        fks = list(foreign_keys)
        fk_cols: dict[str, set[str]] = {}
        for fk in fks:
            fk_cols.setdefault(fk.table.lower(), set()).update(c.lower() for c in fk.columns)
            fk_cols.setdefault(fk.ref_table.lower(), set()).update(
                c.lower() for c in fk.ref_columns
            )
        infos: list[TableInfo] = []
        for t in specs:
            words = tuple(ident_words(t.name))
            key = tuple(w for w in words if w not in _TABLE_NOISE) or words
            cols = tuple(
                _column_info(t, words, c, fk_cols.get(t.name.lower(), set())) for c in t.columns
            )
            infos.append(TableInfo(name=t.name, spec=t, words=words, key=key, columns=cols))
        self.tables: tuple[TableInfo, ...] = tuple(infos)
        self._by_name = {t.name.lower(): t for t in infos}
        self.edges: tuple[Edge, ...] = tuple(self._edges(fks))
        df: Counter[str] = Counter()
        n = 0
        for info in infos:
            df.update(set(info.words))
            n += 1
            for col in info.columns:
                df.update(set(col.words))
                n += 1
        self._weight = {w: math.log(1.0 + n / d) for w, d in df.items()}
        self._df = dict(df)
        self.vocabulary: frozenset[str] = frozenset(df)
        # the same words in a fixed order: every tie is broken the same way in every
        # process (string hashes differ between processes)
        self.ordered_vocabulary: tuple[str, ...] = tuple(sorted(df))
        self.roots: dict[str, str] = {w: form_root(w) for w in df}
        # question word -> the name words it matches (questions repeat their words)
        self._matches: LRUCache[str, Mapping[str, float]] = LRUCache(maxsize=8192)

    # -------------------------------------------------------------- lookups
    def table(self, name: str) -> TableInfo | None:
        """The table called ``name`` (case-insensitive)."""
        return self._by_name.get(name.lower())

    def column(self, table: str, name: str) -> ColumnInfo | None:
        """The column ``table.name``."""
        t = self.table(table)
        return t.column(name) if t is not None else None

    def matches_of(self, word: str) -> Mapping[str, float] | None:
        """The remembered name-word matches of a question word, if any."""
        return self._matches.get(word)

    def remember_matches(self, word: str, found: Mapping[str, float]) -> None:
        """Remember a question word's name-word matches."""
        self._matches[word] = MappingProxyType(dict(found))

    def df(self, word: str) -> int:
        """In how many table and column names ``word`` occurs."""
        return self._df.get(word, 0)

    def weight(self, word: str) -> float:
        """How informative a name word is (rarer in the schema: heavier)."""
        return self._weight.get(word, 1.0)

    def naming_columns(self, table: str) -> list[ColumnInfo]:
        """The column(s) that name a row of ``table`` (``name``, ``first_name`` and
        ``last_name``, ``title``...), best first; empty when none fits."""
        t = self.table(table)
        if t is None:
            return []
        plain = [c for c in t.columns if c.key == ("name",)]
        if plain:
            return plain[:1]
        first = [c for c in t.columns if c.key[:2] == ("first", "name")]
        last = [c for c in t.columns if c.key[:2] == ("last", "name")]
        if first and last:
            return [first[0], last[0]]
        titled = [c for c in t.columns if c.key == ("title",)]
        if titled:
            return titled[:1]
        for word in _NAMING:
            named = [
                c
                for c in t.columns
                if word in c.words and not c.is_key and not {"user", "nick", "file"} & set(c.words)
            ]
            if named:
                return named[:1]
        texts = [c for c in t.columns if not c.numeric and not c.is_key and not c.temporal]
        return texts[:1]

    def label_columns(self, table: str) -> list[ColumnInfo]:
        """The columns that name a row, else the primary key, else the first column."""
        named = self.naming_columns(table)
        if named:
            return named
        t = self.table(table)
        if t is None or not t.columns:
            return []
        return list(t.primary[:1]) or [t.columns[0]]

    def neighbours(self, table: str) -> list[tuple[str, Edge]]:
        """``(other table, edge)`` for every edge touching ``table``."""
        low = table.lower()
        out = []
        for e in self.edges:
            if e.a.lower() == low:
                out.append((e.b, e))
            elif e.b.lower() == low:
                out.append((e.a, e))
        return out

    def edge_between(self, a: str, b: str) -> Edge | None:
        """The first edge between ``a`` and ``b`` (declared before inferred)."""
        la, lb = a.lower(), b.lower()
        for e in self.edges:
            if {e.a.lower(), e.b.lower()} == {la, lb} and (la != lb or e.a == e.b):
                return e
        return None

    # -------------------------------------------------------------- edges
    def _edges(self, fks: Sequence[ForeignKeySpec]) -> list[Edge]:
        out: list[Edge] = []
        seen: set[tuple[str, str]] = set()

        def position(fk: ForeignKeySpec) -> tuple[int, int]:
            t = self.table(fk.table)
            if t is None:
                return (0, 0)
            names = [c.name.lower() for c in t.columns]
            first = fk.columns[0].lower() if fk.columns else ""
            return (self.tables.index(t), names.index(first) if first in names else 0)

        for fk in sorted(fks, key=position):
            a, b = self.table(fk.table), self.table(fk.ref_table)
            if a is None or b is None or len(fk.columns) != len(fk.ref_columns):
                continue
            out.append(
                Edge(a=a.name, a_cols=tuple(fk.columns), b=b.name, b_cols=tuple(fk.ref_columns))
            )
            seen.add((a.name.lower(), b.name.lower()))
            seen.add((b.name.lower(), a.name.lower()))
        # edges a column name states: a column named like another table's single
        # primary key ("customer_id" -> customers.customer_id), or "<table>_id" when
        # that table's key is a bare "id"
        for t in self.tables:
            for c in t.columns:
                if c.primary and len(t.primary) == 1:
                    continue
                for other in self.tables:
                    if other is t or (t.name.lower(), other.name.lower()) in seen:
                        continue
                    pk = other.primary
                    if len(pk) != 1:
                        continue
                    target = pk[0]
                    same = c.name.lower() == target.name.lower() and target.words != ("id",)
                    by_table = (
                        target.words == ("id",)
                        and len(c.words) >= 2
                        and c.words[-1] == "id"
                        and c.words[:-1] == other.words
                    )
                    if same or by_table:
                        out.append(
                            Edge(
                                a=t.name,
                                a_cols=(c.name,),
                                b=other.name,
                                b_cols=(target.name,),
                                declared=False,
                            )
                        )
                        seen.add((t.name.lower(), other.name.lower()))
                        seen.add((other.name.lower(), t.name.lower()))
        return out
