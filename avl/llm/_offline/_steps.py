"""The ordered steps that read a linked question into an :class:`Intent` (pure).

Each step reads one kind of phrase and fills one part of the intent; a reader looks
for a shape by the step's name. The order matters: filters first (they consume the
column words they test), then counting and aggregates, grouping, ranking, ordering,
the limit, and last the selection (whatever column words are left).

========================  ===========================================================
step                      what it reads
========================  ===========================================================
``choose_subject``        the table the question is about
``value_filters``         stored values and quoted or capitalised literals
``flag_filters``          yes/no columns named as a property ("official languages")
``number_filters``        comparisons with numbers, ranges, counts of related rows
``average_comparisons``   "above the average X"
``negated_relations``     "X that have no Y", "X not <related value>"
``counting``              "how many X", "the number of X", "count X"
``aggregates``            "the average / total / maximum / minimum X"
``grouping``              "for each X", "per X", "X and the number of Y"
``ranking``               "which X has the most Y", "top N X by Y", "the oldest X"
``ordering``              "ordered by X", "in descending order of X"
``limit``                 "top N", "the first N"
``selection``             the column words left, or the subject's naming column
``distinct_rows``         "the different X"
``related_tables``        "singers who have songs": join the related table
``count_rows_once``       a count over a join with many rows per subject
========================  ===========================================================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import attrs

from avl.llm._offline._intent import Col, Cond, Having, Intent, Item, Order, Subquery
from avl.llm._offline._lexicon import (
    ALL_COLUMNS,
    ALPHABETICAL,
    ASC_PHRASES,
    AVG_WORDS,
    CONTAINS_WORDS,
    COUNT_PHRASES,
    DESC_PHRASES,
    DISTINCT_WORDS,
    ENDS_WORDS,
    EQ,
    EXPLICIT_EXTREMES,
    FREQUENCY_WORDS,
    FUNCTION_WORDS,
    GE,
    GROUP_PHRASES,
    GT,
    LE,
    LT,
    MAX_WORDS,
    MIN_WORDS,
    NAMING_WORDS,
    NE,
    NEGATIONS,
    ORDER_WORDS,
    RARE_WORDS,
    RECENT_WORDS,
    SELF_MEASURED,
    CURRENCY_WORDS,
    KIND_WORDS,
    MONEY_WORDS,
    STARTS_WORDS,
    SUM_AFTER,
    SUM_WORDS,
    WEAK_NUMBER_WORDS,
)
from avl.llm._offline._linking import Link, Links
from avl.llm._offline._question import Question
from avl.llm._offline._schema import ColumnInfo, SchemaIndex, flag_values
from avl.schema import ColumnSpec
from avl.text import STOPWORDS

__all__ = ["STEPS", "State", "read_intent"]

#: Words that open a relative clause after the thing asked for.
_RELATIVE = frozenset({"who", "whose", "that", "which", "where", "when", "with", "whom", "having"})
#: Words that open a sentence asking for what to show.
_COMMAND_STARTS = frozenset(
    {"list", "show", "give", "return", "find", "display", "provide", "include", "report"}
)
#: Negations of a verb ("do not speak", "never visited", "without"), not of a value.
_VERBAL_NEGATIONS = frozenset({"not", "never", "without", "no", "none"})
#: Words that may sit between a cue and its target ("the average of the ...").
_FILLER = frozenset(
    {"the", "a", "an", "of", "their", "its", "his", "her", "all", "in", "for", "by"}
)


@attrs.define
class State:
    """The question, its links, and the intent being built."""

    q: Question
    links: Links
    schema: SchemaIndex
    values: Mapping[tuple[str, str], Sequence[str]] = attrs.field(factory=dict)
    intent: Intent = attrs.field(factory=Intent)
    #: column spans given a role (filter, aggregate, group, order...)
    taken: set[tuple[int, int]] = attrs.field(factory=set)
    #: tokens understood as intent words (cues) or used literals
    used: set[int] = attrs.field(factory=set)
    #: tables that must be joined though no item reads them (counted rows)
    extra_tables: list[str] = attrs.field(factory=list)
    #: the token where the thing asked for ends (a relative clause starts)
    head_end: int = 0
    #: where the thing asked for starts (a later sentence may ask it: "Which owner
    #: has the most dogs? List the owner's name.")
    head_start: int = 0
    count_spans: list[tuple[int, int]] = attrs.field(factory=list)
    #: items the grouping step added (shown before the aggregates)
    group_items: list[Item] = attrs.field(factory=list)
    #: column spans an aggregate took (another aggregate word may share them)
    agg_spans: set[tuple[int, int]] = attrs.field(factory=set)
    needs_group: bool = False
    ranked: bool = False

    # ------------------------------------------------------------- helpers
    def in_head(self, pos: int) -> bool:
        """Whether token ``pos`` is in the part of the question that asks."""
        return self.head_start <= pos < self.head_end

    @property
    def toks(self) -> Sequence[object]:
        return self.q.tokens

    def low(self, i: int) -> str:
        return self.q.low(i)

    def col(self, lk: Link) -> ColumnInfo | None:
        return self.schema.column(lk.table, lk.column)

    def tables_in_play(self) -> list[str]:
        out = [self.intent.subject] if self.intent.subject else []
        for t in [*self.intent.tables(), *(t.table for t in self.links.tables), *self.extra_tables]:
            if t and t not in out:
                out.append(t)
        return out

    def pick(
        self, start: int, end: int, *, want: Callable[[ColumnInfo], bool] | None = None
    ) -> Link | None:
        """The best column link over ``[start, end)``: in the subject, then in a
        table already in play, then a neighbour of one, then by score."""
        opts = [c for c in self.links.columns_at(start, end)]
        if want is not None:
            opts = [c for c in opts if (ci := self.col(c)) is not None and want(ci)]
        if not opts:
            return None
        play = self.tables_in_play()
        near = {n for t in play for n, _ in self.schema.neighbours(t)}
        owner = self.owner_of(start, end)

        def rank(c: Link) -> tuple[int, float]:
            if owner and c.table == owner:
                tier = -1
            elif c.table == self.intent.subject:
                tier = 0
            elif c.table in play:
                tier = 1
            elif c.table in near:
                tier = 2
            else:
                tier = 3
            return (tier, -c.score)

        return min(opts, key=rank)

    def owner_of(self, start: int, end: int) -> str:
        """The table a column phrase belongs to by its wording: "the X of (the) T",
        "T's X", "T X"."""
        j = end
        while self.low(j) in ("of", "the", "a", "an", "each", "every", "all", "their", "its"):
            j += 1
        if j > end:
            for t in self.links.tables:
                if t.start == j:
                    return t.table
        for t in self.links.tables:
            if t.end == start or (t.end == start - 1 and self.low(start - 1) in ("'s", "s")):
                return t.table
        # "what city does the employee live in": the table right after the asked column
        if self.low(start - 1) in ("what", "which"):
            for t in self.links.tables:
                if end < t.start <= end + 3 and all(
                    self.low(k) in STOPWORDS for k in range(end, t.start)
                ):
                    return t.table
        return ""

    def column_links(self, *, free: bool = True) -> list[Link]:
        """One (best) column link per span, in question order."""
        out = []
        for s, e in self.links.column_spans():
            if free and (s, e) in self.taken:
                continue
            lk = self.pick(s, e)
            if lk is not None:
                out.append(lk)
        return out

    def column_after(
        self,
        pos: int,
        *,
        window: int = 5,
        want: Callable[[ColumnInfo], bool] | None = None,
        free: bool = True,
    ) -> Link | None:
        """The first column link starting in ``(pos, pos + window]``, skipping filler."""
        for s, e in self.links.column_spans():
            if s <= pos or s > pos + window:
                continue
            if free and (s, e) in self.taken:
                continue
            # only filler, cue words and punctuation in between
            between = [self.q.tokens[k] for k in range(pos + 1, s)]
            if any(
                not t.punct
                and t.low not in _FILLER
                and t.low not in FUNCTION_WORDS
                and t.low not in STOPWORDS
                for t in between
            ):
                continue
            lk = self.pick(s, e, want=want)
            if lk is not None:
                return lk
        return None

    def column_before(
        self,
        pos: int,
        *,
        window: int = 4,
        want: Callable[[ColumnInfo], bool] | None = None,
        free: bool = True,
    ) -> Link | None:
        """The last column link ending in ``[pos - window, pos]``."""
        best = None
        for s, e in self.links.column_spans():
            if e > pos or e < pos - window:
                continue
            if free and (s, e) in self.taken:
                continue
            lk = self.pick(s, e, want=want)
            if lk is not None:
                best = lk
        return best

    def table_after(self, pos: int, *, window: int = 3) -> Link | None:
        """The table named right after ``pos`` (only filler, intent words or a stored
        value between: "the most Asian countries")."""
        for t in self.links.tables:
            if pos < t.start <= pos + window + 1:
                between = range(pos + 1, t.start)
                if all(
                    self.q.tokens[k].punct
                    or self.low(k) in _FILLER
                    or self.low(k) in FUNCTION_WORDS
                    or self.low(k) in STOPWORDS
                    or self.links.value_at(k) is not None
                    for k in between
                ) and (t.start <= pos + window or self.links.value_at(t.start - 1) is not None):
                    return t
        return None

    def take(self, lk: Link) -> None:
        """Give a column mention a role (and the mentions of the same column right
        beside it: "the average expected life expectancy")."""
        self.taken.add((lk.start, lk.end))
        for s_, e_ in self.links.column_spans():
            if (s_, e_) in self.taken or not (e_ == lk.start or s_ == lk.end):
                continue
            if any(
                c.table == lk.table and c.column == lk.column for c in self.links.columns_at(s_, e_)
            ):
                self.taken.add((s_, e_))

    def phrase_at(self, phrases: Sequence[Sequence[str]], i: int) -> int:
        """The length of the first of ``phrases`` starting at ``i`` (0: none)."""
        for p in phrases:
            if all(self.low(i + j) == w for j, w in enumerate(p)):
                return len(p)
        return 0

    def phrase_before(
        self, phrases: Sequence[Sequence[str]], i: int, window: int = 4
    ) -> tuple[int, int] | None:
        """``(start, length)`` of a phrase ending just before ``i`` (within ``window``)."""
        for back in range(1, window + 1):
            for p in phrases:
                s = i - back
                if (
                    s >= 0
                    and s + len(p) <= i
                    and all(self.low(s + j) == w for j, w in enumerate(p))
                ):
                    if s + len(p) >= i - 2:
                        return s, len(p)
        return None

    def key_of(self, table: str) -> list[Col]:
        """The columns that identify a row of ``table`` (primary key, else its label)."""
        t = self.schema.table(table)
        if t is None:
            return []
        if t.primary:
            return [Col(table, c.name) for c in t.primary[:1]]
        return [Col(table, c.name) for c in self.schema.label_columns(table)[:1]]

    def label_of(self, table: str, *, parent: bool = True) -> list[Col]:
        """The columns that name a row of ``table``: its naming columns; else, with
        ``parent``, the naming column of the table it points to (a role table:
        "the names of the players" when players point at people); else its key."""
        named = self.schema.naming_columns(table)
        if named:
            return [Col(table, c.name) for c in named]
        for other, edge in self.schema.neighbours(table) if parent else ():
            if edge.a == table:
                parent = self.schema.naming_columns(other)
                if parent:
                    return [Col(other, c.name) for c in parent]
        return [Col(table, c.name) for c in self.schema.label_columns(table)[:1]]

    def negated_before(self, i: int, window: int = 3) -> bool:
        lo = max(0, i - window)
        if self.phrase_before(NE, i, window + 1) is not None:
            return True
        return any(
            self.low(k) in NEGATIONS
            and not any(self.phrase_at((p,), k) for p in (*GE, *LE) if p[0] == self.low(k))
            for k in range(lo, i)
        )

    def direction_desc(self, default: bool = False) -> bool:
        for i in range(len(self.q.tokens)):
            if self.phrase_at(DESC_PHRASES, i):
                return True
            if self.phrase_at(ASC_PHRASES, i):
                return False
        return default


_NO_COLUMN = ColumnInfo(
    table="",
    name="",
    spec=ColumnSpec(name="?"),
    words=(),
    key=(),
    numeric=False,
    temporal=False,
    is_key=True,
    primary=False,
)


def _is_measure(c: ColumnInfo) -> bool:
    return c.measure


def _is_category(c: ColumnInfo) -> bool:
    return not c.numeric and not c.primary


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
    if first_table is not None and (first_col is None or first_table.start <= first_col.start):
        it.subject = first_table.table
    elif first_col is not None:
        # "the names of the poker players": the table the phrase names, even when
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


def value_filters(st: State) -> None:
    """Stored values ("customers from Paris") test their column; a quoted or
    capitalised text that is no stored value tests the column its wording gives: a
    table named just before it ("the city Springfield": the city's name), a text
    column just after it ("the Gelderland district") or before it ("whose name is
    'Ada'"), else the naming column of the subject; a containment verb makes it LIKE
    ("whose city contains 'West'")."""
    it = st.intent
    for v in st.links.values:
        neg = st.negated_before(v.start, window=5)
        op = "!=" if neg else "="
        value: object = v.value
        like = _like_op(st, v.start)
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
            label = st.schema.naming_columns(t.table)
            if label:
                return Col(t.table, label[0].name)
    # a text column right after it: "the Gelderland district"
    after = st.column_after(v.end - 1, window=1, want=text)
    if after is not None and after.start == v.end:
        st.take(after)
        return Col(after.table, after.column)
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
    """A column holding a yes/no flag named as a property ("the official
    languages", "dogs that were abandoned") tests the flag: its "yes" value, or its
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


def _table_before(st: State, pos: int) -> str:
    for t in reversed(st.links.tables):
        if t.end <= pos and pos - t.end <= 3:
            return t.table
    return ""


def _like_op(st: State, pos: int) -> tuple[str, str] | None:
    words = [st.low(k) for k in range(max(0, pos - 5), pos)]
    if st.low(pos - 1) in ("letter", "letters", "word", "substring", "string", "phrase", "text"):
        return ("NOT LIKE" if any(w in NEGATIONS for w in words) else "LIKE", "%*%")
    neg = any(w in NEGATIONS for w in words)
    if any(w in CONTAINS_WORDS for w in words):
        return ("NOT LIKE" if neg else "LIKE", "%*%")
    if any(w in STARTS_WORDS for w in words):
        return ("NOT LIKE" if neg else "LIKE", "*%")
    if any(w in ENDS_WORDS for w in words):
        return ("NOT LIKE" if neg else "LIKE", "%*")
    return None


def _comparator(st: State, i: int) -> tuple[str, int] | None:
    """The comparison stated around the number at ``i`` and where it starts."""
    after = st.phrase_at(GE, i + 1) or st.phrase_at(LE, i + 1)
    if after:
        if st.phrase_at(GE, i + 1):
            return ">=", i
        return "<=", i
    for ops, sym in ((GE, ">="), (LE, "<="), (NE, "!="), (GT, ">"), (LT, "<"), (EQ, "=")):
        hit = st.phrase_before(ops, i, window=4)
        if hit is not None:
            return sym, hit[0]
    return None


def _counted_after(st: State, i: int) -> Link | None:
    """A table (or a non-measure column of another table) counted by the number at ``i``
    ("at least 3 orders", "more than 2 languages")."""
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


def _referenced(st: State, lk: Link) -> str:
    """The table a key column points to ("student_id" -> the students' table)."""
    for other, edge in st.schema.neighbours(lk.table):
        if edge.a == lk.table and lk.column in edge.a_cols and other != lk.table:
            return other
        if edge.b == lk.table and lk.column in edge.b_cols and edge.a == edge.b:
            return other
    return ""


def number_filters(st: State) -> None:
    """A number with a comparison tests the column named next to it ("older than
    30", "with more than 300 seats", "founded before 1990"); "between A and B" is a
    range; a number of related rows ("at least 3 orders", "more than once") is a
    count per subject (HAVING); a bare number after a column is an equality ("in
    grade 10")."""
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
        if st.low(i - 1) == "between" or (st.low(i - 1) == "from" and st.low(i + 1) == "to"):
            if (
                i + 2 < len(toks)
                and toks[i + 2].number is not None
                and st.low(i + 1) in ("and", "to")
            ):
                col = _number_column(st, i - 1, i + 2, t.number)
                if col is not None:
                    it.where.append(
                        Cond(
                            col=col, op="BETWEEN", value=(toks[i].number, toks[i + 2].number), pos=i
                        )
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
        # "in grade 9 or 10", "before 1950 or after 2000": the column of the
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
        if cmp is None and not _column_just_before(st, i, col):
            continue  # a bare number with no column next to it is no filter
        value: object = t.number
        c = st.schema.column(col.table, col.column)
        if c is not None and not c.numeric and t.number is not None:
            value = t.text if not t.text.replace(".", "").isdigit() else t.text
        either = 0
        if (
            last is not None
            and st.low(last[2] + 1) == "or"
            or last is not None
            and any(st.low(k) == "or" for k in range(last[2] + 1, start))
        ):
            either = i + 1
            it.where = [attrs.evolve(c, either=either) if c is last[0] else c for c in it.where]
        cond = Cond(col=col, op=op, value=value, pos=i, either=either)
        it.where.append(cond)
        last = (cond, op, i)
        st.used.add(i)
        it.notes.append(f"{col.column} {op} {t.text}")


_COMPARISON_WORDS = frozenset(w for p in (*GT, *LT, *GE, *LE) for w in p)


def _between_only(st: State, a: int, b: int) -> bool:
    """Only joining and comparison words between tokens ``a`` and ``b``."""
    ok = {"or", "and", ",", "than", "to"} | {w for p in (*GT, *LT, *GE, *LE) for w in p}
    return all(st.low(k) in ok for k in range(a + 1, b))


def _column_just_before(st: State, i: int, col: Col) -> bool:
    for s, e in st.links.column_spans():
        if i - 3 <= e <= i:
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
        target = st.column_after(i, window=4, want=_is_measure, free=False) or st.column_before(
            hit[0], window=4, want=_is_measure, free=False
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
    negated value of a related table that holds many rows per subject ("countries
    that do not speak English") is the same shape."""
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
    # a negated value of a related table with many rows per subject ("countries
    # that do not speak English"); "other than X" / "except X" stay a plain test
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


def _link_through(st: State, parent: str, other: str) -> tuple[Col, Col] | None:
    """``(parent key, child column)`` when ``other`` is reached from ``parent``
    through a table holding rows that point at ``parent`` ("products never
    ordered": order lines point at products)."""
    for child, _ in st.schema.neighbours(parent):
        if child == parent or child == other:
            continue
        if not _related(st, child, other):
            continue
        link = _link_between(st, parent, child)
        if link is not None:
            return link
    return None


def _in_comparison(st: State, i: int) -> bool:
    """Whether the negation at ``i`` belongs to a comparison ("no more than")."""
    return any(st.phrase_at((p,), i) for p in (*GE, *LE, *NE) if p[0] == st.low(i))


def _link_between(st: State, parent: str, child: str) -> tuple[Col, Col] | None:
    """``(parent key, child column)`` when ``child`` holds rows pointing at ``parent``."""
    for other, edge in st.schema.neighbours(parent):
        if other != child:
            continue
        # the child's columns point at the parent's
        if edge.a == child:
            return Col(parent, edge.b_cols[0]), Col(child, edge.a_cols[0])
        if edge.b == child and edge.a == parent and edge.a != edge.b:
            # the parent points at the child: not "has many"
            return None
    return None


def _count_cues(st: State) -> list[tuple[int, int]]:
    out = []
    i = 0
    n = len(st.q.tokens)
    while i < n:
        k = st.phrase_at(COUNT_PHRASES, i)
        if k:
            if out and i - out[-1][1] <= 1:
                out[-1] = (out[-1][0], i + k)  # "count the number of"
            else:
                out.append((i, i + k))
            i += k
            continue
        i += 1
    return out


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
                st.take(col)  # "the number of languages" (a key part): the rows
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


def _agg_of(word: str) -> str | None:
    if word in AVG_WORDS:
        return "AVG"
    if word in SUM_WORDS and word not in ("together", "overall"):
        return "SUM"
    if word in EXPLICIT_EXTREMES:
        return "MAX" if word in ("maximum", "max") else "MIN"
    return None


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


def _group_cues(st: State) -> list[int]:
    """Token positions right after a group phrase."""
    out = []
    for i in range(len(st.q.tokens)):
        k = st.phrase_at(GROUP_PHRASES, i)
        if k and (k > 1 or st.low(i - 1) not in ("for", "in", "of", "by")):
            out.append(i + k)
    return out


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
    ("grades with at least 4 students"), else by the subject's key ("students with
    at least 3 friends", "the id and name of owners with 2 dogs")."""
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


def _superlatives(st: State) -> list[tuple[int, bool, str]]:
    """``(position, descending, kind)`` of superlative words; kind is ``"max"``
    (highest, most...), ``"self"`` (oldest: the word names its column) or
    ``"recent"`` (latest, earliest)."""
    out = []
    n = len(st.q.tokens)
    in_column = {k for c in st.links.columns if c.complete for k in range(c.start, c.end)}
    for i in range(n):
        w = st.low(i)
        if w in ("first", "last", "top") and i in in_column:
            continue  # "the first name"
        if w == "most" and st.low(i + 1) in RECENT_WORDS:
            continue  # "the most recent": a recency
        if w in SELF_MEASURED and not (w == "oldest" and _temporal_only(st)):
            out.append((i, SELF_MEASURED[w] == "DESC", "self"))
        elif w in RECENT_WORDS and (w not in ("first", "last") or st.low(i - 1) == "the"):
            if w in ("first", "last") and (
                st.q.tokens[i + 1].number is not None if i + 1 < n else False
            ):
                continue
            out.append((i, RECENT_WORDS[w] == "DESC", "recent"))
        elif w in ("most", "least", "fewest") and st.low(i - 1) == "at":
            continue
        elif w in MAX_WORDS and w not in EXPLICIT_EXTREMES:
            out.append((i, True, "max"))
        elif w in MIN_WORDS and w not in EXPLICIT_EXTREMES:
            out.append((i, False, "max"))
        elif w in RARE_WORDS:
            out.append((i, False, "common"))
    return out


def _temporal_only(st: State) -> bool:
    """No age column anywhere: "oldest" ranks by a date."""
    return not any("age" in c.words for t in st.schema.tables for c in t.columns)


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
                # "the most common genre in all tracks": a table ranked by its rows
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
            table = st.table_after(j - 1, window=2)
            if table is not None and table.table != it.subject:
                _rank_by_related_count(st, table, desc, pos)
                return
            if table is not None and table.table == it.subject:
                # "which grade has the most students": a category of the subject's rows
                head = _group_column(st)
                if head is not None:
                    _rank_by_count(st, head, desc=desc, pos=pos)
                    st.used.update(table.span)
                    return
            # "the most languages" where languages are rows of a related table
            rel = st.column_after(j - 1, window=2, want=lambda c: not c.measure)
            if rel is not None and rel.table != it.subject and _related(st, it.subject, rel.table):
                st.take(rel)
                _rank_by_related_count(
                    st, Link(start=rel.start, end=rel.end, kind="table", table=rel.table), desc, pos
                )
                return
            measure = (
                st.column_after(j - 1, window=4, want=_is_measure)
                or st.column_before(pos, window=2, want=_is_measure)
                # "the highest rating" stored as text
                or st.column_after(j - 1, window=2, want=lambda c: not c.is_key and not c.temporal)
            )
            if measure is None and st.low(pos) in ("most", "least", "fewest") and table is None:
                # "the museum visited most times": rows of a related table per subject
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
            if not own:
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


def _related(st: State, a: str, b: str) -> bool:
    return any(other == b for other, _ in st.schema.neighbours(a))


def _head_category(st: State) -> Link | None:
    for c in st.column_links():
        ci = st.col(c)
        if st.in_head(c.start) and ci is not None and _is_category(ci):
            return c
    return None


def _group_column(st: State) -> Link | None:
    """The one column the question asks for, when it can group rows: not a key,
    not the naming column of its table ("which grade has the most students",
    "nationalities shared by two people"); ``None`` when several columns are asked
    or the one asked names the rows themselves."""
    heads = [c for c in st.column_links() if st.in_head(c.start) and not _role_key(st, c)]
    if len(heads) != 1:
        return None
    ci = st.col(heads[0])
    if ci is None or ci.primary or ci.is_key and not ci.temporal:
        return None
    named = [c.name for c in st.schema.naming_columns(heads[0].table)]
    if ci.name in named:
        return None
    return heads[0]


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
        if t.start < max(pos, 1) or measure.end <= t.start <= measure.end + 2
    ]
    asks_other = bool(others) or bool(head_tables) or st.low(0) in ("which", "who", "whose")
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
    if fn is None and category is not None and category.table == measure.table and not it.group:
        ci = st.col(category)
        if ci is not None and not st.schema.naming_columns(category.table)[:1] == [ci]:
            fn = "SUM"  # "which city has the largest population": per city
    if fn is not None:
        if not it.group:
            if (
                category is not None
                and (ci2 := st.col(category)) is not None
                and not (st.schema.naming_columns(category.table)[:1] == [ci2])
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


def _ordering_word(st: State, i: int) -> bool:
    """Whether an order word asks for an order ("ordered by", "in ascending order",
    "sorted alphabetically", "... sorted") rather than naming orders or a verb
    ("the quantity ordered", "which order")."""
    nxt, prev = st.low(i + 1), st.low(i - 1)
    if nxt in ("by", "in", "alphabetically", "ascending", "descending", "from", "according"):
        return True
    if (
        prev in ("in", "by")
        or prev in ALPHABETICAL
        or st.phrase_before(ASC_PHRASES, i, 2)
        or st.phrase_before(DESC_PHRASES, i, 2)
    ):
        return True
    rest = [t for t in st.q.tokens[i + 1 :] if not t.punct]
    return st.low(i) in ("sorted", "ordered", "arranged") and not rest


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


def _top_n(st: State) -> tuple[int, int] | None:
    """``(token, N)`` of "top N", "first N", "N largest", "the N ...est"."""
    toks = st.q.tokens
    for i, t in enumerate(toks):
        if t.number is None or not float(t.number).is_integer():
            continue
        prev, nxt = st.low(i - 1), st.low(i + 1)
        if (
            prev in ("top", "first", "last", "bottom")
            or (
                nxt
                in MAX_WORDS
                | MIN_WORDS
                | {
                    "most",
                    "best",
                    "worst",
                    "highest",
                    "lowest",
                    "oldest",
                    "youngest",
                    "latest",
                    "newest",
                    "earliest",
                    "cheapest",
                }
                or nxt in SELF_MEASURED
                or nxt.endswith("est")
            )
            and prev not in ("than", "least", "most")
        ):
            if t.low in WEAK_NUMBER_WORDS and prev not in ("top", "first"):
                continue
            return i, int(t.number)
    return None


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
            st.column_after(i, window=6, want=_is_measure)
            or st.column_before(i, window=4, want=_is_measure)
            or st.column_after(i, window=3, want=lambda c: not c.is_key)
        )
        if lk is None:
            return
        st.take(lk)
        desc = st.low(i - 1) != "bottom" and st.low(i + 1) not in MIN_WORDS
        it.order.append(Order(item=Item(col=Col(lk.table, lk.column)), desc=desc))
    it.limit = n
    st.used.add(i)
    it.notes.append(f"the first {n}")


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
            for c in st.label_of(t.table):
                if not any(x.col == c for x in it.select):
                    it.select.append(Item(col=c, pos=t.start))
            break
    # "the name" of a table with no name column: its naming column ("title")
    covered = {k for c in st.links.columns for k in range(c.start, c.end)}
    for k in range(st.head_start, st.head_end):
        if st.low(k) in ("name", "names") and k not in covered and it.subject:
            for c in st.label_of(it.subject):
                if not any(x.col == c for x in it.select):
                    it.select.append(Item(col=c, pos=k))
            break
    # a table named in the asking part beside the subject: its naming column
    # ("the names of the singers and their songs")
    if it.select and any(x.agg is None for x in it.select):
        for t in st.links.tables:
            if (
                st.in_head(t.start)
                and t.table != it.subject
                and (
                    st.low(t.start - 1) == "and"
                    or (
                        st.low(t.start - 2) == "and"
                        and st.low(t.start - 1) in ("the", "their", "its", "all")
                    )
                )
                and not any(c.start < t.end and t.start < c.end for c in chosen)
            ):
                for c in st.label_of(t.table):
                    if not any(x.col == c for x in it.select):
                        it.select.append(Item(col=c, pos=t.start))
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
            for c in st.label_of(it.subject, parent=asked_name):
                it.select.append(Item(col=c, pos=0))
    elif it.group and not any(x.agg is None for x in it.select):
        # an aggregate per group shows the group's label first
        for c in it.group:
            label = st.label_of(c.table) if c in st.key_of(c.table) else [c]
            for lc in label:
                if not any(x.col == lc for x in it.select):
                    it.select.append(Item(col=lc, pos=-1))
    if it.group:
        for x in list(it.select):
            if x.agg is None and x.col in it.group and x in st.group_items:
                it.select.remove(x)
                it.select.insert(0, attrs.evolve(x, pos=-1))
    it.select.sort(key=lambda x: x.pos)


def _role_key(st: State, lk: Link) -> bool:
    """A key column pointing at another table, mentioned without "id" or "code"
    ("the student" for ``student_id``): it names the table, it is not shown."""
    ci = st.col(lk)
    if ci is None or not _referenced(st, lk):
        return False
    said = {st.low(k) for k in range(lk.start, lk.end)}
    return not said & {"id", "ids", "code", "codes", "number", "numbers", "key", "no"}


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
    """A table the question names in a clause about the subject ("singers who have
    songs", "dogs that had a treatment") restricts the subject to rows with related
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
    subject ("how many dogs had a treatment") counts each subject once:
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


#: The steps, in the order they run.
STEPS: tuple[Callable[[State], None], ...] = (
    choose_subject,
    value_filters,
    flag_filters,
    average_comparisons,
    number_filters,
    negated_relations,
    counting,
    aggregates,
    ranking,
    grouping,
    ordering,
    limit,
    selection,
    distinct_rows,
    related_tables,
    count_rows_once,
)


def read_intent(
    q: Question,
    links: Links,
    schema: SchemaIndex,
    values: Mapping[tuple[str, str], Sequence[str]] | None = None,
) -> State:
    """Run every step over a linked question.

    Args:
        q: the parsed question.
        links: its links.
        schema: the schema index.
        values: stored values per ``(table, column)``.

    Returns:
        The state, whose ``intent`` is what the question asks.
    """
    st = State(q=q, links=links, schema=schema, values=values or {})
    for step in STEPS:
        step(st)
    # tables that must be joined though no item reads them (the counted rows)
    st.intent.joined = list(st.extra_tables)
    return st


__all__ += ["NAMING_WORDS"]
