"""The shared vocabulary of schemas and of the model side of the Assistant.

These are pure, frozen values that every layer above uses: the Assistant's database
introspection produces the table specs, the prompt and the SQL writers read them.
They live here, one layer below both, so neither imports the other's internals.

- Schema: :class:`TableSpec`, :class:`ColumnSpec`, :class:`ForeignKeySpec`,
  :class:`ExamplePair`, and :func:`parse_ddl` (``CREATE TABLE`` text to specs).
- The model-side contract: a :class:`WriteContext` (the question and the
  policy-scoped schema, examples, documentation and stored values) goes into a
  :class:`~avl.typing.SqlWriter`, a :class:`SqlDraft` (SQL, or an abstention) comes
  out.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

import attrs

from avl.errors import InvalidInputError

__all__ = [
    "ColumnSpec",
    "ExamplePair",
    "FailedAttempt",
    "ForeignKeySpec",
    "SqlDraft",
    "TableSpec",
    "Turn",
    "ValueIndex",
    "Values",
    "WriteContext",
    "as_foreign_keys",
    "as_tables",
    "build_value_index",
    "parse_ddl",
]

#: ``(table, column) -> distinct stored values``.
Values = Mapping[tuple[str, str], tuple[str, ...]]
#: ``first lower-cased word -> ((table, column, value), ...)`` (see :func:`build_value_index`).
ValueIndex = Mapping[str, tuple[tuple[str, str, str], ...]]


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

    def ddl(
        self,
        *,
        foreign_keys: tuple[ForeignKeySpec, ...] = (),
        samples: bool = False,
        dialect: str = "",
    ) -> str:
        """A ``CREATE TABLE`` statement describing the table (for prompts).

        Args:
            foreign_keys: foreign keys; those of this table are listed.
            samples: add the columns' sample values as comments.
            dialect: quote names that need it in this dialect's style (backticks
                for ``mysql``; double quotes otherwise).
        """
        q = _quoter(dialect)
        lines = []
        for col in self.columns:
            line = f"  {q(col.name)} {col.type or 'TEXT'}"
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
                cols = ", ".join(q(c) for c in fk.columns)
                refs = ", ".join(q(c) for c in fk.ref_columns)
                ref = _table_name(q, fk.ref_table)
                lines.append(f"  FOREIGN KEY ({cols}) REFERENCES {ref}({refs})")
        head = f"CREATE TABLE {_table_name(q, self.name)} ("
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


def _backtick(name: str) -> str:
    if name.replace("_", "").isalnum() and not name[:1].isdigit():
        return name
    return "`" + name.replace("`", "``") + "`"


def _table_name(q: Callable[[str], str], name: str) -> str:
    """A table name for DDL: ``schema.table`` (as introspection names tables outside the
    default schema) is quoted part by part."""
    return ".".join(q(part) for part in name.split(".")) if "." in name else q(name)


def _quoter(dialect: str) -> Callable[[str], str]:
    return _backtick if dialect in ("mysql", "mariadb") else _quote


@attrs.frozen(kw_only=True)
class ExamplePair:
    """A trained question and its SQL."""

    question: str
    sql: str


def _pairs(value: Iterable[ExamplePair]) -> tuple[ExamplePair, ...]:
    return tuple(value)


def _freeze_values(value: Values) -> Values:
    if isinstance(value, MappingProxyType):
        return value
    return MappingProxyType({k: tuple(v) for k, v in value.items()})


def _freeze_index(value: ValueIndex) -> ValueIndex:
    return value if isinstance(value, MappingProxyType) else MappingProxyType(dict(value))


def _turns(value: Iterable[Turn]) -> tuple[Turn, ...]:
    return tuple(value)


def _failed(value: Iterable[FailedAttempt]) -> tuple[FailedAttempt, ...]:
    return tuple(value)


@attrs.frozen(kw_only=True)
class Turn:
    """An earlier turn of a session (for follow-up questions).

    Attributes:
        question: what was asked.
        sql: the SQL that answered it (empty when none ran), as the writer wrote
            it (never SafeQuery's rewrite, which holds the caller's row filter).
        columns: the columns of its result.
    """

    question: str
    sql: str = ""
    columns: tuple[str, ...] = attrs.field(default=(), converter=_strs)


@attrs.frozen(kw_only=True)
class FailedAttempt:
    """An earlier attempt at the same question that failed (for repair).

    Attributes:
        sql: the SQL that was tried.
        error: why it failed (SafeQuery's violations or the database's error).
    """

    sql: str
    error: str


@attrs.frozen(kw_only=True)
class WriteContext:
    """Everything a :class:`~avl.typing.SqlWriter` may use to answer one question.

    The Assistant builds it from the caller's policy view only: tables the caller
    may read, minus denied columns, row-filtered tables marked in their comment;
    examples whose SQL the caller's policy allows; documentation not tied to a
    hidden table; stored values only from readable columns and rows. A writer
    never sees more than the caller could read.

    Attributes:
        question: the user's question.
        dialect: the SQL dialect to write (sqlglot name: ``sqlite``, ``postgres``,
            ``mysql``...).
        tables: the tables in the context (retrieved, policy-scoped).
        foreign_keys: foreign keys between those tables.
        examples: trained question -> SQL pairs, most similar first.
        documentation: documentation snippets.
        values: ``(table, column) -> distinct stored values`` for linking words of
            the question to stored values (policy-scoped; for writers that run in
            this process: a :class:`~avl.assistant.ChatSqlWriter` never sends them).
        value_index: ``values`` indexed by first lower-cased word, as
            :func:`build_value_index` makes it (built on the fly when empty).
        turns: earlier turns of the session, oldest first (empty by default).
        failed: earlier failed attempts at this question, oldest first (repair).

    Example:
        >>> ctx = WriteContext(question="How many singers?", tables=[
        ...     TableSpec(name="singer", columns=[ColumnSpec(name="name")])])
        >>> ctx.table("SINGER").name, ctx.previous_sql
        ('singer', '')
    """

    question: str = attrs.field(validator=attrs.validators.instance_of(str))
    dialect: str = "sqlite"
    tables: tuple[TableSpec, ...] = attrs.field(default=(), converter=as_tables)
    foreign_keys: tuple[ForeignKeySpec, ...] = attrs.field(default=(), converter=as_foreign_keys)
    examples: tuple[ExamplePair, ...] = attrs.field(default=(), converter=_pairs)
    documentation: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    values: Values = attrs.field(factory=dict, converter=_freeze_values)
    value_index: ValueIndex = attrs.field(factory=dict, converter=_freeze_index)
    turns: tuple[Turn, ...] = attrs.field(default=(), converter=_turns)
    failed: tuple[FailedAttempt, ...] = attrs.field(default=(), converter=_failed)

    def table(self, name: str) -> TableSpec | None:
        """The table called ``name`` (case-insensitive), or ``None``."""
        low = name.lower()
        for t in self.tables:
            if t.name.lower() == low:
                return t
        return None

    @property
    def previous_sql(self) -> str:
        """The SQL of the last failed attempt (``""`` on a first attempt)."""
        return self.failed[-1].sql if self.failed else ""

    @property
    def previous_error(self) -> str:
        """Why the last attempt failed (``""`` on a first attempt)."""
        return self.failed[-1].error if self.failed else ""


def _opt_count(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise InvalidInputError(
            f"SqlDraft.{attribute.name} must be a non-negative int or None, got {value!r}"
        )


@attrs.frozen(kw_only=True)
class SqlDraft:
    """What a :class:`~avl.typing.SqlWriter` returns: one SQL statement, or an abstention.

    Build one with ``SqlDraft(sql=...)`` or :meth:`SqlDraft.abstain`. The SQL is not
    trusted: the Assistant checks it with SafeQuery before anything runs. An
    abstention ("this cannot be answered from this database") is an answer of its
    own, recorded with the outcome ``abstained``, not an error.

    Attributes:
        sql: the SQL (``""`` for an abstention, or when a model's reply held none).
        reason: why the writer abstains (``""`` unless it abstains).
        understood: what the writer understood of the question (optional, shown
            with an abstention).
        model: the model or writer that produced it (``"offline"``,
            ``"openai/gpt-4o-mini"``...).
        input_tokens: prompt tokens, when the writer knows them (``None``: the
            Assistant estimates them).
        output_tokens: completion tokens, when known.
        cached_tokens: prompt tokens served from the provider's cache.
        cost_usd: the cost of producing it, when known.
        text: the writer's raw output (a model's reply), for diagnostics.

    Raises:
        InvalidInputError: both ``sql`` and ``reason`` are set, or a bad count.

    Example:
        >>> SqlDraft(sql="SELECT 1").abstained
        False
        >>> d = SqlDraft.abstain("there is no weather data", understood="weather in Paris")
        >>> d.abstained, d.reason, d.sql
        (True, 'there is no weather data', '')
    """

    sql: str = attrs.field(default="", validator=attrs.validators.instance_of(str))
    reason: str = attrs.field(default="", validator=attrs.validators.instance_of(str))
    understood: str = attrs.field(default="", validator=attrs.validators.instance_of(str))
    model: str = ""
    input_tokens: int | None = attrs.field(default=None, validator=_opt_count)
    output_tokens: int | None = attrs.field(default=None, validator=_opt_count)
    cached_tokens: int = attrs.field(default=0, validator=_opt_count)
    cost_usd: float | None = None
    text: str = ""

    def __attrs_post_init__(self) -> None:
        if self.sql.strip() and self.reason.strip():
            raise InvalidInputError("a SqlDraft holds SQL or an abstention reason, not both")

    @classmethod
    def abstain(
        cls,
        reason: str,
        *,
        understood: str = "",
        model: str = "",
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cost_usd: float | None = None,
        text: str = "",
    ) -> SqlDraft:
        """An abstention: no SQL, and why.

        Args:
            reason: why the question cannot be answered (non-empty).
            understood: what was understood of the question.
            model: the model or writer that abstains.
            input_tokens: prompt tokens, when known.
            output_tokens: completion tokens, when known.
            cost_usd: the cost, when known.
            text: the raw output.

        Returns:
            The draft.

        Raises:
            InvalidInputError: ``reason`` is empty.
        """
        if not isinstance(reason, str) or not reason.strip():
            raise InvalidInputError("an abstention needs a non-empty reason")
        return cls(
            reason=reason.strip(),
            understood=understood,
            model=model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost_usd=cost_usd,
            text=text,
        )

    @property
    def abstained(self) -> bool:
        """Whether the writer abstained (no SQL, a reason)."""
        return bool(self.reason) and not self.sql.strip()


_WORD = re.compile(r"\d+(?:\.\d+)?|[A-Za-z]+")


def build_value_index(values: Values) -> dict[str, tuple[tuple[str, str, str], ...]]:
    """Index stored values by their first lower-cased word.

    Args:
        values: ``(table, column) -> values``.

    Returns:
        ``first word -> ((table, column, value), ...)``; a value is also listed
        under the stem of its first word.

    Example:
        >>> build_value_index({("city", "name"): ("New York",)})["new"]
        (('city', 'name', 'New York'),)
    """
    from avl.text import stem

    out: dict[str, list[tuple[str, str, str]]] = {}
    for (table, column), vals in values.items():
        for v in vals:
            ws = _WORD.findall(v)
            if ws:
                out.setdefault(ws[0].lower(), []).append((table, column, v))
                first = stem(ws[0])
                if first != ws[0].lower():
                    out.setdefault(first, []).append((table, column, v))
    return {k: tuple(v) for k, v in out.items()}


_CREATE = re.compile(r"CREATE\s+TABLE\b.*?\)\s*;", re.I | re.S)


def parse_ddl(
    text: str, *, dialect: str = "sqlite"
) -> tuple[list[TableSpec], list[ForeignKeySpec]]:
    """Read ``CREATE TABLE`` statements into table and foreign-key specs.

    Each statement must end with ``);``. Comments (``-- ...``) are ignored, and a
    statement that does not parse is skipped.

    Args:
        text: any text holding ``CREATE TABLE`` statements.
        dialect: the sqlglot dialect to parse them in.

    Returns:
        ``(tables, foreign_keys)`` in the order they appear.

    Example:
        >>> tables, fks = parse_ddl("CREATE TABLE t (id INT PRIMARY KEY, u INT REFERENCES u(id));")
        >>> [c.name for c in tables[0].columns], tables[0].columns[0].primary_key
        (['id', 'u'], True)
    """
    import sqlglot
    from sqlglot import expressions as exp

    tables: list[TableSpec] = []
    fks: list[ForeignKeySpec] = []
    for block in _CREATE.findall(re.sub(r"--[^\n]*", "", text)):
        try:
            tree = sqlglot.parse_one(block, read=dialect)
        except sqlglot.errors.SqlglotError:
            continue
        schema = tree.this if isinstance(tree.this, exp.Schema) else None
        if schema is None or not isinstance(schema.this, exp.Table):
            continue
        tname = schema.this.name
        cols: list[ColumnSpec] = []
        for node in schema.expressions:
            if isinstance(node, exp.ColumnDef):
                kind = node.args.get("kind")
                pk = False
                for c in node.constraints:
                    if isinstance(c.kind, exp.PrimaryKeyColumnConstraint):
                        pk = True
                    ref = c.kind if isinstance(c.kind, exp.Reference) else None
                    if ref is not None and isinstance(ref.this, exp.Schema):
                        fks.append(
                            ForeignKeySpec(
                                table=tname,
                                columns=[node.name],
                                ref_table=ref.this.this.name,
                                ref_columns=[e.name for e in ref.this.expressions],
                            )
                        )
                cols.append(
                    ColumnSpec(name=node.name, type=kind.sql() if kind else "", primary_key=pk)
                )
            elif isinstance(node, exp.ForeignKey):
                ref = node.args.get("reference")
                if ref is not None and isinstance(ref.this, exp.Schema):
                    fks.append(
                        ForeignKeySpec(
                            table=tname,
                            columns=[e.name for e in node.expressions],
                            ref_table=ref.this.this.name,
                            ref_columns=[e.name for e in ref.this.expressions],
                        )
                    )
        tables.append(TableSpec(name=tname, columns=cols))
    return tables, fks
