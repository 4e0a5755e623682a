"""Embedders: hashing (offline default), OpenAI-compatible, local model.

Every embedder satisfies :class:`Embedder` (or :class:`AsyncEmbedder`): ``name``
(for cache keys), ``dim`` and ``embed(texts) -> float32 (len(texts), dim)``.

Example:
    >>> from avl.embeddings import HashingEmbedder, create_embedder
    >>> create_embedder("hash://?dim=32").embed(["orders by month"]).shape
    (1, 32)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from avl._lazy import lazy_names
from avl.embeddings._base import AsyncEmbedder, Embedder, FloatMatrix
from avl.embeddings._hashing import HashingEmbedder
from avl.embeddings._progress import ProgressCallback, TtyProgress
from avl.embeddings._registry import EMBEDDERS, create_embedder

if TYPE_CHECKING:
    from avl.embeddings._cache import AsyncCachedEmbedder, CachedEmbedder
    from avl.embeddings._local import DEFAULT_LOCAL_MODEL, LocalEmbedder
    from avl.embeddings._openai import KNOWN_DIMS, AsyncOpenAIEmbedder, OpenAIEmbedder

__all__ = [
    "DEFAULT_LOCAL_MODEL",
    "EMBEDDERS",
    "KNOWN_DIMS",
    "AsyncCachedEmbedder",
    "AsyncEmbedder",
    "AsyncOpenAIEmbedder",
    "CachedEmbedder",
    "Embedder",
    "FloatMatrix",
    "HashingEmbedder",
    "LocalEmbedder",
    "OpenAIEmbedder",
    "ProgressCallback",
    "TtyProgress",
    "create_embedder",
]

# loaded on first use: the OpenAI embedders import httpx, the cache cachetools
__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "AsyncCachedEmbedder": "avl.embeddings._cache",
        "CachedEmbedder": "avl.embeddings._cache",
        "DEFAULT_LOCAL_MODEL": "avl.embeddings._local",
        "LocalEmbedder": "avl.embeddings._local",
        "KNOWN_DIMS": "avl.embeddings._openai",
        "AsyncOpenAIEmbedder": "avl.embeddings._openai",
        "OpenAIEmbedder": "avl.embeddings._openai",
    },
)
