"""When the generator does not answer: write intents, text addressed to the model,
gibberish, and questions the database does not cover (pure).

Two checks. :func:`screen` reads the question's intent before anything is linked:
an imperative write verb ("delete all orders", "please drop the table", "how do I
update...") or a SQL write statement is never answered with a read; text that
addresses the model ("ignore previous instructions") is not a question; a question
with no recognisable word, or far longer than any question, is not read.
:func:`confidence` scores a composed answer by linking coverage: the share of the
question's content words (not stop words, not intent words) that link to a table,
a column or a stored value, with no score at all when nothing links to the schema.
"""

from __future__ import annotations

import re

import attrs

from avl.llm._offline._lexicon import (
    AMBIGUOUS_WRITE_VERBS,
    FUNCTION_WORDS,
    IMPERATIVE_LEADS,
    INJECTION_PHRASES,
    NEGATIONS,
    NUMBER_WORDS,
    SQL_WRITE_KEYWORDS,
    WRITE_OBJECTS,
    WRITE_VERBS,
)
from avl.llm._offline._linking import Links
from avl.llm._offline._question import Question
from avl.text import STOPWORDS

__all__ = ["Screen", "confidence", "screen"]

#: More tokens than this is no question (and would only cost time to read).
MAX_TOKENS = 150
#: A SQL write statement anywhere in the text.
_SQL_WRITE = re.compile(
    r"\b(?:insert\s+into|delete\s+from|drop\s+(?:table|database|schema|view|index|user)"
    r"|truncate(?:\s+table)?\s+\w|alter\s+(?:table|database|user)|update\s+\w+\s+set"
    r"|grant\s+\w+|revoke\s+\w+|create\s+(?:table|database|index|view|user|or\s+replace)"
    r"|attach\s+database|pragma\s+\w)",
    re.I,
)
_READ_ONLY = (
    "the assistant only reads data and never changes it, so it does not answer this with a query"
)
#: Clause boundaries after which an imperative may start again.
_CLAUSE = frozenset({",", ";", ".", "!", "?", ":", "and", "then", "also", "but", "or"})
#: Verb-like words that relate things without naming data ("live in", "work for").
_RELATION_SUFFIXES = ("ed", "ing")


@attrs.frozen(kw_only=True)
class Screen:
    """Why a question is not answered before it is read.

    Attributes:
        kind: ``"write"``, ``"injection"``, ``"gibberish"`` or ``"too_long"``.
        reason: the sentence shown to the user.
        understood: what was understood (the verb and its object for a write).
    """

    kind: str
    reason: str
    understood: str = ""


def _write_verb(q: Question) -> tuple[int, str] | None:
    """The first imperative write verb: at the start of a clause, after only polite
    or modal words ("please", "can you", "I want to", "how do I")."""
    toks = q.tokens
    lead = True
    for i, t in enumerate(toks):
        if t.punct or t.low in _CLAUSE:
            lead = True
            continue
        if lead and t.low in WRITE_VERBS:
            if t.low in AMBIGUOUS_WRITE_VERBS:
                after = {toks[k].low for k in range(i + 1, min(len(toks), i + 6))}
                if not after & WRITE_OBJECTS:
                    lead = False
                    continue
            # "show me the orders set to ship" is no imperative: the verb must not be
            # followed by "me" + a read ("give me") nor be a noun after "the"
            return i, t.low
        if t.low not in IMPERATIVE_LEADS:
            lead = False
    return None


def screen(q: Question) -> Screen | None:
    """Reasons not to read the question at all (``None``: read it).

    Args:
        q: the parsed question.

    Returns:
        The reason, or ``None``.
    """
    toks = [t for t in q.tokens if not t.punct]
    if len(toks) > MAX_TOKENS:
        return Screen(
            kind="too_long",
            reason=f"the question is too long to read ({len(toks)} words); ask one question "
            "about this database's data",
        )
    lows = [t.low for t in toks]
    firsts = {p[0] for p in INJECTION_PHRASES}
    starts = [i for i, w in enumerate(lows) if w in firsts]
    for phrase in INJECTION_PHRASES:
        k = len(phrase)
        for i in starts:
            if tuple(lows[i : i + k]) == phrase:
                return Screen(
                    kind="injection",
                    reason="the text gives instructions to the model instead of asking about "
                    "the data; it is not answered",
                    understood=" ".join(phrase),
                )
    m = _SQL_WRITE.search(q.text)
    if m is not None:
        return Screen(
            kind="write",
            reason=f"it is a {m.group(0).split()[0].upper()} statement that changes the "
            f"database; {_READ_ONLY}",
            understood=m.group(0),
        )
    if (
        lows
        and lows[0] in SQL_WRITE_KEYWORDS
        and len(lows) > 1
        and lows[1] in WRITE_OBJECTS | {"from", "into", "all"}
    ):
        return Screen(
            kind="write",
            reason=f"it asks to {lows[0]} data; {_READ_ONLY}",
            understood=" ".join(lows[:3]),
        )
    verb = _write_verb(q)
    if verb is not None:
        i, w = verb
        obj = " ".join(t.low for t in q.tokens[i + 1 : i + 5] if not t.punct)
        return Screen(
            kind="write",
            reason=f"it asks to {w} data; {_READ_ONLY}",
            understood=f"{w} {obj}".strip(),
        )
    if not any(_known(t.low) for t in toks):
        return Screen(
            kind="gibberish",
            reason="no word of the question is recognised; it cannot be answered from this database",
        )
    return None


def _known(word: str) -> bool:
    return word in STOPWORDS or word in FUNCTION_WORDS or word in NUMBER_WORDS or word[:1].isdigit()


def _names_a_missing_thing(q: Question, i: int, covered: set[int]) -> bool:
    """An unknown word right after "of"/"for"/"about", or after "is"/"are", that
    follows a linked word: the thing the question is about ("the price of gold") or
    the property it asks for ("customers that are vegetarian") is in no table or
    value."""
    if i < 2 or q.tokens[i].low in FUNCTION_WORDS:
        return False
    after_link = i - 2 in covered or (q.low(i - 2) == "the" and i - 3 in covered)
    if q.low(i - 1) in ("of", "for", "about"):
        return after_link
    # a property ending the question: "which customers are vegetarian?"
    last = i + 1 >= len(q.tokens) or q.tokens[i + 1].punct
    return q.low(i - 1) in ("is", "are", "was", "were") and after_link and last


def content_tokens(q: Question) -> list[int]:
    """Positions of the words that name something: not stop words, not intent
    words, not numbers."""
    out = []
    for i, t in enumerate(q.tokens):
        if t.punct or t.number is not None:
            continue
        if t.low in STOPWORDS or t.low in FUNCTION_WORDS or t.low in NEGATIONS or len(t.low) < 2:
            continue
        out.append(i)
    return out


def confidence(
    q: Question, links: Links, used: set[int], problems: int
) -> tuple[float, list[str], list[str]]:
    """How much of the question the answer stands on.

    Args:
        q: the parsed question.
        links: its links.
        used: tokens the intent steps used.
        problems: parts of the question the intent could not fit.

    Returns:
        ``(score in 0..1, words understood, words not understood)``.
    """
    schema_anchor = bool(links.tables or links.columns)
    anchor = schema_anchor or any(v.kind == "value" for v in links.values)
    weak = {i for v in links.values if v.kind == "literal" and v.score < 0.6 for i in v.span}
    covered = (links.covered | used) - weak
    content = content_tokens(q)
    got: list[str] = []
    missed: list[str] = []
    total = 0.0
    hit = 0.0
    for i in content:
        t = q.tokens[i]
        w = 1.0
        if i > 0 and q.tokens[i - 1].number is not None and i - 1 in covered:
            continue  # a unit after a number the answer uses ("10 dollars")
        if t.low.endswith(_RELATION_SUFFIXES) and i not in covered:
            w = 0.5  # a verb form relating things ("living", "founded")
        elif i not in covered and _names_a_missing_thing(q, i, covered):
            w = 2.0  # "the price of gold": what the named column is asked about is not here
        total += w
        if i in covered:
            hit += w
            got.append(t.text)
        elif i in weak:
            hit += 0.5 * w
            got.append(t.text)
        else:
            missed.append(t.text)
    if not anchor:
        return 0.0, got, missed
    score = hit / total if total else 1.0
    if not schema_anchor and missed:
        # only stored values matched ("the capital of France"): every other word
        # must be understood too
        score = min(score, 0.25)
    score -= 0.25 * problems
    return max(0.0, min(1.0, score)), got, missed
