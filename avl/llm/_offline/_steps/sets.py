"""Step: "both A and B" of one column of a related table as an INTERSECT (pure)."""

from __future__ import annotations

import copy

from avl.llm._offline._intent import Col, Cond, Subquery
from avl.llm._offline._steps._state import State, _link_between, _link_through


def both_values(st: State) -> None:
    """Two values of one column joined by "and" ("students who take both Optics and
    Mechanics"): when that column lives in a table holding many rows per subject,
    no single row holds both, so the rows that have one are intersected with the
    rows that have the other. Of the subject's own column ("customers from Paris and
    Rome") it can only mean either value, and stays an OR."""
    it = st.intent
    if it.setop is not None or it.group or any(x.agg for x in it.select):
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
