"""The caller's view: what one role, in one context, may read (the one scoping function).

Everything the Assistant shows a model, a cache or a tool is built from a
:class:`SchemaView`, and :func:`policy_view` is the only place that makes one. It
asks the caller's guard itself (SafeQuery, or any object with ``check``) whether
each table and column may be read, with the caller's row-filter parameters, so the
view is exactly what the guard would let a query read: no second reading of the
policy's rules that could drift from the checker's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType

import attrs

from avl.schema import ColumnSpec, ForeignKeySpec, TableSpec, Values
from avl.typing import Guard

__all__ = ["SchemaView", "policy_view", "probe_sql"]

#: The comment that marks a row-filtered table in the view (and so in prompts).
FILTERED_NOTE = "rows are filtered for you by your access policy"

_WORD = re.compile(r"[A-Za-z0-9_]+")


def _lower_set(value: Iterable[str]) -> frozenset[str]:
    return frozenset(v.lower() for v in value)


def _frozen_values(value: Values) -> Values:
    return MappingProxyType(dict(value))


@attrs.frozen(kw_only=True)
class SchemaView:
    """What one caller may read, derived from their guard and context.

    Attributes:
        tables: the readable tables, each with only its readable columns; sample
            values only from what the caller may read (none when the Assistant's
            ``sample_values`` is off).
        foreign_keys: the foreign keys whose two ends are both readable.
        filtered: lower-cased names of the tables a row filter narrows for the
            caller (marked in their comment).
        hidden: lower-cased names of tables and columns the caller may not read
            and that no readable table or column shares: text that mentions one is
            kept out of the prompt.
        values: ``(table, column) -> stored values`` the caller may read, for
            linking words to values in a writer that runs in this process.
    """

    tables: tuple[TableSpec, ...] = ()
    foreign_keys: tuple[ForeignKeySpec, ...] = ()
    filtered: frozenset[str] = attrs.field(default=frozenset(), converter=_lower_set)
    hidden: frozenset[str] = attrs.field(default=frozenset(), converter=_lower_set)
    values: Values = attrs.field(factory=dict, converter=_frozen_values)

    def table(self, name: str) -> TableSpec | None:
        """The readable table called ``name`` (case-insensitive), or ``None``."""
        low = name.lower()
        for t in self.tables:
            if t.name.lower() == low:
                return t
        return None

    def mentions_hidden(self, text: str) -> bool:
        """Whether ``text`` names a hidden table or column (as a whole word)."""
        if not self.hidden:
            return False
        low = text.lower()
        return any(w in self.hidden for w in _WORD.findall(low)) or any(
            h in low for h in self.hidden if not _WORD.fullmatch(h)
        )

    def redact(self, text: str) -> str:
        """``text`` with every hidden name replaced by ``<hidden>``."""
        if not self.hidden:
            return text
        out = _WORD.sub(
            lambda m: "<hidden>" if m.group().lower() in self.hidden else m.group(), text
        )
        for h in self.hidden:
            if not _WORD.fullmatch(h):
                out = re.sub(re.escape(h), "<hidden>", out, flags=re.I)
        return out

    def redact_error(self, error: str, sql: str) -> str:
        """A database's error text, safe to show a model: hidden names replaced by
        ``<hidden>``, and every quoted piece that is neither in ``sql`` (what the
        writer wrote) nor a readable table or column name replaced by ``<value>``
        (a failing cast can quote a stored value the caller's row filter hides)."""
        known = {n.lower() for t in self.tables for n in (t.name, *(c.name for c in t.columns))}

        def keep(m: re.Match[str]) -> str:
            inner = m.group(2)
            if not inner or inner in sql or inner.lower() in known:
                return m.group(0)
            return f"{m.group(1)}<value>{m.group(1)}"

        return self.redact(_QUOTED.sub(keep, error))


_QUOTED = re.compile(r"""(["'`])(.{0,200}?)\1""")


def probe_sql(table: str, columns: Sequence[str], dialect: str) -> str:
    """``SELECT <columns> FROM <table>`` with every name quoted in ``dialect``.

    A snapshot's ``schema.table`` name is quoted part by part (``"sales"."invoices"``),
    as :meth:`Database.quote` does, so the probe names the table the policy names.
    """
    from sqlglot import expressions as exp

    select = exp.select(*(exp.column(c, quoted=True) for c in columns))
    parts = table.split(".") if 1 < len(table.split(".")) <= 3 else [table]
    padded: list[str | None] = [*reversed(parts), None, None]
    name, db, catalog = padded[:3]
    assert name is not None
    return select.from_(exp.table_(name, db=db, catalog=catalog, quoted=True)).sql(dialect=dialect)


def _is_filtered(sql: str | None) -> bool:
    # the guard's rewrite of a bare SELECT holds a WHERE only when a row filter applies
    if not sql:
        return False
    import sqlglot
    from sqlglot import expressions as exp

    try:
        tree = sqlglot.parse_one(sql)
    except (sqlglot.errors.SqlglotError, ValueError):
        return True  # cannot tell: treat as filtered (no unscoped samples)
    return tree.find(exp.Where) is not None


Sampler = Callable[[TableSpec, Sequence[str]], Mapping[str, tuple[str, ...]]]


def policy_view(
    guard: Guard,
    tables: Sequence[TableSpec],
    foreign_keys: Sequence[ForeignKeySpec],
    *,
    dialect: str,
    params: Mapping[str, object] | None,
    samples: bool,
    values: Values,
    sample_filtered: Sampler | None = None,
) -> SchemaView:
    """The caller's view of the schema: the one function every path scopes through.

    For each table the guard is asked whether ``SELECT <all columns> FROM table``
    may run with the caller's ``params``; when not, each column alone. A table
    with no readable column is left out; a table whose rewrite carries a row
    filter is marked. Sample values and stored values are kept only for readable
    columns of tables without a row filter; for row-filtered tables they come from
    ``sample_filtered`` (which reads them through the guard, under the filter) or
    not at all.

    Args:
        guard: the caller's guard (``check(sql, params) -> verdict``).
        tables: every known table.
        foreign_keys: every known foreign key.
        dialect: the SQL dialect of the probes.
        params: the caller's row-filter parameters.
        samples: keep sample values (the Assistant's ``sample_values``).
        values: every stored value known for linking (``(table, column) -> values``).
        sample_filtered: reads the values of some columns of a row-filtered table
            as the caller may see them.

    Returns:
        The view.
    """
    shown: list[TableSpec] = []
    filtered: set[str] = set()
    visible_names: set[str] = set()
    hidden: set[str] = set()
    scoped: dict[tuple[str, str], tuple[str, ...]] = {}
    for t in tables:
        if not t.columns:
            continue
        names = [c.name for c in t.columns]
        verdict = guard.check(probe_sql(t.name, names, dialect), params)
        if verdict.allowed:
            readable = list(t.columns)
            is_filtered = _is_filtered(verdict.sql)
        else:
            readable, is_filtered = [], False
            for c in t.columns:
                v = guard.check(probe_sql(t.name, [c.name], dialect), params)
                if v.allowed:
                    readable.append(c)
                    is_filtered = is_filtered or _is_filtered(v.sql)
        if not readable:
            hidden.add(t.name.lower())
            hidden.update(c.name.lower() for c in t.columns)
            continue
        kept = {c.name for c in readable}
        hidden.update(c.name.lower() for c in t.columns if c.name not in kept)
        visible_names.add(t.name.lower())
        visible_names.update(c.name.lower() for c in readable)
        fetched: Mapping[str, tuple[str, ...]] = {}
        if is_filtered:
            filtered.add(t.name.lower())
            want = [c.name for c in readable if (t.name, c.name) in values or c.samples]
            if sample_filtered is not None and want:
                fetched = sample_filtered(t, want)
            for name, vals in fetched.items():
                if (t.name, name) in values:
                    scoped[(t.name, name)] = vals
        else:
            for c in readable:
                if (t.name, c.name) in values:
                    scoped[(t.name, c.name)] = values[(t.name, c.name)]
        cols: list[ColumnSpec] = []
        for c in readable:
            if not samples:
                keep: tuple[str, ...] = ()
            elif is_filtered:
                keep = tuple(fetched.get(c.name, ())[: max(len(c.samples), 3)])
            else:
                keep = c.samples
            cols.append(c if keep == c.samples else attrs.evolve(c, samples=keep))
        comment = t.comment
        if is_filtered:
            comment = f"{comment} ({FILTERED_NOTE})" if comment else FILTERED_NOTE
        if (
            len(cols) == len(t.columns)
            and comment == t.comment
            and all(a is b for a, b in zip(cols, t.columns, strict=True))
        ):
            shown.append(t)
        else:
            shown.append(attrs.evolve(t, columns=cols, comment=comment))
    readable_cols = {(t.name.lower(), c.name.lower()) for t in shown for c in t.columns}
    fks = tuple(
        fk
        for fk in foreign_keys
        if all((fk.table.lower(), c.lower()) in readable_cols for c in fk.columns)
        and all((fk.ref_table.lower(), c.lower()) in readable_cols for c in fk.ref_columns)
    )
    return SchemaView(
        tables=tuple(shown),
        foreign_keys=fks,
        filtered=filtered,
        hidden=hidden - visible_names,
        values=scoped,
    )
