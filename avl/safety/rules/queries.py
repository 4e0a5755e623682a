"""Query rules: the shape of SELECTs, set operations, subqueries and CTEs.

Each query builds a :class:`~avl.safety._walk.Scope`, registers its sources (see
``relations.py``), walks its clauses in order, and returns the columns it yields, with
their marks, so that a CTE or derived table passes them on (``columns.py``). Also here:
``set_operation_mismatch`` (sides of different widths), ``order_by_position``
(``ORDER BY n`` past the select list), ``too_many_joins`` (more joins than
``max_joins``), ``too_deep`` (subqueries nested past ``max_depth``) and the width of a
subquery used as a value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from avl._lazy import lazy_module
from avl.safety._verdict import ViolationCode
from avl.safety._walk import Rel, Scope
from avl.safety.rules._util import QUERY_ROOTS, SETOPS, WRITE_NODES

if TYPE_CHECKING:
    from avl.safety._walk import QueryHandler, Run
    from avl.safety.rules import columns, predicates, relations, resources, statements
else:  # imported when a query first needs them (``SELECT 1`` needs none)
    columns = lazy_module("avl.safety.rules.columns", __name__)
    predicates = lazy_module("avl.safety.rules.predicates", __name__)
    relations = lazy_module("avl.safety.rules.relations", __name__)
    resources = lazy_module("avl.safety.rules.resources", __name__)
    statements = lazy_module("avl.safety.rules.statements", __name__)

__all__ = ["fallback", "nested", "select", "setop", "subquery", "values", "with_"]

C = ViolationCode

_SELECT_HANDLED = frozenset(
    {"with_", "expressions", "from_", "joins", "where", "group", "having", "qualify", "order",
     "limit", "offset", "into", "locks", "hint", "distinct", "windows", "kind", "laterals", "pivots",
     "sample"}
)  # fmt: skip
# argument names a SELECT may carry without anything to report (the handled ones, and
# MySQL SQL_CALC_FOUND_ROWS etc. / Snowflake EXCLUDE, which have no side effects)
_SELECT_IGNORED = frozenset({"operation_modifiers", "exclude", "options"})
_SELECT_KNOWN = _SELECT_HANDLED | _SELECT_IGNORED
_SETOP_HANDLED = frozenset(
    {"with_", "this", "expression", "distinct", "by_name", "side", "kind", "order", "limit",
     "offset", "locks"}
)  # fmt: skip
_JOIN_PLAIN = frozenset({"this", "side", "kind", "method", "global_", "natural"})


def _first(value: object, node: exp.Expr) -> exp.Expr:
    if isinstance(value, list) and value and isinstance(value[0], exp.Expr):
        return value[0]
    return value if isinstance(value, exp.Expr) else node


class _Outputs:
    """The select list, position by position, for positional references."""

    __slots__ = ("complete", "marked_tail", "names", "slots")

    def __init__(self) -> None:
        self.slots: list[bool] = []  # known positions: whether each carries a mark
        self.names: list[str] = []
        self.complete = True  # False once a star of unknown width is seen
        self.marked_tail = False  # a star of unknown width over a marked source


def _positions(run: Run, node: exp.Expr, out: _Outputs, clause: str) -> None:
    for item in node.expressions:
        target = item.this if isinstance(item, exp.Ordered) else item
        if isinstance(target, exp.PositionalColumn):
            target = target.this
        if not (isinstance(target, exp.Literal) and not target.is_string):
            continue
        try:
            pos = int(target.this)
        except ValueError:
            continue
        if pos >= 1 and pos <= len(out.slots):
            if out.slots[pos - 1]:
                name = out.names[pos - 1] if pos <= len(out.names) else f"#{pos}"
                run.flag(
                    C.COLUMN_DENIED, f"{clause} {pos} reads the denied column {name!r}", target
                )
        elif out.complete or pos < 1:
            run.flag(
                C.ORDER_BY_POSITION,
                f"{clause} {pos} is past the {len(out.slots)} selected columns",
                target,
            )
        elif out.marked_tail:
            run.flag(
                C.UNRESOLVED_COLUMN,
                f"{clause} {pos} reads a column of a * the checker cannot expand while a "
                "denied column is in reach",
                target,
            )


def _chained(names: list[str], joined: list[tuple[exp.Join, str | None]], from_: object) -> bool:
    """The common case, cheaply: one FROM source and every JOIN ... ON a.x = b.y tying its
    source to one before it (no cartesian product to look for)."""
    if not isinstance(from_, exp.From) or from_.expressions or len(joined) != len(names) - 1:
        return False
    seen = {names[0]}
    for join, name in joined:
        on = join.args.get("on")
        if name is None or type(on) is not exp.EQ:
            return False
        left, right = on.this, on.expression
        if type(left) is not exp.Column or type(right) is not exp.Column:
            return False
        a, b = left.table.lower(), right.table.lower()
        if not ((a == name and b in seen) or (b == name and a in seen)):
            return False
        seen.add(name)
    return True


def _numbered(node: exp.Expr) -> bool:
    """Whether an ORDER BY / GROUP BY has a positional item (``ORDER BY 2``, ``#2``)."""
    for item in node.expressions:
        target = item.this if type(item) is exp.Ordered else item
        if type(target) is exp.Literal or type(target) is exp.PositionalColumn:
            return True
    return False


def _inline(node: exp.Expr) -> bool:
    """A CTE body or derived table: denied columns its ``*`` yields are passed on."""
    parent = node.parent
    return isinstance(parent, exp.CTE) or (
        isinstance(parent, exp.Subquery)
        and isinstance(parent.parent, (exp.From, exp.Join, exp.Lateral))
    )


def select(run: Run, node: exp.Select, outer: Scope | None) -> Rel | None:
    """A SELECT: its sources, select list and clauses, in order.

    The clauses' expressions are gathered and walked in one pass at the end (in clause
    order); what must be known first (the sources, the select-list aliases, the constant
    conditions) is settled before.
    """
    scope = Scope(outer)
    run.depth += 1
    if run.depth > run.p.max_depth and not run.too_deep:
        run.deep(node)
    parent = node.parent
    inline = type(parent) is exp.CTE or (
        type(parent) is exp.Subquery
        and isinstance(parent.parent, (exp.From, exp.Join, exp.Lateral))
    )
    args = node.args
    if not args.keys() <= _SELECT_KNOWN:
        for key, value in args.items():
            if key in _SELECT_KNOWN or value is None or value is False or value == []:
                continue
            run.unknown(_first(value, node))
    if args.get("into") is not None:
        statements.into(run, args["into"])
    if args.get("locks"):
        statements.locking(run, args["locks"][0])
    if args.get("hint") is not None:
        statements.hint(run, args["hint"])
    ctes = args.get("with_")
    if ctes is not None:
        with_(run, ctes, scope)
    joins: list[exp.Expr] = args.get("joins") or []
    if len(joins) > run.p.max_joins:
        run.flag(
            C.TOO_MANY_JOINS, f"{len(joins)} joins; at most {run.p.max_joins} allowed", joins[0]
        )
    # sources, in order
    links: list[frozenset[str]] = []
    names: list[str] = []
    from_ = args.get("from_")
    if from_ is not None:
        if type(from_) is exp.From and isinstance(from_.this, exp.Expr):
            name = relations.source(run, from_.this, scope, links)
            if name is not None:
                names.append(name)
            for src in from_.expressions:
                name = relations.source(run, src, scope, links)
                if name is not None:
                    names.append(name)
        else:
            run.unknown(from_)
    joined: list[tuple[exp.Join, str | None]] = []
    for join in joins:
        if type(join) is exp.Join and isinstance(join.this, exp.Expr):
            name = relations.source(run, join.this, scope, links)
            if name is not None:
                names.append(name)
            joined.append((join, name))
        else:
            run.unknown(join)
    walk: list[exp.Expr] = []  # expressions walked together at the end, in clause order
    if args.get("laterals") or args.get("pivots"):
        for lateral in args.get("laterals") or []:
            name = relations.source(run, lateral, scope, links)
            if name is not None:
                names.append(name)
        walk.extend(args.get("pivots") or [])
    # the select list (its aliases are known everywhere in this SELECT)
    projections = node.expressions
    aliases = [proj.alias.lower() for proj in projections if type(proj) is exp.Alias]
    if aliases:
        scope.aliases = frozenset(aliases)
    # join conditions, once every source is known
    conditions: list[exp.Expr] = []
    for join, name in joined:
        jargs = join.args
        if name is not None and (
            jargs.get("natural") or str(jargs.get("method") or "").upper() in _LINKING
        ):
            links.append(frozenset(names[: names.index(name) + 1]))
            if jargs.get("natural") or str(jargs.get("method") or "").upper() == "NATURAL":
                earlier = names[: names.index(name)]
                columns.natural_join(
                    run, [scope.sources[n] for n in earlier if n in scope.sources],
                    scope.sources[name], join,
                )  # fmt: skip
        for key, value in jargs.items():
            if value is None or value is False or value == [] or key in _JOIN_PLAIN:
                continue
            if key == "on":
                predicates.condition(run, value, scope, "ON")
                conditions.append(value)
            elif key == "using":
                for ident in value:
                    columns.column(run, exp.column(ident.name), scope)
                if name is not None:
                    links.append(frozenset(names[: names.index(name) + 1]))
            elif key == "match_condition":
                walk.append(value)
                conditions.append(value)
            else:
                run.unknown(_first(value, join))
    # names are needed where the output is read by name (a CTE, a derived table, a set
    # operation's ORDER BY); a plain SELECT only needs their count
    track = inline or isinstance(parent, SETOPS)
    out = _Outputs()
    marks: set[str] = set()
    slots = out.slots
    for proj in projections:
        cls = type(proj)
        if cls is exp.Star or (cls is exp.Column and type(proj.this) is exp.Star):
            cols, star_marks = columns.star(run, proj, scope, carry=inline)
            marks |= star_marks
            if cols is None:
                out.complete = False
                out.marked_tail = (
                    out.marked_tail
                    or bool(star_marks)
                    or any(s.marked for s in scope.sources.values())
                )
            elif out.complete:
                if track:
                    out.names.extend(cols)
                slots.extend(c in star_marks for c in cols)
            continue
        if out.complete:
            if track:
                out.names.append(proj.alias_or_name.lower())
            slots.append(False)
        walk.append(proj)
    distinct = args.get("distinct")
    if distinct is not None:
        walk.append(distinct)
    where = args.get("where")
    if where is not None:
        predicates.constants_of(run, where.this, "WHERE")
        conditions.append(where.this)
        walk.append(where.this)
    if len(names) > 1 and not _chained(names, joined, from_):
        resources.cartesian(
            run, node, names, conditions, links, scope, where.this if where is not None else None
        )
    group = args.get("group")
    if group is not None:
        if _numbered(group):
            _positions(run, group, out, "GROUP BY")
        walk.append(group)
    for key, clause in (("having", "HAVING"), ("qualify", "QUALIFY")):
        value = args.get(key)
        if value is not None:
            predicates.constants_of(run, value.this, clause)
            walk.append(value.this)
    windows = args.get("windows")
    if windows:
        walk.extend(windows)
    sample = args.get("sample")
    if sample is not None:
        walk.append(sample)
    order = args.get("order")
    if order is not None:
        if _numbered(order):
            _positions(run, order, out, "ORDER BY")
        walk.append(order)
    limit = args.get("limit")
    if limit is not None:
        walk.append(limit)
    offset = args.get("offset")
    if offset is not None:
        walk.append(offset)
    if walk:
        saved = run.sources_of
        run.sources_of = (scope, names)  # read by the aggregate size rule, on demand
        run.expr(walk, scope)
        run.sources_of = saved
    run.depth -= 1
    run.width = len(slots) if out.complete else None
    if not track:
        return _UNKNOWN
    return Rel(
        "<select>",
        tuple(out.names) if out.complete else None,
        frozenset(marks),
        query=node,
    )


# a SELECT whose output nobody reads by name (never mutated)
_UNKNOWN = Rel("<select>", None)
_LINKING = frozenset({"NATURAL", "POSITIONAL"})


def setop(run: Run, node: exp.Expr, outer: Scope | None) -> Rel | None:
    """UNION / INTERSECT / EXCEPT: both sides, their widths, ORDER BY on the result."""
    scope = Scope(outer)
    args = node.args
    for key, value in args.items():
        if value is None or value is False or value == [] or key in _SETOP_HANDLED:
            continue
        run.unknown(_first(value, node))
    if args.get("locks"):
        statements.locking(run, args["locks"][0])
    if args.get("with_") is not None:
        with_(run, args["with_"], scope)
    outs: list[Rel | None] = []
    widths: list[int | None] = []
    for side in (args.get("this"), args.get("expression")):
        if not isinstance(side, exp.Expr):
            run.unknown(node)
            continue
        run.width = None
        outs.append(run.query(side, scope))
        widths.append(run.width)
        branch = side.this if isinstance(side, exp.Subquery) else side
        if (
            isinstance(branch, exp.Select)
            and node is not run.anchor
            and predicates.constant_branch(branch)
            and not predicates.inline_table(node)
        ):
            run.flag(C.CONSTANT_UNION, "a set-operation branch selects only constants", branch)
    if (
        len(widths) == 2
        and widths[0] is not None
        and widths[1] is not None
        and widths[0] != widths[1]
    ):
        run.flag(
            C.SET_OPERATION_MISMATCH,
            f"the sides of {type(node).__name__.upper()} select {widths[0]} and {widths[1]} columns",
            node,
        )
    first = outs[0] if outs else None
    order = args.get("order")
    if order is not None:
        out = _Outputs()
        if first is not None and first.cols is not None:
            out.names = list(first.cols)
            out.slots = [False] * len(first.cols)
        elif widths and widths[0] is not None:
            out.names = ["?"] * widths[0]
            out.slots = [False] * widths[0]
        else:
            out.complete = False
        _positions(run, order, out, "ORDER BY")
        result = Scope(outer)
        result.sources["<setop>"] = Rel("<setop>", first.cols if first is not None else None)
        run.expr(order, result)
    for key in ("limit", "offset"):
        if args.get(key) is not None:
            run.expr(args[key], scope)
    run.width = widths[0] if widths else None
    return Rel("<setop>", first.cols if first is not None else None, query=node)


def subquery(run: Run, node: exp.Subquery, outer: Scope | None) -> Rel | None:
    """A parenthesised query (its own ORDER BY/LIMIT, possibly)."""
    for key, value in node.args.items():
        if value is None or key in ("this", "alias"):
            continue
        if key in ("order", "limit", "offset"):
            run.expr(value, outer or Scope(None))
        elif key == "locks":
            statements.locking(run, node)
        else:
            run.unknown(_first(value, node))
    inner = node.this
    if not isinstance(inner, exp.Expr):
        run.unknown(node)
        return None
    return run.query(inner, outer)


def values(run: Run, node: exp.Values, outer: Scope | None) -> Rel | None:
    """``VALUES (...), (...)`` as a query."""
    run.expr(node.expressions, outer or Scope(None))
    return Rel("<values>", None, query=node)


def fallback(run: Run, node: exp.Expr, outer: Scope | None) -> Rel | None:
    """A write inside a query, or a node that is no query at all."""
    if isinstance(node, WRITE_NODES):
        statements.write(run, node, outer)
    else:
        run.unknown(node)
    return None


def with_(run: Run, node: exp.Expr, scope: Scope) -> None:
    """``WITH``: each CTE's body, its column list and marks, in order."""
    if not isinstance(node, exp.With):
        run.unknown(node)
        return
    recursive = bool(node.args.get("recursive"))
    for key in ("search", "cycle", "udfs"):
        if node.args.get(key):
            run.unknown(node.args[key])
    for cte in node.expressions:
        if not isinstance(cte, exp.CTE):
            run.unknown(cte)
            continue
        name = cte.alias_or_name.lower()
        alias = cte.args.get("alias")
        declared = None
        if isinstance(alias, exp.TableAlias) and alias.columns:
            declared = [str(c.name).lower() for c in alias.columns]
        for key, value in cte.args.items():
            if key not in ("this", "alias", "materialized", "scalar") and value:
                run.unknown(_first(value, cte))
        body = cte.this
        if isinstance(body, WRITE_NODES):
            statements.write(run, body, scope)
            scope.ctes[name] = Rel(name, None)
            continue
        if recursive:
            _self_reference(run, body, name)
            scope.ctes[name] = Rel(name, tuple(declared) if declared else None)
            resources.recursive_cte(run, cte, body, name, scope.ctes[name])
            if isinstance(body, SETOPS):
                run.anchor = body  # the anchor of a recursive CTE may select constants
        rel = run.query(body, scope) if isinstance(body, exp.Expr) else None
        if rel is None:
            rel = Rel(name, None)
        if declared is not None:
            rel = rel.renamed(declared)
            if rel.cols is None and not rel.marked:
                rel = Rel(name, tuple(declared), query=rel.query)
        if recursive:
            rel = Rel(name, rel.cols, rel.marked)
        scope.ctes[name] = rel.named(name)


def _self_reference(run: Run, body: exp.Expr, name: str) -> None:
    """A ``WITH RECURSIVE`` CTE may name itself only in the recursive term of a
    ``UNION [ALL]``. Anywhere else the engines disagree on what the name is: PostgreSQL,
    MySQL and SQLite refuse the statement, DuckDB reads the real table of that name
    (``WITH RECURSIVE users AS (SELECT * FROM users)`` returned every row and column),
    while the walk would have read the CTE."""
    allowed: exp.Expr | None = None
    if isinstance(body, exp.Union):
        allowed = body.expression
    for table in body.find_all(exp.Table):
        if table.args.get("db") is not None or not isinstance(table.this, exp.Identifier):
            continue
        if table.name.lower() != name:
            continue
        node: exp.Expr | None = table
        inside = False
        while node is not None and node is not body:
            if node is allowed:
                inside = True
                break
            node = node.parent
        if not inside:
            run.flag(
                C.UNKNOWN_TABLE,
                f"the recursive CTE {name!r} names itself outside the recursive term of a "
                "UNION; engines disagree on whether that is the CTE or the table",
                table,
            )
            return


def _width_of(run: Run, node: exp.Expr, scope: Scope) -> int | None:
    """Walk a query; the number of columns it selects, when known."""
    run.width = None
    run.query(node, scope)
    return run.width


def nested(run: Run, node: exp.Expr, scope: Scope) -> bool:
    """A query used as a value (``IN (SELECT ...)``, a scalar subquery, ``EXISTS``)."""
    width = _width_of(run, node, scope)
    parent = node.parent
    if width is None or isinstance(parent, (exp.Exists, exp.Array, exp.Lateral, *SETOPS)):
        return True
    expected = 1
    if isinstance(parent, exp.In) and isinstance(parent.this, exp.Tuple):
        expected = len(parent.this.expressions)
    if width != expected:
        run.flag(
            C.SUSPICIOUS_EXPRESSION,
            f"a subquery used as a value selects {width} columns (expected {expected})",
            node,
        )
    return True


QUERIES: dict[type[exp.Expr], QueryHandler] = {
    exp.Select: select,
    exp.Union: setop,
    exp.Intersect: setop,
    exp.Except: setop,
    exp.Subquery: subquery,
    exp.Values: values,
    exp.Expr: fallback,
}
RULES = dict.fromkeys(QUERY_ROOTS, nested)
