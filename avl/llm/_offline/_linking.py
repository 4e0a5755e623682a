"""Linking the words of a question to tables, columns and stored values (pure).

A word links to a name word of the schema when it is the same stem, the same word
form (``opened``/``open``), a derivation sharing a long prefix
(``located``/``location``), a typo of it (one edit, two for long words), or two
words written as one (``post code``/``postcode``). A table or column links when
its name words occur together; a part of a multi-word name links too when it holds
the name's informative words (``area`` for ``surface_area``, not ``year`` for
``open_year``). A column ``<other table>_id`` is not linked by the other table's
name: that word names the table.

A run of words links to a stored value when it spells the value (case folded, word
forms, small typos, or a demonym: ``Canadian`` for ``Canada``). Guards keep value hits
off the words that carry the question's intent or name the schema: stop words,
aggregate and ordering words, and words that already name a table or column, unless
quoted. A quoted text that is no stored value, and a capitalised run of unknown
words in the middle of the question, become literals whose column is chosen later.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import attrs
from cachetools import LRUCache

from avl.llm._offline._lexicon import (
    AVG_WORDS,
    FREQUENCY_WORDS,
    FUNCTION_WORDS,
    MAX_WORDS,
    MIN_WORDS,
    NUMBER_WORDS,
    SUM_WORDS,
)
from avl.llm._offline._question import Question, Token
from avl.llm._offline._schema import ColumnInfo, SchemaIndex
from avl.text import ABBREVIATIONS, STOPWORDS, stem, words

__all__ = ["Link", "Links", "link_question"]

#: Name words that say little alone: a partial match needs another word.
_GENERIC = frozenset(
    {
        "id",
        "name",
        "code",
        "type",
        "number",
        "date",
        "year",
        "time",
        "description",
        "status",
        "value",
        "amount",
        "count",
        "total",
        "first",
        "last",
        "detail",
        "info",
        "other",
        "new",
        "old",
        "is",
        "if",
        "of",
        "by",
        "the",
        "in",
        "at",
        "on",
        "to",
        "for",
        "and",
        "a",
        "flag",
        "yn",
        "per",
        "level",
        "rate",
        "percent",
        "day",
        "month",
    }
)
#: Word-form suffixes of place adjectives ("Canadian", "Peruvian", "Japanese").
_DEMONYM = ("n", "an", "ian", "ean", "ese", "ish", "i")
#: Words never read as a stored value, whatever the data holds.
_NOT_VALUES = FUNCTION_WORDS | STOPWORDS | frozenset(NUMBER_WORDS)
#: Stop words for names: the shared list minus the words that name columns.
_STOP = STOPWORDS - {"name", "names"}
#: Words before a single capital letter that make it a value ("an A", "grade B").
_LETTER_CONTEXT = frozenset(
    {"an", "grade", "grades", "letter", "rating", "rated", "class", "level", "type", "mark", "got"}
)
#: Intent words that link to a name only when they are that very name: "popular" is
#: no form of "population", "most" none of "mostly" (a verb like "ordered" still names
#: the orders it forms).
_EXACT_ONLY = (
    FREQUENCY_WORDS
    | MAX_WORDS
    | MIN_WORDS
    | AVG_WORDS
    | SUM_WORDS
    | frozenset(
        {
            "count",
            "counts",
            "number",
            "numbers",
            "amount",
            "many",
            "much",
            "distinct",
            "different",
            "unique",
            "each",
            "every",
            "per",
            "all",
            "any",
            "total",
        }
    )
)
#: Nouns after which the next word is a text to look for ("the word you").
_LIKE_NOUNS = frozenset({"word", "letter", "substring", "string", "phrase", "term"})
#: Words allowed inside a multi-word name's mention ("level of membership").
_GAP = frozenset(
    {"of", "the", "a", "an", "in", "for", "by", "per", "to", "on", "at", "s", "each", "every"}
)
#: Command words that open a question and never name data ("Show ...", "List ...").
_COMMANDS = frozenset(
    {
        "show",
        "list",
        "find",
        "give",
        "return",
        "tell",
        "display",
        "get",
        "count",
        "compute",
        "report",
    }
)


@attrs.frozen(kw_only=True)
class Link:
    """A run of question tokens ``[start, end)`` linked to a table, column or value.

    Attributes:
        start: first token.
        end: one after the last token.
        kind: ``"table"``, ``"column"``, ``"value"`` (a stored value) or
            ``"literal"`` (a quoted or capitalised text that is no stored value).
        table: the table (``""`` for a literal).
        column: the column (``""`` for a table).
        value: the stored value or the literal text.
        score: match quality, 0..1.
        complete: every informative word of the name matched.
    """

    start: int
    end: int
    kind: str
    table: str = ""
    column: str = ""
    value: str = ""
    score: float = 1.0
    complete: bool = True

    @property
    def span(self) -> range:
        """The token positions."""
        return range(self.start, self.end)


@attrs.define
class Links:
    """Every link found in one question, by kind, non-overlapping per kind group."""

    question: Question
    schema: SchemaIndex
    tables: list[Link]
    columns: list[Link]
    values: list[Link]
    covered: set[int]

    def columns_at(self, start: int, end: int) -> list[Link]:
        """Column links with exactly this span, best first."""
        return [c for c in self.columns if c.start == start and c.end == end]

    def table_at(self, i: int) -> Link | None:
        """The table link covering token ``i``."""
        for t in self.tables:
            if t.start <= i < t.end:
                return t
        return None

    def value_at(self, i: int) -> Link | None:
        """The value or literal link covering token ``i``."""
        for v in self.values:
            if v.start <= i < v.end:
                return v
        return None

    def column_spans(self) -> list[tuple[int, int]]:
        """Distinct spans of column links, in order."""
        return sorted({(c.start, c.end) for c in self.columns})


# ---------------------------------------------------------------- word matching
def _lcp(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def edit_distance(a: str, b: str, limit: int = 2) -> int:
    """Optimal-string-alignment distance between ``a`` and ``b`` (capped at ``limit + 1``)."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        best = cur[0]
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            v = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                v = min(v, prev2[j - 2] + 1)
            cur[j] = v
            best = min(best, v)
        if best > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


def _typo_limit(n: int) -> int:
    return 0 if n < 5 else 1 if n < 9 else 2


def word_match(token: Token, word: str, root: str) -> float:
    """How well a question token matches a schema name word (0: not at all)."""
    if token.stem == word or token.low == word or ABBREVIATIONS.get(token.low) == word:
        return 1.0
    if len(word) < 3 or len(token.stem) < 3:
        return 0.0
    if token.root == root:
        return 0.9
    a, b = token.root, root
    n = _lcp(a, b)
    short = min(len(a), len(b))
    if n >= 5 and short - n <= 2 and max(len(a), len(b)) - n <= 6:
        return 0.8
    # an abbreviated name word ("indep" for "independence")
    if len(word) >= 5 and token.stem.startswith(word) and word not in FUNCTION_WORDS:
        return 0.7
    limit = _typo_limit(min(len(token.stem), len(word)))
    if limit and token.stem[0] == word[0] and edit_distance(token.stem, word, limit) <= limit:
        return 0.75
    return 0.0


# ---------------------------------------------------------------- the linker
@attrs.define
class _Cand:
    start: int
    end: int
    score: float
    complete: bool
    kind: str
    table: str
    column: str = ""
    quality: float = 1.0  # how exactly the matched words match (1: same stems)


def _content(tok: Token) -> bool:
    return not tok.punct and tok.low not in _STOP


def link_question(
    q: Question,
    schema: SchemaIndex,
    value_index: Mapping[str, tuple[tuple[str, str, str], ...]],
    fuzzy_keys: FuzzyKeys | None = None,
) -> Links:
    """Link the tokens of ``q`` to the schema and stored values.

    Args:
        q: the parsed question.
        schema: the schema index.
        value_index: stored values by first lower-cased word (and its stem).
        fuzzy_keys: the typo and demonym lookup over the value index's keys.

    Returns:
        The links.
    """
    toks = q.tokens
    n = len(toks)
    # per token: name word -> match quality
    matches: list[dict[str, float]] = [{} for _ in range(n)]
    lead = True
    for i, t in enumerate(toks):
        if t.punct or (t.number is not None and t.is_digits):
            continue
        if lead and (t.low in _COMMANDS or t.low in ("please", "me", "us")):
            continue  # "Show me...", "Please list..."
        lead = False
        if t.low in STOPWORDS and t.stem not in schema.vocabulary:
            continue
        passive = t.low.endswith("ed") and q.low(i + 1) == "by"
        found = schema.matches_of(t.low)
        if found is None:
            exact_only = t.low in _EXACT_ONLY
            found = {}
            for w in schema.ordered_vocabulary:
                if exact_only:
                    s = 1.0 if t.stem == w or t.low == w else 0.0
                else:
                    s = word_match(t, w, schema.roots[w])
                if s:
                    found[w] = s
            schema.remember_matches(t.low, found)
        # "shared by", "owned by": a verb, unless the name is that very word
        matches[i] = {w: s for w, s in found.items() if not (passive and s < 1.0)}
    # two words written as one name word ("post codes" / "postcode")
    joined: dict[int, str] = {}
    for i in range(n - 1):
        a, b = toks[i], toks[i + 1]
        if a.punct or b.punct:
            continue
        w = stem(a.low + b.low)
        if w in schema.vocabulary and w not in matches[i]:
            joined[i] = w

    seen_words = {w for m in matches for w in m} | set(joined.values())
    cands: list[_Cand] = []
    for ti in schema.tables:
        if not seen_words & set(ti.words) and not any(
            seen_words & set(ci.words) for ci in ti.columns
        ):
            continue
        for ws in dict.fromkeys((ti.key, ti.words)):
            cands.extend(_spans(ws, matches, joined, toks, schema, "table", ti.name, ""))
    for ti in schema.tables:
        for ci in ti.columns:
            if not seen_words & set(ci.words):
                continue
            for ws in dict.fromkeys((ci.key, ci.words)):
                cands.extend(_spans(ws, matches, joined, toks, schema, "column", ti.name, ci.name))
            if ci.key and not set(ti.key) & set(ci.key):
                # the table's name before the column's ("customer name"): the whole
                # phrase, never a part of it
                both = tuple(ti.key) + tuple(ci.key)
                cands.extend(
                    x
                    for x in _spans(both, matches, joined, toks, schema, "column", ti.name, ci.name)
                    if x.complete
                    and x.end - x.start == len(both)
                    and any(w in ti.key for w in matches[x.start])
                )
    cands = _prune(q, schema, cands, matches)
    values = _link_values(q, schema, value_index, fuzzy_keys, cands, matches)
    value_tokens = {i for v in values for i in v.span}
    # schema links inside a value span are the value's words, not the schema's
    cands = [
        c
        for c in cands
        if not any(i in value_tokens for i in range(c.start, c.end))
        or (
            c.complete
            and c.score >= 0.95
            and not any(
                v.start <= c.start
                and c.end <= v.end
                and v.kind == "value"
                and (v.end - v.start) > (c.end - c.start)
                for v in values
            )
        )
    ]
    values = [
        v
        for v in values
        if v.kind != "value"
        or not any(
            c.start <= v.start and v.end <= c.end and c.complete and c.score >= 0.95 for c in cands
        )
        or any(toks[i].quoted for i in v.span)
    ]

    tables = _tile([c for c in cands if c.kind == "table"])
    columns = _tile([c for c in cands if c.kind == "column"], keep_alternatives=True)
    table_links = [
        Link(
            start=c.start,
            end=c.end,
            kind="table",
            table=c.table,
            score=c.score,
            complete=c.complete,
        )
        for c in tables
    ]
    column_links = [
        Link(
            start=c.start,
            end=c.end,
            kind="column",
            table=c.table,
            column=c.column,
            score=c.score,
            complete=c.complete,
        )
        for c in columns
    ]
    covered = {i for lk in (*table_links, *column_links, *values) for i in lk.span}
    return Links(
        question=q,
        schema=schema,
        tables=table_links,
        columns=sorted(column_links, key=lambda lk: (lk.start, -lk.score)),
        values=values,
        covered=covered,
    )


def _prune(
    q: Question, schema: SchemaIndex, cands: list[_Cand], matches: list[dict[str, float]]
) -> list[_Cand]:
    """Keep the best candidate per element and span, drop the ones other words
    explain better, and add the naming-column mentions of "<table> names"."""
    best: dict[tuple[str, str, str, int, int], _Cand] = {}
    for cd in cands:
        k = (cd.kind, cd.table, cd.column, cd.start, cd.end)
        if k not in best or cd.score > best[k].score:
            best[k] = cd
    found = list(best.values())
    tables = [c for c in found if c.kind == "table" and c.complete]
    table_spans = {(c.start, c.end) for c in tables}
    table_quality = {(c.start, c.end): c.quality for c in tables}
    column_spans = {(c.start, c.end) for c in found if c.kind == "column" and c.complete}
    kept: list[_Cand] = []
    for cd in found:
        span = (cd.start, cd.end)
        if cd.kind == "column":
            if span in table_spans:
                col = schema.column(cd.table, cd.column)
                # "teacher" for teacher_id, or a partial column name, is the table; so
                # is a word naming a table and that table's own column
                if (col is not None and col.is_key) or (
                    not cd.complete and cd.quality <= table_quality[span]
                ):
                    continue
                if any(
                    t.table == cd.table and (t.start, t.end) == span and t.quality >= cd.quality
                    for t in tables
                ):
                    continue
            if any(
                a <= cd.start and cd.end <= b and b - a > cd.end - cd.start for a, b in table_spans
            ):
                continue  # a word inside a table's name ("items" in "order items")
        elif not cd.complete and any(
            a <= cd.start and cd.end <= b and b - a > cd.end - cd.start for a, b in column_spans
        ):
            continue  # a part of a table's name inside a column's name
        kept.append(cd)
    # "<table> names", "the names of <table>": the table's naming column
    for t in tables:
        named = schema.naming_columns(t.table)
        if not named:
            continue
        col_name = named[0].name
        if q.low(t.end) in ("name", "names", "title", "titles"):
            kept.append(
                _Cand(
                    start=t.start,
                    end=t.end + 1,
                    score=1.1,
                    complete=True,
                    kind="column",
                    table=t.table,
                    column=col_name,
                )
            )
        j = t.start - 1
        while j >= 0 and q.low(j) in ("the", "all", "of", "each", "every"):
            j -= 1
        if 0 <= j < t.start - 1 and q.low(j) in ("name", "names") and q.low(j + 1) == "of":
            kept.append(
                _Cand(
                    start=j,
                    end=j + 1,
                    score=1.0,
                    complete=True,
                    kind="column",
                    table=t.table,
                    column=col_name,
                )
            )
    return kept


def _spans(
    target: Sequence[str],
    matches: list[dict[str, float]],
    joined: dict[int, str],
    toks: Sequence[Token],
    schema: SchemaIndex,
    kind: str,
    table: str,
    column: str,
) -> list[_Cand]:
    """Where the name words ``target`` occur together in the question."""
    if not target:
        return []
    want = [w for w in target if w not in _STOP] or list(target)
    total = sum(schema.weight(w) for w in want)
    out: list[_Cand] = []
    n = len(toks)
    for i in range(n):
        if not (set(matches[i]) & set(want)) and joined.get(i) not in want:
            continue
        got: dict[str, float] = {}
        last = i
        j = i
        gap = 0
        while j < n and j <= i + len(want) + 2:
            t = toks[j]
            if t.punct:
                break
            hit = None
            if joined.get(j) in want and joined[j] not in got:
                hit = (joined[j], 1.0, j + 1)
            else:
                opts = [(w, s) for w, s in matches[j].items() if w in want and w not in got]
                if opts:
                    w, s = max(opts, key=lambda x: (x[1], x[0]))
                    hit = (w, s, j)
            if hit is not None:
                got[hit[0]] = hit[1]
                last = hit[2]
                j = hit[2] + 1
                gap = 0
                continue
            if t.low in _GAP and gap < 2 and len(got) < len(want):
                gap += 1
                j += 1
                continue
            break
        if not got:
            continue
        weight = sum(schema.weight(w) * s for w, s in got.items())
        frac = weight / total if total else 0.0
        complete = len(got) == len(want)
        if not complete:
            informative = [w for w in got if w not in _GENERIC]
            unique = any(schema.df(w) == 1 for w in informative)
            if not informative or (frac < 0.45 and not unique):
                continue
            # a single function word ("number", "total") alone is not a partial name
            if all(toks[k].low in FUNCTION_WORDS for k in range(i, last + 1) if _content(toks[k])):
                continue
        quality = sum(got.values()) / len(got)
        score = quality * (1.0 if complete else 0.8 * frac)
        if complete and len(want) > 1:
            score += 0.05 * (len(want) - 1)
        out.append(
            _Cand(
                start=i,
                end=last + 1,
                score=score,
                complete=complete,
                kind=kind,
                table=table,
                column=column,
                quality=quality,
            )
        )
    return out


def _tile(cands: list[_Cand], *, keep_alternatives: bool = False) -> list[_Cand]:
    """Non-overlapping spans, longest and best first; with ``keep_alternatives``
    every candidate of a kept span stays (the same words may name several columns)."""
    order = sorted(
        cands, key=lambda c: (-(c.end - c.start) * min(1.0, c.score + 0.3), -c.score, c.start)
    )
    chosen: list[tuple[int, int]] = []
    out: list[_Cand] = []
    for c in order:
        span = (c.start, c.end)
        if span in chosen:
            if keep_alternatives:
                out.append(c)
            continue
        if any(not (c.end <= a or c.start >= b) for a, b in chosen):
            continue
        chosen.append(span)
        out.append(c)
    return out


# ---------------------------------------------------------------- values
def _value_words(v: str) -> list[str]:
    return [w.lower() for w in words(v)]


def _link_values(
    q: Question,
    schema: SchemaIndex,
    index: Mapping[str, tuple[tuple[str, str, str], ...]],
    fuzzy_keys: FuzzyKeys | None,
    cands: list[_Cand],
    matches: list[dict[str, float]],
) -> list[Link]:
    toks = q.tokens
    n = len(toks)
    lows = [t.low for t in toks]
    found: list[Link] = []
    schema_word = {
        i for c in cands if c.complete and c.score >= 0.95 for i in range(c.start, c.end)
    }
    # positions of the word tokens (values are matched ignoring punctuation)
    wpos = [i for i, t in enumerate(toks) if not t.punct]
    wl = [lows[i] for i in wpos]
    ws = [stem(toks[i].low, synonyms=False) for i in wpos]
    known = {t.name for t in schema.tables}

    def ok_start(k: int) -> bool:
        t = toks[wpos[k]]
        if t.quoted:
            return True
        if t.low in _NOT_VALUES and not t.capital:
            return False
        return not (t.is_digits and _compared(q, wpos[k]))

    for k in range(len(wpos)):
        if not ok_start(k):
            continue
        t = toks[wpos[k]]
        keys = [t.low] + ([ws[k]] if ws[k] != t.low else [])
        seen: set[tuple[str, str, str]] = set()
        hits: list[tuple[int, str, str, str, float]] = []
        for key in keys:
            for table, column, v in index.get(key, ()):
                if table not in known or (table, column, v) in seen:
                    continue
                seen.add((table, column, v))
                vw = _value_words(v)
                m = len(vw)
                if not m or k + m > len(wl):
                    continue
                if wl[k : k + m] == vw:
                    hits.append((m, table, column, v, 1.0))
                elif len(vw[-1]) > 3 and ws[k : k + m] == [stem(x, synonyms=False) for x in vw]:
                    hits.append((m, table, column, v, 0.9))
        if not hits and len(t.low) >= 5 and t.low not in _NOT_VALUES:
            hits = _fuzzy_value(
                t.low, k, wl, index, fuzzy_keys, known, typos=t.capital or len(t.low) >= 6
            )
        for m, table, column, v, s in hits:
            start, end = wpos[k], wpos[k + m - 1] + 1
            vw = _value_words(v)
            letter = (
                len(t.text) == 1 and t.text.isupper() and q.low(start - 1) in _LETTER_CONTEXT
            )  # "got an A", "grade B"
            if (
                len(vw) == 1
                and (len(vw[0]) < 2 or vw[0] in _NOT_VALUES)
                and not t.quoted
                and not letter
            ):
                continue
            if all(i in schema_word for i in range(start, end)) and not t.quoted:
                continue  # the words name the schema
            col = schema.column(table, column)
            if col is None:
                continue
            found.append(
                Link(
                    start=start,
                    end=end,
                    kind="value",
                    table=col.table,
                    column=col.name,
                    value=v,
                    score=s,
                )
            )
    # quoted texts that are no stored value: literals
    for quote in q.quotes:
        body = quote.text.strip()
        if any(v.start <= quote.start and quote.end <= v.end and v.score >= 0.9 for v in found):
            # the stored value spelled differently in the question: keep the value
            continue
        exact = _exact_value(body, index, known)
        if exact is not None:
            table, column, v = exact
            found.append(
                Link(
                    start=quote.start,
                    end=quote.end,
                    kind="value",
                    table=table,
                    column=column,
                    value=v,
                )
            )
        else:
            found.append(
                Link(start=quote.start, end=quote.end, kind="literal", value=body, score=0.8)
            )
    kept = _choose_values(found, cands, toks)
    # the word after "the word", "the letter", "the substring": a literal
    for i in range(1, n):
        j = i - 1
        if toks[j].low == "the" and j > 0:
            j -= 1
        if (
            toks[i - 1].low in _LIKE_NOUNS
            and not toks[i].punct
            and not any(v.start <= i < v.end for v in kept)
        ):
            kept.append(Link(start=i, end=i + 1, kind="literal", value=toks[i].text, score=0.8))
    # capitalised words in the middle of the question that link to nothing: a
    # name the index does not hold (too many distinct values to index)
    taken = {i for v in kept for i in v.span} | {
        i for c in cands for i in range(c.start, c.end) if c.score >= 0.7
    }
    i = 0
    while i < n:
        t = toks[i]
        if (
            t.capital
            and not t.quoted
            and i not in taken
            and not matches[i]
            and t.low not in _NOT_VALUES
            and not t.is_digits
            and t.number is None
        ):
            j = i + 1
            # a capitalised word after a name is part of it, even a schema word
            # ("Riverside Hall"); a value already found ends it
            values_at = {k for v in kept for k in v.span}
            while j < n and (
                (toks[j].capital and j not in values_at and not toks[j].punct)
                or (
                    toks[j].low in {"of", "de", "la", "von", "van", "the", "and"}
                    and j + 1 < n
                    and toks[j + 1].capital
                    and j + 1 not in values_at
                )
            ):
                j += 1
            text = q.text[toks[i].start : toks[j - 1].end]
            kept.append(Link(start=i, end=j, kind="literal", value=text, score=0.5))
            i = j
            continue
        i += 1
    return sorted(kept, key=lambda v: v.start)


def _compared(q: Question, i: int) -> bool:
    """Whether a comparison word stands just before token ``i``."""
    before = {q.low(i - 1), q.low(i - 2)}
    return bool(
        before
        & {
            "than",
            "least",
            "most",
            "over",
            "under",
            "above",
            "below",
            "before",
            "after",
            "between",
            "and",
            "since",
            "to",
        }
    )


def _exact_value(
    body: str, index: Mapping[str, tuple[tuple[str, str, str], ...]], known: set[str]
) -> tuple[str, str, str] | None:
    ws = _value_words(body)
    if not ws:
        return None
    low = body.lower().strip()
    for table, column, v in index.get(ws[0], ()):
        if table in known and v.lower().strip() == low:
            return table, column, v
    return None


def _fuzzy_value(
    word: str,
    k: int,
    wl: list[str],
    index: Mapping[str, tuple[tuple[str, str, str], ...]],
    fuzzy_keys: FuzzyKeys | None,
    known: set[str],
    *,
    typos: bool = True,
) -> list[tuple[int, str, str, str, float]]:
    """Values whose first word is ``word`` as a demonym ("Canadian"), or misspelt."""
    out: list[tuple[int, str, str, str, float]] = []
    if fuzzy_keys is None:
        return out
    for key, score in fuzzy_keys.close(word, typos=typos):
        for table, column, v in index.get(key, ()):
            if table not in known:
                continue
            vw = _value_words(v)
            m = len(vw)
            if k + m > len(wl):
                continue
            rest_ok = all(
                a == b or edit_distance(a, b, _typo_limit(len(b))) <= _typo_limit(len(b))
                for a, b in zip(wl[k + 1 : k + m], vw[1:], strict=False)
            )
            if rest_ok:
                out.append((m, table, column, v, score))
    return out


def _choose_values(found: list[Link], cands: list[_Cand], toks: Sequence[Token]) -> list[Link]:
    """One value per span: the longest, then the one whose column or table the
    question names next to it, then a naming column."""

    def pref(v: Link) -> float:
        s = v.score
        for c in cands:
            if c.kind == "column" and c.table == v.table and c.column == v.column:
                d = v.start - c.end
                s += 2.0 if 0 <= d <= 3 else 0.5
            elif c.kind == "table" and c.table == v.table:
                s += 1.0 if 0 <= v.start - c.end <= 4 else 0.4
        col = v.column.lower()
        if "name" in col or "title" in col:
            s += 0.3
        return s

    order = sorted(found, key=lambda v: (-(v.end - v.start), -pref(v), v.start))
    kept: list[Link] = []
    alts: list[Link] = []
    for v in order:
        if any(not (v.end <= k.start or v.start >= k.end) for k in kept):
            if any(k.start == v.start and k.end == v.end for k in kept):
                alts.append(v)
            continue
        kept.append(v)
    # values listed together ("Latin or Pop", "A, B and C") share a column when
    # they can: a value stored in several columns takes its neighbour's
    kept.sort(key=lambda v: v.start)
    for n_, v in enumerate(kept):
        for m_ in (n_ - 1, n_ + 1):
            if not 0 <= m_ < len(kept):
                continue
            w = kept[m_]
            lo, hi = (v, w) if v.start < w.start else (w, v)
            gap = [toks[k].low for k in range(lo.end, hi.start)]
            if not gap or not set(gap) <= {"or", "and", ",", "either", "both"}:
                continue
            if (w.table, w.column) == (v.table, v.column):
                continue
            same = [
                a
                for a in alts
                if (a.start, a.end) == (v.start, v.end)
                and (a.table, a.column) == (w.table, w.column)
            ]
            other_fits = [
                a
                for a in alts
                if (a.start, a.end) == (w.start, w.end)
                and (a.table, a.column) == (v.table, v.column)
            ]
            if same and not other_fits:
                kept[n_] = same[0]
    return kept


class FuzzyKeys:
    """The value index's first words, bucketed by first letter and length, with the
    close keys of each question word remembered (questions repeat their words).

    Args:
        index: stored values by first lower-cased word.
    """

    def __init__(self, index: Mapping[str, tuple[tuple[str, str, str], ...]]) -> None:
        buckets: dict[tuple[str, int], list[str]] = {}
        for key in index:
            if len(key) >= 4 and re.match(r"[^\W\d_]", key):
                buckets.setdefault((key[:1], len(key)), []).append(key)
        self._buckets = {k: tuple(v) for k, v in buckets.items()}
        self._seen: LRUCache[tuple[str, bool], tuple[tuple[str, float], ...]] = LRUCache(
            maxsize=4096
        )

    def close(self, word: str, *, typos: bool) -> tuple[tuple[str, float], ...]:
        """``(key, score)`` for keys ``word`` is a demonym (0.8) or a typo (0.75) of."""
        hit = self._seen.get((word, typos))
        if hit is not None:
            return hit
        out: list[tuple[str, float]] = []
        limit = _typo_limit(len(word))
        first = word[:1]
        for n in range(max(4, len(word) - 3), len(word) + limit + 1):
            for key in self._buckets.get((first, n), ()):
                if key == word:
                    continue
                base = key[:-1] if key[-1] in "aey" else key
                if word.startswith(base) and word[len(base) :] in _DEMONYM and len(base) >= 3:
                    out.append((key, 0.8))
                elif (
                    typos
                    and limit
                    and abs(len(key) - len(word)) <= limit
                    and edit_distance(word, key, limit) <= limit
                ):
                    out.append((key, 0.75))
        found = tuple(out)
        self._seen[(word, typos)] = found
        return found


def fuzzy_key_index(index: Mapping[str, tuple[tuple[str, str, str], ...]]) -> FuzzyKeys:
    """The typo and demonym lookup over ``index``'s keys."""
    return FuzzyKeys(index)


def column_info(links: Links, lk: Link) -> ColumnInfo | None:
    """The column a link points to."""
    return links.schema.column(lk.table, lk.column)


__all__ += ["FuzzyKeys", "column_info", "edit_distance", "fuzzy_key_index", "word_match"]
