"""The rule table's written-down claims (``rules._CLAIMS``) against the table built eagerly.

SafeQuery imports a rule module when a statement first needs it; which modules claim a
class is written down in ``avl/safety/rules/__init__.py``. These tests import every rule
module, build the table the way it was built at import before (every module's ``RULES``
merged in order, then the overrides) and require the lazily built handlers to be the
same, class by class and in the order they run. When sqlglot or a module's ``RULES``
changes, the failure prints the ``_CLAIMS`` to paste.
"""

from __future__ import annotations

import importlib
import textwrap
from collections.abc import Mapping

from sqlglot import exp

from avl.safety import Policy, SafeQuery, rules
from avl.safety._walk import Handler
from avl.safety.rules._util import WRITE_NODES

MODULES = {name: importlib.import_module(f"avl.safety.rules.{name}") for name in rules._ORDER}


def _subclasses(roots: tuple[type[exp.Expr], ...]) -> set[type[exp.Expr]]:
    seen: set[type[exp.Expr]] = set(roots)
    stack = list(roots)
    while stack:
        for sub in stack.pop().__subclasses__():
            if sub not in seen:
                seen.add(sub)
                stack.append(sub)
    return seen


def eager() -> tuple[dict[type[exp.Expr], list[Handler]], dict[type[exp.Expr], list[str]]]:
    """Every class's handlers, merged from every module at once, and the modules claiming it."""
    claims: dict[type[exp.Expr], list[Handler]] = {cls: [rules.plain] for cls in rules.PLAIN}
    owners: dict[type[exp.Expr], list[str]] = {cls: [] for cls in rules.PLAIN}
    for name, module in MODULES.items():
        table: Mapping[type[exp.Expr], Handler] = getattr(module, "RULES", {})
        for cls, handler in table.items():
            owners.setdefault(cls, []).append(name)
            current = claims.get(cls)
            if current is None or current == [rules.plain]:
                claims[cls] = [handler]
            else:
                current.append(handler)
    for cls in _subclasses(WRITE_NODES):
        if cls not in claims:
            claims[cls] = [MODULES["statements"].RULES[exp.Insert]]
            owners[cls] = ["statements"]
    for cls in (exp.Columns, exp.PositionalColumn, exp.Star):
        claims[cls] = [MODULES["columns"].RULES[cls]]
        owners[cls] = ["columns"]
    claims[exp.Anonymous] = [MODULES["functions"].function, MODULES["shapes"].anonymous]
    owners[exp.Anonymous] = ["functions", "shapes"]
    return claims, owners


def written() -> dict[type[exp.Expr], tuple[str, ...]]:
    out: dict[type[exp.Expr], tuple[str, ...]] = {}
    for modules, names in rules._CLAIMS.items():
        for name in names.split():
            cls = getattr(exp, name)
            assert cls not in out, f"{name} is written down twice"
            out[cls] = tuple(modules.split())
    return out


def expected_claims(owners: Mapping[type[exp.Expr], list[str]]) -> str:
    groups: dict[str, list[str]] = {}
    for cls, names in owners.items():
        if names:
            key = " ".join(sorted(names, key=rules._ORDER.index))
            groups.setdefault(key, []).append(cls.__name__)
    lines = []
    for key in sorted(groups, key=lambda k: [rules._ORDER.index(m) for m in k.split()]):
        lines.append(f"    {key!r}: (")
        body = " ".join(sorted(groups[key]))
        lines += [f'        "{chunk} "' for chunk in textwrap.wrap(body, 84)]
        lines.append("    ),")
    return "\n".join(lines)


def test_every_class_is_claimed_by_the_modules_written_down() -> None:
    claims, owners = eager()
    for cls in claims:
        assert getattr(exp, cls.__name__, None) is cls, cls  # written down by name
    table = written()
    wanted = {cls: tuple(sorted(n, key=rules._ORDER.index)) for cls, n in owners.items() if n}
    assert table == wanted, "rules._CLAIMS must be:\n" + expected_claims(owners)
    assert set(rules.TABLE) == set(claims)


def test_the_lazy_handlers_are_the_eager_ones_in_the_same_order() -> None:
    claims, _ = eager()
    table = written()
    for cls, handlers in claims.items():
        lazy = rules._claim(cls, table.get(cls, ()))
        assert lazy == handlers, cls.__name__
        assert len(lazy) >= 1


def test_plain_and_nameless_classes() -> None:
    claims, _ = eager()
    assert {c for c, hs in claims.items() if hs == [rules.plain]} == rules.PLAIN_CLASSES
    hooks = MODULES["resources"].CLASS_HOOKS
    function = MODULES["functions"].function
    bare = {c for c, hs in claims.items() if hs == [function] and c not in hooks}
    assert bare == rules._BARE


def test_a_stub_puts_the_real_handler_in_the_table() -> None:
    sq = SafeQuery(Policy(dialect="postgres"), cache_size=0)
    assert sq.check("SELECT a FROM t WHERE a = 1 AND b > 2").allowed
    assert rules.TABLE[exp.Column] is MODULES["columns"].RULES[exp.Column]
    assert sq.check("SELECT x FROM t").allowed
