"""Steps: WHERE conditions from stored values, literals, flags, numbers, averages and negated relations (pure)."""

from __future__ import annotations

import attrs

from avl.llm._offline._intent import Col, Cond, Having, Subquery
from avl.llm._offline._lexicon import (
    AVG_WORDS,
    CONTAINS_WORDS,
    CURRENCY_WORDS,
    DISTINCT_WORDS,
    ENDS_WORDS,
    GT,
    LT,
    MONEY_WORDS,
    NEGATIONS,
    STARTS_WORDS,
    WEAK_NUMBER_WORDS,
)
from avl.llm._offline._linking import Link
from avl.llm._offline._schema import ColumnInfo, flag_values
from avl.llm._offline._steps._cues import (
    _COMPARISON_WORDS,
    _between_only,
    _comparator,
    _like_op,
    _top_n,
)
from avl.llm._offline._steps._state import (
    _VERBAL_NEGATIONS,
    State,
    _agg_of,
    _in_comparison,
    _is_measure,
    _link_between,
    _link_through,
    _referenced,
    _table_before,
)


def value_filters(st: State) -> None:
    """Stored values ("customers from Paris") test their column; a quoted or
    capitalised text that is no stored value tests the column its wording gives: a
    table named just before it ("the city Springfield": the city's name), a text
    column just after it ("the Riverside district") or before it ("whose name is
    'Ada'"), else the naming column of the subject; a containment verb makes it LIKE
    ("whose city contains 'West'")."""
    it = st.intent
    for v in st.links.values:
        neg = st.negated_before(v.start, window=5)
        op = "!=" if neg else "="
        value: object = v.value
        like = _like_op(st, v.start, near=v.kind == "value")
        if like is None and st.low(v.end) == "in" and st.low(v.end + 1) in ("their", "its", "the"):
            like = ("LIKE", "%*%")  # "with 'a' in their names"
        if v.kind == "value":
            col = Col(v.table, v.column)
            same = lambda c, v=v: c.table == v.table and c.name == v.column  # noqa: E731
            for lk in (
                st.column_before(v.start, window=4, want=same),
                st.column_after(v.end - 1, window=4, want=same),
            ):
                if lk is not None:
                    st.take(lk)
        else:
            col2 = _literal_column(st, v)
            if col2 is None:
                it.problems.append(f"no column for {v.value!r}")
                continue
            col = col2
        if like is not None:
            op, value = like[0], like[1].replace("*", v.value)
        it.where.append(Cond(col=col, op=op, value=value, pos=v.start))
        it.notes.append(f"{col.column} {op} {v.value!r}")
        st.used.update(v.span)


def _literal_column(st: State, v: Link) -> Col | None:
    """The column a literal (no stored value) is compared with."""
    play = set(st.tables_in_play())
    text = lambda c: (not c.numeric or c.temporal) and c.table in play  # noqa: E731
    # "with 'a' in their names": the column named after it
    if st.low(v.end) in ("in", "within") and st.low(v.end + 1) in (
        "their",
        "its",
        "the",
        "his",
        "her",
    ):
        after0 = st.column_after(v.end + 1, window=1, want=text)
        if after0 is not None:
            st.take(after0)
            return Col(after0.table, after0.column)
        if st.low(v.end + 2) in ("name", "names") and st.intent.subject:
            label = st.label_of(st.intent.subject)
            if label:
                return label[0]
    # a table named right before it: "the city Springfield"
    for t in st.links.tables:
        if 0 <= v.start - t.end <= 1:
            naming = st.schema.naming_columns(t.table)
            if naming:
                return Col(t.table, naming[0].name)
    # a text column right after it: "the Riverside district"
    after = st.column_after(v.end - 1, window=1, want=text)
    if after is not None and after.start == v.end:
        st.take(after)
        return Col(after.table, after.column)
    # "the state whose name contains 'North'": the column the name is of
    k = v.start - 1
    skip = {"the", "a", "substring", "string", "word", "letter", "letters", "text"}
    skip |= CONTAINS_WORDS | STARTS_WORDS | ENDS_WORDS
    while k >= 0 and st.low(k) in skip:
        k -= 1
    if st.low(k) in ("name", "names", "title") and st.low(k - 1) in ("whose", "with", "its"):
        owner = st.column_before(k - 1, window=2, want=text)
        if owner is not None:
            st.take(owner)
            return Col(owner.table, owner.column)
    # a text column before it, not the one a question word asks for
    before = st.column_before(v.start, window=4, want=text)
    if before is not None and not (
        before.start <= 1 and st.low(before.start - 1) in ("what", "which")
    ):
        st.take(before)
        return Col(before.table, before.column)
    table = _table_before(st, v.start) or st.intent.subject
    label = st.label_of(table) if table else []
    return label[0] if label else None


def flag_filters(st: State) -> None:
    """A column holding a yes/no flag named as a property ("the active
    students", "orders that were refunded") tests the flag: its "yes" value, or its
    "no" value after a negation."""
    it = st.intent
    for s_, e_ in st.links.column_spans():
        if (s_, e_) in st.taken:
            continue
        for lk in st.links.columns_at(s_, e_):
            flag = flag_values(st.values, lk.table, lk.column)
            if flag is None:
                continue
            neg = st.negated_before(s_)
            value = flag[1] if neg and flag[1] else flag[0]
            it.where.append(Cond(col=Col(lk.table, lk.column), op="=", value=value, pos=s_))
            st.take(lk)
            st.used.update(lk.span)
            it.notes.append(f"{lk.column} = {value!r}")
            break


def _counted_after(st: State, i: int) -> Link | None:
    """A table (or a non-measure column of another table) counted by the number at ``i``
    ("at least 3 orders", "more than 2 courses")."""
    j = i + 1
    while st.low(j) in DISTINCT_WORDS or st.low(j) in ("or", "more", "fewer", "less", "other"):
        j += 1
    for t in st.links.tables:
        if j <= t.start <= j + 1:
            return t
    lk = st.column_after(j - 1, window=2, want=lambda c: not c.measure)
    if lk is None:
        return None
    ref = _referenced(st, lk)
    if ref:
        return Link(start=lk.start, end=lk.end, kind="table", table=ref)
    if lk.table != st.intent.subject:
        return lk
    return None


def number_filters(st: State) -> None:
    """A number with a comparison tests the column named next to it ("older than
    30", "with more than 300 seats", "founded before 1990"); "between A and B" is a
    range; a number of related rows ("at least 3 orders", "more than once") is a
    count per subject (HAVING); a bare number after a column is an equality ("in
    room 10")."""
    it = st.intent
    toks = st.q.tokens
    skip: set[int] = set(st.used)
    last: tuple[Cond, str, int] | None = None
    top = _top_n(st)
    if top is not None:
        skip.add(top[0])
    for i, t in enumerate(toks):
        if t.number is None or i in skip or t.quoted:
            continue
        cmp = _comparator(st, i)
        if not t.is_digits and (t.low in WEAK_NUMBER_WORDS and cmp is None):
            continue
        if not t.is_digits and cmp is None and _counted_after(st, i) is None:
            continue
        # a range
        if (
            (st.low(i - 1) == "between" or (st.low(i - 1) == "from" and st.low(i + 1) == "to"))
            and i + 2 < len(toks)
            and toks[i + 2].number is not None
            and st.low(i + 1) in ("and", "to")
        ):
            col = _number_column(st, i - 1, i + 2, t.number)
            if col is not None:
                it.where.append(
                    Cond(col=col, op="BETWEEN", value=(toks[i].number, toks[i + 2].number), pos=i)
                )
                skip.update({i, i + 2})
                st.used.update({i - 1, i, i + 1, i + 2})
                continue
        # a count of related rows: "more than 2 orders", "at least twice"
        counted = _counted_after(st, i)
        times = st.low(i + 1) in ("times", "time") or t.low in ("once", "twice", "thrice")
        if (counted is not None or times) and (cmp is not None or not t.is_digits):
            op = cmp[0] if cmp else "="
            if t.low in ("once", "twice", "thrice") and cmp is None:
                op = "="
            it.having.append(Having(agg="COUNT", col=None, op=op, value=t.number))
            st.needs_group = True
            if counted is not None:
                st.taken.add((counted.start, counted.end))
                if counted.table != it.subject and counted.table not in st.extra_tables:
                    st.extra_tables.append(counted.table)
            st.used.add(i)
            it.notes.append(f"a count {op} {t.text}")
            continue
        start = cmp[1] if cmp else i
        # "in room 9 or 10", "before 1950 or after 2000": the column of the
        # number just before, joined by "or"/"and"
        if (
            last is not None
            and i - last[2] <= 4
            and (st.low(i - 1) in ("or", "and", ",") or st.low(i - 1) in _COMPARISON_WORDS)
            and _between_only(st, last[2], start)
        ):
            col = last[0].col
            op = cmp[0] if cmp else last[1]
            by_or = any(st.low(k) == "or" for k in range(last[2] + 1, i))
            either = 0
            if by_or or op == last[1] == "=":
                # "9 or 10", "before 1950 or after 2000"; "9 and 10" of one
                # column can only mean either
                either = last[0].either or i + 1
                it.where = [attrs.evolve(c, either=either) if c is last[0] else c for c in it.where]
            cond = Cond(col=col, op=op, value=t.number, pos=i, either=either)
            it.where.append(cond)
            last = (cond, op, i)
            st.used.add(i)
            continue
        col = _number_column(st, start, i, t.number)
        if col is None:
            if cmp is not None:
                it.problems.append(f"no column for the number {t.text}")
            continue
        op = cmp[0] if cmp else "="
        # "whose average price is above 10": a condition on a group's aggregate
        agg_at = next(
            (
                k
                for k in range(max(0, start - 6), start)
                if _agg_of(st.low(k))
                and k not in st.used
                and not any(
                    c.start <= k < c.end and (c.table, c.column) == (col.table, col.column)
                    for c in st.links.columns
                )
            ),
            -1,
        )
        if agg_at >= 0 and cmp is not None:
            fn = _agg_of(st.low(agg_at))
            assert fn is not None
            it.having.append(Having(agg=fn, col=col, op=op, value=float(t.number or 0)))
            st.used.update({agg_at, i})
            st.needs_group = True
            it.notes.append(f"{fn.lower()} of {col.column} {op} {t.text}")
            continue
        if (
            cmp is None
            and not _column_just_before(st, i, col)
            and not _column_right_after(st, i, col)
        ):
            continue  # a bare number with no column next to it is no filter
        value: object = t.number
        c = st.schema.column(col.table, col.column)
        if c is not None and not c.numeric:
            value = t.text  # a number stored as text compares as text
        either = 0
        if (last is not None and st.low(last[2] + 1) == "or") or (
            last is not None and any(st.low(k) == "or" for k in range(last[2] + 1, start))
        ):
            either = i + 1
            it.where = [attrs.evolve(c, either=either) if c is last[0] else c for c in it.where]
        cond = Cond(col=col, op=op, value=value, pos=i, either=either)
        it.where.append(cond)
        last = (cond, op, i)
        st.used.add(i)
        it.notes.append(f"{col.column} {op} {t.text}")


def _column_just_before(st: State, i: int, col: Col) -> bool:
    for s, e in st.links.column_spans():
        if i - 3 <= e <= i:
            lk = st.pick(s, e)
            if lk is not None and (lk.table, lk.column) == (col.table, col.column):
                return True
    return False


def _column_right_after(st: State, i: int, col: Col) -> bool:
    """Whether ``col`` is named right after the number at ``i`` ("5 credits")."""
    for s, e in st.links.column_spans():
        if s == i + 1:
            lk = st.pick(s, e)
            if lk is not None and (lk.table, lk.column) == (col.table, col.column):
                return True
    return False


def _number_column(st: State, start: int, i: int, number: float | None) -> Col | None:
    """The column a number is compared with: the one named just before the
    comparison (or by the comparison word itself: "older" -> age), the one right
    after the number, a year column for a year, else the nearest measure."""
    year = number is not None and float(number).is_integer() and 1000 <= number <= 2100

    def numeric(c: ColumnInfo) -> bool:
        return (c.numeric and not c.primary) or c.temporal

    lk = None
    # the comparison word names the column ("older than" -> age)
    for s, e in st.links.column_spans():
        if s <= start < e or start <= s < i:
            cand = st.pick(s, e, want=numeric)
            if cand is not None:
                lk = cand
    if lk is None:
        lk = st.column_before(start, window=4, want=numeric)
    if lk is None:
        lk = st.column_after(i, window=3, want=numeric)
    if lk is None and year:
        lk = st.column_before(start, window=8, want=lambda c: c.temporal)
        if lk is None:
            temporal = [
                c
                for t in st.tables_in_play()[:1]
                if (ti := st.schema.table(t)) is not None
                for c in ti.columns
                if c.temporal
            ]
            if len(temporal) >= 1:
                return Col(temporal[0].table, temporal[0].name)
    if lk is None:
        best = None
        for s, e in st.links.column_spans():
            if (s, e) in st.taken:
                continue
            cand = st.pick(s, e, want=lambda c: c.measure)
            if cand is not None:
                d = abs(s - i)
                if d <= 6 and (best is None or d < best[0]):
                    best = (d, cand)
        if best is not None:
            lk = best[1]
    if lk is None:
        return _only_measure(st, i)
    st.take(lk)
    return Col(lk.table, lk.column)


def _only_measure(st: State, i: int) -> Col | None:
    """With no column named, the one number column of the subject a number can
    be compared with ("products under 10 dollars": a money column for a currency)."""
    if not st.intent.subject:
        return None
    t = st.schema.table(st.intent.subject)
    if t is None:
        return None
    measures = [c for c in t.columns if c.measure and not c.temporal]
    if st.low(i + 1) in CURRENCY_WORDS:
        money = [c for c in measures if set(c.words) & MONEY_WORDS]
        measures = money or measures
    return Col(t.name, measures[0].name) if len(measures) == 1 else None


def average_comparisons(st: State) -> None:
    """A comparison with the average of a column ("above the average price", "below
    average") tests the column against a scalar subquery."""
    it = st.intent
    for i in range(len(st.q.tokens)):
        if st.low(i) not in AVG_WORDS:
            continue
        hit = st.phrase_before((*GT, *LT, ("than",)), i, window=3)
        if hit is None:
            continue
        ops = ">" if st.phrase_before(GT, i, window=3) else "<"
        if st.phrase_before(LT, i, window=3):
            ops = "<"
        target = (
            st.column_after(i, window=4, want=_is_measure, free=False)
            or st.column_before(hit[0], window=4, want=_is_measure, free=False)
            # a number stored as text ("an age below the average")
            or st.column_before(hit[0], window=4, want=lambda c: not c.is_key, free=False)
        )
        if target is None:
            continue
        col = Col(target.table, target.column)
        for s_, e_ in st.links.column_spans():
            if hit[0] - 6 <= s_ <= i + 4:
                lk = st.pick(s_, e_)
                if lk is not None and (lk.table, lk.column) == (col.table, col.column):
                    st.take(lk)
        st.take(target)
        it.where.append(Cond(col=col, op=ops, value=Subquery(inner=col, agg="AVG"), pos=i))
        st.used.update(range(hit[0], i + 1))
        it.notes.append(f"{target.column} {ops} its average")


def negated_relations(st: State) -> None:
    """ "X that have no Y", "X without any Y", "X that never Y": the subject's key
    NOT IN the keys its related table holds (with that table's own filters); a
    negated value of a related table that holds many rows per subject ("students
    that do not take Optics") is the same shape."""
    it = st.intent
    subject = it.subject
    if not subject:
        return
    for i in range(len(st.q.tokens)):
        if st.low(i) not in NEGATIONS or _in_comparison(st, i):
            continue
        other = None
        for t in st.links.tables:
            if i < t.start <= i + 5 and t.table != subject:
                other = t
                break
        if other is None:
            continue
        link = _link_between(st, subject, other.table) or _link_through(st, subject, other.table)
        if link is None:
            continue
        key, fk = link
        # the related table's filters stated after the negation go inside
        inner = [c for c in it.where if c.pos > i and c.col.table == other.table]
        it.where = [c for c in it.where if c not in inner]
        inner = [
            Cond(col=c.col, op="=" if c.op == "!=" else c.op, value=c.value, pos=c.pos)
            for c in inner
        ]
        it.where.append(
            Cond(col=key, op="NOT IN", value=Subquery(inner=fk, where=tuple(inner)), pos=i)
        )
        st.used.update(other.span)
        st.used.add(i)
        it.notes.append(f"{subject} with no {other.table}")
        return
    # a negated value of a related table with many rows per subject ("students
    # that do not take Optics"); "other than X" / "except X" stay a plain test
    for c in list(it.where):
        if c.op != "!=" or c.col.table == subject:
            continue
        if not any(st.low(k) in _VERBAL_NEGATIONS for k in range(max(0, c.pos - 4), c.pos)):
            continue
        link = _link_between(st, subject, c.col.table)
        if link is None:
            continue
        key, fk = link
        it.where.remove(c)
        it.where.append(
            Cond(
                col=key,
                op="NOT IN",
                value=Subquery(inner=fk, where=(Cond(col=c.col, op="=", value=c.value),)),
                pos=c.pos,
            )
        )
