"""Statement rules: which kinds of statement may run, and the clauses that write or lock.

``statement_kind`` (anything but the policy's kinds), ``data_modifying_cte`` (a write
inside a query), ``into`` (``SELECT ... INTO`` a table, variable or file),
``locking_clause`` (``FOR UPDATE``/``FOR SHARE``...), ``comment_hidden_code`` for optimizer
hints, system variables (``@@version``) and ``variable_assignment`` (``@a := ...``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from avl.safety._verdict import StatementKind, ViolationCode
from avl.safety._walk import Scope
from avl.safety.rules._util import WRITE_NODES

if TYPE_CHECKING:
    from avl.safety._walk import Run

__all__ = ["hint", "into", "locking", "statement", "write"]

C = ViolationCode

KIND_BY_CLASS: dict[type[exp.Expr], StatementKind] = {
    exp.Select: StatementKind.SELECT,
    exp.Union: StatementKind.SELECT,
    exp.Intersect: StatementKind.SELECT,
    exp.Except: StatementKind.SELECT,
    exp.Subquery: StatementKind.SELECT,
    exp.Insert: StatementKind.INSERT,
    exp.Update: StatementKind.UPDATE,
    exp.Delete: StatementKind.DELETE,
    exp.Merge: StatementKind.MERGE,
    exp.Create: StatementKind.CREATE,
    exp.Drop: StatementKind.DROP,
    exp.Alter: StatementKind.ALTER,
    exp.TruncateTable: StatementKind.TRUNCATE,
    exp.Copy: StatementKind.COPY,
    exp.Set: StatementKind.SET,
    exp.Pragma: StatementKind.PRAGMA,
    exp.Attach: StatementKind.ATTACH,
    exp.Detach: StatementKind.ATTACH,
    exp.Transaction: StatementKind.TRANSACTION,
    exp.Commit: StatementKind.TRANSACTION,
    exp.Rollback: StatementKind.TRANSACTION,
    exp.Grant: StatementKind.GRANT,
    exp.Revoke: StatementKind.GRANT,
    exp.Describe: StatementKind.DESCRIBE,
    exp.Use: StatementKind.USE,
    exp.Command: StatementKind.COMMAND,
}


def statement(run: Run, tree: exp.Expr) -> None:
    """Check one statement's kind, then walk it."""
    kind = KIND_BY_CLASS.get(type(tree), StatementKind.OTHER)
    if kind not in run.p.allowed_kinds:
        what = tree.name.upper() if isinstance(tree, exp.Command) else kind.value.upper()
        run.flag(
            C.STATEMENT_KIND,
            f"{what} statements are not allowed (allowed: "
            f"{', '.join(sorted(k.value for k in run.p.allowed_kinds))})",
            tree,
        )
        return
    if kind is StatementKind.SELECT:
        run.query(tree, None)
        return
    # a kind the policy explicitly allows (INSERT, UPDATE, DELETE...): the root is
    # accepted, everything under it is walked like any expression
    scope = Scope(None)
    run.expr(list(tree.iter_expressions()), scope)


def locking(run: Run, node: exp.Expr) -> None:
    """``FOR UPDATE`` / ``FOR SHARE`` (the one place this rule is written)."""
    run.flag(C.LOCKING_CLAUSE, "locking clauses (FOR UPDATE/SHARE) are not allowed", node)


def into(run: Run, node: exp.Expr) -> None:
    """``SELECT ... INTO`` a table, variable or file."""
    run.flag(C.INTO, "SELECT ... INTO writes a table, variable or file", node)


def hint(run: Run, node: exp.Expr) -> None:
    """Optimizer hints (``/*+ ... */``) change what the server does."""
    run.flag(C.COMMENT_HIDDEN_CODE, "optimizer hints are not allowed", node)


def write(run: Run, node: exp.Expr, scope: Scope | None) -> None:
    """A write or DDL node inside a query."""
    run.flag(
        C.DATA_MODIFYING_CTE,
        f"a {type(node).__name__.upper()} inside a query changes data",
        node,
    )


def _lock(run: Run, node: exp.Expr, scope: Scope) -> bool:
    locking(run, node)
    return True


def _into(run: Run, node: exp.Expr, scope: Scope) -> bool:
    into(run, node)
    return True


def _hint(run: Run, node: exp.Expr, scope: Scope) -> bool:
    hint(run, node)
    return True


def _write(run: Run, node: exp.Expr, scope: Scope) -> bool:
    write(run, node, scope)
    return True


def _variable(run: Run, node: exp.Expr, scope: Scope) -> bool:
    if isinstance(node, exp.Parameter) and run.p.dialect not in ("mysql", "tsql"):
        return False
    run.flag(C.SYSTEM_CATALOG, f"system variable {run.text(node, 200)} is not allowed", node)
    return True


def _assignment(run: Run, node: exp.Expr, scope: Scope) -> bool:
    if isinstance(node.this, (exp.Parameter, exp.SessionParameter)):
        run.flag(C.VARIABLE_ASSIGNMENT, "assignments (:=) are not allowed", node)
    return False


RULES = {
    exp.Lock: _lock,
    exp.Into: _into,
    exp.Hint: _hint,
    exp.SessionParameter: _variable,
    exp.Parameter: _variable,
    exp.PropertyEQ: _assignment,
    **dict.fromkeys(WRITE_NODES, _write),
}
