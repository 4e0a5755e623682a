"""Embedders: hashing (offline default), OpenAI-compatible, local model."""

from __future__ import annotations

from avl.embeddings._base import AsyncEmbedder, Embedder

__all__ = ["AsyncEmbedder", "Embedder"]
