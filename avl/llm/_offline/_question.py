"""A question as tokens: words, numbers and quoted texts with their positions (pure)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import attrs

from avl.llm._offline._lexicon import NUMBER_WORDS
from avl.text import stem

__all__ = ["Question", "Token", "form_root", "parse_question"]

# words (any script, with an inner apostrophe), numbers (with a decimal part or
# thousands separators), and single punctuation marks that end a clause
_TOKEN = re.compile(
    r"(?P<num>\d+(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
    r"|(?P<word>[^\W\d_]+(?:['’][^\W\d_]+)*)"
    r"|(?P<punct>[,;:.!?()])"
)
# a quoted text: the opening mark after a space, a bracket or the start, the closing
# mark before a space, punctuation or the end (so "teacher's" and "students'" are not
# quotes)
_QUOTED = re.compile(
    r"(?:(?<=^)|(?<=[\s(\[]))(?:\"([^\"]+)\"|'([^']+)'|“([^”]+)”|‘([^’]+)’|`([^`]+)`)(?=$|[\s,.;:!?)\]])"
)
_CONTRACTIONS = {
    "can't": ("can", "not"),
    "won't": ("will", "not"),
    "shan't": ("shall", "not"),
    "cannot": ("can", "not"),
}


@attrs.frozen(kw_only=True)
class Token:
    """One word, number or punctuation mark of a question.

    Attributes:
        text: as written.
        low: lower-cased.
        stem: :func:`avl.text.stem` of the word (synonyms mapped).
        root: the word without its inflection (:func:`form_root`).
        start: character offset in the question.
        end: character offset after the token.
        number: the numeric value of a number or number word, else ``None``.
        quoted: inside a quoted text.
        capital: written with a capital letter and not the first word.
        punct: a punctuation mark.
    """

    text: str
    low: str
    stem: str
    root: str
    start: int
    end: int
    number: float | None = None
    quoted: bool = False
    capital: bool = False
    punct: bool = False

    @property
    def is_digits(self) -> bool:
        """Written with digits."""
        return self.text[:1].isdigit()


@attrs.frozen(kw_only=True)
class Quote:
    """A quoted text and the tokens it covers ``[start, end)``."""

    text: str
    start: int
    end: int


@attrs.frozen(kw_only=True)
class Question:
    """A parsed question.

    Attributes:
        text: the question as asked.
        tokens: its tokens (words, numbers, clause punctuation).
        quotes: its quoted texts.
    """

    text: str
    tokens: tuple[Token, ...]
    quotes: tuple[Quote, ...] = ()

    def low(self, i: int) -> str:
        """The lower-cased token at ``i`` (``""`` outside the question)."""
        return self.tokens[i].low if 0 <= i < len(self.tokens) else ""

    def lows(self) -> list[str]:
        """The lower-cased tokens."""
        return [t.low for t in self.tokens]

    def find(self, phrase: Sequence[str], start: int = 0) -> int:
        """The first token index where ``phrase`` (lower-case words) starts, or -1."""
        k = len(phrase)
        toks = self.tokens
        for i in range(start, len(toks) - k + 1):
            if all(toks[i + j].low == phrase[j] for j in range(k)):
                return i
        return -1

    def find_all(self, phrase: Sequence[str]) -> list[int]:
        """Every token index where ``phrase`` starts."""
        out = []
        i = self.find(phrase)
        while i >= 0:
            out.append(i)
            i = self.find(phrase, i + 1)
        return out

    def has(self, *phrases: Sequence[str]) -> bool:
        """Whether any of ``phrases`` occurs."""
        return any(self.find(p) >= 0 for p in phrases)


def form_root(word: str) -> str:
    """``word`` without its inflection: ``opened`` -> ``open``, ``founding`` -> ``found``.

    A light suffix stripper for matching word forms (not a linguistic stemmer): it
    removes plural, past, progressive and comparative endings and a few derivational
    ones, keeping at least four letters.
    """
    w = stem(word)
    if len(w) >= 5 and w.endswith(("ed", "ing")):
        cut = w[:-2] if w.endswith("ed") else w[:-3]
        if len(cut) == 3:
            return cut  # "rated", "rating" -> "rat"
    for suffix in (
        "ations",
        "ation",
        "ments",
        "ment",
        "ness",
        "ings",
        "ing",
        "ers",
        "ied",
        "ed",
        "er",
        "est",
        "ly",
        "s",
    ):
        if w.endswith(suffix) and len(w) - len(suffix) >= 4:
            w = w[: -len(suffix)]
            if suffix == "ied":
                w += "y"
            elif len(w) > 4 and w[-1] == w[-2] and w[-1] not in "aeiousl":
                w = w[:-1]  # "planned" -> "plan"
            break
    return w


def _number(text: str) -> float | None:
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def parse_question(text: str) -> Question:
    """Tokenize ``text``.

    Args:
        text: the question.

    Returns:
        The question's tokens and quoted texts.
    """
    spans: list[tuple[int, int, str]] = []
    for m in _QUOTED.finditer(text):
        g = next(i for i in range(1, 6) if m.group(i) is not None)
        spans.append((m.start(g), m.end(g), m.group(g)))
    tokens: list[Token] = []
    first_word = True
    for m in _TOKEN.finditer(text):
        raw = m.group(0)
        start, end = m.start(), m.end()
        quoted = any(a <= start < b for a, b, _ in spans)
        if m.group("punct"):
            tokens.append(
                Token(text=raw, low=raw, stem=raw, root=raw, start=start, end=end, punct=True)
            )
            first_word = first_word or raw in ".?!"
            continue
        if m.group("num"):
            tokens.append(
                Token(
                    text=raw,
                    low=raw,
                    stem=raw,
                    root=raw,
                    start=start,
                    end=end,
                    number=_number(raw),
                    quoted=quoted,
                )
            )
            first_word = False
            continue
        low = raw.lower().replace("’", "'")
        parts: tuple[str, ...]
        if low in _CONTRACTIONS:
            parts = _CONTRACTIONS[low]
        elif low.endswith("n't"):
            parts = (low[:-3], "not")
        elif low.endswith(("'s", "'")) or "'" in low:
            parts = (low.split("'")[0],)
        else:
            parts = (low,)
        capital = raw[:1].isupper() and not first_word
        for part in parts:
            if not part:
                continue
            num = NUMBER_WORDS.get(part)
            tokens.append(
                Token(
                    text=raw if len(parts) == 1 else part,
                    low=part,
                    stem=stem(part),
                    root=form_root(part),
                    start=start,
                    end=end,
                    number=float(num) if num is not None else None,
                    quoted=quoted,
                    capital=capital,
                )
            )
        first_word = False
    quotes = []
    for a, b, body in spans:
        idx = [i for i, t in enumerate(tokens) if a <= t.start < b and not t.punct]
        if idx:
            quotes.append(Quote(text=body, start=idx[0], end=idx[-1] + 1))
    return Question(text=text, tokens=tuple(tokens), quotes=tuple(quotes))
