"""Steps: what is shown, DISTINCT, related tables, counting rows once (pure)."""

from __future__ import annotations

import attrs

from avl.llm._offline._intent import Col, Intent, Item
from avl.llm._offline._lexicon import (
    ALL_COLUMNS,
    DISTINCT_WORDS,
)
from avl.llm._offline._steps._state import State, _link_between, _related, _role_key


def selection(st: State) -> None:
    """What is shown: the column words no other step used, in the part of the
    question that asks (before a relative clause); else, with nothing counted or
    aggregated, the naming column of the subject (all columns for "all details")."""
    it = st.intent
    asked = [
        c
        for c in st.column_links()
        if (st.in_head(c.start) or not any(x.agg is None for x in it.select))
    ]
    # keep only what lies before a relative clause, unless nothing does
    chosen = [c for c in asked if st.in_head(c.start) and not _role_key(st, c)]
    for c in chosen:
        ci = st.col(c)
        if ci is None:
            continue
        col = Col(c.table, c.column)
        if any(x.col == col and x.agg is None for x in it.select):
            continue
        label = st.label_of(c.table, parent=False)
        if (
            len(label) > 1
            and col == label[0]
            and {st.low(k) for k in range(c.start, c.end)} <= {"name", "names", "full"}
        ):
            # "the names of the employees": every naming column (first and last)
            for j, lc in enumerate(label):
                if not any(x.col == lc for x in it.select):
                    it.select.append(Item(col=lc, pos=c.start + j))
            st.take(c)
            continue
        it.select.append(Item(col=col, pos=c.start))
        st.take(c)
    # "customers and their cities": the rows' label, then the column
    for t in st.links.tables:
        if (
            st.in_head(t.start)
            and t.table == it.subject
            and st.low(t.end) == "and"
            and st.low(t.end + 1) in ("their", "its", "the")
            and any(x.col is not None and x.agg is None and x.pos == t.end + 2 for x in it.select)
        ):
            for lc in st.label_of(t.table):
                if not any(x.col == lc for x in it.select):
                    it.select.append(Item(col=lc, pos=t.start))
            break
    # "the name" of a table with no name column: its naming column ("title")
    covered = {k for c in st.links.columns for k in range(c.start, c.end)}
    for k in range(st.head_start, st.head_end):
        if st.low(k) in ("name", "names") and k not in covered and it.subject:
            for lc in st.label_of(it.subject):
                if not any(x.col == lc for x in it.select):
                    it.select.append(Item(col=lc, pos=k))
            break
    # a table named in the asking part beside the subject: its naming column
    # ("the names of the teachers and their courses")
    if it.select and any(x.agg is None for x in it.select):
        for t in st.links.tables:
            if (
                st.in_head(t.start)
                and t.table != it.subject
                and _conjoined(st, t.start)
                and not any(c.start < t.end and t.start < c.end for c in chosen)
            ):
                for lc in st.label_of(t.table):
                    if not any(x.col == lc for x in it.select):
                        it.select.append(Item(col=lc, pos=t.start))
    if not it.select or (
        st.ranked and not any(x.agg is None for x in it.select) and it.group and not _counted(it)
    ):
        if (
            any(st.low(k) in ALL_COLUMNS for k in range(st.head_start, max(1, st.head_end)))
            and it.subject
        ):
            it.select.append(Item(col=Col(it.subject, "*"), pos=0))
        elif it.subject:
            asked_name = any(
                st.low(k) in ("name", "names", "who") for k in range(st.head_start, st.head_end)
            )
            for lc in st.label_of(it.subject, parent=asked_name):
                it.select.append(Item(col=lc, pos=0))
    elif it.group and not any(x.agg is None for x in it.select):
        # an aggregate per group shows the group's label first
        for g in it.group:
            label = st.label_of(g.table) if g in st.key_of(g.table) else [g]
            for lc in label:
                if not any(x.col == lc for x in it.select):
                    it.select.append(Item(col=lc, pos=-1))
    if it.group:
        for x in list(it.select):
            if x.agg is None and x.col in it.group and x in st.group_items:
                it.select.remove(x)
                it.select.insert(0, attrs.evolve(x, pos=-1))
    it.select.sort(key=lambda x: x.pos)


def _conjoined(st: State, start: int) -> bool:
    """Whether the words before ``start`` add a thing to show ("and the", "as well as
    the corresponding", "along with their")."""
    k = start - 1
    while k >= 0 and st.low(k) in ("the", "their", "its", "all", "corresponding", "respective"):
        k -= 1
    if st.low(k) == "and":
        return True
    return st.low(k) in ("as", "with") and st.low(k - 1) in ("well", "along", "together")


def _counted(it: Intent) -> bool:
    return any(x.agg for x in it.select)


def distinct_rows(st: State) -> None:
    """ "The different X", "distinct X", "unique X" listed (not counted): DISTINCT."""
    it = st.intent
    if any(x.agg for x in it.select):
        return
    for i in range(len(st.q.tokens)):
        if st.low(i) in DISTINCT_WORDS and st.in_head(i):
            it.distinct = True
            st.used.add(i)
            return


def related_tables(st: State) -> None:
    """A table the question names in a clause about the subject ("students who have
    enrollments", "teachers that have a course") restricts the subject to rows with related
    rows: it is joined even when nothing of it is shown or tested."""
    it = st.intent
    have = set(it.tables())
    for t in st.links.tables:
        if t.table in have or t.table == it.subject or any(k in st.used for k in t.span):
            continue
        if not t.complete:
            continue
        if st.in_head(t.start) and not any(lk.start >= st.head_end for lk in st.links.tables):
            continue
        if not _related(st, it.subject, t.table):
            continue
        it.joined.append(t.table)
        st.extra_tables.append(t.table)
        have.add(t.table)


def count_rows_once(st: State) -> None:
    """A count of the subject's rows over a join with a table holding many rows per
    subject ("how many students took a course") counts each subject once:
    COUNT(DISTINCT key)."""
    it = st.intent
    if not it.subject or it.group:
        return
    counts = [x for x in it.select if x.agg == "COUNT" and x.col is None]
    if not counts:
        return
    from avl.llm._offline._joins import plan_joins

    plan = plan_joins(st.schema, it.subject, it.tables())
    many = any(_link_between(st, it.subject, step.table) is not None for step in plan.steps)
    key = st.key_of(it.subject)
    if many and key:
        it.select = [
            Item(col=key[0], agg="COUNT", distinct=True, pos=x.pos) if x in counts else x
            for x in it.select
        ]
