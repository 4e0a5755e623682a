"""The function allow-lists SafeQuery enforces, as data: one module per dialect.

* ``sqlite.py``, ``postgres.py``, ``mysql.py`` (MySQL/MariaDB), ``duckdb.py``: the
  built-in functions allowed by default, by documentation page, checked against the
  real engines by ``tests/safety/test_allowlists.py``; calls are judged by the name
  written.
* ``bigquery.py``, ``snowflake.py``, ``tsql.py``: names that sqlglot leaves untyped.
* ``typed.py``: sqlglot's typed function classes allowed in every dialect (function-like
  syntax such as ``CAST`` and ``EXTRACT``, and every call in the other dialects).
* ``never.py``: what no default list may hold, with the reason a call is refused.

:func:`catalog` compiles them for one dialect; ``rules/functions.py`` uses the result.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from types import MappingProxyType, ModuleType

import attrs
from sqlglot import exp

from avl.safety.allowlists import never, typed
from avl.safety.allowlists._doc import Doc

__all__ = ["Catalog", "Doc", "Entry", "Refusal", "catalog", "dialect_modules", "entries"]


class _Modules(Mapping[str, ModuleType]):
    """Dialect name -> its data module, each imported when first looked up (a check
    in one dialect loads that dialect's list alone)."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self._names = names

    def __getitem__(self, dialect: str) -> ModuleType:
        if dialect not in self._names:
            raise KeyError(dialect)
        return importlib.import_module(f"{__name__}.{dialect}")

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


# dialects with a list of their own; the first four are judged by name
_MODULES: Mapping[str, ModuleType] = MappingProxyType(
    _Modules(("sqlite", "postgres", "mysql", "duckdb", "bigquery", "snowflake", "tsql"))
)
_BY_NAME = frozenset({"sqlite", "postgres", "mysql", "duckdb"})


@attrs.frozen
class Entry:
    """One allowed name: where it is documented and what kind of function it is."""

    name: str
    kind: str
    url: str
    since: tuple[int, ...] | None = None


@attrs.frozen
class Refusal:
    """Why a never-allowed function is refused (``catalog`` selects the code)."""

    reason: str
    catalog: bool


def entries(docs: tuple[Doc, ...]) -> list[Entry]:
    """Expand documentation groups into entries (``name@3.44`` gives ``since``)."""
    out = []
    for doc in docs:
        for word in doc.names.split():
            name, _, since = word.partition("@")
            version = tuple(int(p) for p in since.split(".")) if since else None
            out.append(Entry(name=name.lower(), kind=doc.kind, url=doc.url, since=version))
    return out


def dialect_modules() -> Mapping[str, ModuleType]:
    """The dialects that have a list of their own, and their data modules."""
    return _MODULES


def _classes(names: str) -> frozenset[type[exp.Expr]]:
    out = []
    for name in names.split():
        cls = getattr(exp, name, None)
        if isinstance(cls, type) and issubclass(cls, exp.Func):
            out.append(cls)
    return frozenset(out)


@attrs.frozen(kw_only=True)
class Catalog:
    """The compiled function rules of one dialect (immutable).

    Attributes:
        dialect: the sqlglot dialect name.
        by_name: whether a call written with a name is judged by that name alone.
        names: names allowed in expressions (scalar, aggregate, window and syntax).
        table_names: names allowed as table functions in ``FROM``/``JOIN``.
        classes: typed sqlglot classes allowed in expressions.
        table_classes: typed classes allowed in ``FROM``/``JOIN``.
    """

    dialect: str
    by_name: bool
    names: frozenset[str]
    table_names: frozenset[str]
    classes: frozenset[type[exp.Expr]]
    table_classes: frozenset[type[exp.Expr]]
    never: Mapping[str, Refusal]
    never_prefixes: tuple[tuple[str, Refusal], ...]

    def refusal(self, name: str) -> Refusal | None:
        """The never-list reason for ``name`` (lower case), if it is on it."""
        hit = self.never.get(name)
        if hit is not None:
            return hit
        for prefix, why in self.never_prefixes:
            if name.startswith(prefix):
                return why
        root = name.split(".", 1)[0]
        if root != name and root in never.NEVER_PACKAGES:
            return Refusal(reason="is in a system package", catalog=True)
        return None

    def known(self) -> frozenset[str]:
        """Every function name this dialect's rules can speak about (for policy checks)."""
        from sqlglot.dialects.dialect import Dialect

        parser = Dialect.get_or_raise(self.dialect).parser_class
        known = {k.lower() for k in parser.FUNCTIONS}
        known |= {k.lower() for k in parser.FUNCTION_PARSERS}
        known |= {k.lower() for k in getattr(parser, "NO_PAREN_FUNCTION_PARSERS", {})}
        for module in _MODULES.values():
            for entry in entries(module.FUNCTIONS + getattr(module, "TABLE_FUNCTIONS", ())):
                known.add(entry.name)
        return frozenset(known | set(self.never) | self.names | self.table_names)

    def suggest(self, name: str) -> str:
        """A "did you mean" for an unknown name ('' when nothing is close)."""
        import difflib

        close = difflib.get_close_matches(name, sorted(self.known()), n=1, cutoff=0.75)
        return f" (did you mean {close[0]!r}?)" if close else ""


def _never(dialect: str) -> tuple[dict[str, Refusal], tuple[tuple[str, Refusal], ...]]:
    names: dict[str, Refusal] = {}
    for reason, (is_catalog, words) in never.NEVER.items():
        why = Refusal(reason=reason, catalog=is_catalog)
        for word in words.split():
            scope, _, name = word.rpartition(":")
            if not scope or scope == dialect:
                names[name.lower()] = why
    prefixes = tuple(
        sorted(
            (
                (prefix, Refusal(reason=reason, catalog=is_catalog))
                for reason, (is_catalog, group) in never.NEVER_PREFIXES.items()
                for prefix in group
            ),
            key=lambda item: -len(item[0]),
        )
    )
    return names, prefixes


def catalog(
    dialect: str,
    *,
    allowed: frozenset[str] = frozenset(),
    denied: frozenset[str] = frozenset(),
) -> Catalog:
    """Compile the function rules of ``dialect``, widened by ``allowed`` and narrowed by ``denied``.

    Args:
        dialect: a sqlglot dialect name (already normalised by :class:`~avl.safety.Policy`).
        allowed: extra names allowed everywhere (lower case).
        denied: names refused everywhere (lower case), which wins over ``allowed``.

    Returns:
        The compiled catalog.
    """
    module = _MODULES.get(dialect)
    names: set[str] = set()
    table_names: set[str] = set()
    if module is not None:
        names = {e.name for e in entries(module.FUNCTIONS)}
        table_names = {e.name for e in entries(getattr(module, "TABLE_FUNCTIONS", ()))}
    classes: set[type[exp.Expr]] = set()
    for group in typed.CLASSES.values():
        classes |= _classes(group)
    table_classes = _classes(typed.TABLE_CLASSES)
    never_names, never_prefixes = _never(dialect)
    names |= allowed
    table_names |= allowed
    names -= denied
    table_names -= denied
    for name in allowed:
        never_names.pop(name, None)
    for name in denied:
        never_names[name] = Refusal(reason="is denied by the policy", catalog=False)
    return Catalog(
        dialect=dialect,
        by_name=dialect in _BY_NAME,
        names=frozenset(names),
        table_names=frozenset(table_names),
        classes=frozenset(classes),
        table_classes=frozenset(table_classes),
        never=MappingProxyType(never_names),
        never_prefixes=never_prefixes,
    )
