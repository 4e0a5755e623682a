"""Answering from trained question -> SQL pairs: choose the closest pair and adapt its
SQL to the new question (pure).

Choosing: IDF-weighted word overlap between the questions, raised when the pair's
SQL has the new question's shape (a count, an average, an order, a negation...) and
lowered for each shape on one side only, for each number one question states and the
other does not, and for each table the new question names that the SQL does not read.

Adapting, on the SQL's tree (never on its text): a stored value or quoted text of the
pair's question that the new one replaces is replaced in the SQL (with its column when
the new value lives in another column); numbers are replaced position by position;
a column the pair's question names and the new one replaces by another column of the
same table and kind is replaced; "highest" asked as "lowest" flips the order and
MAX/MIN. A pair whose literal the new question changes in a way that cannot be placed
is not reused.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

import attrs
import sqlglot
from sqlglot import expressions as exp

from avl.llm._offline._lexicon import MAX_WORDS, MIN_WORDS, NUMBER_WORDS
from avl.llm._offline._linking import Link, Links
from avl.llm._offline._question import Question
from avl.llm._offline._render import null_ordering, to_identifier
from avl.schema import ExamplePair
from avl.text import ident_words, key_words, similarity, stem, words

__all__ = ["Adapted", "adapt_example", "rank_examples"]

_NUMBER = re.compile(r"^\d+(?:\.\d+)?$")

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
_SQL_TABLE = re.compile(
    r"\b(?:from|join)\s+[\"`\[]?([A-Za-z_][A-Za-z0-9_ ]*?)[\"`\]]?(?:\s|$|,|\))", re.I
)
# how much each number that one question states and the other does not lowers a score
_NUMBER_GAP = 0.1


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


def _numbers(question: str) -> int:
    """How many numbers (digits or number words) ``question`` states."""
    return sum(
        1
        for w in words(question)
        if _NUMBER.match(w)
        or (w.lower() in NUMBER_WORDS and w.lower() not in ("one", "single", "once"))
    )


def _contains(seq: list[str], sub: list[str]) -> bool:
    k = len(sub)
    return k > 0 and any(seq[i : i + k] == sub for i in range(len(seq) - k + 1))


def rank_examples(
    question: str, examples: Sequence[ExamplePair], table_names: Sequence[str]
) -> list[tuple[float, ExamplePair]]:
    """Score every trained pair against ``question``, best first.

    Args:
        question: the new question.
        examples: the trained pairs.
        table_names: the tables in the context.

    Returns:
        ``(score, pair)`` with a positive score, best first.
    """
    if not examples:
        return []
    idf = _idf([e.question for e in examples])
    want = _shape(question)
    qstems = [stem(w) for w in words(question)]
    named = {t.lower() for t in table_names if _contains(qstems, ident_words(t))}
    qnums = _numbers(question)
    out: list[tuple[float, ExamplePair]] = []
    for ex in examples:
        s = similarity(question, ex.question, idf)
        if s <= 0.0:
            continue
        s -= _NUMBER_GAP * abs(_numbers(ex.question) - qnums)
        got = _sql_shape(ex.sql)
        agree = sum(1 for k in want if k in got) + sum(1 for k in got if k in want)
        clash = sum(_CLASH.get(k, 0.06) for k in want ^ got)
        s = s * (1.0 + 0.05 * agree) - clash
        used = {m.lower() for m in _SQL_TABLE.findall(ex.sql)}
        s -= 0.05 * len(named - used)
        if s > 0:
            out.append((s, ex))
    out.sort(key=lambda x: -x[0])
    return out


@attrs.frozen(kw_only=True)
class Adapted:
    """A pair's SQL adapted to a new question.

    Attributes:
        sql: the SQL.
        changes: what was changed (``"value"``, ``"number"``, ``"column"``,
            ``"direction"``).
        unplaced: literals of the new question with no place in the SQL.
    """

    sql: str
    changes: tuple[str, ...] = ()
    unplaced: int = 0


def _literal_text(node: exp.Expr) -> str | None:
    """The text of a string literal (or of a double-quoted name used as one)."""
    if isinstance(node, exp.Literal) and node.is_string:
        return str(node.this)
    if isinstance(node, exp.Column) and not node.table and node.this.args.get("quoted"):
        return str(node.name)
    return None


def _values(links: Links) -> list[Link]:
    return [v for v in links.values if v.kind in ("value", "literal")]


def _nums(q: Question) -> list[str]:
    out = []
    for t in q.tokens:
        if t.number is None or t.quoted:
            continue
        if not t.is_digits and t.low in ("one", "single", "once"):
            continue
        n = t.number
        out.append(str(int(n)) if float(n).is_integer() else str(n))
    return out


def _superlative(q: Question) -> str | None:
    for t in q.tokens:
        if t.low in MAX_WORDS and t.low not in ("top",):
            return "max"
        if t.low in MIN_WORDS:
            return "min"
    return None


def adapt_example(
    example: ExamplePair,
    new_q: Question,
    new_links: Links,
    old_q: Question,
    old_links: Links,
    dialect: str,
) -> Adapted:
    """Adapt ``example.sql`` to the new question.

    Args:
        example: the trained pair.
        new_q: the new question, parsed.
        new_links: its links.
        old_q: the pair's question, parsed.
        old_links: its links.
        dialect: the SQL dialect.

    Returns:
        The adapted SQL (the pair's own text when nothing changes).
    """
    try:
        tree: exp.Expr = sqlglot.parse_one(example.sql, read=dialect)
    except (sqlglot.errors.SqlglotError, ValueError):
        return Adapted(sql=example.sql)
    changes: list[str] = []
    unplaced = 0
    # ---- values: the pair's values the new question does not state
    old_vals = _values(old_links)
    new_vals = _values(new_links)
    new_low = {v.value.lower() for v in new_vals}
    old_low = {v.value.lower() for v in old_vals}
    gone = [v for v in old_vals if v.value.lower() not in new_low]
    fresh = [v for v in new_vals if v.value.lower() not in old_low]
    literals = [n for n in tree.find_all(exp.Literal, exp.Column) if _literal_text(n) is not None]
    for old in gone:
        # the new value in the same column first, else any fresh value
        same = [
            v
            for v in fresh
            if v.kind == "value" and v.column and v.column.lower() == old.column.lower()
        ]
        pick = same[0] if same else (fresh[0] if fresh else None)
        if pick is None:
            continue
        hits = [
            n
            for n in literals
            if (txt := _literal_text(n)) is not None and txt.strip("%").lower() == old.value.lower()
        ]
        if not hits:
            continue
        for node in hits:
            txt = _literal_text(node) or ""
            new_text = txt.replace(txt.strip("%"), pick.value)
            node.replace(exp.Literal.string(new_text))
            # the new value is stored in another column: test that column
            if (
                pick.kind == "value"
                and old.kind == "value"
                and pick.column.lower() != old.column.lower()
                and pick.table.lower() == old.table.lower()
            ):
                _swap_columns(tree, old.column, pick.column, dialect)
        fresh.remove(pick)
        changes.append("value")
    unplaced += sum(1 for v in fresh if v.kind == "value" or v.score >= 0.8)
    # ---- numbers, position by position among those that differ
    old_nums, new_nums = _nums(old_q), _nums(new_q)
    gone_n = [n for n in old_nums if n not in new_nums]
    fresh_n = [n for n in new_nums if n not in old_nums]
    for old_n, new_n in zip(gone_n, fresh_n, strict=False):
        for node in list(tree.find_all(exp.Literal)):
            if not node.is_string and _same_number(str(node.this), old_n):
                node.replace(exp.Literal.number(new_n))
                changes.append("number")
    unplaced += max(0, len(fresh_n) - len(gone_n))
    # ---- columns the new question names instead of the pair's
    old_cols = {(c.table.lower(), c.column.lower()) for c in old_links.columns}
    new_cols = {(c.table.lower(), c.column.lower()) for c in new_links.columns}
    gone_c = [
        c for c in _best_columns(old_links) if (c.table.lower(), c.column.lower()) not in new_cols
    ]
    fresh_c = [
        c for c in _best_columns(new_links) if (c.table.lower(), c.column.lower()) not in old_cols
    ]
    used_cols = {c.name.lower() for c in tree.find_all(exp.Column)}
    for old_c, new_c in zip(gone_c, fresh_c, strict=False):
        if old_c.table.lower() != new_c.table.lower() or old_c.column.lower() not in used_cols:
            continue
        a = old_links.schema.column(old_c.table, old_c.column)
        b = new_links.schema.column(new_c.table, new_c.column)
        if a is None or b is None or a.numeric != b.numeric or a.is_key or b.is_key:
            continue
        _swap_columns(tree, old_c.column, new_c.column, dialect)
        changes.append("column")
    # ---- direction: "highest" asked as "lowest"
    so, sn = _superlative(old_q), _superlative(new_q)
    if so and sn and so != sn:
        nulls = null_ordering(dialect)
        for o in tree.find_all(exp.Ordered):
            desc = not bool(o.args.get("desc"))
            o.set("desc", desc)
            # the dialect's own NULL placement for the new direction: no NULLS clause
            o.set("nulls_first", (nulls == "nulls_are_small") != desc)
        for extreme in list(tree.find_all(exp.Max, exp.Min)):
            flipped: exp.Expr = (
                exp.Min(this=extreme.this)
                if isinstance(extreme, exp.Max)
                else exp.Max(this=extreme.this)
            )
            extreme.replace(flipped)
        changes.append("direction")
    if not changes:
        return Adapted(sql=example.sql, unplaced=unplaced)
    try:
        sql = tree.sql(dialect=dialect)
    except sqlglot.errors.SqlglotError:
        return Adapted(sql=example.sql, unplaced=unplaced)
    return Adapted(sql=sql, changes=tuple(changes), unplaced=unplaced)


def disagreement(links: Links, sql: str, dialect: str) -> float:
    """How much a pair's SQL disagrees with what the new question names: each table
    the question names that the SQL does not read, and each column it names that
    the SQL does not use, lowers the pair's score."""
    try:
        tree: exp.Expr = sqlglot.parse_one(sql, read=dialect)
    except (sqlglot.errors.SqlglotError, ValueError):
        return 0.0
    tables = {t.name.lower() for t in tree.find_all(exp.Table)}
    columns = {c.name.lower() for c in tree.find_all(exp.Column)}
    penalty = 0.0
    named = {t.table.lower() for t in links.tables if t.complete}
    named |= {v.table.lower() for v in links.values if v.kind == "value"}
    penalty += 0.08 * len(named - tables)
    for s, e in links.column_spans():
        alts = links.columns_at(s, e)
        if not any(a.complete for a in alts):
            continue
        if not any(a.column.lower() in columns for a in alts):
            penalty += 0.04
    return penalty


def _same_number(a: str, b: str) -> bool:
    try:
        return float(a) == float(b)
    except ValueError:
        return False


def _best_columns(links: Links) -> list[Link]:
    seen: set[tuple[int, int]] = set()
    out = []
    for c in links.columns:
        if (c.start, c.end) in seen:
            continue
        seen.add((c.start, c.end))
        out.append(c)
    return out


def _swap_columns(tree: exp.Expr, old: str, new: str, dialect: str) -> None:
    for col in list(tree.find_all(exp.Column)):
        if col.name.lower() == old.lower():
            col.set("this", to_identifier(new, dialect))
