"""Step: "both A and B" of one column of a related table as an INTERSECT (pure)."""

from __future__ import annotations

import copy

import attrs

from avl.llm._offline._intent import Col, Cond, Subquery
from avl.llm._offline._steps._state import State, _link_between, _link_through


def _both_tables(st: State) -> bool:
    """ "The cities where both customers and suppliers live": the one column asked
    for, taken from each of two tables that have it, intersected ("either ... or":
    their union)."""
    it = st.intent
    toks = st.q.tokens
    for i in range(len(toks)):
        if st.low(i) not in ("both", "either"):
            continue
        after = [t for t in st.links.tables if i < t.start <= i + 3]
        if not after:
            continue
        a = after[0]
        join = "and" if st.low(i) == "both" else "or"
        if st.low(a.end) != join:
            continue
        b = next((t for t in st.links.tables if a.end < t.start <= a.end + 2), None)
        if b is None or b.table == a.table:
            continue
        shown = [x for x in it.select if x.agg is None and x.col is not None and x.pos < i]
        if len(shown) != 1:
            continue
        assert shown[0].col is not None
        name = shown[0].col.column
        ta, tb = st.schema.table(a.table), st.schema.table(b.table)
        ca = ta.column(name) if ta is not None else None
        cb = tb.column(name) if tb is not None else None
        if ca is None or cb is None:
            continue
        it.subject = a.table
        it.select = [attrs.evolve(shown[0], col=Col(a.table, ca.name))]
        it.where = [c for c in it.where if c.col.table == a.table]
        it.joined = []
        other = copy.deepcopy(it)
        other.subject = b.table
        other.select = [attrs.evolve(shown[0], col=Col(b.table, cb.name))]
        other.where = []
        other.order = []
        other.limit = None
        it.setop = ("INTERSECT" if join == "and" else "UNION", other)
        it.notes.append(f"{name} of both {a.table} and {b.table}")
        return True
    return False


def both_values(st: State) -> None:
    """Two values of one column joined by "and" ("students who take both Optics and
    Mechanics"): when that column lives in a table holding many rows per subject,
    no single row holds both, so the rows that have one are intersected with the
    rows that have the other. Of the subject's own column ("customers from Paris and
    Rome") it can only mean either value, and stays an OR."""
    it = st.intent
    if it.setop is not None or it.group or any(x.agg for x in it.select):
        return
    if _both_tables(st):
        return
    by_col: dict[Col, list[Cond]] = {}
    for c in it.where:
        if c.op == "=" and not c.either and not isinstance(c.value, Subquery):
            by_col.setdefault(c.col, []).append(c)
    for col, conds in by_col.items():
        if len(conds) != 2 or col.table == it.subject:
            continue
        a, b = sorted(conds, key=lambda c: c.pos)
        between = {st.low(k) for k in range(a.pos, b.pos)}
        if "or" in between or "and" not in between | {st.low(a.pos - 1), st.low(a.pos - 2)}:
            continue
        if (
            _link_between(st, it.subject, col.table) is None
            and _link_through(st, it.subject, col.table) is None
        ):
            continue
        other = copy.deepcopy(it)
        other.where = [c for c in it.where if c is not a]
        it.where = [c for c in it.where if c is not b]
        it.setop = ("INTERSECT", other)
        it.notes.append(f"both {a.value!r} and {b.value!r}")
        return
