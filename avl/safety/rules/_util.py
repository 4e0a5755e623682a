"""Pure helpers the rule modules share: constant tests and folding, node-class groups."""

from __future__ import annotations

from sqlglot import exp

__all__ = [
    "ARITH",
    "BOOLEANS",
    "COMPARISONS",
    "CONST_LEAVES",
    "DIVISIONS",
    "QUERY_ROOTS",
    "REFLEXIVE",
    "SETOPS",
    "WRITE_NODES",
    "const_eval",
    "has_string",
    "is_constant",
    "is_string",
    "number",
    "numeric_string",
    "trivially_true",
]

QUERY_ROOTS = (exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Subquery)
SETOPS = (exp.Union, exp.Intersect, exp.Except)
WRITE_NODES = (
    exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Drop, exp.Alter,
    exp.TruncateTable, exp.Copy, exp.Set, exp.Pragma, exp.Attach, exp.Detach, exp.Command,
    exp.Grant, exp.Revoke, exp.Transaction, exp.Commit, exp.Rollback, exp.Use,
)  # fmt: skip
CONST_LEAVES = (exp.Literal, exp.Null, exp.Boolean, exp.HexString, exp.BitString, exp.ByteString)
COMPARISONS = frozenset(
    {exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ, exp.Like,
     exp.ILike, exp.RegexpLike, exp.RegexpILike, exp.Is, exp.In, exp.Between, exp.Glob, exp.SimilarTo}
)  # fmt: skip
ARITH = frozenset(
    {exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.IntDiv, exp.Pow, exp.BitwiseAnd, exp.BitwiseOr,
     exp.BitwiseXor, exp.BitwiseLeftShift, exp.BitwiseRightShift}
)  # fmt: skip
DIVISIONS = frozenset({exp.Div, exp.Mod, exp.IntDiv})
REFLEXIVE = frozenset({exp.EQ, exp.GTE, exp.LTE, exp.NullSafeEQ, exp.Like, exp.ILike})
BOOLEANS = frozenset({exp.And, exp.Or, exp.Xor})

_NOT_CONSTANT = (exp.Column, exp.Placeholder, exp.Parameter, exp.Star, exp.Table)
_NOT_CONSTANT_CLASSES = frozenset(_NOT_CONSTANT)
_VOLATILE = frozenset({exp.Rand})


def is_constant(node: exp.Expr) -> bool:
    """Whether an expression depends on no row: no column, parameter or table read.

    A subquery without FROM (``EXISTS (SELECT 1)``, ``(SELECT 1) = 1``) is constant.
    """
    if isinstance(node, CONST_LEAVES):
        return True
    if isinstance(node, _NOT_CONSTANT):
        return False
    args = node.args
    if type(args.get("this")) is exp.Column or type(args.get("expression")) is exp.Column:
        return False
    stack = [node]
    while stack:
        sub = stack.pop()
        cls = type(sub)
        if cls in _NOT_CONSTANT_CLASSES or cls in _VOLATILE:
            return False
        if cls is exp.Select and (sub.args.get("from_") is not None or sub.args.get("joins")):
            return False
        stack.extend(sub.iter_expressions())
    return True


def has_string(node: exp.Expr) -> bool:
    """Whether a constant condition compares strings (``'a'='a'``, never an idiom)."""
    return any(isinstance(n, exp.Literal) and n.is_string for n in node.walk())


def numeric_string(node: object) -> bool:
    """A string literal that spells a number (``'1'``)."""
    if not (isinstance(node, exp.Literal) and node.is_string):
        return False
    try:
        float(str(node.this))
    except ValueError:
        return False
    return True


def is_string(node: exp.Expr) -> bool:
    """A string literal."""
    return isinstance(node, exp.Literal) and node.is_string


def const_eval(node: exp.Expr) -> bool | None:
    """The truth value of a simple constant condition, or None when unsure."""
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, exp.Literal) and not node.is_string:
        value = number(node)
        return None if value is None else value != 0
    if isinstance(node, exp.Not):
        inner = const_eval(node.this)
        return None if inner is None else not inner
    if not isinstance(node, (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)):
        return None
    left, right = node.args.get("this"), node.args.get("expression")
    if not (isinstance(left, exp.Literal) and isinstance(right, exp.Literal)):
        return None
    a: float | str
    b: float | str
    if left.is_string and right.is_string:
        a, b = str(left.this), str(right.this)
    elif left.is_string or right.is_string:
        return None
    else:
        na, nb = number(left), number(right)
        if na is None or nb is None:
            return None
        a, b = na, nb
    return _compare(type(node), a, b)


def _compare(op: type[exp.Expr], a: float | str, b: float | str) -> bool:
    if op is exp.EQ:
        return a == b
    if op is exp.NEQ:
        return a != b
    if isinstance(a, str) != isinstance(b, str):
        return False
    if op is exp.GT:
        return a > b  # type: ignore[operator]  # same type, checked above
    if op is exp.GTE:
        return a >= b  # type: ignore[operator]
    if op is exp.LT:
        return a < b  # type: ignore[operator]
    return a <= b  # type: ignore[operator]


def trivially_true(node: exp.Expr) -> bool:
    """``TRUE``, ``1`` or ``1 = 1``: the query-builder idiom ``WHERE 1=1 AND ...``."""
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, exp.Literal) and not node.is_string:
        return bool(node.this == "1")
    if isinstance(node, exp.EQ):
        left, right = node.this, node.expression
        return (
            isinstance(left, exp.Literal)
            and isinstance(right, exp.Literal)
            and not left.is_string
            and not right.is_string
            and left.this == "1"
            and right.this == "1"
        )
    return False


def number(node: exp.Expr | None, *, subqueries: bool = True) -> float | None:
    """Fold a constant numeric expression (``1e9``, ``1000 * 1000``, ``(SELECT 5)``, ``-3``).

    Returns None when the expression is not a foldable number (or, without
    ``subqueries``, holds a scalar subquery); ``inf`` on overflow.
    """
    negative = False
    while True:
        if isinstance(node, exp.Neg):
            negative = not negative
            node = node.this
        elif isinstance(node, exp.Paren):
            node = node.this
        elif subqueries and isinstance(node, exp.Subquery) and isinstance(node.this, exp.Select):
            select = node.this
            if select.args.get("from_") is not None or len(select.expressions) != 1:
                return None
            node = select.expressions[0]
            if isinstance(node, exp.Alias):
                node = node.this
        elif isinstance(node, (exp.Cast, exp.TryCast)) and isinstance(node.this, exp.Literal):
            node = node.this
            if isinstance(node, exp.Literal) and node.is_string:
                try:
                    value = float(str(node.this))
                except ValueError:
                    return None
                return -value if negative else value
        else:
            break
    if isinstance(node, exp.Literal) and not node.is_string:
        try:
            value = float(node.this)
        except ValueError:
            return None
        return -value if negative else value
    if isinstance(node, (exp.Mul, exp.Pow, exp.Div, exp.Add, exp.Sub)):
        a = number(node.this, subqueries=subqueries)
        b = number(node.expression, subqueries=subqueries)
        if a is None or b is None:
            return None
        try:
            if isinstance(node, exp.Mul):
                out = a * b
            elif isinstance(node, exp.Div):
                if not b:
                    return None
                out = a / b
            elif isinstance(node, exp.Add):
                out = a + b
            elif isinstance(node, exp.Sub):
                out = a - b
            else:
                out = float(a**b) if abs(b) < 400 else float("inf")
        except (OverflowError, ZeroDivisionError):
            out = float("inf")
        return -out if negative else out
    return None
