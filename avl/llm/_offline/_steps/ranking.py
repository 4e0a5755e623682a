"""Steps: ranking by superlatives, ordering and the limit (pure)."""

from __future__ import annotations

import attrs

from avl.llm._offline._intent import Col, Item, Order
from avl.llm._offline._lexicon import (
    ALPHABETICAL,
    ASC_PHRASES,
    AVG_WORDS,
    DESC_PHRASES,
    FREQUENCY_WORDS,
    MIN_WORDS,
    ORDER_WORDS,
    SELF_MEASURED,
)
from avl.llm._offline._linking import Link
from avl.llm._offline._steps._cues import _ordering_word, _superlatives, _top_n
from avl.llm._offline._steps._state import State, _agg_of, _is_category, _is_measure, _related
from avl.llm._offline._steps.grouping import _group_by_column, _group_column, _head_category


def ranking(st: State) -> None:
    """Superlatives rank rows or groups and keep the first N:

    - "the X with the most Y" (Y a related table) groups by X and orders by the
      count; "the most common X" groups by the column X;
    - "the X with the highest Y" orders by the number column Y; "the highest
      average/total Y" per X orders by that aggregate;
    - "the oldest X", "the cheapest X" order by the column the word names;
    - "the latest X" orders by X's date;
    - with nothing else asked ("what is the highest price?") it is MAX/MIN.
    """
    it = st.intent
    if any(o for o in it.order):
        return
    for pos, desc, kind in _superlatives(st):
        if kind == "common":
            target = st.column_after(pos, window=3, want=_is_category) or _head_category(st)
            if target is None:
                continue
            _rank_by_count(st, target, desc=False, pos=pos)
            return
        if kind == "max":
            nxt = st.low(pos + 1)
            # "the most common X" / "X ... most popular"
            if nxt in FREQUENCY_WORDS or (
                st.low(pos - 1) == "most" and st.low(pos) in FREQUENCY_WORDS
            ):
                d = st.low(pos) not in MIN_WORDS
                # "the most common department in all courses": a table ranked by its rows
                # in another table
                tbl = st.table_after(pos + 1, window=2)
                other = [
                    t
                    for t in st.links.tables
                    if tbl is not None and t.table != tbl.table and t.start > tbl.end
                ]
                if tbl is not None and other:
                    it.subject = tbl.table
                    _rank_by_related_count(st, other[0], d, pos)
                    return
                target = st.column_after(pos + 1, window=2, want=_is_category) or _head_category(st)
                if target is not None:
                    _rank_by_count(st, target, desc=d, pos=pos)
                    return
            if st.low(pos) == "most" and st.low(pos - 1) in ("the",) and nxt in FREQUENCY_WORDS:
                continue
            # "the most Y" where Y is a related table, or "the largest number of Y"
            j = pos + 1
            if st.phrase_at((("number", "of"), ("count", "of"), ("amount", "of")), j):
                j += 2
            # "the highest average salary": an aggregate of a number column
            if st.low(j) in AVG_WORDS or st.low(j) in ("total", "sum", "combined"):
                if any(x.agg and x.pos == j for x in it.select) and _rank_by_aggregate(
                    st, desc, pos
                ):
                    return  # the aggregate read for that word ranks instead
                measure = st.column_after(j, window=4, want=_is_measure)
                if measure is not None:
                    _rank_by_measure(st, measure, desc, pos)
                    return
            # "the top 3 students by gpa"
            by = st.by_column(pos, want=_is_measure)
            if by is not None:
                _rank_by_measure(st, by, desc, pos)
                return
            table = st.table_after(j - 1, window=2)
            if table is not None and table.table != it.subject:
                _rank_by_related_count(st, table, desc, pos)
                return
            if table is not None and table.table == it.subject and _counting_superlative(st, pos):
                # "which city has the most students": a category of the subject's rows
                head = _group_column(st)
                if head is not None:
                    _rank_by_count(st, head, desc=desc, pos=pos)
                    st.used.update(table.span)
                    return
            # "the most courses" where courses are rows of a related table
            rel = st.column_after(j - 1, window=2, want=lambda c: not c.measure)
            if rel is not None and rel.table != it.subject and _related(st, it.subject, rel.table):
                st.take(rel)
                _rank_by_related_count(
                    st, Link(start=rel.start, end=rel.end, kind="table", table=rel.table), desc, pos
                )
                return
            measure = (
                st.column_after(j - 1, window=4, want=_is_measure)
                or (
                    st.low(pos - 1) != "of"
                    and st.low(pos - 2) != "of"
                    and st.column_before(pos, window=2, want=_is_measure)
                )
                or None
                # "the highest rating" stored as text
                or st.column_after(j - 1, window=2, want=lambda c: not c.is_key and not c.temporal)
            )
            if measure is None and st.low(pos) in ("most", "least", "fewest") and table is None:
                # "the course taken most times": rows of a related table per subject
                if st.low(pos + 1) in ("times", "often", "frequently"):
                    related = [
                        t
                        for t in st.links.tables
                        if t.table != it.subject and _related(st, it.subject, t.table)
                    ]
                    if related:
                        _rank_by_related_count(st, related[0], desc, pos)
                        return
                continue
            if measure is None:
                if _rank_by_aggregate(st, desc, pos):
                    return
                continue
            _rank_by_measure(st, measure, desc, pos)
            return
        if kind == "self":
            own = [c for c in st.links.columns if c.start <= pos < c.end]
            if not own and st.low(pos) in ("oldest", "eldest", "youngest"):
                # no age column: the birth date or year, the other way round
                born = _birth_column(st)
                if born is not None:
                    _rank_by_measure(st, born, not desc, pos)
                    return
            if not own:
                by = st.by_column(pos)
                if by is not None:
                    _rank_by_measure(st, by, desc, pos)
                    return
                continue
            lk = st.pick(own[0].start, own[0].end)
            if lk is None:
                continue
            ci = st.col(lk)
            d = desc
            if ci is not None and ci.temporal and st.low(pos) in ("oldest", "eldest", "youngest"):
                d = not desc  # the oldest was born first
            _rank_by_measure(st, lk, d, pos)
            return
        if kind == "recent":
            lk = st.column_after(pos, window=4, want=lambda c: c.temporal, free=False)
            if lk is None:
                lk = st.column_before(pos, window=3, want=lambda c: c.temporal, free=False)
            if lk is None and it.subject:
                ti = st.schema.table(it.subject)
                dated = [c for c in (ti.columns if ti else ()) if c.temporal and not c.numeric] or [
                    c for c in (ti.columns if ti else ()) if c.temporal
                ]
                if dated:
                    lk = Link(
                        start=pos,
                        end=pos + 1,
                        kind="column",
                        table=it.subject,
                        column=dated[0].name,
                    )
            if lk is None:
                continue
            st.take(lk)
            it.order.append(Order(item=Item(col=Col(lk.table, lk.column)), desc=desc))
            it.limit = it.limit or 1
            st.ranked = True
            st.used.add(pos)
            it.notes.append(f"the {'latest' if desc else 'earliest'} by {lk.column}")
            return


def _rank_by_count(st: State, target: Link, *, desc: bool, pos: int) -> None:
    it = st.intent
    st.take(target)
    col = Col(target.table, target.column)
    if col not in it.group:
        it.group.append(col)
        it.select.append(Item(col=col, pos=target.start))
    it.order.append(Order(item=Item(agg="COUNT"), desc=desc))
    it.limit = it.limit or 1
    st.ranked = True
    st.used.add(pos)
    it.notes.append(f"the {'most' if desc else 'least'} common {target.column}")


def _rank_by_related_count(st: State, table: Link, desc: bool, pos: int) -> None:
    """Group the subject by its key and order by how many related rows it has."""
    it = st.intent
    subject = it.subject
    head = _group_column(st)
    if head is not None and head.table == table.table:
        _rank_by_count(st, head, desc=desc, pos=pos)
        return
    if not it.group:
        if head is not None and head.table == subject:
            st.take(head)
            _group_by_column(st, head, head.start)
        else:
            it.group.extend(st.key_of(subject))
    if table.table not in st.extra_tables:
        st.extra_tables.append(table.table)
    it.order.append(Order(item=Item(agg="COUNT"), desc=desc))
    it.limit = it.limit or 1
    st.ranked = True
    st.used.update(table.span)
    st.used.add(pos)
    it.notes.append(f"the {subject} with the {'most' if desc else 'fewest'} {table.table}")


def _counting_superlative(st: State, pos: int) -> bool:
    """ "The most", "the fewest", "the largest number of": a count, not a measure."""
    return st.low(pos) in ("most", "fewest", "least") or st.low(pos + 1) in ("number", "amount")


def _birth_column(st: State) -> Link | None:
    """A birth date or year column of the subject (or of a table in play)."""
    for table in st.tables_in_play():
        t = st.schema.table(table)
        if t is None:
            continue
        for c in t.columns:
            if "birth" in c.words and (c.temporal or c.numeric):
                return Link(start=0, end=0, kind="column", table=t.name, column=c.name)
    return None


def _rank_by_aggregate(st: State, desc: bool, pos: int) -> bool:
    """ "The type whose total cost is the lowest": an aggregate read earlier ranks
    the subject's rows instead of being shown, when something else is asked."""
    it = st.intent
    aggs = [x for x in it.select if x.agg in ("SUM", "AVG", "MAX", "MIN") and x.col is not None]
    shown = [x for x in it.select if x.agg is None]
    asked = [c for c in st.column_links() if st.in_head(c.start)]
    if len(aggs) != 1 or not (shown or asked or st.low(0) in ("which", "who")):
        return False
    agg = aggs[0]
    it.select.remove(agg)
    if not it.group and it.subject:
        it.group.extend(st.key_of(it.subject))
    it.order.append(Order(item=attrs.evolve(agg, pos=0), desc=desc))
    it.limit = it.limit or 1
    st.ranked = True
    st.used.add(pos)
    it.notes.append("ranked by an aggregate")
    return True


def _rank_by_measure(st: State, measure: Link, desc: bool, pos: int) -> None:
    """Order by a number column, or by its aggregate per group."""
    it = st.intent
    st.take(measure)
    col = Col(measure.table, measure.column)
    fn = None
    lo = max(0, min(pos, measure.start) - 2)
    hi = min(len(st.q.tokens), max(pos, measure.end) + 4)
    window = [st.low(k) for k in range(lo, hi) if not measure.start <= k < measure.end]
    if any(w in AVG_WORDS for w in window):
        fn = "AVG"
    elif any(w in ("total", "sum", "combined") for w in window) or st.phrase_at(
        (("in", "total"),), measure.end
    ):
        fn = "SUM"
    others = [
        c
        for c in st.column_links()
        if c.start < pos and (c.table, c.column) != (measure.table, measure.column)
    ]
    head_tables = [
        t
        for t in st.links.tables
        if (t.start < max(pos, 1) or t.start in (measure.end, pos + 1))
        and not measure.start <= t.start < measure.end
    ]
    others_extreme = any(
        p2 != pos and k2 == "max" and abs(p2 - pos) <= 4 for p2, _, k2 in _superlatives(st)
    )
    if others_extreme and not others:
        head_tables = []  # "the highest and lowest gpa of students": aggregates
    asks_other = (
        bool(others)
        or bool(head_tables)
        or st.low(0) in ("which", "who", "whose")
        or _top_n(st) is not None  # "the top 3 ...": rows, never one aggregate
    )
    # with nothing else asked it is the aggregate itself
    if not asks_other and not it.select and st.low(pos) not in ("top",):
        for s_, e_ in st.links.column_spans():
            lk = st.pick(s_, e_)
            if lk is not None and (lk.table, lk.column) == (col.table, col.column):
                st.take(lk)
        it.select.append(Item(col=col, agg=fn or ("MAX" if desc else "MIN"), pos=pos))
        st.used.add(pos)
        # "the longest and the shortest": every extreme joined by "and"
        for p2, d2, kind2 in _superlatives(st):
            if p2 == pos or kind2 != "max" or abs(p2 - pos) > 4:
                continue
            between = {st.low(k) for k in range(min(p2, pos) + 1, max(p2, pos))}
            if "and" in between or "," in between:
                it.select.append(Item(col=col, agg="MAX" if d2 else "MIN", pos=p2))
                st.used.add(p2)
        it.notes.append(f"{'max' if desc else 'min'} of {measure.column}")
        return
    category = _head_category(st)
    if category is not None and (category.table, category.column) == (
        measure.table,
        measure.column,
    ):
        category = None
    if fn is None and category is not None and category.table == measure.table and not it.group:
        ci = st.col(category)
        if ci is not None and st.schema.naming_columns(category.table)[:1] != [ci]:
            fn = "SUM"  # "which building has the largest budget": per building
    if fn is not None:
        if not it.group:
            if (
                category is not None
                and (ci2 := st.col(category)) is not None
                and st.schema.naming_columns(category.table)[:1] != [ci2]
            ):
                st.take(category)
                it.group.append(Col(category.table, category.column))
            elif it.subject:
                it.group.extend(st.key_of(it.subject))
        it.order.append(Order(item=Item(col=col, agg=fn), desc=desc))
    else:
        it.order.append(Order(item=Item(col=col), desc=desc))
    it.limit = it.limit or 1
    st.ranked = True
    st.used.add(pos)
    it.notes.append(f"ranked by {measure.column}")


def ordering(st: State) -> None:
    """ "Ordered/sorted by X", "in descending order of X", "alphabetically": ORDER BY
    the column named after the order word (else the one shown before it); "by
    count" / "by frequency" orders by COUNT(*)."""
    it = st.intent
    n = len(st.q.tokens)
    cue = -1
    for i in range(n):
        w = st.low(i)
        if (
            w in ORDER_WORDS
            or w in ALPHABETICAL
            or st.phrase_at(ASC_PHRASES, i)
            or st.phrase_at(DESC_PHRASES, i)
        ):
            if w in ORDER_WORDS and not _ordering_word(st, i):
                continue
            cue = i
            break
    if cue < 0:
        return
    desc = st.direction_desc()
    st.used.add(cue)
    if it.order:
        # a ranking already orders; the words only give the direction
        return
    if any(st.low(k) in ALPHABETICAL for k in range(cue, min(n, cue + 8))):
        target = _shown_text_column(st)
        if target is not None:
            it.order.append(Order(item=Item(col=target), desc=False))
            it.notes.append(f"ordered by {target.column}")
            return
    # by count / frequency
    for k in range(cue, min(n, cue + 6)):
        if st.low(k) in ("count", "frequency", "frequencies", "number", "popularity"):
            if st.low(k) == "number" and st.table_after(k + 1, window=2) is None:
                continue
            if not any(c.start <= k < c.end for c in st.links.columns):
                if not it.group:
                    head = _head_category(st)
                    if head is not None:
                        st.take(head)
                        _group_by_column(st, head, head.start)
                it.order.append(Order(item=Item(agg="COUNT"), desc=desc))
                it.notes.append("ordered by count")
                return
    lk = st.column_after(cue, window=6, free=False)
    if lk is None:
        # "... the earnings in descending order": the column shown before
        lk = st.column_before(cue, window=8, free=False)
    if lk is None:
        shown = [x for x in it.select if x.col is not None and x.agg is None]
        if shown:
            assert shown[-1].col is not None
            it.order.append(Order(item=Item(col=shown[-1].col), desc=desc))
        return
    ci = st.col(lk)
    # "ordered by the total X" / "by average X"
    fn = None
    for k in range(max(cue, lk.start - 3), lk.start):
        fn = fn or (_agg_of(st.low(k)) if st.low(k) not in ("total",) or it.group else None)
    if ci is not None and not ci.measure and fn is not None:
        fn = None
    if lk.start > cue:
        st.take(lk)
    it.order.append(Order(item=Item(col=Col(lk.table, lk.column), agg=fn), desc=desc))
    it.notes.append(f"ordered by {lk.column}")


def _shown_text_column(st: State) -> Col | None:
    for c in st.column_links(free=True):
        ci = st.col(c)
        if ci is not None and not ci.numeric and st.in_head(c.start):
            return Col(c.table, c.column)
    for x in st.intent.select:
        if x.col is not None and x.agg is None:
            return x.col
    label = st.label_of(st.intent.subject) if st.intent.subject else []
    return label[0] if label else None


def limit(st: State) -> None:
    """ "Top N", "the first N", "the N largest": LIMIT N (with the ranking's order)."""
    top = _top_n(st)
    if top is None:
        return
    i, n = top
    it = st.intent
    if not it.order:
        # "top 3 X by Y" with no ranking read yet: order by the measure named
        lk = (
            st.by_column(i)
            or st.column_after(i, window=6, want=_is_measure)
            or st.column_before(i, window=4, want=_is_measure)
            or st.column_after(i, window=3, want=lambda c: not c.is_key)
        )
        if lk is None:
            return
        st.take(lk)
        nxt = st.low(i + 1)
        desc = (
            SELF_MEASURED[nxt] == "DESC"
            if nxt in SELF_MEASURED
            else st.low(i - 1) != "bottom" and nxt not in MIN_WORDS
        )
        it.order.append(Order(item=Item(col=Col(lk.table, lk.column)), desc=desc))
    it.limit = n
    st.used.add(i)
    it.notes.append(f"the first {n}")
