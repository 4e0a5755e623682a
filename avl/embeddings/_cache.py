"""CachedEmbedder: an LRU cache of vectors keyed by embedder name and text."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import cachetools
import numpy as np

from avl.embeddings._base import AsyncEmbedder, Embedder, FloatMatrix
from avl.embeddings._hashing import _check_texts
from avl.errors import ConfigError

__all__ = ["AsyncCachedEmbedder", "CachedEmbedder"]


class _Cache:
    def __init__(self, name: str, dim: int, maxsize: int) -> None:
        if maxsize <= 0:
            raise ConfigError(f"maxsize must be positive, got {maxsize}")
        self._name = name
        self._dim = dim
        self._lru: cachetools.LRUCache[tuple[str, str], FloatMatrix] = cachetools.LRUCache(maxsize)
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def split(self, texts: list[str]) -> tuple[dict[int, FloatMatrix], list[str]]:
        found: dict[int, FloatMatrix] = {}
        missing: dict[str, None] = {}
        with self._lock:
            for i, t in enumerate(texts):
                v = self._lru.get((self._name, t))
                if v is None:
                    missing[t] = None
                else:
                    found[i] = v
            self.hits += len(found)
            self.misses += len(texts) - len(found)
        return found, list(missing)

    def merge(
        self, texts: list[str], found: dict[int, FloatMatrix], missing: list[str], new: FloatMatrix
    ) -> FloatMatrix:
        fresh = {t: new[j].copy() for j, t in enumerate(missing)}
        with self._lock:
            for t, v in fresh.items():
                v.flags.writeable = False
                self._lru[(self._name, t)] = v
        out = np.empty((len(texts), self._dim), dtype=np.float32)
        for i, t in enumerate(texts):
            out[i] = found[i] if i in found else fresh[t]
        return out

    def __len__(self) -> int:
        return len(self._lru)


class CachedEmbedder:
    """Wraps an :class:`Embedder` with a thread-safe LRU cache.

    Keys are ``(inner.name, text)``, so two embedders with different settings never
    share entries. Repeated texts within one call are embedded once.

    Args:
        inner: the embedder to cache.
        maxsize: how many vectors to keep.

    Raises:
        ConfigError: ``maxsize`` is not positive.

    Example:
        >>> from avl.embeddings import HashingEmbedder
        >>> emb = CachedEmbedder(HashingEmbedder(dim=8), maxsize=100)
        >>> _ = emb.embed(["a", "b", "a"])
        >>> _ = emb.embed(["a"])
        >>> (emb.hits, emb.misses)
        (1, 3)
    """

    def __init__(self, inner: Embedder, maxsize: int = 10_000) -> None:
        self._inner = inner
        self._cache = _Cache(inner.name, inner.dim, maxsize)

    @property
    def name(self) -> str:
        """The inner embedder's name (the vectors are the same)."""
        return self._inner.name

    @property
    def dim(self) -> int:
        """The vector dimension."""
        return self._inner.dim

    @property
    def hits(self) -> int:
        """Texts answered from the cache."""
        return self._cache.hits

    @property
    def misses(self) -> int:
        """Texts not found in the cache (counting repeats within a call)."""
        return self._cache.misses

    def __len__(self) -> int:
        return len(self._cache)

    def embed(self, texts: Sequence[str]) -> FloatMatrix:
        """Embed ``texts``, calling the inner embedder only for unseen texts.

        Args:
            texts: the texts.

        Returns:
            float32 ``(len(texts), dim)``.

        Raises:
            InvalidInputError: ``texts`` is a string or holds a non-string.
            AvlError: whatever the inner embedder raises.
        """
        items = _check_texts(texts)
        found, missing = self._cache.split(items)
        new = self._inner.embed(missing) if missing else np.empty((0, self.dim), np.float32)
        return self._cache.merge(items, found, missing, new)


class AsyncCachedEmbedder:
    """The asyncio twin of :class:`CachedEmbedder`, around an :class:`AsyncEmbedder`.

    Args:
        inner: the async embedder to cache.
        maxsize: how many vectors to keep.

    Raises:
        ConfigError: ``maxsize`` is not positive.
    """

    def __init__(self, inner: AsyncEmbedder, maxsize: int = 10_000) -> None:
        self._inner = inner
        self._cache = _Cache(inner.name, inner.dim, maxsize)

    @property
    def name(self) -> str:
        """The inner embedder's name."""
        return self._inner.name

    @property
    def dim(self) -> int:
        """The vector dimension."""
        return self._inner.dim

    @property
    def hits(self) -> int:
        """Texts answered from the cache."""
        return self._cache.hits

    @property
    def misses(self) -> int:
        """Texts not found in the cache."""
        return self._cache.misses

    async def embed(self, texts: Sequence[str]) -> FloatMatrix:
        """Embed ``texts``, awaiting the inner embedder only for unseen texts.

        Args:
            texts: the texts.

        Returns:
            float32 ``(len(texts), dim)``.

        Raises:
            InvalidInputError: ``texts`` is a string or holds a non-string.
            AvlError: whatever the inner embedder raises.
        """
        items = _check_texts(texts)
        found, missing = self._cache.split(items)
        new = await self._inner.embed(missing) if missing else np.empty((0, self.dim), np.float32)
        return self._cache.merge(items, found, missing, new)
