"""Word helpers shared by retrieval and the offline SQL writer (pure).

Tokens, crude stems (plurals and case folded, a few synonyms mapped), identifier
splitting and an IDF-weighted question similarity. No I/O, no state.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping
from types import MappingProxyType

__all__ = [
    "ABBREVIATIONS",
    "STOPWORDS",
    "ident_words",
    "key_words",
    "similarity",
    "stem",
    "stems",
    "words",
]

_WORD = re.compile(r"\d+(?:\.\d+)?|[A-Za-z]+")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")

_IRREGULAR = {
    "people": "person",
    "persons": "person",
    "children": "child",
    "men": "man",
    "women": "woman",
    "feet": "foot",
    "teeth": "tooth",
    "mice": "mouse",
    "data": "data",
    "series": "series",
    "species": "species",
    "status": "status",
    "address": "address",
    "business": "business",
}

# Words of ordinary English that name the same measured concept; each maps to a
# canonical stem, on both sides (question words and identifier words). Every entry
# is a general equivalence (comparative adjectives of a measure, common synonyms,
# verb forms of a noun), never a column of one particular schema.
_SYNONYMS = {
    "nation": "country",
    "old": "age",
    "older": "age",
    "oldest": "age",
    "young": "age",
    "younger": "age",
    "youngest": "age",
    "eldest": "age",
    "elder": "age",
    "aged": "age",
    "weigh": "weight",
    "heavy": "weight",
    "heavier": "weight",
    "heaviest": "weight",
    "lighter": "weight",
    "lightest": "weight",
    "tall": "height",
    "taller": "height",
    "tallest": "height",
    "titled": "title",
    "called": "name",
    "named": "name",
    "cost": "price",
    "costs": "price",
    "expensive": "price",
    "cheap": "price",
    "cheapest": "price",
    "cheaper": "price",
    "populous": "population",
    "populated": "population",
    "telephone": "phone",
    "mail": "email",
    "birthday": "birth",
    "born": "birth",
    "surname": "last",
    "identifier": "id",
    "ids": "id",
    "staff": "employee",
    "described": "description",
    "describe": "description",
    "describes": "description",
    "automobile": "car",
    "musician": "artist",
    "film": "movie",
}

# Abbreviations common in identifiers (``qty``, ``cust_no``, ``emp_dob``). They are
# expanded in identifiers only: in prose several of them are other words ("no",
# "desc", "min").
_ABBREVIATIONS: dict[str, str] = {
    "acct": "account",
    "addr": "address",
    "amt": "amount",
    "avg": "average",
    "cnt": "count",
    "cust": "customer",
    "dept": "department",
    "desc": "description",
    "dob": "birth",
    "dt": "date",
    "emp": "employee",
    "fname": "first",
    "firstname": "first",
    "lname": "last",
    "lastname": "last",
    "lang": "language",
    "mgr": "manager",
    "nbr": "number",
    "no": "number",
    "num": "number",
    "pct": "percent",
    "qty": "quantity",
    "tel": "phone",
    "yr": "year",
}

#: Identifier abbreviations and the word each stands for (``qty`` -> ``quantity``),
#: as :func:`ident_words` expands them.
ABBREVIATIONS: Mapping[str, str] = MappingProxyType(_ABBREVIATIONS)

STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "in",
        "on",
        "at",
        "to",
        "for",
        "from",
        "by",
        "with",
        "and",
        "or",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "do",
        "does",
        "did",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "where",
        "when",
        "how",
        "list",
        "show",
        "give",
        "find",
        "return",
        "tell",
        "display",
        "me",
        "all",
        "each",
        "every",
        "any",
        "some",
        "this",
        "that",
        "these",
        "those",
        "there",
        "their",
        "its",
        "it",
        "his",
        "her",
        "they",
        "them",
        "as",
        "than",
        "then",
        "also",
        "please",
        "i",
        "we",
        "you",
        "our",
        "your",
        "have",
        "has",
        "had",
        "not",
        "no",
        "yes",
        "only",
        "just",
        "into",
        "out",
        "up",
        "down",
        "over",
        "about",
        "whether",
        "if",
        "else",
        "but",
        "both",
        "either",
        "neither",
        "same",
        "other",
        "such",
        "very",
        "much",
        "many",
        "more",
        "most",
        "less",
        "least",
        "per",
        "across",
        "among",
        "between",
        "get",
        "name",
        "names",
    ]
)


def stem(word: str, *, synonyms: bool = True) -> str:
    """Reduce ``word`` to a crude stem (plural and case folded, synonyms mapped).

    Args:
        word: one word.
        synonyms: map synonyms to their canonical stem (``cheapest`` -> ``price``);
            ``False`` folds plurals and case only (for comparing stored values).

    Example:
        >>> stem("Cities"), stem("oldest"), stem("oldest", synonyms=False)
        ('city', 'age', 'oldest')
    """
    w = word.lower()
    if synonyms and w in _SYNONYMS:
        return _SYNONYMS[w]
    if w in _IRREGULAR:
        w = _IRREGULAR[w]
    elif len(w) > 4 and w.endswith("ies"):
        w = w[:-3] + "y"
    elif len(w) > 4 and w.endswith(("sses", "shes", "ches", "xes", "zes")):
        w = w[:-2]
    elif len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    return _SYNONYMS.get(w, w) if synonyms else w


def words(text: str) -> list[str]:
    """The words and numbers of ``text`` in order (original case)."""
    return _WORD.findall(text)


def stems(text: str) -> list[str]:
    """The stems of the words of ``text``."""
    return [stem(w) for w in words(text)]


def ident_words(name: str) -> list[str]:
    """Split an identifier (``release_year``, ``OrderLine``) into lower stems.

    Identifier abbreviations are expanded (``qty`` -> ``quantity``, ``cust_no`` ->
    ``customer``, ``number``).

    Example:
        >>> ident_words("OrderQty")
        ['order', 'quantity']
    """
    out: list[str] = []
    for part in re.split(r"[^A-Za-z0-9]+", name):
        if not part:
            continue
        for p in _CAMEL.findall(part):
            low = p.lower()
            out.append(_ABBREVIATIONS.get(low) or stem(low))
    return out


def key_words(text: str) -> list[str]:
    """The stems of the content words of ``text`` (stop words dropped)."""
    return [stem(w) for w in words(text) if w.lower() not in STOPWORDS]


def similarity(a: str, b: str, idf: dict[str, float] | None = None) -> float:
    """IDF-weighted cosine of the content-word stems of two questions (0..1)."""
    ca, cb = Counter(key_words(a)), Counter(key_words(b))
    if not ca or not cb:
        return 0.0

    def w(t: str) -> float:
        return (idf or {}).get(t, 1.0)

    dot = sum(min(ca[t], cb[t]) * w(t) ** 2 for t in ca if t in cb)
    na = math.sqrt(sum((c * w(t)) ** 2 for t, c in ca.items()))
    nb = math.sqrt(sum((c * w(t)) ** 2 for t, c in cb.items()))
    return dot / (na * nb) if na and nb else 0.0
