"""The state the steps share, and the helpers several steps use (pure)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import attrs

from avl.llm._offline._intent import Col, Intent, Item
from avl.llm._offline._lexicon import (
    ASC_PHRASES,
    AVG_WORDS,
    DESC_PHRASES,
    EXPLICIT_EXTREMES,
    FUNCTION_WORDS,
    GE,
    LE,
    NE,
    NEGATIONS,
    SUM_WORDS,
)
from avl.llm._offline._linking import Link, Links
from avl.llm._offline._question import Question
from avl.llm._offline._schema import ColumnInfo, SchemaIndex
from avl.schema import ColumnSpec
from avl.text import STOPWORDS

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
    #: where the thing asked for starts (a later sentence may ask it: "Which teacher
    #: has the most courses? List the teacher's name.")
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
        opts = list(self.links.columns_at(start, end))
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
        # "the id, name and city of the students": the table after the list
        in_column = {k for c in self.links.columns for k in range(c.start, c.end)}
        j = end
        n = len(self.q.tokens)
        while j < n and (self.low(j) in (",", "and", "the", "its", "their") or j in in_column):
            j += 1
        if j > end and self.low(j) == "of":
            j += 1
            while self.low(j) in ("the", "a", "an", "each", "every", "all", "their", "its"):
                j += 1
            for t in self.links.tables:
                if t.start == j:
                    return t.table
        # "what city does the student live in": the table right after the asked column
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

    def by_column(
        self, pos: int, *, want: Callable[[ColumnInfo], bool] | None = None
    ) -> Link | None:
        """The column after "by" in the clause after ``pos`` ("top 3 students by gpa")."""
        for k in range(pos + 1, min(len(self.q.tokens), pos + 7)):
            if self.q.tokens[k].punct:
                break
            if self.low(k) == "by":
                return self.column_after(k, window=2, want=want)
        return None

    def table_after(self, pos: int, *, window: int = 3) -> Link | None:
        """The table named right after ``pos`` (only filler, intent words or a stored
        value between: "the most Canadian customers")."""
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
        first = self.low(i)
        for p in phrases:
            if p[0] == first and all(self.low(i + j) == w for j, w in enumerate(p)):
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
                    and s + len(p) >= i - 2
                ):
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
                parents = self.schema.naming_columns(other)
                if parents:
                    return [Col(other, c.name) for c in parents]
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


def _table_before(st: State, pos: int) -> str:
    for t in reversed(st.links.tables):
        if t.end <= pos and pos - t.end <= 3:
            return t.table
    return ""


def _referenced(st: State, lk: Link) -> str:
    """The table a key column points to ("student_id" -> the students' table)."""
    for other, edge in st.schema.neighbours(lk.table):
        if edge.a == lk.table and lk.column in edge.a_cols and other != lk.table:
            return other
        if edge.b == lk.table and lk.column in edge.b_cols and edge.a == edge.b:
            return other
    return ""


def _link_through(st: State, parent: str, other: str) -> tuple[Col, Col] | None:
    """``(parent key, child column)`` when ``other`` is reached from ``parent``
    through a table holding rows that point at ``parent`` ("products never
    ordered": order lines point at products)."""
    for child, _ in st.schema.neighbours(parent):
        if child in (parent, other):
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


def _agg_of(word: str) -> str | None:
    if word in AVG_WORDS:
        return "AVG"
    if word in SUM_WORDS and word not in ("together", "overall"):
        return "SUM"
    if word in EXPLICIT_EXTREMES:
        return "MAX" if word in ("maximum", "max") else "MIN"
    return None


def _related(st: State, a: str, b: str) -> bool:
    return any(other == b for other, _ in st.schema.neighbours(a))


def _role_key(st: State, lk: Link) -> bool:
    """A key column pointing at another table, mentioned without "id" or "code"
    ("the student" for ``student_id``): it names the table, it is not shown."""
    ci = st.col(lk)
    if ci is None or not _referenced(st, lk):
        return False
    said = {st.low(k) for k in range(lk.start, lk.end)}
    return not said & {"id", "ids", "code", "codes", "number", "numbers", "key", "no"}
