"""SafeQuery's rules, by concern, and the node-class -> handler table built from them.

One module per concern; each exposes ``RULES``, a mapping from sqlglot node classes to
handlers ``(run, node, scope) -> bool`` (True when the handler walked the node's
children itself):

* ``statements.py``: statement kinds, writes, ``INTO``, locking clauses, hints, variables;
* ``queries.py``: SELECT, set operations, subqueries, CTEs (scopes and outputs);
* ``relations.py``: tables, catalogues, table functions, files in ``FROM``;
* ``columns.py``: columns, stars, renames, positional references, ``COLUMNS(...)``;
* ``functions.py``: the function and type allow-lists (why a function was refused);
* ``predicates.py``: constant conditions and tautologies;
* ``shapes.py``: expressions that only injections produce;
* ``resources.py``: sizes, generators, cartesian products, recursion.

:data:`TABLE` merges them once, at import; a class claimed by several modules gets a
handler that runs each (in the order above). Structural classes with nothing to check
map to :func:`plain`. A class in no table is an unknown node and is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from sqlglot import exp

from avl.safety._walk import Handler, QueryHandler, Run, Scope
from avl.safety.rules import (
    columns,
    functions,
    predicates,
    queries,
    relations,
    resources,
    shapes,
    statements,
)
from avl.safety.rules._util import WRITE_NODES

__all__ = ["plain"]


def plain(run: Run, node: exp.Expr, scope: Scope) -> bool:
    """A structural node with nothing to check of its own: walk its children."""
    return False


def _classes(*names: str) -> list[type[exp.Expr]]:
    out = []
    for name in names:
        cls = getattr(exp, name, None)
        if isinstance(cls, type) and issubclass(cls, exp.Expr):
            out.append(cls)
    return out


# Structural and operator nodes the walker knows and that need no rule of their own.
PLAIN = _classes(
    "Subquery", "TableAlias", "From", "Join", "Where", "Group", "Having", "Qualify", "Order",
    "Ordered", "Limit", "Offset", "Fetch", "LimitOptions", "Window", "WindowSpec", "Distinct",
    "Values", "Identifier", "Alias", "Aliases", "Tuple", "Paren", "Bracket", "Pivot",
    "PivotAlias", "Semicolon", "GroupingSets", "Rollup", "Cube", "Filter", "WithinGroup",
    "IgnoreNulls", "RespectNulls", "HavingMax", "Slice", "Lambda", "Kwarg", "ColumnDef",
    "TableSample", "Sample", "Var", "Placeholder", "Null", "Boolean", "BitString",
    "ByteString", "National", "RawString", "UnicodeString", "DataTypeParam", "Interval",
    "IntervalSpan", "Escape", "PseudoType", "Not", "Neg", "BitwiseNot", "DPipe", "JSONPath",
    "JSONPathKey", "JSONPathRoot", "JSONPathSubscript", "JSONPathWildcard",
    "JSONPathSelector", "JSONPathSlice", "JSONPathFilter", "JSONPathUnion",
    "JSONPathRecursive", "JSONPathScript", "Distance", "Operator", "Overlaps", "AtTimeZone",
    "FromTimeZone", "Check", "ConnectBy", "Connect", "Prior", "ScopeResolution", "Adjacent",
    "ExtendsLeft", "ExtendsRight", "UnpivotColumns", "MatchRecognize",
    "MatchRecognizeMeasure", "TimeUnit", "JSONKeyValue", "FormatJson", "JSONColumnDef",
    "JSONSchema", "Changes", "HistoricalData", "Version", "IndexTableHint", "WithTableHint",
    "Tags", "Schema", "Returning", "OnConflict", "Lateral", "Unnest", "TableFromRows",
    "Dot", "Is", "SimilarTo", "Glob", "ILikeAny", "LikeAny", "Any", "All", "Exists",
    "JSONValue",
)  # fmt: skip

_ORDER = (statements, queries, relations, columns, functions, predicates, shapes, resources)


def _compose(handlers: list[Handler]) -> Handler:
    if len(handlers) == 1:
        return handlers[0]
    chain = tuple(handlers)

    def composed(run: Run, node: exp.Expr, scope: Scope) -> bool:
        done = False
        for handler in chain:
            if handler(run, node, scope):
                done = True
        return done

    return composed


def _subclasses(roots: tuple[type[exp.Expr], ...]) -> set[type[exp.Expr]]:
    seen: set[type[exp.Expr]] = set(roots)
    stack = list(roots)
    while stack:
        for sub in stack.pop().__subclasses__():
            if sub not in seen:
                seen.add(sub)
                stack.append(sub)
    return seen


def _build() -> Mapping[type[exp.Expr], Handler]:
    claims: dict[type[exp.Expr], list[Handler]] = {}
    for cls in PLAIN:
        claims[cls] = [plain]
    for module in _ORDER:
        rules: Mapping[type[exp.Expr], Handler] = getattr(module, "RULES", {})
        for cls, handler in rules.items():
            current = claims.get(cls)
            if current is None or current == [plain]:
                claims[cls] = [handler]
            else:
                current.append(handler)
    # a write of any subclass is a write; COLUMNS(...) and #n are columns, not calls
    for cls in _subclasses(WRITE_NODES):
        claims.setdefault(cls, [statements.RULES[exp.Insert]])
    for cls in (exp.Columns, exp.PositionalColumn, exp.Star):
        claims[cls] = [columns.RULES[cls]]
    claims[exp.Anonymous] = [functions.function, shapes.anonymous]
    return MappingProxyType({cls: _compose(hs) for cls, hs in claims.items()})


TABLE: Mapping[type[exp.Expr], Handler] = _build()
# classes with no rule of their own: the walk only visits their children
PLAIN_CLASSES: frozenset[type[exp.Expr]] = frozenset(c for c, h in TABLE.items() if h is plain)
QUERIES: Mapping[type[exp.Expr], QueryHandler] = MappingProxyType(queries.QUERIES)
