"""Step: GROUP BY, and the helpers that group (pure)."""

from __future__ import annotations

from avl.llm._offline._intent import Col, Item
from avl.llm._offline._lexicon import (
    ORDER_WORDS,
)
from avl.llm._offline._linking import Link
from avl.llm._offline._steps._cues import _group_cues
from avl.llm._offline._steps._state import State, _is_category, _role_key


def grouping(st: State) -> None:
    """ "For each X", "per X", "X and the number of Y": GROUP BY X when something is
    counted or aggregated (a column X groups by itself, a table X by its key and
    shows its naming column); "by X" groups the same way after a count."""
    it = st.intent
    has_agg = any(x.agg for x in it.select)
    if not has_agg and not st.needs_group:
        return
    cues = _group_cues(st)
    if has_agg:
        for i in range(1, len(st.q.tokens)):
            if (
                st.low(i) == "by"
                and st.low(i - 1) not in ORDER_WORDS
                and not any(c.start <= i - 1 < c.end for c in st.links.columns)
                and not st.low(i - 1).endswith("ed")
                and st.table_after(i, window=2) is None
                and st.links.value_at(i + 1) is None
                and st.links.value_at(i + 2) is None
            ):
                cues.append(i + 1)
    for g in cues:
        lk = st.column_after(g - 1, window=3)
        table = st.table_after(g - 1, window=3)
        if lk is not None and (table is None or lk.start <= table.start):
            st.take(lk)
            _group_by_column(st, lk, lk.start)
            return
        if table is not None:
            _group_by_table(st, table.table, table.start)
            st.used.update(table.span)
            return
    # no cue: a column asked for before the aggregate ("the cities and the number
    # of customers in them", "the ids and their number of orders")
    if has_agg and not any(x.agg is None for x in it.select):
        first_agg = min(x.pos for x in it.select if x.agg)
        aggregated = {x.col for x in it.select if x.agg and x.col is not None}
        heads = [
            c
            for c in st.column_links()
            if c.start < first_agg
            and (ci := st.col(c)) is not None
            and not ci.measure
            and Col(c.table, c.column) not in aggregated
        ]
        if heads:
            st.take(heads[0])
            _group_by_column(st, heads[0], heads[0].start)
            return
    if st.needs_group and not it.group:
        _group_for_having(st)


def _group_for_having(st: State) -> None:
    """A count condition groups by the one thing asked for when it is a category
    ("cities with at least 4 students"), else by the subject's key ("students with
    at least 3 courses", "the id and name of teachers with 2 courses")."""
    it = st.intent
    head = _group_column(st)
    if head is not None:
        st.take(head)
        _group_by_column(st, head, head.start)
        return
    if it.subject:
        _group_by_table(st, it.subject, -1)


def _group_by_column(st: State, lk: Link, pos: int) -> None:
    col = Col(lk.table, lk.column)
    st.intent.group.append(col)
    item = Item(col=col, pos=pos)
    st.intent.select.append(item)
    st.group_items.append(item)
    st.intent.notes.append(f"grouped by {lk.column}")


def _group_by_table(st: State, table: str, pos: int) -> None:
    key = st.key_of(table)
    if not key:
        return
    st.intent.group.extend(key)
    if pos >= 0:
        for c in st.label_of(table):
            st.intent.select.append(Item(col=c, pos=-1))
    if table != st.intent.subject and table not in st.extra_tables:
        st.extra_tables.append(table)
    st.intent.notes.append(f"grouped by {table}")


def _head_category(st: State) -> Link | None:
    for c in st.column_links():
        ci = st.col(c)
        if st.in_head(c.start) and ci is not None and _is_category(ci):
            return c
    return None


def _group_column(st: State) -> Link | None:
    """The one column the question asks for, when it can group rows: not a key,
    not the naming column of its table ("which city has the most students",
    "cities shared by two students"); ``None`` when several columns are asked
    or the one asked names the rows themselves."""
    heads = [c for c in st.column_links() if st.in_head(c.start) and not _role_key(st, c)]
    if len(heads) != 1:
        return None
    ci = st.col(heads[0])
    if ci is None or ci.primary or (ci.is_key and not ci.temporal):
        return None
    named = [c.name for c in st.schema.naming_columns(heads[0].table)]
    if ci.name in named:
        return None
    return heads[0]
