"""The Embedder Protocol (defined in :mod:`avl.typing`, re-exported here)."""

from __future__ import annotations

from avl.typing import AsyncEmbedder, Embedder, FloatMatrix

__all__ = ["AsyncEmbedder", "Embedder", "FloatMatrix"]
