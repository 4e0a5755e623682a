"""Small HTML and text helpers for the notebook views of avl's values (internal).

Every value that reaches the page goes through :func:`esc`; the views are bounded
(:data:`MAX_ROWS` rows, :data:`MAX_CELL` characters a cell, :data:`MAX_SQL`
characters of SQL) and say how much they left out, so showing a large page or a
long statement stays cheap. Styles are inline: notebook renderers that drop
``<style>`` elements (GitHub, some exporters) still show the colours.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

__all__ = [
    "MAX_CELL",
    "MAX_ROWS",
    "MAX_SQL",
    "Mark",
    "bad",
    "badge",
    "box",
    "cell_text",
    "code",
    "esc",
    "fmt_seconds",
    "fmt_time",
    "is_number",
    "kv_table",
    "more_line",
    "muted",
    "offset_of",
    "sql_block",
    "table",
    "text_table",
    "token_end",
    "truncate",
    "verdict_parts",
    "violations_lines",
]

#: Rows a table shows before a "… N more" line.
MAX_ROWS = 50
#: Characters a cell shows before it is cut with "…".
MAX_CELL = 200
#: Characters of SQL a view shows before it is cut.
MAX_SQL = 20_000

_OK = "#1a7f37"
_BAD = "#b42318"
_MUTED = "#6a737d"
_BOX = (
    "font-family:system-ui,-apple-system,'Segoe UI',sans-serif;font-size:13px;"
    "line-height:1.45;border:1px solid #d0d7de;border-radius:6px;padding:8px 12px;"
    "margin:4px 0;max-width:100%;overflow-x:auto"
)
_PRE = (
    "font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px;"
    "background:#f6f8fa;color:#24292f;border-radius:4px;padding:6px 8px;margin:6px 0;"
    "white-space:pre-wrap;overflow-wrap:anywhere"
)
_MARK = "background:#ffd7d5;color:#82071e;border-bottom:2px solid #b42318;border-radius:2px"
_TABLE = "border-collapse:collapse;margin:6px 0;font-size:12.5px"
# Jupyter's stylesheets right-align every table cell: text cells say left themselves
_TH = "text-align:left;padding:3px 8px;border-bottom:1px solid #d0d7de;white-space:nowrap"
_TD = "text-align:left;padding:3px 8px;border-bottom:1px solid #eaeef2;vertical-align:top"
_NUM = ";text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap"


def esc(value: object) -> str:
    """``str(value)`` escaped for HTML text and attribute values (quotes included).

    The same five replacements as :func:`html.escape` with ``quote=True`` (that
    module loads its entity table on import, which ``avl check`` does not need).
    """
    return (
        str(value)
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#x27;")
    )


def truncate(text: str, limit: int = MAX_CELL) -> str:
    """``text`` cut to ``limit`` characters, ending in ``…`` when it was cut."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def is_number(value: object) -> bool:
    """Whether ``value`` is an int or float (not a bool): shown right-aligned."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def cell_text(value: object, limit: int = MAX_CELL) -> str:
    """How a value reads in a table cell: ``NULL`` for ``None``, cut to ``limit``."""
    if value is None:
        return "NULL"
    if isinstance(value, float):
        text = repr(value)  # the shortest text that reads back as the same float
        return text if len(text) <= 15 else f"{value:.12g}"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return truncate(bytes(value).hex(), limit)
    return truncate(str(value), limit)


def fmt_seconds(seconds: float | None) -> str:
    """A duration for people: ``"—"``, ``"850 µs"``, ``"12.3 ms"``, ``"1.20 s"``, ``"∞"``."""
    if seconds is None:
        return "—"
    if not math.isfinite(seconds):
        return "∞"
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 0.99995:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def fmt_time(epoch: float | None) -> str:
    """Seconds since the epoch as ``YYYY-MM-DD HH:MM:SS`` UTC (``""`` for ``None``)."""
    if epoch is None:
        return ""
    import datetime as _dt  # only when a time is shown: ``avl check`` never needs it

    try:
        return _dt.datetime.fromtimestamp(epoch, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return str(epoch)


def more_line(hidden: int, what: str = "rows") -> str:
    """The ``… N more rows`` line under a cut table (``""`` when nothing is hidden)."""
    if hidden <= 0:
        return ""
    return f"<div style='color:{_MUTED};margin:2px 0'>… {hidden} more {esc(what)}</div>"


def badge(text: str, ok: bool | None) -> str:
    """A small coloured label: green when ``ok``, red when not, grey for ``None``."""
    colour = _MUTED if ok is None else (_OK if ok else _BAD)
    return (
        f"<span style='display:inline-block;padding:0 7px;border-radius:10px;"
        f"font-weight:600;font-size:12px;color:#fff;background:{colour}'>{esc(text)}</span>"
    )


def box(body: str, *, kind: str) -> str:
    """Wrap the parts of one view in its bordered ``<div class="avl-<kind>">``."""
    return f"<div class='avl-view avl-{esc(kind)}' style=\"{_BOX}\">{body}</div>"


def table(
    columns: Sequence[object],
    rows: Iterable[Sequence[object]],
    *,
    total: int | None = None,
    max_rows: int = MAX_ROWS,
    what: str = "rows",
    raw_columns: Iterable[int] = (),
    right: Iterable[int] = (),
    nowrap: Iterable[int] = (),
    header: bool = True,
) -> str:
    """An HTML table of ``rows`` under ``columns``, at most ``max_rows`` of them.

    Numbers are right-aligned; every cell is escaped and cut to :data:`MAX_CELL`
    characters except the ``raw_columns`` (indexes of cells the caller already
    rendered as safe HTML); the ``right`` columns are right-aligned too, the
    ``nowrap`` columns never wrap. When there are more rows (``total`` if given, else the
    rows counted), a ``… N more <what>`` line follows the table. Only the shown rows
    are read from ``rows``.
    """
    raw = set(raw_columns)
    align = set(right)
    whole = set(nowrap)
    body: list[str] = []
    shown = 0
    seen = 0
    numeric = [True] * len(columns)  # a column of numbers gets a right-aligned header
    for row in rows:
        seen += 1
        if shown >= max_rows:
            if total is not None:
                break
            continue
        shown += 1
        cells = []
        for i, value in enumerate(row):
            td = _TD + (";white-space:nowrap" if i in whole else "")
            if i < len(numeric) and value is not None and not is_number(value):
                numeric[i] = False
            if i in raw:
                cells.append(f"<td style='{td}'>{value}</td>")
            elif is_number(value) or (i in align and value is not None):
                cells.append(f"<td style='{td}{_NUM}'>{esc(cell_text(value))}</td>")
            elif value is None:
                cells.append(f"<td style='{td};color:{_MUTED}'>NULL</td>")
            else:
                cells.append(f"<td style='{td}'>{esc(cell_text(value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    count = total if total is not None else seen
    head = "".join(
        f"<th style='{_TH}{';text-align:right' if i in align or (shown and numeric[i]) else ''}'>"
        f"{esc(c)}</th>"
        for i, c in enumerate(columns)
    )
    thead = f"<thead><tr>{head}</tr></thead>" if header else ""
    return f"<table style='{_TABLE}'>{thead}<tbody>{''.join(body)}</tbody></table>" + more_line(
        count - shown, what
    )


def kv_table(pairs: Iterable[tuple[str, object]]) -> str:
    """A two-column table of names and values (values escaped, numbers right-aligned)."""
    return table(("", ""), pairs, header=False, raw_columns=())


def text_table(
    columns: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    total: int | None = None,
    max_rows: int = 10,
    width: int = 40,
    indent: str = "  ",
    what: str = "rows",
    right: Iterable[int] = (),
) -> list[str]:
    """Plain-text lines of an aligned table (numbers right-aligned), for ``__repr__``.

    At most ``max_rows`` rows, each cell cut to ``width`` characters; a
    ``… N more <what>`` line follows when rows were left out. The ``right``
    columns are right-aligned whatever their values.
    """
    align = set(right)
    shown: list[list[str]] = []
    numeric = [True] * len(columns)
    seen = 0
    for row in rows:
        seen += 1
        if len(shown) >= max_rows:
            if total is not None:
                break
            continue
        cells = []
        for i, value in enumerate(row):
            text = cell_text(value, width).replace("\n", " ")
            cells.append(text)
            if i < len(numeric) and i not in align and value is not None and not is_number(value):
                numeric[i] = False
        shown.append(cells)
    widths = [len(c) for c in columns]
    for cells in shown:
        for i, text in enumerate(cells[: len(widths)]):
            widths[i] = max(widths[i], len(text))

    def line(cells: Sequence[str]) -> str:
        parts = [
            (c.rjust(w) if numeric[i] else c.ljust(w))
            for i, (c, w) in enumerate(zip(cells, widths, strict=False))
        ]
        return (indent + "  ".join(parts)).rstrip()

    out = [line(list(columns))] + [line(c) for c in shown]
    hidden = (total if total is not None else seen) - len(shown)
    if hidden > 0:
        out.append(f"{indent}… {hidden} more {what}")
    return out


_TOKEN_RE = (
    r"""'(?:[^']|'')*'?|"(?:[^"]|"")*"?|`[^`]*`?|\[[^\]]*\]?"""
    r"""|[^\W\d]\w*|\d+(?:\.\d*)?|[$@:?]\w*|\S"""
)


def token_end(text: str, start: int) -> int:
    """The end of the SQL token that starts at ``start`` (a word, number, quoted
    name or string, else one character); ``start`` when there is only space."""
    match = re.compile(_TOKEN_RE).match(text, start)  # re caches the compiled pattern
    if match is None or not match.group(0).strip():
        return start
    return match.end()


def offset_of(text: str, line: int, col: int) -> int | None:
    """The 0-based offset of 1-based ``line`` and ``col`` in ``text`` (clamped to
    the line), or ``None`` when the line is not there."""
    if line < 1 or col < 1:
        return None
    start = 0
    for _ in range(line - 1):
        nl = text.find("\n", start)
        if nl < 0:
            return None
        start = nl + 1
    end = text.find("\n", start)
    end = len(text) if end < 0 else end
    if start == end:
        return None
    return min(start + col - 1, end - 1)


class Mark:
    """A stretch of SQL to highlight: ``[start, end)`` with the numbers of the
    violations found there and a tooltip."""

    __slots__ = ("end", "labels", "start", "title")

    def __init__(self, start: int, end: int, label: str, title: str) -> None:
        self.start = start
        self.end = end
        self.labels = [label]
        self.title = [title]


def sql_block(text: str, marks: Sequence[Mark] = (), *, limit: int = MAX_SQL) -> str:
    """``text`` in a ``<pre>``, with each mark as ``<mark class="avl-violation">``.

    Overlapping marks are merged into one (its ``data-violations`` lists every
    number, its ``title`` every message). The text is cut at ``limit`` characters
    with a ``… N more characters`` note; marks past the cut are dropped (the list of
    violations beside the block still names them).
    """
    cut = len(text) - limit if len(text) > limit else 0
    shown = text[:limit] if cut else text
    merged: list[Mark] = []
    for m in sorted(marks, key=lambda m: (m.start, m.end)):
        if m.start >= len(shown) or m.end <= m.start:
            continue
        end = min(m.end, len(shown))
        if merged and m.start < merged[-1].end:
            last = merged[-1]
            last.end = max(last.end, end)
            last.labels.extend(m.labels)
            last.title.extend(m.title)
            continue
        copy = Mark(m.start, end, m.labels[0], m.title[0])
        copy.labels = list(m.labels)
        copy.title = list(m.title)
        merged.append(copy)
    parts: list[str] = []
    pos = 0
    for m in merged:
        parts.append(esc(shown[pos : m.start]))
        parts.append(
            f"<mark class='avl-violation' style=\"{_MARK}\" data-offset='{m.start}'"
            f" data-violations='{esc(','.join(m.labels))}' title=\"{esc(chr(10).join(m.title))}\">"
            f"{esc(shown[m.start : m.end])}</mark>"
        )
        pos = m.end
    parts.append(esc(shown[pos:]))
    note = more_line(cut, "characters") if cut else ""
    return f"<pre class='avl-sql' style=\"{_PRE}\">{''.join(parts)}</pre>{note}"


def muted(text: str) -> str:
    """Grey, escaped text."""
    return f"<span style='color:{_MUTED}'>{esc(text)}</span>"


def code(text: str) -> str:
    """Escaped inline code."""
    return (
        "<code style='font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;"
        f"background:#f6f8fa;color:#24292f;padding:0 3px;border-radius:3px'>{esc(text)}</code>"
    )


def bad(text: str) -> str:
    """Red, escaped text (an error message)."""
    return f"<span style='color:{_BAD}'>{esc(text)}</span>"


def _code_of(violation: object) -> str:
    code_ = getattr(violation, "code", "")
    return str(getattr(code_, "value", code_))


def _where(violation: object, text: str) -> tuple[str, int | None]:
    """``("1:15", offset)`` of a violation's position (``("", None)`` without one)."""
    pos = getattr(violation, "position", None)
    if pos is None:
        return "", None
    line, col = getattr(pos, "line", None), getattr(pos, "col", None)
    offset = getattr(pos, "offset", None)
    if not isinstance(offset, int) and isinstance(line, int) and isinstance(col, int):
        offset = offset_of(text, line, col)
    where = f"{line}:{col}" if isinstance(line, int) and isinstance(col, int) else ""
    if not isinstance(offset, int) or not 0 <= offset < len(text):
        offset = None
    return where, offset


#: A violation's span longer than this is marked by its first token only (a whole
#: query flagged for its number of joins would otherwise be one long mark).
MAX_MARK = 80


def _span_end(violation: object, text: str, offset: int) -> int:
    """Where the mark of a violation at ``offset`` ends: the span its position gives
    (when short), else the token at ``offset``."""
    end = getattr(getattr(violation, "position", None), "end", None)
    if isinstance(end, int) and offset < end <= len(text) and end - offset <= MAX_MARK:
        # a call's closing parentheses carry no position: take them in
        depth = text.count("(", offset, end) - text.count(")", offset, end)
        stop = min(len(text), offset + MAX_MARK)
        while depth > 0 and end < stop:
            depth += {"(": 1, ")": -1}.get(text[end], 0)
            end += 1
        return end
    return max(token_end(text, offset), offset + 1)


def violations_lines(violations: Sequence[object], *, limit: int = 10) -> list[str]:
    """``code at line:col: message`` lines of the first ``limit`` violations, for reprs."""
    out = []
    for v in violations[:limit]:
        where, _ = _where(v, "")
        at = f" at {where}" if where else ""
        out.append(f"{_code_of(v)}{at}: {truncate(str(getattr(v, 'message', '')), 300)}")
    if len(violations) > limit:
        out.append(f"… {len(violations) - limit} more violations")
    return out


def verdict_parts(
    *,
    allowed: bool,
    violations: Sequence[object],
    text: str,
    sql: str | None,
    kind: object = None,
    tables: Sequence[str] = (),
    show_sql: bool = True,
    show_badge: bool = True,
) -> str:
    """The inside of a verdict's view: a badge, what the statement reads, the SQL
    with each violation marked at its position, and the numbered violations.

    Works on any verdict-like value (``code``, ``message`` and an optional
    ``position`` with ``line``, ``col`` and ``offset`` per violation).
    """
    kind_text = str(getattr(kind, "value", kind)) if kind is not None else ""
    head = [badge("allowed" if allowed else "rejected", allowed)] if show_badge else []
    if kind_text:
        head.append(code(kind_text))
    if tables:
        head.append(muted("reads " + truncate(", ".join(tables), MAX_CELL)))
    parts = [f"<div class='avl-verdict-head'>{' '.join(head)}</div>"] if head else []
    marks: list[Mark] = []
    items: list[str] = []
    for number, v in enumerate(violations, 1):
        where, offset = _where(v, text)
        message = str(getattr(v, "message", ""))
        if offset is not None:
            end = _span_end(v, text, offset)
            marks.append(Mark(offset, end, str(number), f"{number}. {_code_of(v)}: {message}"))
        if number <= MAX_ROWS:
            at = f" {muted('at ' + where)}" if where else ""
            items.append(
                f"<li data-code='{esc(_code_of(v))}'>{code(_code_of(v))}{at} "
                f"{esc(truncate(message, 1000))}</li>"
            )
    if show_sql:
        if not allowed and text:
            parts.append(sql_block(text, marks))
        elif allowed and sql:
            parts.append(sql_block(sql))
            if text and text.strip() != sql.strip():
                parts.append(
                    f"<details><summary>{muted('as written (before the rewrite)')}</summary>"
                    f"{sql_block(text)}</details>"
                )
    if items:
        parts.append(
            f"<ol class='avl-violations' style='margin:4px 0;padding-left:22px'>{''.join(items)}</ol>"
        )
        parts.append(more_line(len(violations) - MAX_ROWS, "violations"))
    return "".join(parts)
