"""The Embedder Protocol (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = ["AsyncEmbedder", "Embedder", "FloatMatrix"]

FloatMatrix = npt.NDArray[np.float32]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors.

    ``embed`` returns a C-contiguous float32 array of shape ``(len(texts), dim)``.
    ``name`` identifies the model and its settings (used in cache keys).
    """

    @property
    def name(self) -> str:
        """A stable identifier of the model and its settings."""
        ...

    @property
    def dim(self) -> int:
        """The vector dimension."""
        ...

    def embed(self, texts: Sequence[str]) -> FloatMatrix:
        """Embed ``texts``; shape ``(len(texts), dim)``, float32."""
        ...


@runtime_checkable
class AsyncEmbedder(Protocol):
    """The asyncio twin of :class:`Embedder`."""

    @property
    def name(self) -> str:
        """A stable identifier of the model and its settings."""
        ...

    @property
    def dim(self) -> int:
        """The vector dimension."""
        ...

    async def embed(self, texts: Sequence[str]) -> FloatMatrix:
        """Embed ``texts``; shape ``(len(texts), dim)``, float32."""
        ...
