"""Progress reporting for long work (embedding or indexing many texts).

A progress callback is any ``callable(done, total)``. Libraries pass ``None`` (the
default everywhere: silent). :class:`TtyProgress` draws a one-line bar on a
terminal and stays silent when the stream is not a terminal, unless forced.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

__all__ = ["ProgressCallback", "TtyProgress"]

ProgressCallback = Callable[[int, int], None]
"""``callback(done, total)``: called after each batch; ``done`` only grows."""


class TtyProgress:
    """A text progress bar, drawn in place with carriage returns.

    Args:
        label: text before the bar.
        stream: where to draw (default ``sys.stderr``).
        width: bar width in characters.
        force: draw even when ``stream`` is not a terminal (e.g. in a notebook).

    Example:
        >>> import io
        >>> out = io.StringIO()
        >>> bar = TtyProgress("embedding", stream=out, width=10, force=True)
        >>> bar(5, 10)
        >>> out.getvalue()
        '\\rembedding [#####     ] 5/10'
    """

    def __init__(
        self,
        label: str = "",
        *,
        stream: TextIO | None = None,
        width: int = 30,
        force: bool = False,
    ) -> None:
        self._label = label
        self._stream = stream
        self._width = max(1, width)
        self._force = force

    def _out(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stderr

    def __call__(self, done: int, total: int) -> None:
        out = self._out()
        if not self._force and not (hasattr(out, "isatty") and out.isatty()):
            return
        frac = 1.0 if total <= 0 else min(1.0, done / total)
        filled = round(frac * self._width)
        bar = "#" * filled + " " * (self._width - filled)
        prefix = f"{self._label} " if self._label else ""
        out.write(f"\r{prefix}[{bar}] {done}/{total}")
        if done >= total:
            out.write("\n")
        out.flush()
