"""HashingEmbedder: offline, deterministic feature hashing (NumPy only)."""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Iterable, KeysView, Mapping, Sequence
from collections.abc import Set as AbstractSet

import numpy as np

from avl._args import describe
from avl.embeddings._base import FloatMatrix
from avl.embeddings._progress import ProgressCallback
from avl.errors import ConfigError, InvalidInputError, InvalidTypeError

__all__ = ["HashingEmbedder"]

#: Features whose bucket and sign are remembered (about 200 bytes each).
_HASHED_MAX = 1 << 16

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


def _words(text: str) -> list[str]:
    """Lower-cased words; ``snake_case`` and ``camelCase`` identifiers are split too."""
    out: list[str] = []
    for raw in re.findall(r"\w+", text):
        parts = [p for chunk in _WORD.findall(raw) for p in (_CAMEL.findall(chunk) or [chunk])]
        whole = raw.lower()
        out.extend(p.lower() for p in parts)
        if len(parts) > 1:
            out.append(whole)
    return out


class HashingEmbedder:
    """Embeds text by hashing words, word pairs and character n-grams.

    Each feature is hashed (BLAKE2b, keyed by ``seed``) to one of ``dim`` buckets
    with a sign, weighted (words 1.0, word pairs ``bigram_weight``, character
    n-grams ``char_weight`` spread over a word's n-grams), and the vector is
    L2-normalised. Identifiers are split (``customer_id`` gives ``customer``, ``id``
    and ``customer_id``), so questions match schema names. Deterministic across
    processes and machines; no model, no network. Empty text maps to a fixed vector.

    Args:
        dim: the vector dimension.
        char_ngrams: ``(min, max)`` character n-gram lengths; ``(0, 0)`` for none.
        bigram_weight: weight of adjacent word pairs (0 to disable).
        char_weight: total weight of one word's character n-grams.
        seed: hash key; different seeds give unrelated embeddings.
        progress: optional ``callback(done, total)`` called per ``batch_size`` texts.
        batch_size: texts between progress calls.

    Raises:
        ConfigError: a non-positive ``dim`` or bad n-gram range.

    Example:
        >>> emb = HashingEmbedder(dim=64)
        >>> v = emb.embed(["total sales by customer", "customer sales total"])
        >>> v.shape, round(float(v[0] @ v[1]), 2) > 0.5
        ((2, 64), True)
    """

    def __init__(
        self,
        dim: int = 384,
        *,
        char_ngrams: tuple[int, int] = (3, 5),
        bigram_weight: float = 0.5,
        char_weight: float = 1.0,
        seed: int = 0,
        progress: ProgressCallback | None = None,
        batch_size: int = 256,
    ) -> None:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim <= 0:
            raise ConfigError(f"dim must be a positive int, got {dim!r}")
        lo, hi = char_ngrams
        if lo < 0 or hi < lo or (lo == 0) != (hi == 0):
            raise ConfigError(
                f"char_ngrams must be (min, max) with 1 <= min <= max, got {char_ngrams!r}"
            )
        self._dim = dim
        self._lo, self._hi = lo, hi
        self._bigram = float(bigram_weight)
        self._char = float(char_weight)
        self._seed = int(seed)
        self._key = self._seed.to_bytes(8, "little", signed=True)
        self._progress = progress
        self._batch = max(1, batch_size)
        # feature -> (bucket, negative): words and n-grams recur across texts
        self._hashed: dict[str, tuple[int, bool]] = {}

    @property
    def name(self) -> str:
        """A stable identifier of the settings (used in cache keys)."""
        return (
            f"hash-v1:dim={self._dim},char={self._lo}-{self._hi},"
            f"bigram={self._bigram},charw={self._char},seed={self._seed}"
        )

    @property
    def dim(self) -> int:
        """The vector dimension."""
        return self._dim

    def _features(self, text: str) -> dict[str, float]:
        feats: dict[str, float] = {}
        words = _words(text)
        for w in words:
            feats["w:" + w] = feats.get("w:" + w, 0.0) + 1.0
            if self._lo and self._char > 0:
                padded = f"<{w}>"
                grams = [
                    padded[i : i + n]
                    for n in range(self._lo, self._hi + 1)
                    for i in range(max(len(padded) - n + 1, 0))
                ]
                if grams:
                    share = self._char / len(grams)
                    for g in grams:
                        feats["c:" + g] = feats.get("c:" + g, 0.0) + share
        if self._bigram > 0:
            for a, b in itertools.pairwise(words):
                key = f"b:{a} {b}"
                feats[key] = feats.get(key, 0.0) + self._bigram
        if not feats:
            feats["<empty>"] = 1.0
        return feats

    def _vector(self, text: str, out: np.ndarray) -> None:
        key = self._key
        dim = self._dim
        hashed = self._hashed
        buckets: list[int] = []
        weights: list[float] = []
        for feat, weight in self._features(text).items():
            found = hashed.get(feat)
            if found is None:
                h = int.from_bytes(
                    hashlib.blake2b(feat.encode("utf-8"), digest_size=8, key=key).digest(),
                    "little",
                )
                found = (h % dim, h >> 63 == 1)
                if len(hashed) < _HASHED_MAX:  # bounded: the vocabulary seen most
                    hashed[feat] = found
            buckets.append(found[0])
            weights.append(-weight if found[1] else weight)
        # Per bucket, the same sums in the same order as adding one feature at a time.
        out += np.bincount(buckets, weights=weights, minlength=dim)
        norm = float(np.linalg.norm(out))
        if norm > 0:
            out /= norm

    def embed(self, texts: Sequence[str]) -> FloatMatrix:
        """Embed ``texts``.

        Args:
            texts: the texts (a single ``str`` is refused: pass ``[text]``).

        Returns:
            A C-contiguous float32 array ``(len(texts), dim)``, rows L2-normalised.

        Raises:
            InvalidInputError: ``texts`` is a string or holds a non-string.
        """
        items = _check_texts(texts)
        out = np.zeros((len(items), self._dim), dtype=np.float64)
        total = len(items)
        for i, text in enumerate(items):
            self._vector(text, out[i])
            if self._progress is not None and ((i + 1) % self._batch == 0 or i + 1 == total):
                self._progress(i + 1, total)
        return np.ascontiguousarray(out, dtype=np.float32)

    def __repr__(self) -> str:
        return f"HashingEmbedder({self.name})"


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_texts(texts: object) -> list[str]:
    """``texts`` as a list of strings, or a clear error: one text instead of a
    sequence, something that is not a sequence, a set or a mapping (whose order the
    caller could not pair with the vectors), or a non-string item.

    A lone surrogate (not valid Unicode: JSON's ``"\\ud800"`` decodes to one, and no
    tokenizer or JSON API takes it) becomes U+FFFD, the replacement character, as a
    UTF-8 decoder reads a broken sequence: every embedder embeds such a text alike.
    """
    if isinstance(texts, (str, bytes)):
        raise InvalidInputError("embed() takes a sequence of texts; wrap a single text in a list")
    if isinstance(texts, Mapping):
        raise InvalidTypeError(
            f"embed() takes a sequence of texts, got a {type(texts).__name__}; "
            "pass list(d.values()) or list(d) to say which"
        )
    if isinstance(texts, AbstractSet) and not isinstance(texts, KeysView):
        raise InvalidTypeError(
            f"embed() takes texts in order (a list or tuple), got a {type(texts).__name__}, "
            "whose order is arbitrary"
        )
    if not isinstance(texts, Iterable):
        raise InvalidTypeError(f"embed() takes a sequence of texts, got {describe(texts)}")
    try:
        items = list(texts)
    except Exception as exc:  # the caller's own iterable failed
        raise InvalidInputError(f"texts could not be iterated: {describe(exc)}") from exc
    for i, t in enumerate(items):
        if not isinstance(t, str):
            raise InvalidTypeError(f"texts[{i}] must be a str, got {type(t).__name__}")
        if not t.isascii():
            items[i] = _LONE_SURROGATE.sub("\ufffd", t)  # (the same str when none)
    return items
