"""The offline NL-to-SQL generator (pure: no I/O, no model).

Two strategies, tried in order:

1. Reuse: the most similar trained question (IDF-weighted word overlap) gives its
   SQL, whose literals are adapted to the new question (numbers and stored values
   that appear in the new question but not in the trained one replace the literals
   that the trained question spelled out).
2. Compose: question words are linked to tables, columns and stored values, and a
   query is built for the common shapes: list, filter, count, aggregate per group,
   min/max/avg/sum, top-N and ordering, with joins along foreign keys.
"""

from __future__ import annotations

import math
import re
from collections import Counter, deque
from collections.abc import Callable, Sequence

import attrs

from avl.schema import ColumnSpec, ExamplePair, TableSpec, build_value_index
from avl.schema import WriteContext as GenerationContext
from avl.text import STOPWORDS, ident_words, key_words, similarity, stem, words

__all__ = ["OfflineGenerator"]

_NUMBER = re.compile(r"^\d+(?:\.\d+)?$")
_QUOTED = re.compile(r"\"([^\"]+)\"|'([^']+)'|“([^”]+)”")
_SQL_STRING = re.compile(r"'((?:[^']|'')*)'|\"((?:[^\"]|\"\")*)\"")
_SQL_NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)(?![\w.])")
_NUMBER_WORDS = {
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
}

_COUNT_WORDS = ("how many", "number of", "count", "total number")
_AVG = {"average", "avg", "mean"}
_SUM = {"total", "sum", "combined"}
_MAX = {"maximum", "max", "highest", "largest", "biggest", "greatest", "most", "longest", "latest"}
_MIN = {"minimum", "min", "lowest", "smallest", "least", "fewest", "shortest", "earliest"}
_GT = (
    "more than",
    "greater than",
    "larger than",
    "bigger than",
    "higher than",
    "older than",
    "over",
    "above",
    "after",
    "exceeds",
    "exceeding",
    "longer than",
    "heavier than",
    "taller than",
)
_LT = (
    "less than",
    "fewer than",
    "smaller than",
    "lower than",
    "younger than",
    "under",
    "below",
    "before",
    "shorter than",
    "lighter than",
)
_GE = ("at least", "no less than", "not less than", "or more", "minimum of")
_LE = ("at most", "no more than", "not more than", "or less", "or fewer", "maximum of")


@attrs.frozen
class _Mention:
    start: int
    end: int
    table: str
    column: str | None  # None: a table mention
    score: float


@attrs.frozen
class _Value:
    start: int
    end: int
    table: str
    column: str
    value: str


def _quote_ident(name: str) -> str:
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) and name.lower() not in _RESERVED:
        return name
    return '"' + name.replace('"', '""') + '"'


_RESERVED = frozenset(
    [
        "select",
        "from",
        "where",
        "group",
        "order",
        "by",
        "limit",
        "join",
        "on",
        "as",
        "and",
        "or",
        "not",
        "in",
        "is",
        "null",
        "table",
        "index",
        "key",
        "primary",
        "foreign",
        "references",
        "check",
        "default",
        "user",
        "date",
        "time",
        "year",
        "name",
    ]
) - {"name", "year", "date", "time"}


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@attrs.frozen(kw_only=True)
class OfflineGenerator:
    """Deterministic NL-to-SQL over a :class:`GenerationContext`.

    Attributes:
        reuse_threshold: minimum similarity for reusing a trained pair's SQL.
    """

    reuse_threshold: float = 0.4

    # ----------------------------------------------------------------- public
    def generate(self, question: str, context: GenerationContext) -> str:
        """Return one SQL statement answering ``question`` (never raises on text)."""
        reused = self._reuse(question, context)
        if reused is not None:
            return reused
        return self._compose(question, context)

    # ------------------------------------------------------------------ reuse
    def _reuse(self, question: str, context: GenerationContext) -> str | None:
        if not context.examples:
            return None
        idf = _idf([e.question for e in context.examples])
        want = _shape(question)
        qstems = [stem(w) for w in words(question)]
        named = {t.name.lower() for t in context.tables if _contains(qstems, ident_words(t.name))}
        best: ExamplePair | None = None
        best_score = 0.0
        qnums = _numbers(question)
        for ex in context.examples:
            s = similarity(question, ex.question, idf)
            if s <= 0.0:
                continue
            # a number the pair's question states and this one has no counterpart for
            # would stay in the SQL as a filter nobody asked for (and the reverse)
            s -= _NUMBER_GAP * abs(_numbers(ex.question) - qnums)
            # the same question shape (count, average, order, negation...) in the SQL
            got = _sql_shape(ex.sql)
            agree = sum(1 for k in want if k in got) + sum(1 for k in got if k in want)
            clash = sum(_CLASH.get(k, 0.06) for k in want ^ got)
            s = s * (1.0 + 0.05 * agree) - clash
            # tables the question names but the SQL does not read
            used = {m.lower() for m in _SQL_TABLE.findall(ex.sql)}
            s -= 0.05 * len(named - used)
            if s > best_score:
                best, best_score = ex, s
        if best is None or best_score < self.reuse_threshold:
            return None
        return adapt_literals(best, question, context)

    # ---------------------------------------------------------------- compose
    def _compose(self, question: str, context: GenerationContext) -> str:
        if not context.tables:
            return "SELECT 1"
        return _Composer(question, context).build()


_SQL_TABLE = re.compile(
    r"\b(?:from|join)\s+[\"`\[]?([A-Za-z_][A-Za-z0-9_ ]*?)[\"`\]]?(?:\s|$|,|\))", re.I
)


def _contains(seq: list[str], sub: list[str]) -> bool:
    k = len(sub)
    return k > 0 and any(seq[i : i + k] == sub for i in range(len(seq) - k + 1))


_SHAPE_WORDS = {
    "count": (" how many ", " number of ", " count "),
    "avg": (" average ", " mean ", " avg "),
    "sum": (" total ", " sum "),
    "order": (
        " order ",
        " ordered ",
        " sorted ",
        " sort ",
        " descending ",
        " ascending ",
        " alphabetical ",
        " alphabetically ",
    ),
    "desc": (" descending ", " decreasing ", " reverse ", " from highest ", " from the highest "),
    "negation": (" not ", " no ", " without ", " never ", " n't ", " except "),
    "both": (" both ",),
    "limit1": (
        " most ",
        " least ",
        " highest ",
        " lowest ",
        " largest ",
        " smallest ",
        " oldest ",
        " youngest ",
        " fewest ",
        " greatest ",
        " best ",
        " top ",
    ),
    "distinct": (" distinct ", " different ", " unique "),
}

# how much a shape present on one side only lowers a pair's score
_CLASH = {
    "count": 0.2,
    "avg": 0.15,
    "sum": 0.1,
    "order": 0.1,
    "desc": 0.04,
    "negation": 0.1,
    "both": 0.1,
    "limit1": 0.1,
    "distinct": 0.03,
}

_SQL_SHAPE = {
    "count": re.compile(r"count\s*\(", re.I),
    "avg": re.compile(r"avg\s*\(", re.I),
    "sum": re.compile(r"sum\s*\(", re.I),
    "order": re.compile(r"order\s+by", re.I),
    "desc": re.compile(r"\bdesc\b", re.I),
    "negation": re.compile(r"\bnot\b|\bexcept\b|!=|<>", re.I),
    "both": re.compile(r"\bintersect\b", re.I),
    "limit1": re.compile(r"\blimit\s+\d+", re.I),
    "distinct": re.compile(r"\bdistinct\b", re.I),
}


def _shape(question: str) -> set[str]:
    text = " " + " ".join(w.lower() for w in re.findall(r"[A-Za-z']+|\d+", question)) + " "
    text = text.replace("n't", " n't")
    return {k for k, ps in _SHAPE_WORDS.items() if any(p in text for p in ps)}


def _sql_shape(sql: str) -> set[str]:
    return {k for k, rx in _SQL_SHAPE.items() if rx.search(sql)}


def _idf(texts: Sequence[str]) -> dict[str, float]:
    df: Counter[str] = Counter()
    for t in texts:
        df.update(set(key_words(t)))
    n = len(texts)
    return {t: math.log((n + 1) / (c + 0.5)) + 1.0 for t, c in df.items()}


# how much each number that one question states and the other does not lowers a score
_NUMBER_GAP = 0.1


def _numbers(question: str) -> int:
    """How many numbers (digits or number words) ``question`` states."""
    return sum(1 for w in words(question) if _NUMBER.match(w) or w.lower() in _NUMBER_WORDS)


def _question_literals(question: str, context: GenerationContext) -> tuple[list[str], list[str]]:
    """Numbers and string values spelled out in ``question``."""
    nums: list[str] = []
    for w in words(question):
        if _NUMBER.match(w):
            nums.append(w)
        elif w.lower() in _NUMBER_WORDS:
            nums.append(_NUMBER_WORDS[w.lower()])
    strings = [next(g for g in m.groups() if g) for m in _QUOTED.finditer(question)]
    low = " " + " ".join(w.lower() for w in words(question)) + " "
    for vals in context.values.values():
        for v in vals:
            vl = " " + " ".join(x.lower() for x in words(v)) + " "
            if len(vl.strip()) >= 2 and vl in low and not _NUMBER.match(v.strip()):
                strings.append(v)
    # Capitalised words in the middle of the question are likely names.
    ws = question.split()
    for i, w in enumerate(ws):
        clean = w.strip("?.,!;:()")
        if i > 0 and clean[:1].isupper() and clean.isalpha() and clean.lower() not in STOPWORDS:
            strings.append(clean)
    return nums, strings


def _swap_number(old: str, new: str) -> Callable[[re.Match[str]], str]:
    def swap(m: re.Match[str]) -> str:
        return new if m.group(1) == old else m.group(1)

    return swap


def adapt_literals(example: ExamplePair, question: str, context: GenerationContext) -> str:
    """Replace the literals of ``example.sql`` that the new ``question`` changes."""
    sql = example.sql
    old_nums, old_strs = _question_literals(example.question, context)
    new_nums, new_strs = _question_literals(question, context)
    # numbers, position by position among those that differ
    gone = [n for n in old_nums if n not in new_nums]
    fresh = [n for n in new_nums if n not in old_nums]
    for old, new in zip(gone, fresh, strict=False):
        sql = _SQL_NUMBER.sub(_swap_number(old, new), sql)
    old_low = {s.lower() for s in old_strs}
    new_low = {s.lower() for s in new_strs}
    gone_s = [s for s in old_strs if s.lower() not in new_low]
    fresh_s = [s for s in new_strs if s.lower() not in old_low]
    seen: set[str] = set()
    unique: list[str] = []
    for item in fresh_s:
        if item.lower() not in seen:
            seen.add(item.lower())
            unique.append(item)
    fresh_s = unique
    if gone_s and fresh_s:
        lits = list(_SQL_STRING.finditer(sql))
        replacements: dict[str, str] = {}
        for old in gone_s:
            for m in lits:
                body = m.group(1) if m.group(1) is not None else m.group(2)
                if body is not None and body.strip("%").lower() == old.lower() and fresh_s:
                    new = fresh_s.pop(0)
                    replacements[m.group(0)] = m.group(0).replace(body.strip("%"), new)
        for a, b in replacements.items():
            sql = sql.replace(a, b)
    return sql


class _Composer:
    """Builds one query for one question (a short-lived helper)."""

    def __init__(self, question: str, context: GenerationContext) -> None:
        self.q = question
        self.ctx = context
        self.raw = words(question)
        self.low = [w.lower() for w in self.raw]
        self.st = [stem(w) for w in self.raw]
        self.text = " " + " ".join(self.low) + " "
        self.mentions = self._link_schema()
        self.values = self._link_values()

    # -------------------------------------------------------------- linking
    def _link_schema(self) -> list[_Mention]:
        out: list[_Mention] = []
        n = len(self.st)
        firsts: Counter[str] = Counter(ident_words(t.name)[0] for t in self.ctx.tables if t.name)
        for t in self.ctx.tables:
            tw = ident_words(t.name)
            whole = self._find(tw, t.name, None, 1.0)
            if not whole and len(tw) > 1 and firsts[tw[0]] == 1 and tw[0] not in STOPWORDS:
                # "degrees" for Degree_Programs, when no other table starts so
                whole = self._find(tw[:1], t.name, None, 0.6)
            out.extend(whole)
            for c in t.columns:
                cw = ident_words(c.name)
                found = self._find(cw, t.name, c.name, 1.0)
                if not found and len(cw) > 1:
                    rest = [w for w in cw if w not in tw and w != "id"]
                    if rest and rest != cw:
                        found = self._find(rest, t.name, c.name, 0.8)
                content = [w for w in cw if w not in STOPWORDS or w == "name"]
                if not found and len(content) > 1:
                    # all content words of the column within a small window
                    for i in range(n):
                        span = len(content) + 2
                        window = self.st[i : i + span]
                        if all(w in window for w in content) and self.st[i] in content:
                            last = max(window.index(w) for w in content)
                            found = [_Mention(i, i + last + 1, t.name, c.name, 0.7)]
                            break
                out.extend(found)
        return out

    def _find(self, target: list[str], table: str, column: str | None, w: float) -> list[_Mention]:
        if not target:
            return []
        k = len(target)
        res = []
        for i in range(len(self.st) - k + 1):
            if self.st[i : i + k] == target:
                res.append(_Mention(i, i + k, table, column, w * (1 + 0.2 * (k - 1))))
        return res

    def _link_values(self) -> list[_Value]:
        found: list[_Value] = []
        index = self.ctx.value_index or build_value_index(self.ctx.values)
        known = {t.name for t in self.ctx.tables}
        for i, first in enumerate(self.low):
            seen: set[tuple[str, str, str]] = set()
            cands = index.get(first, ()) + (
                index.get(self.st[i], ()) if self.st[i] != first else ()
            )
            for table, column, v in cands:
                if table not in known or (table, column, v) in seen:
                    continue  # a value of a table outside the retrieved context
                seen.add((table, column, v))
                vw = [x.lower() for x in words(v)]
                if len(vw) == 1 and (len(vw[0]) < 2 or vw[0] in STOPWORDS):
                    continue
                k = len(vw)
                if self.low[i : i + k] == vw or (
                    len(vw[-1]) > 3 and self.st[i : i + k] == [stem(x) for x in vw]
                ):
                    found.append(_Value(i, i + k, table, column, v))
        for m in _QUOTED.finditer(self.q):
            body = next(g for g in m.groups() if g)
            bw = [x.lower() for x in words(body)]
            for i in range(len(self.low) - len(bw) + 1):
                if bw and self.low[i : i + len(bw)] == bw and not any(v.start == i for v in found):
                    found.append(_Value(i, i + len(bw), "", "", body))
        # keep the longest match at each position; among equal spans prefer the
        # table named just before the value, a column named in the question, a name
        found.sort(key=lambda v: (-(v.end - v.start), v.start, -self._value_score(v)))
        kept: list[_Value] = []
        for val in found:
            if any(not (val.end <= k.start or val.start >= k.end) for k in kept):
                continue
            kept.append(val)
        return sorted(kept, key=lambda x: x.start)

    def _value_score(self, v: _Value) -> float:
        if not v.table:
            return 0.0
        score = 0.0
        for m in self.mentions:
            if m.table != v.table:
                continue
            if m.column is None and v.start - 4 <= m.start < v.start:
                score += 2.0
            elif m.column == v.column:
                score += 1.0
            else:
                score += 0.2
        if "name" in ident_words(v.column) or "title" in ident_words(v.column):
            score += 0.5
        return score

    def _column_named(self, v: _Value) -> bool:
        return any(m.column == v.column and m.table == v.table for m in self.mentions)

    def _has(self, *phrases: str) -> bool:
        return any(f" {p} " in self.text for p in phrases)

    def _pos(self, phrase: str) -> int:
        idx = self.text.find(f" {phrase} ")
        return -1 if idx < 0 else self.text[:idx].count(" ")

    # -------------------------------------------------------------- building
    def build(self) -> str:
        special = self._most_related() or self._not_related()
        if special is not None:
            return special
        return self._build()

    # ------------------------------------------------------ special shapes
    def _table_mentions(self) -> list[_Mention]:
        return sorted((m for m in self.mentions if m.column is None), key=lambda m: m.start)

    def _direct_fk(self, a: str, b: str) -> tuple[str, str, str, str] | None:
        """``(child, child_col, parent, parent_col)`` of a one-column FK between a and b."""
        for fk in self.ctx.foreign_keys:
            if len(fk.columns) != 1:
                continue
            if {fk.table.lower(), fk.ref_table.lower()} == {a.lower(), b.lower()}:
                return fk.table, fk.columns[0], fk.ref_table, fk.ref_columns[0]
        return None

    def _subject(self, other: str, before: int) -> str | None:
        """The table the question is about: mentioned before ``before``, not ``other``."""
        cands = [m.table for m in self._table_mentions() if m.start < before and m.table != other]
        if cands:
            return cands[0]
        cols = [
            m.table
            for m in self.mentions
            if m.column is not None and m.start < before and m.table != other
        ]
        return cols[0] if cols else None

    def _projection(self, table: str, skip: range) -> list[str]:
        """Columns of ``table`` named outside the ``skip`` span, in order."""
        t = self.ctx.table(table)
        if t is None:
            return []
        cols: list[str] = []
        taken: set[int] = set()
        ms = sorted(self.mentions, key=lambda m: (m.start, -(m.end - m.start)))
        for m in ms:
            if (
                m.table == table
                and m.column is not None
                and m.start not in skip
                and m.start not in taken
                and m.column not in cols
            ) and not self._table_word_only(m):
                cols.append(m.column)
                taken.update(range(m.start, m.end))
        if not cols:
            nc = self._name_column(t)
            cols = [nc.name] if nc is not None else []
        return cols

    def _most_related(self) -> str | None:
        """ "the X with the most Y" where Y is another table: group, count, order."""
        m = re.search(
            r"(?<! at) (most|greatest number of|largest number of|highest number of|most number of|"
            r"fewest|fewest number of|least number of|smallest number of) ",
            self.text,
        )
        if m is None or self._has(*_COUNT_WORDS[:1]):
            return None
        after = self.text[: m.end()].count(" ") - 1
        start = self.text[: m.start() + 1].count(" ") - 1
        desc = not m.group(1).startswith(("fewest", "least", "smallest"))
        nxt = [tm for tm in self._table_mentions() if after <= tm.start <= after + 2]
        if not nxt:
            # "the most languages": a column of the counted table
            nxt = [
                cm
                for cm in self.mentions
                if cm.column is not None
                and after <= cm.start <= after + 2
                and not self._is_numeric(cm)
            ]
        if not nxt:
            return None
        other = nxt[0].table
        subject = self._subject(other, after)
        if subject is None:
            return None
        fk = self._direct_fk(subject, other)
        if fk is None:
            return None
        child, ccol, _parent, pcol = fk
        proj = self._projection(subject, range(start, after + 3))
        if not proj:
            return None
        st, ot = ("T1", "T2")
        sel = ", ".join(f"{st}.{_quote_ident(c)}" for c in proj)
        on_subject = ccol if child == subject else pcol
        on_other = pcol if child == subject else ccol
        group = on_subject
        subject_t = self.ctx.table(subject)
        if len(proj) == 1 and subject_t is not None:
            col = subject_t.column(proj[0])
            named = "name" in ident_words(proj[0]) or "title" in ident_words(proj[0])
            if col is not None and not col.primary_key and not named:
                group = proj[0]  # "which continent ...": group by the category itself
        return (
            f"SELECT {sel} FROM {_quote_ident(subject)} AS {st} JOIN {_quote_ident(other)} AS {ot} "
            f"ON {st}.{_quote_ident(on_subject)} = {ot}.{_quote_ident(on_other)} "
            f"GROUP BY {st}.{_quote_ident(group)} ORDER BY COUNT(*) {'DESC' if desc else 'ASC'} LIMIT 1"
        )

    def _not_related(self) -> str | None:
        """ "X that do not have any Y": NOT IN over the foreign key."""
        m = re.search(
            r" (?:do not|does not|did not|don't|doesn't|didn't|never|without|not have any|"
            r"have no|has no|had no|not) ",
            self.text.replace(" n't", "n't"),
        )
        if m is None:
            return None
        after = self.text[: m.end()].count(" ") - 1
        start = self.text[: m.start() + 1].count(" ") - 1
        if any(v.start >= after - 1 and v.start <= after + 4 for v in self.values):
            return None  # "not from France": a value filter
        nxt = [tm for tm in self._table_mentions() if after <= tm.start <= after + 5]
        if not nxt:
            return None
        other = nxt[0].table
        subject = self._subject(other, after)
        if subject is None:
            return None
        fk = self._direct_fk(subject, other)
        if fk is None:
            return None
        child, ccol, _parent, pcol = fk
        if child == subject:
            return None  # the subject points to the other table: not a "has none" shape
        proj = self._projection(subject, range(start, after + 3))
        if not proj:
            return None
        sel = ", ".join(_quote_ident(c) for c in proj)
        return (
            f"SELECT {sel} FROM {_quote_ident(subject)} WHERE {_quote_ident(pcol)} NOT IN "
            f"(SELECT {_quote_ident(ccol)} FROM {_quote_ident(other)})"
        )

    def _build(self) -> str:
        ctx = self.ctx
        tscore: dict[str, float] = {t.name: 0.0 for t in ctx.tables}
        for m in self.mentions:
            tscore[m.table] += (2.0 if m.column is None else 0.6) * m.score
        for v in self.values:
            if v.table in tscore:
                tscore[v.table] += 1.0
        if tscore:
            main = max(
                ctx.tables, key=lambda t: (tscore.get(t.name, 0.0), -ctx.tables.index(t))
            ).name
        else:
            main = ctx.tables[0].name
        main_t = ctx.table(main)
        assert main_t is not None

        is_count = self._has(*_COUNT_WORDS)
        if is_count and not self._has("how many", "count"):
            at = self._pos("number")
            if at > 0 and self.low[at - 1] in (_AVG | _SUM | _MAX | _MIN | {"and"}):
                is_count = False
        distinct = self._has("distinct", "different", "unique")
        used_tables = {main}

        # filters from stored values
        where: list[tuple[str, str, str]] = []  # (table, expr-col, sql)
        value_spans: set[int] = set()
        for v in self.values:
            if not v.table:
                # a quoted text that is not a stored value: the text column named
                # just before it, with LIKE when the question says "contains"
                near_cols = [
                    m
                    for m in self.mentions
                    if m.column is not None
                    and v.start - 8 <= m.start < v.start
                    and not self._is_numeric(m)
                ]
                if near_cols:
                    vt, vc = near_cols[-1].table, near_cols[-1].column or ""
                else:
                    guess = self._guess_text_column(main_t)
                    if guess is None:
                        continue
                    vt, vc = main, guess.name
                before = " ".join(self.low[max(0, v.start - 5) : v.start])
                if any(k in before for k in ("contain", "substring", "includ", "like", "word")):
                    where.append((vt, vc, f"LIKE {_sql_string('%' + v.value + '%')}"))
                else:
                    where.append((vt, vc, f"= {_sql_string(v.value)}"))
                used_tables.add(vt)
            else:
                prev = self.low[max(0, v.start - 3) : v.start]
                op = "!=" if ("not" in prev or "n't" in prev or "except" in prev) else "="
                where.append((v.table, v.column, f"{op} {_sql_string(v.value)}"))
                used_tables.add(v.table)
            value_spans.update(range(v.start, v.end))

        # filters from numbers with comparators
        num_positions = [
            i
            for i, w in enumerate(self.low)
            if (_NUMBER.match(w) or (w in _NUMBER_WORDS and w != "one")) and i not in value_spans
        ]
        limit_n: int | None = None
        top = re.search(r" (?:top|first) (\d+) ", self.text) or re.search(
            r" (\d+) (?:most|highest|largest|biggest|best|top|oldest|youngest|lowest|least) ",
            self.text,
        )
        top_pos = -1
        if top:
            limit_n = int(top.group(1))
            top_pos = self.text[: top.start(1)].count(" ") - 1
        having: str | None = None
        having_group = False
        for i in num_positions:
            if i == top_pos:
                continue
            cmp = self._comparator_before(i)
            num = _NUMBER_WORDS.get(self.low[i], self.low[i])
            if self._table_after(i) and not is_count:
                # "grades with 4 or more students": a count per group
                having = f"COUNT(*) {cmp or '='} {num}"
                having_group = True
                continue
            if not _NUMBER.match(self.low[i]):
                continue
            near = self._numeric_column_near(i, main_t, {(t, c) for t, c, _ in where})
            if cmp is not None and near is None and is_count is False and self._group_intent():
                having = f"COUNT(*) {cmp} {self.low[i]}"
                continue
            if near is None:
                continue
            ntable, ncol = near
            if cmp is None:
                cmp = "="
            if cmp in (">", "<") and self._counts_after(i):
                having = f"COUNT(*) {cmp} {self.low[i]}"
                continue
            where.append((ntable, ncol, f"{cmp} {self.low[i]}"))
            used_tables.add(ntable)

        # aggregate / superlative
        agg_fn: str | None = None
        agg_pos = -1
        for i, w in enumerate(self.low):
            fn = None
            if w in _AVG:
                fn = "AVG"
            elif w in _SUM and not (w == "total" and self._has("total number")):
                fn = "SUM"
            elif w in _MAX:
                fn = "MAX"
            elif w in _MIN:
                fn = "MIN"
            if fn:
                agg_fn, agg_pos = fn, i
                break
        age_super = next(
            (i for i, w in enumerate(self.low) if w in ("oldest", "youngest", "eldest")), -1
        )

        # columns mentioned, best per position, preferring used tables
        cols = self._column_mentions(used_tables, main)
        filter_cols = {(t, c) for t, c, _ in where}

        # group by
        group: tuple[str, str] | None = None
        gi = self._group_position()
        if gi >= 0 and not (is_count or agg_fn is not None):
            gi = -1  # "the phone of each employee" lists, it does not group
        if gi >= 0:
            after = [m for m in cols if m.start >= gi and m.start <= gi + 4]
            if after:
                group = (after[0].table, after[0].column or "")
            else:
                tm = [m for m in self.mentions if m.column is None and gi <= m.start <= gi + 4]
                if tm:
                    t = ctx.table(tm[0].table)
                    if t is not None:
                        nc = self._name_column(t)
                        if nc is not None:
                            group = (t.name, nc.name)
            if group is not None:
                used_tables.add(group[0])

        if having_group and group is None:
            first = next(
                (m for m in cols if (m.table, m.column) not in filter_cols and m.column), None
            )
            if first is not None:
                group = (first.table, first.column or "")
            else:
                nc = self._name_column(main_t)
                if nc is not None:
                    group = (main, nc.name)
            if group is not None:
                used_tables.add(group[0])
        # ordering
        order: tuple[str, str, str] | None = None  # (table, col, dir)
        desc = self._has(
            "descending",
            "decreasing",
            "desc",
            "highest to lowest",
            "largest to smallest",
            "most to least",
            "reverse",
            "from the oldest",
            "from oldest",
            "from the largest",
            "from the highest",
            "from large",
            "from high",
        )
        if self._has(
            "order",
            "ordered",
            "sorted",
            "sort",
            "ascending",
            "descending",
            "alphabetical",
            "alphabetically",
            "decreasing",
            "increasing",
        ):
            oi = max(self._pos("by"), self._pos("order"), self._pos("sorted"), self._pos("of"))
            cand = [m for m in cols if m.start > oi] or cols
            if self._has("alphabetical", "alphabetically"):
                nc = self._name_column(main_t)
                if nc is not None:
                    cand = [_Mention(0, 0, main, nc.name, 1.0)]
            if cand:
                m = cand[-1]
                order = (m.table, m.column or "", "DESC" if desc else "ASC")
        select: list[str] = []
        agg_target: tuple[str, str] | None = None
        superlative = False
        if agg_fn is not None and not (
            agg_fn in ("MAX", "MIN") and self._low_at(agg_pos) in ("most", "least") and is_count
        ):
            target = self._numeric_after(agg_pos, cols, ctx)
            if target is not None:
                others = [
                    m
                    for m in cols
                    if (m.table, m.column) != target
                    and (m.table, m.column) not in filter_cols
                    and m.start < agg_pos
                ]
                explicit = self._low_at(agg_pos) in ("maximum", "minimum", "max", "min")
                if (
                    agg_fn in ("MAX", "MIN")
                    and (others or self._low_at(0) in ("which", "who"))
                    and not explicit
                ):
                    superlative = True
                    order = (target[0], target[1], "DESC" if agg_fn == "MAX" else "ASC")
                    limit_n = limit_n or 1
                else:
                    agg_target = target
                used_tables.add(target[0])
            elif (agg_fn in ("MAX", "MIN") and group is not None) or (
                self._low_at(agg_pos) in ("most", "fewest", "least") and self._group_intent()
            ):
                # "the X with the most Y": group and order by the count
                if group is None:
                    nc = self._name_column(main_t)
                    if nc is not None:
                        group = (main, nc.name)
                order = ("", "COUNT(*)", "DESC" if agg_fn == "MAX" else "ASC")
                limit_n = limit_n or 1
                superlative = True
        if age_super >= 0 and order is None and agg_target is None:
            age = self._column_by_words(main_t, "age")
            if age is not None:
                asc = self.low[age_super] == "youngest"
                order = (main, age.name, "ASC" if asc else "DESC")
                limit_n = limit_n or 1
                superlative = True
        recent = next(
            (
                i
                for i, w in enumerate(self.low)
                if w in ("last", "latest", "recent", "newest", "earliest", "first")
            ),
            -1,
        )
        if recent >= 0 and order is None and agg_target is None and not is_count:
            dated = [
                m
                for m in cols
                if any(
                    k in ident_words(m.column or "") for k in ("date", "year", "time", "created")
                )
            ]
            if dated:
                asc = self.low[recent] in ("earliest", "first")
                order = (dated[0].table, dated[0].column or "", "ASC" if asc else "DESC")
                limit_n = limit_n or 1
                superlative = False
        if limit_n is not None and order is None:
            numeric = [m for m in cols if self._is_numeric(m)]
            if numeric:
                order = (
                    numeric[-1].table,
                    numeric[-1].column or "",
                    "ASC" if self._has("lowest", "least", "smallest", "youngest") else "DESC",
                )

        skip = set(filter_cols)
        if agg_target:
            skip.add(agg_target)
        if order and order[1] != "COUNT(*)" and superlative:
            skip.add((order[0], order[1]))
        proj: list[tuple[str, str]] = []
        for m in cols:
            key = (m.table, m.column or "")
            if key in skip or key in proj:
                continue
            if group is not None and key == group:
                continue
            if (
                order is not None
                and (m.table, m.column) == (order[0], order[1])
                and not superlative
                and m.start > max(self._pos("by"), 0)
                and self._pos("by") >= 0
            ):
                continue
            proj.append(key)

        if group is not None:
            used_tables.add(group[0])
        for ptable, _ in proj:
            used_tables.add(ptable)
        if order and order[0]:
            used_tables.add(order[0])

        joins, alias = self._join_plan(main, used_tables)
        # a table that could not be joined: drop what refers to it
        proj = [p for p in proj if p[0] in alias]
        if group is not None and group[0] not in alias:
            group = None
        if agg_target is not None and agg_target[0] not in alias:
            agg_target = None
        if order is not None and order[0] and order[0] not in alias:
            order = None

        def ref(table: str, col: str) -> str:
            if col == "COUNT(*)" or col == "*":
                return col
            q = _quote_ident(col)
            return f"{alias[table]}.{q}" if len(alias) > 1 and table in alias else q

        if group is not None:
            select.append(ref(*group))
            if agg_target is not None:
                select.append(f"{agg_fn}({ref(*agg_target)})")
                if 0 <= agg_pos < gi - 1:
                    select.reverse()
            elif having_group and not is_count:
                pass  # "cities with 3 or more customers": the group column only
            elif not superlative or is_count:
                select.append("COUNT(*)")
            else:
                select = [ref(*p) for p in proj] or [ref(*group)]
        elif is_count and not superlative:
            select.append(
                "COUNT(DISTINCT " + ref(*proj[0]) + ")" if distinct and proj else "COUNT(*)"
            )
        elif agg_target is not None:
            select.append(f"{agg_fn}({ref(*agg_target)})")
            # several aggregates: "average, minimum and maximum age"
            extra = self._extra_aggs(agg_pos, agg_target)
            select.extend(f"{fn}({ref(*agg_target)})" for fn in extra)
            # other aggregates of other columns: "average GNP and total population"
            for fn2, tgt in self._later_aggs(agg_pos, cols, agg_target):
                if tgt[0] in alias:
                    select.append(f"{fn2}({ref(*tgt)})")
        else:
            select.extend(ref(*p) for p in proj)
            if not select:
                nc = self._name_column(main_t)
                select.append(ref(main, nc.name) if nc is not None else "*")
        sql = "SELECT " + ("DISTINCT " if distinct and not is_count and group is None else "")
        sql += ", ".join(select)
        sql += " FROM " + joins
        if where:
            # equalities on one column can only mean "any of": OR them
            groups: dict[tuple[str, str], list[str]] = {}
            for wt, wc, cond in where:
                if wt in alias:
                    groups.setdefault((wt, wc), []).append(cond)
            parts = []
            for (wt, wc), conds in groups.items():
                eqs = [x for x in conds if x.startswith("= ")]
                rest = [x for x in conds if not x.startswith("= ")]
                if len(eqs) > 1:
                    parts.append("(" + " OR ".join(f"{ref(wt, wc)} {x}" for x in eqs) + ")")
                else:
                    rest = eqs + rest
                parts.extend(f"{ref(wt, wc)} {x}" for x in rest)
            sql += " WHERE " + " AND ".join(parts)
            if sql.endswith(" WHERE "):
                sql = sql[: -len(" WHERE ")]
        if group is not None:
            sql += " GROUP BY " + ref(*group)
            if having:
                sql += " HAVING " + having
        if order is not None:
            sql += f" ORDER BY {ref(order[0], order[1])} {order[2]}"
        if limit_n is not None and order is not None:
            sql += f" LIMIT {limit_n}"
        return sql

    # -------------------------------------------------------------- helpers
    def _low_at(self, i: int) -> str:
        return self.low[i] if 0 <= i < len(self.low) else ""

    def _extra_aggs(self, pos: int, target: tuple[str, str]) -> list[str]:
        out = []
        target_words = set(ident_words(target[1]))
        for i, w in enumerate(self.low[pos + 1 : pos + 6], start=pos + 1):
            if self.st[i] in target_words:
                break
            if w in _AVG:
                out.append("AVG")
            elif w in ("maximum", "max"):
                out.append("MAX")
            elif w in ("minimum", "min"):
                out.append("MIN")
            elif w in ("sum", "total"):
                out.append("SUM")
        return out

    def _later_aggs(
        self, pos: int, cols: list[_Mention], first: tuple[str, str]
    ) -> list[tuple[str, tuple[str, str]]]:
        out: list[tuple[str, tuple[str, str]]] = []
        seen = {first}
        for i in range(pos + 1, len(self.low)):
            w = self.low[i]
            fn = (
                "AVG"
                if w in _AVG
                else "SUM"
                if w in ("total", "sum")
                else "MAX"
                if w in ("maximum", "max", "highest", "largest")
                else "MIN"
                if w in ("minimum", "min", "lowest", "smallest")
                else None
            )
            if fn is None:
                continue
            nxt = [m for m in cols if i < m.start <= i + 3 and self._is_numeric(m)]
            if nxt:
                key = (nxt[0].table, nxt[0].column or "")
                if key not in seen:
                    seen.add(key)
                    out.append((fn, key))
        return out

    def _group_intent(self) -> bool:
        return self._group_position() >= 0

    def _group_position(self) -> int:
        for p in ("for each", "for every", "per", "each", "by each", "in each", "of each"):
            i = self._pos(p)
            if i >= 0:
                return i + len(p.split())
        if self._has(*_COUNT_WORDS) or self._has("average", "total"):
            i = self._pos("by")
            if (
                i >= 0
                and not self._has("order by", "sorted by", "ordered by")
                and any(m.column is not None and m.start == i + 1 for m in self.mentions)
            ):
                return i + 1  # "by <column>"; "covered by countries" does not group
        return -1

    def _table_after(self, i: int) -> bool:
        j = i + 1
        if self.low[j : j + 2] in (["or", "more"], ["or", "fewer"], ["or", "less"]):
            j += 2
        if self._low_at(j) in ("different", "distinct"):
            j += 1
        return any(m.column is None and j <= m.start <= j + 1 for m in self.mentions)

    def _counts_after(self, i: int) -> bool:
        nxt = self.st[i + 1 : i + 3]
        tables = {w for t in self.ctx.tables for w in ident_words(t.name)}
        return bool(nxt) and nxt[0] in tables and self._group_intent()

    def _comparator_before(self, i: int) -> str | None:
        before = " " + " ".join(self.low[max(0, i - 4) : i]) + " "
        after = " " + " ".join(self.low[i + 1 : i + 3]) + " "
        for p in _GE:
            if f" {p} " in before or f" {p} " in after:
                return ">="
        for p in _LE:
            if f" {p} " in before or f" {p} " in after:
                return "<="
        for p in _GT:
            if f" {p} " in before:
                return ">"
        for p in _LT:
            if f" {p} " in before:
                return "<"
        return None

    def _numeric_column_near(
        self,
        i: int,
        main: TableSpec,
        taken: set[tuple[str, str]] = frozenset(),  # type: ignore[assignment]
    ) -> tuple[str, str] | None:
        w = self.low[i]
        if len(w) == 4 and w.isdigit() and 1800 <= int(w) <= 2100:
            years = [
                m
                for m in self.mentions
                if m.column is not None
                and "year" in ident_words(m.column)
                and (m.table, m.column) not in taken
            ]
            if years:
                return years[0].table, years[0].column or ""
        best: tuple[int, _Mention] | None = None
        for m in self.mentions:
            if m.column is None or not self._is_numeric(m) or (m.table, m.column) in taken:
                continue
            d = abs(m.start - i)
            if best is None or d < best[0] or (d == best[0] and m.table == main.name):
                best = (d, m)
        if best is not None and best[0] <= 6:
            chosen = self._in_main(best[1], main.name)
            if (chosen.table, chosen.column or "") not in taken:
                return chosen.table, chosen.column or ""
            return best[1].table, best[1].column or ""
        word = " ".join(self.low[max(0, i - 3) : i])
        if "old" in word or "young" in word or " age" in f" {word}":
            c = self._column_by_words(main, "age")
            if c is not None:
                return main.name, c.name
        if len(w) == 4 and w.isdigit() and 1800 <= int(w) <= 2100:
            for c in main.columns:
                if "year" in ident_words(c.name):
                    return main.name, c.name
        return None

    def _numeric_after(
        self, pos: int, cols: list[_Mention], ctx: GenerationContext
    ) -> tuple[str, str] | None:
        after = [m for m in cols if m.start > pos and self._is_numeric(m)]
        if after:
            return after[0].table, after[0].column or ""
        before = [m for m in cols if m.start < pos and self._is_numeric(m)]
        if before:
            return before[-1].table, before[-1].column or ""
        return None

    def _is_numeric(self, m: _Mention) -> bool:
        t = self.ctx.table(m.table)
        c = t.column(m.column) if t is not None and m.column else None
        return bool(c is not None and c.is_numeric and not c.primary_key)

    def _column_mentions(self, used: set[str], main: str) -> list[_Mention]:
        by_pos: dict[int, list[_Mention]] = {}
        for m in self.mentions:
            if m.column is None:
                continue
            by_pos.setdefault(m.start, []).append(m)
        out = []
        covered: set[int] = set()
        for start in sorted(by_pos):
            if start in covered:
                continue
            ms = by_pos[start]
            ms.sort(
                key=lambda m: (
                    -(m.end - m.start),
                    -m.score,
                    0 if m.table == main else 1 if m.table in used else 2,
                )
            )
            best = ms[0]
            if self._table_word_only(best):
                continue
            if best.table != main and self._table_span(best):
                continue  # "how many countries": the table, not another table's column
            best = self._in_main(best, main)
            out.append(best)
            covered.update(range(best.start, best.end))
        return out

    def _table_span(self, m: _Mention) -> bool:
        return any(
            t.column is None and t.start == m.start and t.end == m.end and t.table != m.table
            for t in self.mentions
        )

    def _in_main(self, m: _Mention, main: str) -> _Mention:
        """ "older" -> main table's ``pet_age`` rather than another table's ``age``."""
        if m.table == main or m.column is None:
            return m
        t = self.ctx.table(main)
        if t is None:
            return m
        want = set(ident_words(m.column))
        for c in t.columns:
            cw = set(ident_words(c.name))
            if want < cw and not c.primary_key:
                return _Mention(m.start, m.end, main, c.name, m.score)
        return m

    def _table_word_only(self, m: _Mention) -> bool:
        # "singer" matching a column singer_id is really a table mention
        cw = ident_words(m.column or "")
        if "id" not in cw:
            return False
        said = self.st[m.start : m.end]
        return any(set(said) <= set(ident_words(t.name)) for t in self.ctx.tables)

    def _join_plan(self, main: str, tables: set[str]) -> tuple[str, dict[str, str]]:
        ctx = self.ctx
        graph: dict[str, list[tuple[str, str]]] = {}
        for fk in ctx.foreign_keys:
            on = " AND ".join(
                f"{{{fk.table}}}.{_quote_ident(a)} = {{{fk.ref_table}}}.{_quote_ident(b)}"
                for a, b in zip(fk.columns, fk.ref_columns, strict=False)
            )
            graph.setdefault(fk.table, []).append((fk.ref_table, on))
            graph.setdefault(fk.ref_table, []).append((fk.table, on))
        order = [main]
        conds: dict[str, str] = {}
        for target in sorted(tables - {main}):
            if target in order:
                continue
            prev: dict[str, tuple[str, str] | None] = {}
            queue = deque(order)
            for s in order:
                prev[s] = None
            found = False
            while queue:
                cur = queue.popleft()
                if cur == target:
                    found = True
                    break
                for nxt, on in graph.get(cur, []):
                    if nxt not in prev and ctx.table(nxt) is not None:
                        prev[nxt] = (cur, on)
                        queue.append(nxt)
            if not found:
                continue
            path = []
            cur2: str = target
            while prev[cur2] is not None:
                p = prev[cur2]
                assert p is not None
                path.append((cur2, p[1]))
                cur2 = p[0]
            for t, on in reversed(path):
                if t not in order:
                    order.append(t)
                    conds[t] = on
        if len(order) == 1:
            return _quote_ident(main), {main: main}
        alias = {t: f"T{i + 1}" for i, t in enumerate(order)}
        sql = f"{_quote_ident(main)} AS T1"
        for t in order[1:]:
            on = conds[t]
            for name, a in alias.items():
                on = on.replace(f"{{{name}}}", a)
            sql += f" JOIN {_quote_ident(t)} AS {alias[t]} ON {on}"
        return sql, alias

    def _name_column(self, t: TableSpec) -> ColumnSpec | None:
        named = [c for c in t.columns if "name" in ident_words(c.name)]
        if named:
            return named[0]
        titled = [c for c in t.columns if "title" in ident_words(c.name)]
        if titled:
            return titled[0]
        texts = [c for c in t.columns if not c.is_numeric and not c.primary_key]
        return texts[0] if texts else None

    def _guess_text_column(self, t: TableSpec) -> ColumnSpec | None:
        return self._name_column(t)

    def _column_by_words(self, t: TableSpec, word: str) -> ColumnSpec | None:
        for c in t.columns:
            if word in ident_words(c.name):
                return c
        return None
