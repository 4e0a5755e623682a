"""The chart of an answer: a Vega-Lite spec that notebooks draw, with an SVG of its own."""

from __future__ import annotations

import math
from collections.abc import Container, Sequence
from typing import TYPE_CHECKING, Any

from avl._lazy import lazy_module

if TYPE_CHECKING:
    from avl import _html
else:  # the HTML views load when a notebook first shows one
    _html = lazy_module("avl._html")

__all__ = ["Chart"]

_VEGALITE = "application/vnd.vegalite.v5+json"
_MAX_MARKS = 500  # bars or points drawn in the SVG; the rest are named in a note
_MAX_LABELS = 24  # x-axis labels written (thinned evenly beyond)
_BLUE = "#4c78a8"  # Vega's first category colour


class Chart(dict[str, Any]):
    """A Vega-Lite v5 specification that Jupyter draws.

    It is the spec itself, a plain ``dict`` subclass (``chart["mark"]``,
    ``json.dumps(chart)`` and ``chart == {...}`` work as on a dict), with
    ``_repr_mimebundle_`` giving notebooks three forms of it:
    ``application/vnd.vegalite.v5+json`` (JupyterLab, VS Code and nteract draw it
    with Vega), ``image/svg+xml`` drawn by avl for frontends without Vega (the
    classic notebook, nbconvert's HTML, GitHub) and ``text/plain``.

    Example:
        >>> chart = Chart({"mark": "bar", "data": {"values": [{"a": "x", "n": 1}]},
        ...                "encoding": {"x": {"field": "a", "type": "nominal"},
        ...                             "y": {"field": "n", "type": "quantitative"}}})
        >>> chart["mark"], sorted(chart._repr_mimebundle_())[0]
        ('bar', 'application/vnd.vegalite.v5+json')
    """

    @property
    def spec(self) -> dict[str, Any]:
        """The specification as a plain ``dict`` (a shallow copy)."""
        return dict(self)

    def to_dict(self) -> dict[str, Any]:
        """The specification as a plain ``dict`` (a shallow copy), for JSON or Altair."""
        return dict(self)

    def _fields(self) -> tuple[str, str, str, str]:
        enc = self.get("encoding") or {}
        x = enc.get("x") or {}
        y = enc.get("y") or {}
        return (
            str(x.get("field", "")),
            str(x.get("type", "")),
            str(y.get("field", "")),
            str(self.get("mark", "")),
        )

    def _keeps_order(self) -> bool:
        """``"sort": null`` on the x channel: categories in the data's order."""
        x = (self.get("encoding") or {}).get("x") or {}
        return isinstance(x, dict) and "sort" in x and x["sort"] is None

    def _values(self) -> list[Any]:
        data = self.get("data") or {}
        values = data.get("values") if isinstance(data, dict) else None
        return list(values) if isinstance(values, (list, tuple)) else []

    def __repr__(self) -> str:
        xf, _, yf, mark = self._fields()
        n = len(self._values())
        return f"Chart({mark}: {yf} by {xf}, {n} point{'' if n == 1 else 's'})"

    def _repr_mimebundle_(
        self,
        include: Container[str] | None = None,
        exclude: Container[str] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """The mime bundle IPython displays: Vega-Lite, an SVG of it and plain text."""
        bundle: dict[str, Any] = {
            _VEGALITE: dict(self),
            "image/svg+xml": self.to_svg(),
            "text/plain": repr(self),
        }
        if include:
            bundle = {k: v for k, v in bundle.items() if k in include}
        if exclude:
            bundle = {k: v for k, v in bundle.items() if k not in exclude}
        return bundle

    def to_svg(self, *, width: int | None = None, height: int = 300) -> str:
        """Draw the chart as a standalone SVG document (no script, every text escaped).

        Bars (summed per ``x`` value) or a line with points, categories in
        ascending order as Vega-Lite orders them, a zero-based ``y`` axis with
        round ticks. At most 500 bars or points are drawn; a note says how many
        more there were.

        Args:
            width: the width in pixels (by default it grows with the number of
                categories, from 320 to 900).
            height: the height in pixels.
        """
        xf, _xtype, yf, mark = self._fields()
        points = _points(
            self._values(), xf, yf, summed=mark != "line", keep_order=self._keeps_order()
        )
        hidden = max(0, len(points) - _MAX_MARKS)
        points = points[:_MAX_MARKS]
        n = len(points)
        title = str(self.get("description") or f"{yf} by {xf}")
        left, right, top = 64, 16, 34
        w = width or max(320, min(900, 80 + 34 * n), min(900, 24 + 8 * len(title)))
        longest = max((len(_label(p[0])) for p in points), default=1)
        rotate = n > 8 or longest * 7 * n > w - left - right
        bottom = 44 + (min(longest, 16) * 5 if rotate else 0) + (14 if hidden else 0)
        h = max(height, top + bottom + 80)
        pw, ph = w - left - right, h - top - bottom
        ys = [p[1] for p in points]
        lo, hi, step = _ticks(min([0.0, *ys]), max([0.0, *ys]))

        def sy(v: float) -> float:
            return top + ph - (v - lo) / (hi - lo) * ph

        esc = _html.esc
        out = [
            f"<svg xmlns='http://www.w3.org/2000/svg' class='avl-chart' width='{w}' height='{h}'"
            f" viewBox='0 0 {w} {h}' font-family='system-ui,-apple-system,sans-serif'"
            f" font-size='11' role='img' aria-label='{esc(title)}'>",
            f"<title>{esc(title)}</title>",
            f"<rect width='{w}' height='{h}' fill='#fff'/>",
            f"<text x='8' y='18' font-size='13' font-weight='600' fill='#24292f'>"
            f"{esc(_html.truncate(title, max(12, (w - 24) // 8)))}</text>",
        ]
        # y axis: grid lines and tick labels
        k = 0
        while True:
            v = lo + k * step
            if v > hi + step / 1e6:
                break
            y = sy(v)
            out.append(
                f"<line x1='{left}' x2='{left + pw}' y1='{y:.1f}' y2='{y:.1f}' "
                f"stroke='{'#8c959f' if abs(v) < step / 1e6 else '#eaeef2'}'/>"
            )
            out.append(
                f"<text x='{left - 6}' y='{y + 4:.1f}' text-anchor='end' fill='#57606a'>"
                f"{esc(_num(v, step))}</text>"
            )
            k += 1
        out.append(
            f"<text transform='translate(14,{top + ph / 2:.1f}) rotate(-90)' "
            f"text-anchor='middle' fill='#24292f'>{esc(_html.truncate(yf, 40))}</text>"
        )
        slot = pw / max(n, 1)
        every = max(1, math.ceil(n / _MAX_LABELS))
        if mark == "line":
            coords = [(left + slot * (i + 0.5), sy(p[1])) for i, p in enumerate(points)]
            if coords:
                path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
                out.append(
                    f"<polyline points='{path}' fill='none' stroke='{_BLUE}' stroke-width='2'/>"
                )
            for (x, y), (label, value) in zip(coords, points, strict=True):
                out.append(
                    f"<circle class='avl-point' cx='{x:.1f}' cy='{y:.1f}' r='3' fill='{_BLUE}'>"
                    f"<title>{esc(_label(label))}: {esc(_num(value))}</title></circle>"
                )
        else:
            bw = max(1.0, slot * 0.8)
            zero = sy(0.0)
            for i, (label, value) in enumerate(points):
                x = left + slot * i + (slot - bw) / 2
                y = min(sy(value), zero)
                bh = abs(sy(value) - zero)
                out.append(
                    f"<rect class='avl-bar' x='{x:.1f}' y='{y:.1f}' width='{bw:.1f}' "
                    f"height='{bh:.1f}' fill='{_BLUE}'><title>{esc(_label(label))}: "
                    f"{esc(_num(value))}</title></rect>"
                )
        base = top + ph
        for i, (label, _) in enumerate(points):
            if i % every:
                continue
            x = left + slot * (i + 0.5)
            text = esc(_html.truncate(_label(label), 16))
            if rotate:
                out.append(
                    f"<text transform='translate({x:.1f},{base + 10}) rotate(-45)' "
                    f"text-anchor='end' fill='#57606a'>{text}</text>"
                )
            else:
                out.append(
                    f"<text x='{x:.1f}' y='{base + 16}' text-anchor='middle' "
                    f"fill='#57606a'>{text}</text>"
                )
        out.append(
            f"<text x='{left + pw / 2:.1f}' y='{h - 6 - (14 if hidden else 0)}' "
            f"text-anchor='middle' fill='#24292f'>{esc(_html.truncate(xf, 40))}</text>"
        )
        if hidden:
            out.append(
                f"<text x='{left}' y='{h - 6}' fill='#57606a'>… {hidden} more not drawn</text>"
            )
        out.append("</svg>")
        return "".join(out)


def _label(value: Any) -> str:
    return "null" if value is None else str(value)


def _is_num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _points(
    values: Sequence[Any], xf: str, yf: str, *, summed: bool, keep_order: bool = False
) -> list[tuple[Any, float]]:
    """``(x, y)`` pairs in ascending ``x`` order (in data order with ``keep_order``,
    Vega-Lite's ``"sort": null``), ``y`` summed per ``x`` for bars."""
    pairs: list[tuple[Any, float]] = []
    for row in values:
        if not isinstance(row, dict):
            continue
        y = row.get(yf)
        if isinstance(y, (int, float)) and _is_num(y):
            pairs.append((row.get(xf), float(y)))
    if summed:
        sums: dict[Any, float] = {}
        for x, y in pairs:
            key = x if isinstance(x, (str, int, float, bool)) or x is None else str(x)
            sums[key] = sums.get(key, 0.0) + y
        pairs = list(sums.items())
    if keep_order:
        return pairs
    numeric = all(_is_num(x) for x, _ in pairs)
    return sorted(pairs, key=lambda p: (0, p[0], "") if numeric else (1, 0, _label(p[0])))


def _ticks(lo: float, hi: float) -> tuple[float, float, float]:
    """A round axis ``[lo, hi]`` holding the data, with its tick step (about 5 ticks)."""
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / 5
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    return math.floor(lo / step) * step, math.ceil(hi / step) * step, step


def _num(value: float, step: float | None = None) -> str:
    if step is not None and step >= 1 and float(value).is_integer():
        return f"{int(value):,}"
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.6g}"
