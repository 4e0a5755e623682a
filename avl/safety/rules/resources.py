"""Resource rules: what the statement asks the server to build, checked before it runs.

* Size-producing functions (``repeat``, ``lpad``/``rpad``, ``space``, ``printf``/``format``
  widths, ``zeroblob``, ``randomblob``, ``array_fill``, ``list_resize``, ``bar``) may not be
  asked, through constant arguments, for a value longer than ``max_value_length``; sizes
  multiply through nesting (``repeat(repeat('x', 100000), 10000)`` is 10^9). A size that is
  a constant expression the checker cannot fold is refused too (fail closed).
* Row generators (``generate_series``, ``range``, ``GENERATE_ARRAY``, ``GENERATOR``...) may
  not span more than ``max_generated_rows`` rows; dates stepping by intervals are folded.
* A join whose condition does not relate both of its sides is a cartesian product
  (``JOIN b ON a.n = a.n`` too): more unrelated row sources than ``max_cartesian`` is
  ``too_many_joins``, unless the extra sources are provably small (a one-row aggregate, a
  ``VALUES`` list, a bounded generator) and their product stays within
  ``max_generated_rows``.
* A recursive CTE needs a bound the checker can see: a condition on the recursive
  reference's columns (or a join to it, or a ``LIMIT``), no counter compared with a
  constant above ``max_generated_rows``, and no value that doubles in each step.

These rules only bound what the text asks for; the execution side (statement timeout,
SQLite ``setlimit``, PostgreSQL ``work_mem``...) bounds the rest.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlglot import exp

from avl._lazy import LazyPattern
from avl.safety._verdict import ViolationCode
from avl.safety.rules._util import SETOPS, is_constant, number

if TYPE_CHECKING:
    from avl.safety._walk import Rel, Run, Scope

__all__ = [
    "cartesian",
    "positional",
    "query_bound",
    "recursive_cte",
    "rows_of",
    "source_rows",
    "value_size",
]

C = ViolationCode
Hook = Callable[["Run", exp.Expr, str], None]

_FORMAT_WIDTH = LazyPattern(
    r"%[-+ 0#,'!]*(\d*)(?:\.(\d*))?|\{[^}]*?:[^}]*?(\d+)(?:\.(\d+))?[^}]*\}"
)


def positional(node: exp.Expr) -> list[exp.Expr]:
    """A call's arguments in order (typed classes in their ``arg_types`` order)."""
    if isinstance(node, exp.Anonymous):
        return [e for e in node.expressions if isinstance(e, exp.Expr)]
    out: list[exp.Expr] = []
    for key in node.arg_types:
        value = node.args.get(key)
        if isinstance(value, exp.Expr):
            out.append(value)
        elif isinstance(value, list):
            out.extend(v for v in value if isinstance(v, exp.Expr))
    return out


def _size_arg(run: Run, node: exp.Expr, name: str, arg: exp.Expr | None, what: str) -> float:
    """The constant value of a size argument (checked); 1 when it depends on the rows."""
    if arg is None:
        return 1.0
    value = number(arg)
    limit = run.p.max_value_length
    if value is None:
        if is_constant(arg):
            run.flag(
                C.RESOURCE_EXHAUSTION,
                f"{name}() is given a {what} that is a constant the checker cannot bound",
                node,
            )
        return 1.0
    if abs(value) > limit:
        run.flag(
            C.RESOURCE_EXHAUSTION,
            f"{name}() is asked for a {what} of {value:g}; the limit is {limit}",
            node,
        )
    return abs(value)


def value_size(node: exp.Expr | None) -> float:
    """A lower bound on the length of a value (a column counts as 1)."""
    if node is None:
        return 0.0
    while isinstance(node, (exp.Paren, exp.Alias, exp.Cast, exp.TryCast)):
        node = node.this
    if isinstance(node, exp.Literal):
        return float(len(str(node.this)))
    if isinstance(node, (exp.DPipe, exp.Concat, exp.ConcatWs)):
        return sum(value_size(part) for part in node.iter_expressions())
    if isinstance(node, exp.Repeat):
        times = number(node.args.get("times"))
        return value_size(node.this) * (abs(times) if times is not None else 1.0)
    if isinstance(node, exp.Pad):
        length = number(node.args.get("expression"))
        return abs(length) if length is not None else 1.0
    if isinstance(node, exp.Anonymous):
        name = node.name.lower()
        args = node.expressions
        if name in ("repeat", "replicate") and len(args) >= 2:
            times = number(args[1])
            return value_size(args[0]) * (abs(times) if times is not None else 1.0)
        if name in ("lpad", "rpad") and len(args) >= 2:
            length = number(args[1])
            return abs(length) if length is not None else 1.0
        if name in ("space", "zeroblob", "randomblob") and args:
            length = number(args[0])
            return abs(length) if length is not None else 1.0
    return 1.0


def _check_total(run: Run, node: exp.Expr, name: str) -> None:
    size = value_size(node)
    limit = run.p.max_value_length
    if size > limit:
        run.flag(
            C.RESOURCE_EXHAUSTION,
            f"{name}() builds a value of about {size:g} characters; the limit is {limit}",
            node,
        )


def _repeat(run: Run, node: exp.Expr, name: str) -> None:
    args = positional(node)
    _size_arg(run, node, name, args[1] if len(args) > 1 else None, "count")
    _check_total(run, node, name)


def _pad(run: Run, node: exp.Expr, name: str) -> None:
    args = positional(node)
    _size_arg(run, node, name, args[1] if len(args) > 1 else None, "length")


def _first(run: Run, node: exp.Expr, name: str) -> None:
    args = positional(node)
    _size_arg(run, node, name, args[0] if args else None, "size")


def _nth(index: int) -> Hook:
    def hook(run: Run, node: exp.Expr, name: str) -> None:
        args = positional(node)
        _size_arg(run, node, name, args[index] if len(args) > index else None, "size")

    return hook


def _format(run: Run, node: exp.Expr, name: str) -> None:
    """``printf('%.*c', 1e9, 'x')``, ``format('%1000000s', x)``, ``format('{:>99999999}')``."""
    args = positional(node)
    limit = run.p.max_value_length
    if not args:
        return
    fmt = args[0]
    if isinstance(fmt, exp.Literal) and fmt.is_string:
        for match in _FORMAT_WIDTH.finditer(str(fmt.this)):
            for group in match.groups():
                if group and int(group) > limit:
                    run.flag(
                        C.RESOURCE_EXHAUSTION,
                        f"{name}() format asks for a width of {group}; the limit is {limit}",
                        node,
                    )
                    return
    elif is_constant(fmt) and not isinstance(fmt, exp.Literal):
        run.flag(C.RESOURCE_EXHAUSTION, f"{name}() has a format the checker cannot read", node)
        return
    for arg in args[1:]:
        value = number(arg)
        if value is not None and abs(value) > limit:
            run.flag(
                C.RESOURCE_EXHAUSTION,
                f"{name}() is given {value:g} (a width or precision); the limit is {limit}",
                node,
            )
            return


def _aggregate(run: Run, node: exp.Expr, name: str) -> None:
    """``string_agg``/``array_agg``/``group_concat``...: one value built from every row.

    When the SELECT's sources have a known size (a bounded generator, ``VALUES``), that
    value is about rows x (value + separator): it may not exceed ``max_value_length``.
    """
    if run.sources_of is None:
        return
    rows = source_rows(*run.sources_of)
    if rows is None:
        return
    args = positional(node)
    value = value_size(args[0]) if args else 1.0
    separator = value_size(args[1]) if len(args) > 1 and isinstance(args[1], exp.Literal) else 0.0
    size = rows * (value + separator + 1)
    limit = run.p.max_value_length
    if size > limit:
        run.flag(
            C.RESOURCE_EXHAUSTION,
            f"{name}() builds one value of about {size:g} from {rows:g} rows; the limit is {limit}",
            node,
        )


def _array_fill(run: Run, node: exp.Expr, name: str) -> None:
    args = positional(node)
    if len(args) < 2:
        return
    dims = args[1]
    total = 1.0
    items = dims.expressions if isinstance(dims, exp.Array) else [dims]
    for item in items:
        total *= _size_arg(run, node, name, item, "dimension")
    if total > run.p.max_generated_rows:
        run.flag(
            C.RESOURCE_EXHAUSTION,
            f"{name}() builds {total:g} elements; the limit is {run.p.max_generated_rows}",
            node,
        )


# ----------------------------------------------------------------- generators
_UNITS = {
    "microsecond": 1e-6, "millisecond": 1e-3, "second": 1.0, "minute": 60.0, "hour": 3600.0,
    "day": 86400.0, "week": 604800.0, "month": 2592000.0, "quarter": 7776000.0,
    "year": 31536000.0, "decade": 315360000.0, "century": 3153600000.0,
}  # fmt: skip
_INTERVAL = LazyPattern(r"^\s*([-+]?\d+(?:\.\d+)?)\s*([a-z]+?)s?\s*$")


def _interval_seconds(node: exp.Expr | None) -> float | None:
    while isinstance(node, (exp.Paren, exp.Cast)):
        node = node.this
    if isinstance(node, exp.Interval):
        amount = node.this
        unit = node.args.get("unit")
        text = str(amount.this) if isinstance(amount, exp.Literal) else None
        if text is None:
            return None
        if unit is not None:
            text = f"{text} {unit.name}"
        return _parse_interval(text)
    if isinstance(node, exp.Literal) and node.is_string:
        return _parse_interval(str(node.this))
    return None


def _parse_interval(text: str) -> float | None:
    total = 0.0
    parts = re.findall(r"[-+]?\d+(?:\.\d+)?\s*[a-zA-Z]+", text)
    if not parts:
        return None
    for part in parts:
        match = _INTERVAL.match(part.lower())
        if match is None:
            return None
        unit = match.group(2)
        scale = _UNITS.get(unit) or _UNITS.get(unit.rstrip("s"))
        if scale is None:
            return None
        total += float(match.group(1)) * scale
    return total


def _moment(node: exp.Expr | None) -> tuple[str, float] | None:
    """A point in time as (base, seconds): a date literal, or ``now``-like plus intervals."""
    while isinstance(node, (exp.Paren, exp.Cast, exp.TryCast)):
        node = node.this
    if isinstance(node, exp.Literal) and node.is_string:
        try:
            when = _dt.datetime.fromisoformat(str(node.this).strip())
        except ValueError:
            return None
        return ("", when.replace(tzinfo=None).timestamp())
    if isinstance(node, (exp.CurrentDate, exp.CurrentTimestamp, exp.CurrentDatetime)):
        return ("now", 0.0)
    if isinstance(node, exp.Anonymous) and node.name.lower() in ("now", "today"):
        return ("now", 0.0)
    if isinstance(node, (exp.DateTrunc, exp.TimestampTrunc)):
        return _moment(node.this)
    if isinstance(node, exp.Anonymous) and node.name.lower() == "date_trunc":
        return _moment(node.expressions[-1]) if node.expressions else None
    if isinstance(node, (exp.Add, exp.Sub)):
        base = _moment(node.this)
        step = _interval_seconds(node.expression)
        if base is None or step is None:
            return None
        return (base[0], base[1] + (step if isinstance(node, exp.Add) else -step))
    return None


def _bounds(node: exp.Expr, name: str) -> tuple[exp.Expr | None, exp.Expr | None, exp.Expr | None]:
    if isinstance(node, (exp.GenerateSeries, exp.ExplodingGenerateSeries, exp.GenerateDateArray)):
        start, end, step = (node.args.get(k) for k in ("start", "end", "step"))
        return start, end, step
    args = positional(node)
    if name == "range" and len(args) == 1:
        return exp.Literal.number(0), args[0], None
    return (
        args[0] if args else None,
        args[1] if len(args) > 1 else None,
        args[2] if len(args) > 2 else None,
    )


def _rows(start: exp.Expr | None, end: exp.Expr | None, step: exp.Expr | None) -> float | None:
    """How many rows a generator yields, when its bounds fold to constants."""
    if start is None:
        return None
    a = number(start)
    if end is None:
        return abs(a) if a is not None else None
    b = number(end)
    if a is not None and b is not None:
        stride = number(step) if step is not None else 1.0
        if stride is None:
            return None
        return abs(b - a) / abs(stride) + 1 if stride else float("inf")
    first, last = _moment(start), _moment(end)
    stride_s = _interval_seconds(step) if step is not None else 86400.0
    if first is not None and last is not None and first[0] == last[0] and stride_s:
        return abs(last[1] - first[1]) / abs(stride_s) + 1
    return None


def rows_of(node: exp.Expr) -> float | None:
    """An upper bound on the rows a table function yields (None: unknown)."""
    name = node.name.lower() if isinstance(node, exp.Anonymous) else ""
    if isinstance(
        node, (exp.GenerateSeries, exp.ExplodingGenerateSeries, exp.GenerateDateArray)
    ) or (name in ("generate_series", "range", "generate_array")):
        return _rows(*_bounds(node, name))
    if isinstance(node, exp.Generator):
        return number(node.args.get("rowcount"))
    if isinstance(node, (exp.Unnest, exp.Explode)):
        items = [e for e in node.iter_expressions() if isinstance(e, exp.Array)]
        if items:
            return float(max(len(e.expressions) for e in items))
    return None


def _series(run: Run, node: exp.Expr, name: str) -> None:
    """``generate_series``/``range``/``GENERATE_ARRAY``: at most ``max_generated_rows``."""
    start, end, step = _bounds(node, name)
    if start is None:
        return
    limit = run.p.max_generated_rows
    rows = _rows(start, end, step)
    if rows is None:
        if all(is_constant(x) for x in (start, end, step) if x is not None):
            run.flag(
                C.RESOURCE_EXHAUSTION,
                f"{name}() has constant bounds the checker cannot fold, so its size is unknown",
                node,
            )
        return
    if rows > limit:
        run.flag(
            C.RESOURCE_EXHAUSTION,
            f"{name}() asked for {rows:g} rows; the limit is {limit}",
            node,
        )


def _generator(run: Run, node: exp.Expr, name: str) -> None:
    count = node.args.get("rowcount")
    if count is None:
        run.flag(C.RESOURCE_EXHAUSTION, f"{name}() without ROWCOUNT has no bound", node)
        return
    value = number(count)
    if value is None or value > run.p.max_generated_rows:
        run.flag(
            C.RESOURCE_EXHAUSTION,
            f"{name}() asked for {count.sql()} rows; the limit is {run.p.max_generated_rows}",
            node,
        )


SIZE_HOOKS: dict[str, Hook] = {
    "repeat": _repeat,
    "replicate": _repeat,
    "lpad": _pad,
    "rpad": _pad,
    "space": _first,
    "zeroblob": _first,
    "randomblob": _first,
    "printf": _format,
    "format": _format,
    "sformat": _format,
    "array_fill": _array_fill,
    "list_resize": _nth(1),
    "array_resize": _nth(1),
    "bar": _nth(3),
    "generate_series": _series,
    "range": _series,
    "generate_array": _series,
    "generate_date_array": _series,
    "generate_timestamp_array": _series,
    "array_generate_range": _series,
    "generator": _generator,
    **dict.fromkeys(
        (
            "string_agg",
            "group_concat",
            "array_agg",
            "json_agg",
            "jsonb_agg",
            "json_object_agg",
            "jsonb_object_agg",
            "list",
            "listagg",
            "json_group_array",
            "json_group_object",
            "json_arrayagg",
            "json_objectagg",
            "array_concat_agg",
            "list_string_agg",
        ),
        _aggregate,
    ),
}
CLASS_HOOKS: dict[type[exp.Expr], Hook] = {
    exp.Repeat: _repeat,
    exp.Pad: _pad,
    exp.Space: _first,
    exp.Format: _format,
    exp.GenerateSeries: _series,
    exp.ExplodingGenerateSeries: _series,
    exp.GenerateDateArray: _series,
    exp.Generator: _generator,
    exp.GroupConcat: _aggregate,
    exp.ArrayAgg: _aggregate,
    exp.JSONArrayAgg: _aggregate,
    exp.JSONObjectAgg: _aggregate,
    exp.JSONBObjectAgg: _aggregate,
    exp.ArrayConcatAgg: _aggregate,
}


# ------------------------------------------------------------------ cartesian
def _edges(run: Run, cond: exp.Expr, scope: Scope) -> list[frozenset[str]]:
    """Groups of sources that a condition relates (an OR relates what all its sides do)."""
    while isinstance(cond, exp.Paren):
        cond = cond.this
    if isinstance(cond, exp.And):
        return _edges(run, cond.this, scope) + _edges(run, cond.expression, scope)
    if isinstance(cond, exp.Or):
        left = _edges(run, cond.this, scope)
        right = _edges(run, cond.expression, scope)
        return [a & b for a in left for b in right if len(a & b) > 1]
    if isinstance(cond, exp.Not):
        return _edges(run, cond.this, scope)
    owners = _qualifiers(cond, scope)
    if len(owners) < 2:
        return []
    if isinstance(cond, _RELATING) and "*unknown*" not in owners:
        # a comparison relates its sides only when each side reads something and they
        # differ: a.x = b.y does, a.n + b.n >= 0 and a.n = a.n do not
        lhs = _qualifiers(cond.this, scope)
        rhs: set[str] = owners if not lhs else set()
        for key, value in cond.args.items():
            if key != "this" and isinstance(value, exp.Expr):
                rhs |= _qualifiers(value, scope)
            elif key == "expressions" and isinstance(value, list):
                for item in value:
                    if isinstance(item, exp.Expr):
                        rhs |= _qualifiers(item, scope)
        if not lhs or not rhs or lhs == rhs:
            return []
    return [frozenset(owners)]


_RELATING = (
    exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ,
    exp.Like, exp.ILike, exp.Between, exp.In, exp.Is,
)  # fmt: skip


def _qualifiers(node: exp.Expr, scope: Scope) -> set[str]:
    out: set[str] = set()
    for col in node.find_all(exp.Column):
        if col.table:
            out.add(col.table.lower())
        else:
            owner = _owner(col.name.lower(), scope)
            out.add(owner if owner else "*unknown*")
    return out


def _owner(name: str, scope: Scope) -> str | None:
    found = [
        alias
        for alias, src in scope.sources.items()
        if src.colset is not None and name in src.colset
    ]
    if len(found) == 1:
        return found[0]
    if len(scope.sources) == 1:
        return next(iter(scope.sources))
    return None


def query_bound(node: exp.Expr | None) -> tuple[float | None, bool]:
    """(an upper bound on the rows a query yields or None, whether it narrows what it reads)."""
    while isinstance(node, exp.Subquery):
        node = node.this
    if isinstance(node, exp.Values):
        return float(len(node.expressions)), True
    if isinstance(node, SETOPS):
        left = query_bound(node.this)
        right = query_bound(node.expression)
        rows = left[0] + right[0] if left[0] is not None and right[0] is not None else None
        return rows, left[1] and right[1]
    if not isinstance(node, exp.Select):
        return None, False
    args = node.args
    projections = node.expressions
    aggregate = any(p.find(exp.AggFunc) is not None for p in projections)
    narrow = aggregate or any(
        args.get(k) for k in ("where", "group", "having", "distinct", "limit")
    )
    limit = args.get("limit")
    if isinstance(limit, exp.Limit):
        value = number(limit.args.get("expression"))
        # a negative LIMIT (SQLite's "no limit") or one past 2**53 (MySQL's "all rows",
        # the row-filter fence) bounds nothing
        if value is not None and 0 <= value < 2**53:
            return value, narrow
    if args.get("from_") is None and not args.get("joins"):
        return 1.0, True
    if (
        args.get("group") is None
        and projections
        and aggregate
        and all(p.find(exp.AggFunc) is not None and p.find(exp.Window) is None for p in projections)
    ):
        return 1.0, True
    return None, narrow


def source_rows(scope: Scope, names: list[str]) -> float | None:
    """The most rows the sources can yield together, when every one has a known bound."""
    if not names:
        return 1.0
    total = 1.0
    for name in names:
        src = scope.sources.get(name)
        if src is None:
            return None
        rows = query_bound(src.query)[0] if src.query is not None else src.rows
        if rows is None:
            return None
        total *= max(rows, 1.0)
    return total


_SPREAD = 10_000  # rows a small source (VALUES, a bounded generator) may multiply a table by


def _filtered(where: exp.Expr | None, scope: Scope) -> set[str]:
    """Sources a WHERE narrows: a conjunct comparing one source's column with a constant."""
    out: set[str] = set()
    if where is None:
        return out
    stack = [where]
    while stack:
        cond = stack.pop()
        while isinstance(cond, exp.Paren):
            cond = cond.this
        if isinstance(cond, exp.And):
            stack.extend((cond.this, cond.expression))
            continue
        if isinstance(cond, exp.Or):
            left = _filtered(cond.this, scope)
            out |= left & _filtered(cond.expression, scope)
            continue
        if not isinstance(cond, _NARROWING):
            continue
        owners = _qualifiers(cond, scope)
        sides = [v for k, v in cond.args.items() if k != "this" and isinstance(v, exp.Expr)]
        sides += [v for v in cond.args.get("expressions") or [] if isinstance(v, exp.Expr)]
        if (
            len(owners) == 1
            and "*unknown*" not in owners
            and sides
            and all(is_constant(v) or isinstance(v, exp.Subquery) for v in sides)
        ):
            out |= owners
    return out


_NARROWING = (exp.EQ, exp.LT, exp.LTE, exp.GT, exp.GTE, exp.In, exp.Between, exp.Like, exp.ILike)


def cartesian(
    run: Run,
    node: exp.Select,
    names: list[str],
    conditions: list[exp.Expr],
    links: list[frozenset[str]],
    scope: Scope,
    where: exp.Expr | None = None,
) -> None:
    """Report a product of more unrelated row sources than ``max_cartesian``.

    ``names`` are the select's sources in order, ``conditions`` its join conditions and
    WHERE, ``links`` the groups of sources related by construction (``USING``, a lateral
    reference, a table function over another source's column).
    """
    if len(names) <= 1:
        return
    # the common case first: every source tied to the others by a.x = b.y
    parent = {n: n for n in names}

    def find(x: str) -> str:
        while parent[x] != x:
            x = parent[x]
        return x

    for cond in conditions:
        if type(cond) is exp.EQ:
            left, right = cond.this, cond.expression
            if type(left) is exp.Column and type(right) is exp.Column:
                a, b = left.table.lower(), right.table.lower()
                if a != b and a in parent and b in parent:
                    parent[find(a)] = find(b)
    for group in links:
        members = [n for n in group if n in parent]
        for other in members[1:]:
            parent[find(other)] = find(members[0])
    if len({find(n) for n in names}) == 1:
        return
    groups = list(links)
    for cond in conditions:
        groups.extend(_edges(run, cond, scope))
    if any("*unknown*" in g for g in groups):
        return  # a column the checker cannot place (no schema): cannot prove a product
    for group in groups:
        members = [n for n in group if n in parent]
        for other in members[1:]:
            parent[find(other)] = find(members[0])
    components: dict[str, list[str]] = {}
    for n in names:
        components.setdefault(find(n), []).append(n)
    if len(components) <= 1:
        return
    big = 0
    factor = 1.0
    filtered = _filtered(where, scope)
    for members in components.values():
        product: float | None = 1.0
        narrowed = True
        for m in members:
            src = scope.sources.get(m)
            rows: float | None = None
            narrow = False
            if src is not None:
                rows, narrow = (
                    query_bound(src.query)
                    if src.query is not None
                    else (
                        src.rows,
                        src.narrow,
                    )
                )
            if not (narrow or m in filtered):
                narrowed = False
            if rows is None or product is None:
                product = None
            else:
                product *= max(rows, 1.0)
        if product is not None:
            factor *= product
        elif not narrowed:
            big += 1
    limit = run.p.max_cartesian
    if big > limit or factor > (_SPREAD if big else run.p.max_generated_rows):
        run.flag(
            C.TOO_MANY_JOINS,
            f"a cartesian product of {len(components)} unrelated sources "
            "(each join condition must relate both of its sides)",
            node,
        )


# ------------------------------------------------------------------ recursion
# comparisons that can end a recursion (IS NOT NULL cannot)
_BOUNDING = (
    exp.LT, exp.LTE, exp.GT, exp.GTE, exp.EQ, exp.NEQ, exp.Between, exp.In, exp.Like,
    exp.ILike, exp.NullSafeEQ,
)  # fmt: skip
_GROWTH = (exp.DPipe, exp.Concat, exp.ConcatWs, exp.Repeat, exp.Pad, exp.ArrayConcat)
_GROWTH_NAMES = frozenset(
    {"concat", "concat_ws", "repeat", "replicate", "lpad", "rpad", "format", "printf",
     "array_append", "array_cat", "list_append", "list_concat", "array_concat", "json_insert"}
)  # fmt: skip


def _mentions(node: exp.Expr, alias: str, columns: frozenset[str]) -> int:
    count = 0
    for col in node.find_all(exp.Column):
        table = col.table.lower()
        if (table == alias) or (not table and col.name.lower() in columns):
            count += 1
    return count


def _grows(node: exp.Expr) -> bool:
    if isinstance(node, _GROWTH):
        return True
    return isinstance(node, exp.Anonymous) and node.name.lower() in _GROWTH_NAMES


def recursive_cte(run: Run, cte: exp.CTE, body: exp.Expr, name: str, declared: Rel | None) -> None:
    """The bound of a recursive CTE's recursive step (``WITH RECURSIVE``)."""
    if not isinstance(body, SETOPS):
        return
    step = body.expression
    if not isinstance(step, exp.Select):
        return
    refs = [
        t
        for t in step.find_all(exp.Table)
        if not t.args.get("db") and isinstance(t.this, exp.Identifier) and t.name.lower() == name
    ]
    if not refs:
        return
    alias = (refs[0].alias or refs[0].name).lower()
    columns: frozenset[str] = frozenset()
    if declared is not None and declared.cols is not None:
        columns = frozenset(declared.cols)
    else:
        anchor = body.this
        while isinstance(anchor, SETOPS):
            anchor = anchor.this
        if isinstance(anchor, exp.Select):
            columns = frozenset(p.alias_or_name.lower() for p in anchor.expressions)
    # 1. a value that doubles in each step
    for proj in step.expressions:
        value = proj.this if isinstance(proj, exp.Alias) else proj
        while isinstance(value, (exp.Cast, exp.Paren)):
            value = value.this
        if (
            _grows(value)
            and (
                _mentions(value, alias, columns) > 1
                or isinstance(value, (exp.Repeat, exp.Pad))
                or (
                    isinstance(value, exp.Anonymous)
                    and value.name.lower() in ("repeat", "lpad", "rpad")
                )
            )
            and _mentions(value, alias, columns)
        ):
            run.flag(
                C.RESOURCE_EXHAUSTION,
                f"recursive CTE {cte.alias_or_name!r} doubles a value in each step",
                value,
            )
            return
    # 2. a stopping condition on the recursive reference, or a LIMIT
    conditions: list[exp.Expr] = []
    where = step.args.get("where")
    if where is not None:
        conditions.append(where.this)
    for key in ("having", "qualify"):
        part = step.args.get(key)
        if part is not None:
            conditions.append(part.this)
    for join in step.args.get("joins") or []:
        on = join.args.get("on")
        if on is not None:
            conditions.append(on)
        elif join.args.get("using"):
            conditions.append(exp.column(join.args["using"][0].name, table=alias))
    bounded = step.args.get("limit") is not None or any(
        _mentions(cmp, alias, columns) for c in conditions for cmp in c.find_all(*_BOUNDING)
    )
    if not bounded:
        run.flag(
            C.UNBOUNDED_RECURSION,
            f"recursive CTE {cte.alias_or_name!r} has no stopping condition on its own columns",
            cte,
        )
        return
    # 3. a counter compared with an absurd constant
    limit = run.p.max_generated_rows
    for cond in conditions:
        for cmp in cond.find_all(exp.LT, exp.LTE, exp.GT, exp.GTE):
            sides = (cmp.this, cmp.expression)
            for side, other in (sides, sides[::-1]):
                value = number(other)
                if value is not None and abs(value) > limit and _mentions(side, alias, columns):
                    run.flag(
                        C.RESOURCE_EXHAUSTION,
                        f"recursive CTE {cte.alias_or_name!r} runs up to {value:g}; "
                        f"the limit is {limit}",
                        cmp,
                    )
                    return


RULES: dict[type[exp.Expr], object] = {}
