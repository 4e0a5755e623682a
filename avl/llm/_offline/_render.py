"""The one renderer: an :class:`Intent` and its join plan as a sqlglot tree, written in
the database's dialect (pure).

Identifiers are quoted only when they must be (not a plain identifier, a reserved
word, or, on PostgreSQL, not lower case), and then with the dialect's own quotes:
backticks on MySQL and MariaDB, double quotes elsewhere.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

import sqlglot
from sqlglot import expressions as exp
from sqlglot.dialects.dialect import Dialect

from avl.llm._offline._intent import Col, Cond, Having, Intent, Item, Subquery
from avl.llm._offline._joins import JoinPlan, plan_joins
from avl.llm._offline._schema import SchemaIndex

__all__ = ["needs_quotes", "render", "to_identifier"]

#: Words reserved in at least one supported dialect (or in standard SQL): quoted
#: wherever they name a table or column.
_RESERVED = frozenset(
    [
        "add",
        "all",
        "alter",
        "analyze",
        "and",
        "any",
        "array",
        "as",
        "asc",
        "asymmetric",
        "authorization",
        "between",
        "binary",
        "both",
        "by",
        "call",
        "case",
        "cast",
        "check",
        "collate",
        "column",
        "constraint",
        "create",
        "cross",
        "current",
        "current_date",
        "current_role",
        "current_time",
        "current_timestamp",
        "current_user",
        "database",
        "databases",
        "default",
        "deferrable",
        "delete",
        "desc",
        "describe",
        "distinct",
        "div",
        "do",
        "drop",
        "dual",
        "else",
        "end",
        "except",
        "exists",
        "false",
        "fetch",
        "for",
        "foreign",
        "freeze",
        "from",
        "full",
        "function",
        "glob",
        "grant",
        "group",
        "having",
        "if",
        "ilike",
        "in",
        "index",
        "initially",
        "inner",
        "insert",
        "intersect",
        "interval",
        "into",
        "is",
        "isnull",
        "join",
        "key",
        "keys",
        "kill",
        "lateral",
        "leading",
        "left",
        "like",
        "limit",
        "localtime",
        "localtimestamp",
        "match",
        "natural",
        "not",
        "notnull",
        "null",
        "offset",
        "on",
        "only",
        "option",
        "or",
        "order",
        "outer",
        "over",
        "overlaps",
        "partition",
        "placing",
        "primary",
        "range",
        "read",
        "recursive",
        "references",
        "regexp",
        "release",
        "rename",
        "replace",
        "returning",
        "right",
        "rlike",
        "row",
        "rows",
        "schema",
        "select",
        "session_user",
        "set",
        "show",
        "similar",
        "some",
        "table",
        "tablesample",
        "then",
        "to",
        "trailing",
        "trigger",
        "true",
        "union",
        "unique",
        "update",
        "usage",
        "use",
        "user",
        "using",
        "values",
        "variadic",
        "verbose",
        "when",
        "where",
        "window",
        "with",
    ]
)

_AGG = {"COUNT": exp.Count, "SUM": exp.Sum, "AVG": exp.Avg, "MIN": exp.Min, "MAX": exp.Max}


@functools.lru_cache(maxsize=32)
def _dialect_reserved(dialect: str) -> frozenset[str]:
    """The words ``dialect``'s generator quotes itself (memoised: a pure lookup)."""
    try:
        return frozenset(Dialect.get_or_raise(dialect).generator_class.RESERVED_KEYWORDS)
    except (ValueError, AttributeError):
        return frozenset()


def null_ordering(dialect: str) -> str:
    """Where ``dialect`` puts NULLs by default (sqlglot's ``NULL_ORDERING``)."""
    try:
        return str(Dialect.get_or_raise(dialect).NULL_ORDERING)
    except (ValueError, AttributeError):
        return "nulls_are_small"


def needs_quotes(name: str, dialect: str) -> bool:
    """Whether ``name`` must be quoted to name a table or column in ``dialect``."""
    if not name or not (name[0].isalpha() or name[0] == "_"):
        return True
    if not all(ch.isalnum() or ch == "_" for ch in name) or not name.isascii():
        return True
    low = name.lower()
    if low in _RESERVED or low in _dialect_reserved(dialect):
        return True
    return dialect in ("postgres", "postgresql", "redshift") and name != low


def to_identifier(name: str, dialect: str) -> exp.Identifier:
    """An identifier node for ``name``, quoted when ``dialect`` needs it."""
    return exp.Identifier(this=name, quoted=needs_quotes(name, dialect))


class _Scope:
    """Aliases of the tables of one SELECT."""

    def __init__(self, plan: JoinPlan, dialect: str) -> None:
        self.plan = plan
        self.dialect = dialect
        tables = plan.tables
        self.alias = {t: f"T{i + 1}" for i, t in enumerate(tables)} if len(tables) > 1 else {}

    def col(self, c: Col) -> exp.Expr:
        if c.column == "*":
            return exp.Star()
        ident = to_identifier(c.column, self.dialect)
        alias = self.alias.get(c.table)
        if alias:
            return exp.Column(this=ident, table=exp.Identifier(this=alias, quoted=False))
        return exp.Column(this=ident)

    def table(self, name: str) -> exp.Table:
        t = exp.Table(this=to_identifier(name, self.dialect))
        alias = self.alias.get(name)
        if alias:
            t.set("alias", exp.TableAlias(this=exp.Identifier(this=alias, quoted=False)))
        return t


def _item(scope: _Scope, it: Item) -> exp.Expr:
    if it.agg is None:
        assert it.col is not None
        return scope.col(it.col)
    fn = _AGG[it.agg]
    if it.col is None:
        return exp.Count(this=exp.Star())
    arg = scope.col(it.col)
    if it.distinct:
        arg = exp.Distinct(expressions=[arg])
    node: exp.Expr = fn(this=arg)
    return node


def _literal(value: object) -> exp.Expr:
    if isinstance(value, bool):
        return exp.Literal.number(int(value))
    if isinstance(value, (int, float)):
        v = int(value) if float(value).is_integer() else value
        return exp.Literal.number(v)
    return exp.Literal.string(str(value))


def _subquery(schema: SchemaIndex, sub: Subquery, dialect: str) -> exp.Select:
    inner = Intent(subject=sub.inner.table)
    inner.select = [Item(col=sub.inner, agg=sub.agg)]
    inner.where = list(sub.where)
    inner.group = list(sub.group)
    inner.having = list(sub.having)
    return _select(schema, inner, dialect)


def _cond(schema: SchemaIndex, scope: _Scope, c: Cond) -> exp.Expr:
    left = scope.col(c.col)
    v = c.value
    if isinstance(v, Subquery):
        q = _subquery(schema, v, scope.dialect)
        if c.op in ("IN", "NOT IN"):
            node: exp.Expr = exp.In(this=left, query=exp.Subquery(this=q))
            return exp.Not(this=node) if c.op == "NOT IN" else node
        right: exp.Expr = exp.Subquery(this=q)
    elif c.op == "BETWEEN":
        assert isinstance(v, tuple)
        return exp.Between(this=left, low=_literal(v[0]), high=_literal(v[1]))
    else:
        right = _literal(v)
    if c.op == "LIKE":
        return exp.Like(this=left, expression=right)
    if c.op == "NOT LIKE":
        return exp.Not(this=exp.Like(this=left, expression=right))
    return _compare(c.op, left, right)


def _compare(op: str, left: exp.Expr, right: exp.Expr) -> exp.Expr:
    ops: dict[str, type[exp.Binary]] = {
        "=": exp.EQ,
        "!=": exp.NEQ,
        ">": exp.GT,
        "<": exp.LT,
        ">=": exp.GTE,
        "<=": exp.LTE,
    }
    node: exp.Expr = ops[op](this=left, expression=right)
    return node


def _where(schema: SchemaIndex, scope: _Scope, conds: Iterable[Cond]) -> exp.Expr | None:
    # equalities on one column can only mean "any of": OR them
    groups: dict[tuple[str, str], list[Cond]] = {}
    order: list[tuple[str, str]] = []
    for i, c in enumerate(conds):
        if c.either:
            key0 = (f"|{c.either}", "")
            if key0 not in groups:
                groups[key0] = []
                order.append(key0)
            groups[key0].append(c)
        elif c.op == "=" and not isinstance(c.value, Subquery):
            key = (c.col.table, c.col.column)
            if key not in groups:
                groups[key] = []
                order.append(key)
            groups[key].append(c)
        else:
            groups[(f"#{i}", "")] = [c]
            order.append((f"#{i}", ""))
    parts: list[exp.Expr] = []
    for key in order:
        cs = groups[key]
        nodes = [_cond(schema, scope, c) for c in cs]
        if len(nodes) == 1:
            parts.append(nodes[0])
        else:
            parts.append(exp.Paren(this=exp.or_(*nodes)))
    if not parts:
        return None
    joined: exp.Expr = exp.and_(*parts) if len(parts) > 1 else parts[0]
    return joined


def _having(scope: _Scope, h: Having) -> exp.Expr:
    left = _item(scope, Item(col=h.col, agg=h.agg))
    return _compare(h.op, left, _literal(h.value))


def _select(schema: SchemaIndex, intent: Intent, dialect: str) -> exp.Select:
    plan = plan_joins(schema, intent.subject, intent.tables())
    scope = _Scope(plan, dialect)
    reached = set(plan.tables)
    items = [it for it in intent.select if it.tables <= reached] or [Item(agg="COUNT")]
    q = exp.Select(expressions=[_item(scope, it) for it in items])
    if intent.distinct:
        q.set("distinct", exp.Distinct())
    q.set("from_", exp.From(this=scope.table(plan.first)))
    for step in plan.steps:
        on_parts = [
            exp.EQ(this=scope.col(Col(src, a)), expression=scope.col(Col(step.table, b)))
            for a, src, b in step.on
        ]
        on = exp.and_(*on_parts) if len(on_parts) > 1 else on_parts[0]
        q.append("joins", exp.Join(this=scope.table(step.table), on=on))
    where = _where(schema, scope, [c for c in intent.where if c.col.table in reached])
    if where is not None:
        q.set("where", exp.Where(this=where))
    group = [g for g in intent.group if g.table in reached]
    if group:
        q.set("group", exp.Group(expressions=[scope.col(g) for g in group]))
    having = [h for h in intent.having if h.col is None or h.col.table in reached]
    if having:
        hs = [_having(scope, h) for h in having]
        q.set("having", exp.Having(this=exp.and_(*hs) if len(hs) > 1 else hs[0]))
    orders = [o for o in intent.order if o.item.tables <= reached]
    if orders:
        nulls = null_ordering(dialect)
        q.set(
            "order",
            exp.Order(
                expressions=[
                    exp.Ordered(
                        this=_item(scope, o.item),
                        desc=o.desc,
                        # the dialect's own NULL placement: no NULLS FIRST/LAST clause
                        nulls_first=(nulls == "nulls_are_small") != o.desc
                        if nulls != "nulls_are_last"
                        else False,
                    )
                    for o in orders
                ]
            ),
        )
    if intent.limit is not None:
        q.set("limit", exp.Limit(expression=exp.Literal.number(intent.limit)))
    return q


def render(schema: SchemaIndex, intent: Intent, dialect: str = "sqlite") -> str:
    """Write ``intent`` as one SQL statement in ``dialect``.

    Args:
        schema: the schema index (for the join plan).
        intent: what to select, filter, group, order.
        dialect: a sqlglot dialect name.

    Returns:
        The SQL.
    """
    tree: exp.Expr = _select(schema, intent, dialect)
    if intent.setop is not None:
        kind, other = intent.setop
        right = _select(schema, other, dialect)
        cls = {"INTERSECT": exp.Intersect, "UNION": exp.Union, "EXCEPT": exp.Except}[kind]
        tree = cls(this=tree, expression=right, distinct=True)
    try:
        return tree.sql(dialect=dialect)
    except sqlglot.errors.SqlglotError:
        return tree.sql()


def unreached(schema: SchemaIndex, intent: Intent) -> tuple[str, ...]:
    """The tables of ``intent`` no join reaches from its subject."""
    return plan_joins(schema, intent.subject, intent.tables()).unreached
