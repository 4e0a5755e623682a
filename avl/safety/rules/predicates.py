"""Predicate rules: conditions that do not depend on the row, and comparisons of comparisons.

``constant_predicate``: a condition true or false whatever the row (``OR 1=1``,
``'a'='a'``, ``AND 2=2``, ``x = x`` in an OR, a CASE/IF on a constant, XOR as a condition;
``WHERE 1=1 AND ...`` and ``... OR 1=0`` are idioms that change nothing and pass).
``constant_union``: a set-operation branch of constants appended to a query that reads a
table (``UNION SELECT NULL, 2``). ``suspicious_expression``: a comparison whose side is
another comparison (``a = 'x' = ''``) and an empty ``IN ()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from avl.safety._verdict import ViolationCode
from avl.safety.rules._util import (
    BOOLEANS,
    COMPARISONS,
    CONST_LEAVES,
    REFLEXIVE,
    SETOPS,
    const_eval,
    has_string,
    is_constant,
    trivially_true,
)

if TYPE_CHECKING:
    from avl.safety._walk import Handler, Run, Scope

__all__ = [
    "boolean",
    "case",
    "comparison",
    "condition",
    "constant_branch",
    "constants",
    "constants_of",
    "if_",
    "inline_table",
    "mark",
    "operands",
]

C = ViolationCode
_NESTED_SIDES = COMPARISONS | {exp.Paren}


def condition(run: Run, node: exp.Expr, scope: Scope, clause: str) -> None:
    """A WHERE/ON/HAVING/QUALIFY condition: constants, then the expression walk."""
    constants_of(run, node, clause)
    run.expr(node, scope)


def constants_of(run: Run, node: exp.Expr, clause: str) -> None:
    """The constant-condition rule for a whole condition (before it is walked)."""
    if run.p.flag_constant_predicates:
        constants(run, node, clause, top=clause in ("WHERE", "ON"))


def constants(run: Run, node: exp.Expr, clause: str, top: bool, in_or: bool = False) -> None:
    """Flag conditions that do not depend on the row.

    ``WHERE 1=1 AND ...`` (a constant TRUE as the first conjunct, the query-builder
    idiom) and ``... OR 1=0`` (a constant FALSE disjunct) change nothing and pass;
    ``... OR 1=1``, ``... AND 1=0`` and every other constant condition are reported.
    """
    if not in_or and type(node) in COMPARISONS:
        args = node.args
        if type(args.get("this")) is exp.Column or type(args.get("expression")) is exp.Column:
            # the common ``column <op> ...`` outside an OR: depends on the row
            run.row_dependent.add(id(node))
            if run.c.sqlite_strings:
                _quoted_tautology(run, node, clause)
            return
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.And):
        for i, part in enumerate(operands(run, node, exp.And)):
            constants(run, part, clause, top and i == 0)
        return
    if id(node) in run.row_dependent:
        pass  # already found to depend on the row (a condition seen again)
    elif not is_constant(node):
        run.row_dependent.add(id(node))
    else:
        if (top and trivially_true(node)) or (
            in_or and const_eval(node) is False and not has_string(node)
        ):
            mark(run, node)
            return
        run.flag(
            C.CONSTANT_PREDICATE,
            f"constant condition in {clause}: {run.text(node)}",
            node,
        )
        mark(run, node)
        return
    if run.c.sqlite_strings and type(node) in COMPARISONS:
        _quoted_tautology(run, node, clause)
    if in_or and type(node) in REFLEXIVE:
        this, other = node.args.get("this"), node.args.get("expression")
        if type(this) is exp.Column and type(other) is exp.Column and this == other:
            # OR x = x: true on every row where x is set
            run.flag(
                C.CONSTANT_PREDICATE,
                f"{run.text(this)} is compared with itself in an OR",
                node,
            )
            return
    if isinstance(node, exp.Or):
        for part in operands(run, node, exp.Or):
            constants(run, part, clause, False, in_or=True)
    elif isinstance(node, exp.Not):
        constants(run, node.this, clause, False)
    elif isinstance(node, exp.Xor):
        run.flag(C.CONSTANT_PREDICATE, f"XOR in {clause} is not allowed as a condition", node)


def _quoted_tautology(run: Run, node: exp.Expr, clause: str) -> None:
    """SQLite: ``"zz" = 'zz'`` is a tautology when no column is called zz."""
    this, other = node.args.get("this"), node.args.get("expression")
    for a, b in ((this, other), (other, this)):
        if (
            isinstance(a, exp.Column)
            and not a.table
            and isinstance(a.this, exp.Identifier)
            and a.this.args.get("quoted")
            and isinstance(b, exp.Literal)
            and b.is_string
            and str(b.this) == str(a.this.this)
        ):
            run.flag(
                C.CONSTANT_PREDICATE,
                f'in {clause}, "{a.this.this}" compared with the same text is a constant '
                "to SQLite when no column has that name",
                node,
            )
            return


def operands(run: Run, node: exp.Expr, cls: type[exp.Expr]) -> list[exp.Expr]:
    """The operands of a chain of ``cls`` (AND or OR), left to right.

    Every ``cls`` node of the chain is remembered as seen, so the expression walk does
    not judge an inner link again as a condition of its own.
    """
    out: list[exp.Expr] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if type(n) is cls:
            run.bool_seen.add(id(n))
            stack.append(n.args["expression"])
            stack.append(n.this)
        else:
            out.append(n)
    return out


def mark(run: Run, node: exp.Expr) -> None:
    """Remember an already-reported constant condition so it is reported once."""
    for sub in node.walk():
        run.idiom.add(id(sub))
        run.bool_seen.add(id(sub))


def comparison(run: Run, n: exp.Expr, scope: Scope) -> bool:
    """Comparisons: one side a comparison, constants on both sides, an empty ``IN ()``."""
    cls = type(n)
    this, other = n.args.get("this"), n.args.get("expression")
    if type(this) in _NESTED_SIDES or type(other) in _NESTED_SIDES:
        for side, rest in ((this, other), (other, this)):
            inner = side.this if type(side) is exp.Paren else side
            if type(inner) in COMPARISONS and (
                side is inner or (isinstance(rest, exp.Literal) and cls is not exp.In)
            ):
                # a = 'x' = '' (unparenthesised), or (a = 'x') IS 0 / <=> 'B'
                run.flag(
                    C.SUSPICIOUS_EXPRESSION,
                    "a comparison compares the result of another comparison",
                    n,
                )
                return False
    if (
        run.p.flag_constant_predicates
        and id(n) not in run.row_dependent
        and id(n) not in run.idiom
        and isinstance(this, exp.Expr)
        and (isinstance(other, exp.Expr) or cls is exp.In or cls is exp.Between)
        and is_constant(n)
    ):
        if cls is exp.In and not n.expressions and n.args.get("query") is None:
            run.flag(C.SUSPICIOUS_EXPRESSION, "an empty IN () list", n)
            return False
        run.flag(
            C.CONSTANT_PREDICATE,
            f"a comparison of constants: {run.text(n)}",
            n,
        )
    elif (
        cls is exp.In
        and not n.expressions
        and n.args.get("query") is None
        and not n.args.get("unnest")
    ):
        run.flag(C.SUSPICIOUS_EXPRESSION, "an empty IN () list", n)
    return False


def boolean(run: Run, n: exp.Expr, scope: Scope) -> bool:
    """AND/OR/XOR used as a value (not already judged as a condition)."""
    if id(n) not in run.bool_seen and run.p.flag_constant_predicates:
        constants(run, n, "an expression", top=False)
    return False


def case(run: Run, n: exp.Expr, scope: Scope) -> bool:
    """A CASE branch whose condition is a constant."""
    operand = n.args.get("this")
    for when in n.args.get("ifs") or []:
        cond = when.this if isinstance(when, exp.If) else None
        if cond is None:
            continue
        if (operand is None and isinstance(cond, CONST_LEAVES)) or (
            operand is not None and is_constant(operand) and is_constant(cond)
        ):
            run.flag(C.CONSTANT_PREDICATE, "a CASE branch whose condition is a constant", n)
            break
    return False


def if_(run: Run, n: exp.Expr, scope: Scope) -> bool:
    """An IF/IIF whose condition is a constant."""
    if isinstance(n.this, CONST_LEAVES) and not isinstance(n.parent, exp.Case):
        run.flag(C.CONSTANT_PREDICATE, "an IF whose condition is a constant", n)
    return False


def constant_branch(node: exp.Select) -> bool:
    """A SELECT whose every projection is a constant (``SELECT NULL, 2, 'x'``)."""
    projections = node.expressions
    if not projections:
        return False
    for proj in projections:
        if isinstance(proj, exp.Alias):
            proj = proj.this
        if not is_constant(proj):
            return False
    return True


def inline_table(node: exp.Expr) -> bool:
    """Whether a set operation builds a named inline table (a CTE body or a derived
    table) or selects only constants on every side: a list of constants, not a UNION
    appended to a query that reads a table."""
    branches: list[exp.Expr] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, SETOPS):
            stack.extend(x for x in (n.this, n.expression) if isinstance(x, exp.Expr))
        elif isinstance(n, exp.Subquery) and isinstance(n.this, exp.Expr):
            stack.append(n.this)
        else:
            branches.append(n)
    if all(
        isinstance(b, exp.Select) and constant_branch(b) and not b.args.get("from_")
        for b in branches
    ):
        return True
    parent = node.parent
    while isinstance(parent, (*SETOPS, exp.Subquery)):
        if isinstance(parent, exp.Subquery) and isinstance(parent.parent, (exp.From, exp.Join)):
            return True
        parent = parent.parent
    return isinstance(parent, (exp.CTE, exp.From, exp.Join))


RULES: dict[type[exp.Expr], Handler] = {
    **dict.fromkeys(COMPARISONS, comparison),
    **dict.fromkeys(BOOLEANS, boolean),
    exp.Case: case,
    exp.If: if_,
}
