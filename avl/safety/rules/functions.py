"""Why a function is allowed or refused: the one place to look.

Every function call resolves to a function avl knows, or it is refused:

1. A call written with a name (``upper(x)``, ``pg_sleep(1)``) is judged by the name as
   written, lower-cased: it is allowed when the dialect's allow-list
   (``avl/safety/allowlists/<dialect>.py``) or the policy's ``allowed_functions`` /
   ``user_functions`` names it. In the other sqlglot dialects a call that sqlglot parsed
   into one of the typed classes of ``allowlists/typed.py`` is allowed too.
2. Function-like syntax without a name of its own (``CAST``, ``CASE``, ``EXTRACT``,
   ``SUBSTRING(x FROM 1)``, ``CURRENT_DATE``) is judged by its sqlglot class against
   ``allowlists/typed.py``.
3. A qualified call (``schema.f(x)``) runs whatever that schema holds: it is allowed only
   when the policy names it in ``allowed_functions`` or ``user_functions``.
4. Anything else is refused: ``function_denied`` (or ``system_catalog``) with the reason
   from ``allowlists/never.py`` when it is on the never-list, ``function_not_allowed``
   otherwise. The policy's ``denied_functions`` always win.

A function used as a table (``FROM f(...)``) is judged by the table-function list of the
same files (``table_function_not_allowed``); casts to types the checker does not know
(``x::mood``, ``'users'::regclass``) are ``type_not_allowed`` / ``system_catalog``.
Size arguments of allowed functions are bounded in ``rules/resources.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from avl._lazy import LazyPattern, lazy_module
from avl.safety._verdict import ViolationCode

if TYPE_CHECKING:
    from avl.safety._walk import Run, Scope
    from avl.safety.rules import resources
else:  # imported when a size rule is first looked up
    resources = lazy_module("avl.safety.rules.resources", __name__)

__all__ = ["call_name", "data_type", "function", "object_identifier", "table_function"]

C = ViolationCode

_NAME = LazyPattern(r'^[`"\[]?([A-Za-z_][A-Za-z0-9_$]*)[`"\]]?$')
# PostgreSQL built-in types that sqlglot reads as user-defined ones
_KNOWN_TYPES = frozenset({"tsvector", "tsquery", "regconfig", "citext", "ltree", "hstore"})


def call_name(run: Run, node: exp.Expr) -> tuple[str, bool] | None:
    """The function name as written in the SQL (lower case) and whether it was quoted.

    None when the call has no name of its own (syntax such as ``CAST``) or sqlglot did
    not keep where the name was.
    """
    meta = getattr(node, "_meta", None)
    if meta:
        start, end = meta.get("start"), meta.get("end")
        if isinstance(start, int) and isinstance(end, int):
            text = run.sql[start : end + 1]
            match = _NAME.match(text)
            if match is not None:
                word = match.group(1)
                quoted = text[0] in '`"['
                if quoted and run.c.case_sensitive_quotes and word != word.lower():
                    return (word, True)
                return (word.lower(), quoted)
    if type(node) is exp.Anonymous:
        return (str(node.name).lower(), False)
    return None


def _label(node: exp.Expr) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name)
    return str(node.sql_name()).lower() if hasattr(node, "sql_name") else type(node).__name__


def _refuse(run: Run, node: exp.Expr, name: str, table: bool) -> None:
    catalog = run.c.functions
    why = catalog.refusal(name)
    where = "as a table " if table else ""
    if why is not None:
        code = C.SYSTEM_CATALOG if why.catalog else C.FUNCTION_DENIED
        run.flag(code, f"function {name}() {where}is refused: it {why.reason}", node)
    elif table:
        run.flag(
            C.TABLE_FUNCTION_NOT_ALLOWED,
            f"{name}() is not a table function SafeQuery allows in {run.p.dialect} "
            "(widen the policy with allowed_functions)",
            node,
        )
    else:
        run.flag(
            C.FUNCTION_NOT_ALLOWED,
            f"function {name}() is not on the {run.p.dialect} allow-list "
            "(widen the policy with allowed_functions or user_functions)",
            node,
        )


def _qualified(run: Run, node: exp.Expr, parent: exp.Dot) -> bool:
    """A call written ``qualifier.f(...)``: True when allowed (reported otherwise)."""
    qualifier = parent.this
    base = call_name(run, node)
    name = base[0] if base is not None else _label(node).lower()
    if isinstance(qualifier, (exp.Column, exp.Identifier, exp.Dot, exp.Var)):
        qual = qualifier.sql(run.c.dialect).lower().replace('"', "").replace("`", "")
    else:
        run.flag(
            C.FUNCTION_NOT_ALLOWED,
            f"{name}() called as a method of a value is not allowed; call it as {name}(...)",
            node,
        )
        return False
    full = f"{qual}.{name}"
    catalog = run.c.functions
    if full in catalog.names or full in run.c.user_functions:
        return True
    if run.p.dialect == "bigquery" and qual == "safe":
        return _named(run, node, (name, False))
    why = catalog.refusal(name) or catalog.refusal(full)
    if why is not None:
        code = C.SYSTEM_CATALOG if why.catalog else C.FUNCTION_DENIED
        run.flag(code, f"function {full}() is refused: it {why.reason}", node)
    else:
        run.flag(
            C.FUNCTION_NOT_ALLOWED,
            f"function {full}() is a qualified call of something SafeQuery does not know "
            "(name it in allowed_functions or user_functions to allow it)",
            node,
        )
    return False


def _named(run: Run, node: exp.Expr, name: tuple[str, bool] | None) -> bool:
    """Decide a call; True when allowed (reported otherwise)."""
    catalog = run.c.functions
    if name is not None:
        word = name[0]
        if word in catalog.names or word in run.c.user_functions:
            return True
        if word in run.c.denied_functions:
            _refuse(run, node, word, False)
            return False
        if not catalog.by_name and type(node) in catalog.classes:
            return True
        _refuse(run, node, word, False)
        return False
    if type(node) in catalog.classes:
        return True
    _refuse(run, node, _label(node).lower(), False)
    return False


def function(run: Run, node: exp.Expr, scope: Scope) -> bool:
    """Rule for every sqlglot function class in an expression."""
    parent = node.parent
    cls = type(node)
    meta = node._meta
    if meta and type(parent) is not exp.Dot:
        # the common case, a plain call of an allowed name: decided here
        start, end = meta.get("start"), meta.get("end")
        if type(start) is int and type(end) is int:
            text = run.sql[start : end + 1]
            if text.isidentifier():
                word = text.lower()
                hooks = run.c.allowed_hooks
                if word in hooks:
                    size = hooks[word] or resources.CLASS_HOOKS.get(cls)
                    if size is not None:
                        size(run, node, word)
                    return False
    if type(parent) is exp.Dot and parent.expression is node:
        if not _qualified(run, node, parent):
            return False
        name = None
    else:
        name = call_name(run, node)
        if name is None and cls in run.c.functions.classes:
            hook = resources.CLASS_HOOKS.get(cls)
            if hook is not None:
                hook(run, node, _label(node).lower())
            return False  # the common, nameless syntax (AND, CASE, CAST...)
        if not _named(run, node, name):
            return False
    hook = resources.SIZE_HOOKS.get(name[0]) if name is not None else None
    if hook is None:
        hook = resources.CLASS_HOOKS.get(cls)
    if hook is not None:
        hook(run, node, name[0] if name is not None else _label(node).lower())
    return False


def table_function(run: Run, node: exp.Expr, scope: Scope) -> bool:
    """A function in a relation position (``FROM f(...)``): True when allowed."""
    catalog = run.c.functions
    name = call_name(run, node)
    word = name[0] if name is not None else _label(node).lower()
    if word in run.c.denied_functions:
        _refuse(run, node, word, True)
        return False
    allowed = (
        word in catalog.table_names
        or word in run.c.user_functions
        or (
            (name is None or not catalog.by_name)
            and type(node) in catalog.table_classes
            and type(node) is not exp.Anonymous
        )
    )
    if not allowed:
        _refuse(run, node, word, True)
        return False
    hook = resources.SIZE_HOOKS.get(word) or resources.CLASS_HOOKS.get(type(node))
    if hook is not None:
        hook(run, node, word)
    return True


def object_identifier(run: Run, node: exp.Expr, scope: Scope) -> bool:
    """``'users'::regclass``, ``x::oid``: object-identifier types read the catalogue."""
    run.flag(
        C.SYSTEM_CATALOG,
        f"a cast to {str(node.this).lower()} looks names up in the system catalogue",
        node,
    )
    return True


def data_type(run: Run, node: exp.Expr, scope: Scope) -> bool:
    """Casts and column definitions: user-defined types are refused (fail closed)."""
    kind = node.this
    if kind is exp.DataType.Type.USERDEFINED:
        spelled = node.args.get("kind")
        name = spelled.sql(run.c.dialect).lower() if isinstance(spelled, exp.Expr) else ""
        if name not in _KNOWN_TYPES:
            run.flag(
                C.TYPE_NOT_ALLOWED,
                f"type {name or '?'} is not a built-in type SafeQuery knows "
                "(a cast to it runs that type's input function)",
                node,
            )
        return True
    if kind in _REFUSED_TYPES:
        run.flag(C.TYPE_NOT_ALLOWED, f"type {kind.value.lower()} is not allowed", node)
        return True
    return False


_REFUSED_TYPES = frozenset(
    t
    for name in ("AGGREGATEFUNCTION", "SIMPLEAGGREGATEFUNCTION", "UNKNOWN")
    if (t := getattr(exp.DataType.Type, name, None)) is not None
)


def _function_classes() -> frozenset[type[exp.Expr]]:
    seen: set[type[exp.Expr]] = set()
    stack: list[type[exp.Expr]] = [exp.Func]
    while stack:
        cls = stack.pop()
        for sub in cls.__subclasses__():
            if sub not in seen:
                seen.add(sub)
                stack.append(sub)
    return frozenset(seen)


FUNCTION_CLASSES = _function_classes()

RULES = {
    **dict.fromkeys(FUNCTION_CLASSES, function),
    exp.ObjectIdentifier: object_identifier,
    exp.DataType: data_type,
}
