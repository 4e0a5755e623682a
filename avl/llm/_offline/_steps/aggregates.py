"""Steps: counts and aggregates (pure)."""

from __future__ import annotations

from avl.llm._offline._intent import Col, Item, Subquery
from avl.llm._offline._lexicon import (
    DISTINCT_WORDS,
    FUNCTION_WORDS,
    KIND_WORDS,
    MAX_WORDS,
    MIN_WORDS,
    SUM_AFTER,
)
from avl.llm._offline._linking import Link
from avl.llm._offline._steps._cues import _count_cues, _superlatives
from avl.llm._offline._steps._state import _FILLER, _NO_COLUMN, State, _agg_of, _is_measure
from avl.text import STOPWORDS


def counting(st: State) -> None:
    """ "How many X", "the number of X", "count the X": COUNT(*) of the subject's
    rows; of the distinct values when X is a column ("how many different
    cities"); no count at all when X is a number column ("the number of seats" is
    the column)."""
    it = st.intent
    for s, e in _count_cues(st):
        # "the most number of X", "the greatest amount of X": a ranking's measure
        if s > 0 and (st.low(s - 1) in MAX_WORDS or st.low(s - 1) in MIN_WORDS):
            continue
        # "the phone numbers of": the plural of a column's name, not a count
        if st.low(s) in ("number", "numbers") and any(c.end == s for c in st.links.columns):
            continue
        # "number of X" that is itself a column name ("num_of_staff")
        if any(c.start <= s < c.end for c in st.links.columns):
            lk = next(c for c in st.links.columns if c.start <= s < c.end)
            ci = st.col(lk)
            if ci is not None and ci.numeric:
                continue
        if st.low(s) == "amount" and not st.table_after(e - 1):
            continue  # "the amount of money": a measure, not a count
        j = e
        distinct = False
        while st.low(j) in DISTINCT_WORDS or st.low(j) in _FILLER or st.low(j) in KIND_WORDS:
            distinct = distinct or st.low(j) in DISTINCT_WORDS or st.low(j) in KIND_WORDS
            j += 1
        table = st.table_after(e - 1, window=j - e + 2)
        col = st.column_after(e - 1, window=j - e + 2)
        if col is not None and (table is None or col.start < table.start):
            ci = st.col(col)
            if ci is not None and ci.measure:
                continue  # "the number of staff" with a staff-count column: the column
            if ci is not None and not (distinct or not ci.primary):
                st.take(col)  # "the number of courses" (a key part): the rows
            if ci is not None and (distinct or not ci.primary):
                st.take(col)
                it.select.append(
                    Item(col=Col(col.table, col.column), agg="COUNT", distinct=True, pos=s)
                )
                # "the number of different names and cities": each one
                nxt = col
                while st.low(nxt.end) in ("and", ","):
                    more = st.column_after(nxt.end, window=2, want=lambda c: not c.measure)
                    if more is None:
                        break
                    st.take(more)
                    it.select.append(
                        Item(
                            col=Col(more.table, more.column),
                            agg="COUNT",
                            distinct=True,
                            pos=more.start,
                        )
                    )
                    nxt = more
                st.used.update(range(s, e))
                st.count_spans.append((s, e))
                it.notes.append(f"count of distinct {col.column}")
                continue
        if table is not None and not it.subject:
            it.subject = table.table
        counted = table.table if table is not None else it.subject
        if table is not None and table.table != it.subject:
            # "how many X" names the rows counted: they are the subject
            if st.in_head(table.start) or st.links.tables[0] is table:
                it.subject = table.table
            elif table.table not in st.extra_tables:
                st.extra_tables.append(table.table)
        it.select.append(Item(agg="COUNT", pos=s))
        st.used.update(range(s, e))
        st.count_spans.append((s, e))
        it.notes.append(f"count of {counted}")


def aggregates(st: State) -> None:
    """ "The average / total / maximum / minimum X": the aggregate of the number
    column after it (several aggregates may share one column: "the average and
    maximum price"); "X in total" sums X."""
    it = st.intent
    n = len(st.q.tokens)
    superlative = bool(_superlatives(st))
    for i in range(n):
        w = st.low(i)
        if i in st.used:
            continue
        if (
            w == "how"
            and st.low(i + 1) == "much"
            and not superlative
            and not any(st.low(k) in ("each", "every", "per") for k in range(i, i + 6))
        ):
            target = _agg_target(st, i + 1)
            if target is not None and not _is_measure(st.col(target) or _NO_COLUMN):
                target = None
            if target is not None:
                st.take(target)
                it.select.append(Item(col=Col(target.table, target.column), agg="SUM", pos=i))
                st.used.update({i, i + 1})
                it.notes.append(f"sum of {target.column}")
            continue
        if w in SUM_AFTER and not any(x.agg for x in it.select):
            target = st.column_before(i, window=8, want=_is_measure)
            if target is not None and not superlative:
                st.take(target)
                it.select.append(
                    Item(col=Col(target.table, target.column), agg="SUM", pos=target.start)
                )
                st.used.add(i)
                it.notes.append(f"sum of {target.column}")
            continue
        fn = _agg_of(w)
        if fn is None:
            continue
        if w == "total" and st.low(i + 1) in ("number", "count"):
            continue  # "the total number of X": a count
        if w == "total" and st.low(i - 1) == "in":
            continue  # "X in total": read by the ranking step
        if any(s <= i < e for s, e in st.count_spans):
            continue
        # "above the average X" was read as a comparison
        if any(isinstance(c.value, Subquery) and c.pos == i for c in it.where):
            continue
        own = [
            c for c in st.links.columns if c.start <= i < c.end and (c.start, c.end) not in st.taken
        ]
        if own and (st.col(own[0]) or _NO_COLUMN).numeric:
            # the word names a number column ("the order total"): with another
            # aggregate or superlative before it, it is only that column
            before = range(max(0, i - 4), i)
            if any(_agg_of(st.low(k)) or st.low(k) in MAX_WORDS | MIN_WORDS for k in before):
                continue
        target = _agg_target(st, i)
        if target is None and own and (ci := st.col(own[0])) is not None and ci.numeric:
            target = own[0]  # "the total of all orders": the sum of the total column
        if target is None:
            continue
        st.take(target)
        st.agg_spans.add((target.start, target.end))
        for c in own:
            if (c.start, c.end) != (target.start, target.end):
                st.taken.add((c.start, c.end))  # the aggregate word is no column here
        it.select.append(Item(col=Col(target.table, target.column), agg=fn, pos=i))
        st.used.add(i)
        it.notes.append(f"{fn.lower()} of {target.column}")


def _agg_target(st: State, i: int) -> Link | None:
    """The number column an aggregate word applies to: the first one after it
    (skipping other aggregate words and "and"), else the one just before it."""
    n = len(st.q.tokens)
    j = i + 1
    while j < n and j <= i + 8:
        w = st.low(j)
        spans = [
            (s, e)
            for s, e in st.links.column_spans()
            if s == j and ((s, e) not in st.taken or (s, e) in st.agg_spans)
        ]
        for s, e in spans:
            lk = st.pick(s, e, want=_is_measure)
            if lk is not None:
                return lk
        # a column declared as text that holds numbers ("age" stored as text)
        for s, e in spans:
            lk = st.pick(s, e, want=lambda c: not c.is_key and not c.temporal)
            if lk is not None:
                return lk
        if spans:
            break
        if not spans and st.q.tokens[j].punct and st.low(j) != ",":
            break
        if (
            w in _FILLER
            or w in ("and", ",", "number")
            or _agg_of(w)
            or w in MAX_WORDS
            or w in MIN_WORDS
        ):
            j += 1
            continue
        if w in STOPWORDS or w in FUNCTION_WORDS:
            j += 1
            continue
        if j == i + 1 and st.low(j + 1) in ("in", "of"):
            j += 2  # "the average duration in milliseconds"
            continue
        break
    return st.column_before(i, window=2, want=_is_measure)
