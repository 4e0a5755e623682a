"""Terminal output for the command line: aligned tables, colour, CSV and JSON.

Colour is used only when the stream is a terminal and ``NO_COLOR`` is not set
(``FORCE_COLOR`` forces it), so piped output stays plain. Numbers are
right-aligned, ``NULL`` is shown for SQL nulls, and long cells are cut with an
ellipsis only on a terminal (piped output keeps every character).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

# csv, json, shutil and decimal are imported where used: ``avl check`` prints text

__all__ = [
    "Style",
    "render_csv",
    "render_json",
    "render_table",
    "style_for",
]

_CODES = {
    "bold": "1",
    "dim": "2",
    "red": "31",
    "green": "32",
    "yellow": "33",
    "blue": "34",
    "cyan": "36",
}


class Style:
    """Wraps text in ANSI colour codes, or leaves it alone when colour is off."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, *names: str) -> str:
        """``text`` in the given styles (``"bold"``, ``"red"``...)."""
        if not self.enabled or not names:
            return text
        codes = ";".join(_CODES[n] for n in names)
        return f"\x1b[{codes}m{text}\x1b[0m"


def style_for(out: TextIO) -> Style:
    """The style for ``out``: colour on a terminal unless ``NO_COLOR`` is set."""
    if os.environ.get("NO_COLOR"):
        return Style(False)
    if os.environ.get("FORCE_COLOR"):
        return Style(True)
    isatty = getattr(out, "isatty", None)
    return Style(bool(isatty and isatty()))


def _is_number(value: object) -> bool:
    from decimal import Decimal

    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def _cell(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return "\\x" + value.hex()
    if isinstance(value, float):
        return repr(value)
    text = str(value)
    return text.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(1, width - 1)] + "…"


def render_table(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    out: TextIO,
    *,
    style: Style | None = None,
    max_width: int | None = None,
) -> int:
    """Write ``rows`` as an aligned table under a header; returns the row count.

    Args:
        columns: the column names.
        rows: the rows, each a sequence as long as ``columns``.
        out: where to write.
        style: colours (default: :func:`style_for` of ``out``).
        max_width: cut cells so a line fits this many characters (default: the
            terminal's width on a terminal, no limit when piped).
    """
    style = style or style_for(out)
    data = [list(r) for r in rows]
    cells = [[_cell(v) for v in r] for r in data]
    numeric = [
        bool(data) and all(r[i] is None or _is_number(r[i]) for r in data)
        for i in range(len(columns))
    ]
    widths = [len(c) for c in columns]
    for r in cells:
        for i, c in enumerate(r[: len(widths)]):
            widths[i] = max(widths[i], len(c))
    if max_width is None and style.enabled:
        import shutil

        max_width = shutil.get_terminal_size((120, 24)).columns
    if max_width is not None and columns:
        budget = max(len(columns) * 4, max_width - 2 * (len(columns) - 1))
        while sum(widths) > budget and max(widths) > 8:
            widest = widths.index(max(widths))
            widths[widest] -= 1

    def line(values: Sequence[str], header: bool = False) -> str:
        parts = []
        for i, v in enumerate(values):
            v = _cut(v, widths[i])
            pad = v.rjust(widths[i]) if numeric[i] and not header else v.ljust(widths[i])
            if header:
                pad = style(pad, "bold")
            elif v == "NULL":
                pad = style(pad, "dim")
            parts.append(pad)
        return "  ".join(parts).rstrip()

    out.write(line(list(columns), header=True) + "\n")
    out.write(style("  ".join("─" * w for w in widths), "dim") + "\n")
    for r in cells:
        out.write(line(r) + "\n")
    return len(cells)


def render_csv(columns: Sequence[str], rows: Iterable[Sequence[Any]], out: TextIO) -> None:
    """Write a header and ``rows`` as CSV (RFC 4180; SQL nulls as empty fields)."""
    import csv

    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(list(columns))
    for r in rows:
        writer.writerow(["" if v is None else v for v in r])


def render_json(value: Mapping[str, Any] | Sequence[Any], out: TextIO) -> None:
    """Write ``value`` as one line of JSON (bytes as hex, other objects as text)."""
    import json

    out.write(json.dumps(value, default=_json_default, ensure_ascii=False) + "\n")


def _json_default(value: object) -> object:
    from decimal import Decimal

    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Decimal):
        return float(value)
    return str(value)
