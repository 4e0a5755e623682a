"""The state of one check and its single walk of the tree.

A :class:`Run` holds everything one ``check`` call learns (violations, tables and
columns read, the rewrites to make) and walks the parse tree once. The walk looks up
each node's class in the handler table that ``rules/__init__.py`` builds once from the
rule modules (as sqlglot's generator dispatches on node classes); a class that is not
in the table is an unknown node and is refused. Query-shaped nodes (``SELECT``, set
operations, subqueries) go through :meth:`Run.query`, which returns the columns the
query yields, so that names keep their marks through every rename.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from sqlglot import exp
from sqlglot.tokenizer_core import TokenType

from avl.safety._verdict import Position, Violation, ViolationCode

if TYPE_CHECKING:
    from avl.safety._checker import Checker, RowFilter

__all__ = ["Handler", "QueryHandler", "Rel", "Run", "Scope"]

C = ViolationCode

Handler = Callable[["Run", Any, "Scope"], bool]
"""A rule for one node class: ``(run, node, scope) -> True`` when it walked the children."""
QueryHandler = Callable[["Run", Any, "Scope | None"], "Rel | None"]
"""A rule for a query-shaped node: returns the columns the query yields (None: unknown)."""


class Rel:
    """A relation in scope (a ``FROM`` item) or the columns a query yields.

    ``cols`` are the output column names in order (lower case), or None when the checker
    cannot know them (a table without a schema, ``SELECT *`` over one). ``marked`` are the
    names whose values are (or may be) a denied column's, whatever they are called now.
    ``key`` is the real table's display name (None for derived relations).
    """

    __slots__ = ("cols", "colset", "key", "marked", "name", "narrow", "query", "rows")

    def __init__(
        self,
        name: str,
        cols: tuple[str, ...] | None,
        marked: frozenset[str] = frozenset(),
        key: str | None = None,
        rows: float | None = None,
        narrow: bool = False,
        colset: frozenset[str] | None = None,
        query: exp.Expr | None = None,
    ) -> None:
        self.name = name
        self.cols = cols
        self.colset: frozenset[str] | None = (
            colset if colset is not None or cols is None else frozenset(cols)
        )
        self.marked = marked
        self.key = key
        self.rows = rows  # an upper bound on the rows it yields, when the checker knows one
        self.narrow = narrow  # a derived relation that filters or aggregates what it reads
        self.query = query  # the query it comes from (its bounds are read from it on demand)

    def named(self, name: str) -> Rel:
        """The same columns, marks and bounds under another name (a derived source)."""
        return Rel(
            name, self.cols, self.marked, None, self.rows, self.narrow, self.colset, self.query
        )

    def renamed(self, names: list[str]) -> Rel:
        """This relation seen through a column list (``AS t(a, b)``, ``WITH t(a, b)``).

        The first ``len(names)`` columns get the new names and keep their marks; the rest
        keep theirs. When the columns are unknown, every new name may carry a mark.
        """
        if self.cols is None:
            marked = self.marked | frozenset(names) if self.marked else frozenset()
            return Rel(self.name, None, marked, None, self.rows, self.narrow, None, self.query)
        cols: list[str] = []
        kept: set[str] = set()
        for i, old in enumerate(self.cols):
            new = names[i] if i < len(names) else old
            cols.append(new)
            if old in self.marked:
                kept.add(new)
        return Rel(
            self.name, tuple(cols), frozenset(kept), None, self.rows, self.narrow, None, self.query
        )


class Scope:
    """The names visible in one query: its sources, CTEs and select-list aliases."""

    __slots__ = ("aliases", "ctes", "parent", "sources")

    def __init__(self, parent: Scope | None) -> None:
        self.parent = parent
        self.sources: dict[str, Rel] = {}
        self.ctes: dict[str, Rel] = {}
        self.aliases: frozenset[str] = frozenset()

    def cte(self, name: str) -> Rel | None:
        """The CTE called ``name`` in this scope or an enclosing one."""
        scope: Scope | None = self
        while scope is not None:
            rel = scope.ctes.get(name)
            if rel is not None:
                return rel
            scope = scope.parent
        return None

    def lookup(self, qualifier: str) -> Rel | None:
        """The source called ``qualifier`` in this scope or an enclosing one."""
        scope: Scope | None = self
        while scope is not None:
            rel = scope.sources.get(qualifier)
            if rel is not None:
                return rel
            scope = scope.parent
        return None


class Run:
    """State of one check (private to one call)."""

    __slots__ = (
        "anchor",
        "backslashes",
        "bool_seen",
        "bound_outside",
        "c",
        "columns",
        "depth",
        "edits",
        "idiom",
        "inline",
        "nameless",
        "p",
        "params",
        "plain",
        "queries",
        "row_dependent",
        "seen",
        "sources_of",
        "sql",
        "statement_end",
        "strings",
        "table",
        "tables",
        "tokens",
        "too_deep",
        "violations",
        "width",
        "wraps",
    )  # fmt: skip

    def __init__(self, checker: Checker, sql: str, params: Mapping[str, object]) -> None:
        self.c = checker
        self.p = checker.policy
        self.sql = sql
        self.params = params
        self.table: Mapping[type[exp.Expr], Handler] = checker.table
        self.plain: frozenset[type[exp.Expr]] = checker.plain
        self.nameless: frozenset[type[exp.Expr]] = checker.nameless
        self.queries: Mapping[type[exp.Expr], QueryHandler] = checker.queries
        self.violations: list[Violation] = []
        self.seen: set[tuple[ViolationCode, str]] = set()
        self.tables: set[str] = set()
        self.columns: set[tuple[str, str]] = set()  # (table, column) read
        # rewrites decided during the walk, made after it
        self.wraps: list[tuple[exp.Table, RowFilter]] = []
        self.edits: list[tuple[int, int, str]] = []
        self.bound_outside = False
        self.statement_end: int | None = None
        self.tokens: list[Any] = []  # the statement's tokens (set once tokenised)
        # walk state
        self.depth = 0
        self.too_deep = False
        self.width: int | None = None
        # the scope and source names of the SELECT whose clauses are being walked
        self.sources_of: tuple[Scope, list[str]] | None = None
        self.inline = False
        self.anchor: exp.Expr | None = None
        self.idiom: set[int] = set()
        self.row_dependent: set[int] = set()
        self.bool_seen: set[int] = set()
        self.strings: list[exp.Column] = []  # SQLite double-quoted names read as strings
        self.backslashes = checker.backslashes and "\\" in sql

    # ---------------------------------------------------------------- reports
    def flag(
        self,
        code: ViolationCode,
        message: str,
        node: exp.Expr | None = None,
        offset: int | None = None,
    ) -> None:
        """Report one violation (once per code and message)."""
        key = (code, message)
        if key in self.seen:
            return
        self.seen.add(key)
        self.violations.append(
            Violation(code=code, message=message, position=self.position(node, offset))
        )

    def position(self, node: exp.Expr | None, offset: int | None = None) -> Position | None:
        """Where ``node`` (or ``offset``) is in the SQL text."""
        last: int | None = None
        if offset is None and node is not None:
            best: int | None = None
            for sub in node.walk():
                meta = getattr(sub, "_meta", None)
                if meta and "start" in meta:
                    start = meta["start"]
                    if isinstance(start, int) and (best is None or start < best):
                        best = start
                    end = meta.get("end")
                    if isinstance(end, int) and (last is None or end > last):
                        last = end
            offset = best
            if offset is None and node.parent is not None:
                return self.position(node.parent)
            if offset is not None and node.parent is None and self.tokens:
                # a whole statement: from its first word (DROP, which keeps no position
                # of its own), not from the first name in it
                offset = self._statement_start(offset)
        if offset is None:
            return None
        line = self.sql.count("\n", 0, offset) + 1
        col = offset - (self.sql.rfind("\n", 0, offset) + 1) + 1
        # sqlglot's token ends are inclusive
        stop = last + 1 if last is not None and last >= offset else None
        return Position(line=line, col=col, offset=offset, end=stop)

    def _statement_start(self, offset: int) -> int:
        """The start of the first token of the statement holding ``offset``."""
        tokens = self.tokens
        i = bisect.bisect_right([t.start for t in tokens], offset) - 1
        while i > 0 and tokens[i - 1].token_type is not TokenType.SEMICOLON:
            i -= 1
        return int(tokens[i].start) if i >= 0 else offset

    def text(self, node: exp.Expr, limit: int = 60) -> str:
        """``node`` as SQL for a message: regenerated, or as written when sqlglot cannot
        write it (a call with missing arguments), cut at ``limit`` characters."""
        try:
            return str(node.sql(self.c.dialect))[:limit]
        except Exception:  # a malformed node: the message quotes the text instead
            pos = self.position(node)
            if pos is not None and pos.offset is not None:
                stop = pos.end if pos.end is not None else pos.offset + limit
                return self.sql[pos.offset : min(stop, pos.offset + limit)]
            return type(node).__name__

    def unknown(self, node: object) -> None:
        """Refuse a node the checker does not know (fail closed)."""
        if isinstance(node, exp.Expr):
            self.flag(
                C.UNKNOWN_NODE,
                f"{type(node).__name__} is not something the checker knows; refusing",
                node,
            )
        else:
            self.flag(C.UNKNOWN_NODE, f"unexpected syntax {node!r}; refusing")

    def deep(self, node: exp.Expr) -> None:
        """Report queries nested past the policy's ``max_depth`` (once)."""
        self.too_deep = True
        self.flag(C.TOO_DEEP, f"queries nested more than {self.p.max_depth} deep", node)

    # ------------------------------------------------------------------- walk
    def query(self, node: exp.Expr, outer: Scope | None) -> Rel | None:
        """Visit a query-shaped node; return the columns it yields (None: unknown)."""
        handler = self.queries.get(type(node))
        if handler is None:
            handler = self.queries[exp.Expr]  # the fallback: DML inside a query, unknown
        return handler(self, node, outer)

    def expr(self, node: exp.Expr | list[exp.Expr], scope: Scope) -> None:
        """Walk expressions once, dispatching each node class to its handler.

        ``node`` may be a list, walked first to last. A handler returns True when it
        walked the node's children itself; otherwise they are pushed here.
        """
        table, plain, nameless = self.table, self.plain, self.nameless
        stack: list[exp.Expr] = node[::-1] if isinstance(node, list) else [node]
        pop, push, expr_cls = stack.pop, stack.append, exp.Expr
        ident, column, literal = exp.Identifier, exp.Column, exp.Literal
        column_handler = table[exp.Column]
        backslashes = self.backslashes
        while stack:
            n = pop()
            cls = type(n)
            if cls is ident:
                continue
            if cls is column:
                # alias.column of a known, unmarked column of a source in scope: recorded
                # here (the common case); everything else goes through the column rule
                args = n.args
                this, qualifier = args.get("this"), args.get("table")
                if (
                    type(this) is ident
                    and type(qualifier) is ident
                    and type(qualifier.this) is str
                    and not args.get("db")
                ):
                    qname = qualifier.this.lower()
                    s: Scope | None = scope
                    src = None
                    while s is not None:
                        src = s.sources.get(qname)
                        if src is not None:
                            break
                        s = s.parent
                    if src is not None and src.colset is not None:
                        name = str(this.this).lower()
                        if name in src.colset and name not in src.marked:
                            if src.key:
                                self.columns.add((src.key, name))
                            continue
                elif type(this) is ident and qualifier is None and len(scope.sources) == 1:
                    # a bare column of the only source, when that source has it
                    word = this.this
                    for src in scope.sources.values():
                        colset = src.colset
                        if colset is not None and type(word) is str:
                            name = word.lower()
                            if name in colset and name not in src.marked:
                                if src.key:
                                    self.columns.add((src.key, name))
                                break
                    else:
                        column_handler(self, n, scope)
                    continue
                column_handler(self, n, scope)
                continue
            if cls is literal and not backslashes:
                continue
            if cls in plain or (cls in nameless and not n._meta):
                # nothing to check on the node itself (structure, or function syntax
                # without a name of its own whose class the allow-list holds)
                pass
            else:
                handler = table.get(cls)
                if handler is None:
                    self.unknown(n)
                    continue
                if handler(self, n, scope):
                    continue
            for value in reversed(n.args.values()):
                if type(value) is list:
                    for item in reversed(value):
                        if isinstance(item, expr_cls) and type(item) is not ident:
                            push(item)
                elif isinstance(value, expr_cls) and type(value) is not ident:
                    push(value)
