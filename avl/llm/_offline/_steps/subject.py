"""Step: the table the question is about (pure)."""

from __future__ import annotations

from avl.llm._offline._lexicon import (
    NEGATIONS,
)
from avl.llm._offline._steps._state import _COMMAND_STARTS, _RELATIVE, State


# ====================================================================== steps
def choose_subject(st: State) -> None:
    """The table the question is about: the first table it names; else the table of
    the first column it names; else the table of the first stored value."""
    it = st.intent
    n = len(st.q.tokens)
    st.head_end = n
    first_table = st.links.tables[0] if st.links.tables else None
    cols = st.column_links(free=False)
    first_col = cols[0] if cols else None
    value = next((v for v in st.links.values if v.kind == "value"), None)
    if (
        first_table is not None
        and first_table.score < 0.95
        and value is not None
        and len(st.links.tables) == 1
    ):
        # a table named only by a verb form ("who visited X") does not outweigh
        # the table of a stored value
        it.subject = value.table
    elif first_table is not None and (first_col is None or first_table.start <= first_col.start):
        it.subject = first_table.table
    elif first_col is not None:
        # "the names of the club members": the table the phrase names, even when
        # the column is reached through another table
        owner = st.owner_of(first_col.start, first_col.end)
        it.subject = owner or first_col.table
    elif st.links.values and st.links.values[0].table:
        it.subject = st.links.values[0].table
    elif st.schema.tables:
        it.subject = st.schema.tables[0].name
    # a later sentence that starts with a command asks for what is shown
    for i in range(1, n - 1):
        if st.low(i) in ("?", ".", ";") and st.low(i + 1) in _COMMAND_STARTS:
            st.head_start = i + 1
    # the thing asked for ends where a relative clause starts
    first = min(
        [lk.start for lk in (*st.links.tables, *st.links.columns) if lk.start >= st.head_start]
        or [st.head_start]
    )
    for i in range(first + 1, n):
        if st.low(i) in _RELATIVE or st.q.tokens[i].low in NEGATIONS:
            st.head_end = i
            break
    if it.subject:
        it.notes.append(f"the table {it.subject}")
