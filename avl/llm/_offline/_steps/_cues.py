"""Readers of the intent words: comparisons, counts, groups, superlatives, orders, limits (pure)."""

from __future__ import annotations

from avl.llm._offline._lexicon import (
    ALPHABETICAL,
    ASC_PHRASES,
    CONTAINS_WORDS,
    COUNT_PHRASES,
    DESC_PHRASES,
    ENDS_WORDS,
    EQ,
    EXPLICIT_EXTREMES,
    GE,
    GROUP_PHRASES,
    GT,
    LE,
    LT,
    MAX_WORDS,
    MIN_WORDS,
    NE,
    NEGATIONS,
    RARE_WORDS,
    RECENT_WORDS,
    SELF_MEASURED,
    STARTS_WORDS,
    WEAK_NUMBER_WORDS,
)
from avl.llm._offline._steps._state import State

_LIKE_NOUNS = frozenset(
    {"letter", "letters", "word", "words", "substring", "string", "phrase", "text", "term"}
)


def _like_op(st: State, pos: int, *, near: bool = False) -> tuple[str, str] | None:
    """``(LIKE or NOT LIKE, pattern with * for the text)`` for a text compared by
    containment ("contains 'ab'", "starting with 'A'"). With ``near`` (a stored value,
    equal as a whole unless said otherwise) the verb must stand right before it."""
    if near:
        k = pos - 1
        while k >= 0 and st.low(k) in _LIKE_NOUNS | {"the", "a"}:
            k -= 1
        if pos - k > 3:
            return None
        words = [st.low(j) for j in range(max(0, k - 1), k + 1)]
        if not any(w in CONTAINS_WORDS | STARTS_WORDS | ENDS_WORDS for w in words):
            return None
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


_COMPARISON_WORDS = frozenset(w for p in (*GT, *LT, *GE, *LE) for w in p)


def _between_only(st: State, a: int, b: int) -> bool:
    """Only joining and comparison words between tokens ``a`` and ``b``."""
    ok = {"or", "and", ",", "than", "to"} | {w for p in (*GT, *LT, *GE, *LE) for w in p}
    return all(st.low(k) in ok for k in range(a + 1, b))


def _count_cues(st: State) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
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


def _group_cues(st: State) -> list[int]:
    """Token positions right after a group phrase."""
    out = []
    for i in range(len(st.q.tokens)):
        k = st.phrase_at(GROUP_PHRASES, i)
        if k and (k > 1 or st.low(i - 1) not in ("for", "in", "of", "by")):
            out.append(i + k)
    return out


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
    if rest:
        return False
    # "... sorted" ends a request; "which products were never ordered" is a verb
    return st.low(i) in ("sorted", "arranged") or (
        st.low(i) == "ordered"
        and st.low(i - 1) not in ("never", "not", "were", "was", "been", "be")
    )


def _top_n(st: State) -> tuple[int, int] | None:
    """``(token, N)`` of "top N", "first N", "N largest", "the N ...est"."""
    toks = st.q.tokens
    for i, t in enumerate(toks):
        if t.number is None or not float(t.number).is_integer():
            continue
        prev, nxt = st.low(i - 1), st.low(i + 1)
        if prev in ("top", "first", "last", "bottom") or (
            (
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
