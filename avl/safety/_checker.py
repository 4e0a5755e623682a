"""The pure checker: one tokenisation, one parse, one walk of the tree.

``Checker`` is built once per policy (it pre-parses row filters and normalises
names) and then checks SQL texts without any shared mutable state, so one
instance can serve many threads.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect, NormalizationStrategy
from sqlglot.errors import ErrorLevel
from sqlglot.parser import Parser
from sqlglot.tokenizer_core import Token, TokenType
from sqlglot.tokens import Tokenizer

from avl.errors import ConfigError
from avl.safety import _rules as R
from avl.safety._policy import Policy
from avl.safety._verdict import Position, StatementKind, Verdict, Violation, ViolationCode

__all__ = ["Checker"]

C = ViolationCode

_QUERY_ROOTS = (exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Subquery)
_SETOPS = (exp.Union, exp.Intersect, exp.Except)
_KIND_BY_CLASS: dict[type[exp.Expr], StatementKind] = {
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
_WRITE_NODES = (
    exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Drop, exp.Alter,
    exp.TruncateTable, exp.Copy, exp.Set, exp.Pragma, exp.Attach, exp.Detach, exp.Command,
    exp.Grant, exp.Revoke, exp.Transaction, exp.Commit, exp.Rollback, exp.Use,
)  # fmt: skip
_CONST_LEAVES = (exp.Literal, exp.Null, exp.Boolean, exp.HexString, exp.BitString, exp.ByteString)
_NOT_CONSTANT = (exp.Column, exp.Placeholder, exp.Parameter, exp.Star, exp.Table)
_SELECT_HANDLED = frozenset(
    {"with_", "expressions", "from_", "joins", "where", "group", "having", "qualify", "order",
     "limit", "offset", "into", "locks", "hint", "distinct", "windows", "kind", "laterals", "pivots"}
)  # fmt: skip
# argument names a SELECT may carry without anything to report (the handled ones, and
# MySQL SQL_CALC_FOUND_ROWS etc. / Snowflake EXCLUDE, which have no side effects)
_SELECT_KNOWN = _SELECT_HANDLED | {"operation_modifiers", "exclude", "options"}
_SETOP_HANDLED = frozenset(
    {
        "with_",
        "this",
        "expression",
        "distinct",
        "by_name",
        "side",
        "kind",
        "order",
        "limit",
        "offset",
        "locks",
    }
)


class _Source:
    """Something a FROM clause reads: a table, a CTE, a derived table, a function."""

    __slots__ = ("columns", "denied", "key", "name")

    def __init__(
        self, name: str, columns: frozenset[str] | None, key: str | None, denied: frozenset[str]
    ) -> None:
        self.name = name  # display / record name (the table's name when real)
        self.columns = columns  # lower-cased column names, None when unknown
        self.key = key  # normalised real-table name (for the record), None otherwise
        self.denied = denied  # denied column names (lower-case) of this table


class _TableInfo:
    """The policy's verdict on one real table name (immutable once built)."""

    __slots__ = ("columns", "denied", "display", "problem")

    def __init__(
        self,
        display: str,
        problem: tuple[ViolationCode, str] | None,
        columns: frozenset[str] | None,
        denied: frozenset[str],
    ) -> None:
        self.display = display
        self.problem = problem
        self.columns = columns
        self.denied = denied


class _Scope:
    __slots__ = ("aliases", "ctes", "parent", "sources")

    def __init__(self, parent: _Scope | None) -> None:
        self.parent = parent
        self.sources: dict[str, _Source] = {}
        self.ctes: dict[str, tuple[frozenset[str] | None, frozenset[str]]] = {}
        self.aliases: frozenset[str] = frozenset()

    def cte(self, name: str) -> tuple[bool, frozenset[str] | None, frozenset[str]]:
        """(is a CTE in scope, its columns if known, its denied columns)."""
        scope: _Scope | None = self
        while scope is not None:
            if name in scope.ctes:
                cols, denied = scope.ctes[name]
                return True, cols, denied
            scope = scope.parent
        return False, None, frozenset()


def _lower(name: str) -> str:
    return name.lower()


class Checker:
    """Checks SQL texts against one policy (pure; thread-safe).

    Args:
        policy: the policy to enforce.

    Raises:
        ConfigError: a row filter or a name in the policy does not parse.
    """

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.dialect = Dialect.get_or_raise(policy.dialect)
        self.strategy = self.dialect.normalization_strategy
        self._local = threading.local()  # per-thread tokenizer and parser (they keep state)
        self._tables: dict[tuple[str, ...], _TableInfo] = {}
        d = self.dialect
        self.allowed = (
            None
            if policy.allowed_tables is None
            else [self._table_parts(t) for t in policy.allowed_tables]
        )
        self.denied = [self._table_parts(t) for t in policy.denied_tables]
        # denied columns: column -> list of table-name tuples (() = any table)
        denied_cols: dict[str, list[tuple[str, ...]]] = {}
        for item in policy.denied_columns:
            table, _, column = item.rpartition(".")
            parts = self._table_parts(table) if table else ()
            denied_cols.setdefault(column.strip('"`[]').lower(), []).append(parts)
        self.denied_cols = denied_cols
        self.schema: dict[tuple[str, ...], frozenset[str]] | None = None
        self.schema_by_name: dict[str, list[tuple[tuple[str, ...], frozenset[str]]]] = {}
        if policy.schema is not None:
            self.schema = {}
            for table, columns in policy.schema:
                parts = self._table_parts(table)
                cols = frozenset(c.lower() for c in columns)
                self.schema[parts] = self.schema.get(parts, frozenset()) | cols
                self.schema_by_name.setdefault(parts[-1], []).append((parts, cols))
        self.row_filters: list[tuple[tuple[str, ...], exp.Expr, tuple[str, ...]]] = []
        for table, predicate in policy.row_filters:
            try:
                cond = sqlglot.condition(predicate, dialect=d)
            except (sqlglot.errors.SqlglotError, RecursionError) as exc:
                raise ConfigError(
                    f"row_filters[{table!r}]: the predicate does not parse: {exc}"
                ) from exc
            names = tuple(sorted({p.name for p in cond.find_all(exp.Placeholder) if p.name}))
            self.row_filters.append((self._table_parts(table), cond, names))
        self.denied_functions = (
            R.DENIED_FUNCTIONS
            | R.DIALECT_FUNCTIONS.get(policy.dialect, frozenset())
            | {f.lower() for f in policy.denied_functions}
        )
        self.allowed_functions = frozenset(f.lower() for f in policy.allowed_functions)
        self.sqlite_strings = policy.dialect == "sqlite"
        # built-in function classes that no name rule of ``_Run.function`` can flag
        # when called without a qualifier: the walker skips the name checks for them
        self.plain_functions = frozenset(
            cls
            for cls in R.FUNCTION_CLASSES
            if cls is not exp.Anonymous
            and cls not in _INFO_CLASSES
            and _harmless_name(
                _FUNCTION_NAMES.get(cls) or cls.__name__.lower(),
                self.denied_functions,
                self.allowed_functions,
                policy.allow_system_catalogs,
            )
        )

    def tools(self) -> tuple[Tokenizer, Parser]:
        """This thread's tokenizer and parser for the dialect (built once per thread)."""
        local = self._local
        tools: tuple[Tokenizer, Parser] | None = getattr(local, "tools", None)
        if tools is None:
            tools = (self.dialect.tokenizer_class(dialect=self.dialect), self.dialect.parser())
            local.tools = tools
        return tools

    def table_info(self, parts: tuple[str, ...]) -> _TableInfo:
        """What the policy says about one real table (cached per checker)."""
        info = self._tables.get(parts)
        if info is not None:
            return info
        display = ".".join(parts)
        problem = self._table_problem(parts, display)
        columns: frozenset[str] | None = None
        if self.schema is not None:
            columns = self.schema.get(parts)
            if columns is None:
                candidates = [
                    cols
                    for p, cols in self.schema_by_name.get(parts[-1], [])
                    if self._matches(parts, p)
                ]
                if candidates:
                    columns = frozenset().union(*candidates)
            if columns is None and problem is None:
                problem = (C.UNKNOWN_TABLE, f"table {display!r} is not in the schema")
        denied = frozenset(
            col
            for col, tables in self.denied_cols.items()
            if any(not t or self._denied_match(parts, t) for t in tables)
        )
        info = _TableInfo(display, problem, columns, denied)
        if len(self._tables) < 4096:  # bounded: a dict write is atomic under the GIL
            self._tables[parts] = info
        return info

    def _table_problem(
        self, parts: tuple[str, ...], display: str
    ) -> tuple[ViolationCode, str] | None:
        lowered = tuple(p.lower() for p in parts)
        if not self.policy.allow_system_catalogs and _is_catalog(lowered):
            return (C.SYSTEM_CATALOG, f"{display!r} is a system catalogue")
        for entry in self.denied:
            if self._denied_match(parts, entry):
                return (C.TABLE_DENIED, f"table {display!r} is denied")
        if self.allowed is not None and not any(self._matches(parts, e) for e in self.allowed):
            return (C.TABLE_NOT_ALLOWED, f"table {display!r} is not in the allowed tables")
        return None

    # ------------------------------------------------------------------ names
    def _table_parts(self, name: str) -> tuple[str, ...]:
        try:
            table = exp.to_table(name, dialect=self.dialect)
        except (sqlglot.errors.SqlglotError, RecursionError, ValueError) as exc:
            raise ConfigError(f"policy: {name!r} is not a valid table name: {exc}") from exc
        return self._parts_of(table)

    def _norm(self, ident: exp.Expr | str | None) -> str:
        if ident is None:
            return ""
        if isinstance(ident, exp.Identifier):
            text = str(ident.this)
            strategy = self.strategy
            if strategy is NormalizationStrategy.CASE_INSENSITIVE:
                return text.lower()
            if ident.args.get("quoted") or strategy is NormalizationStrategy.CASE_SENSITIVE:
                return text
            if strategy is NormalizationStrategy.UPPERCASE:
                return text.upper()
            if strategy is NormalizationStrategy.CASE_INSENSITIVE_UPPERCASE:
                return text.upper()
            return text.lower()
        if isinstance(ident, str):
            return ident
        return str(ident.name)

    def _parts_of(self, table: exp.Table) -> tuple[str, ...]:
        args = table.args
        if args.get("db") is None and args.get("catalog") is None:
            return (self._norm(args.get("this")),)
        parts: list[str] = []
        for key in ("catalog", "db", "this"):
            node = table.args.get(key)
            if node is not None and not (isinstance(node, exp.Identifier) and not node.this):
                if isinstance(node, exp.Dot):  # deeper qualification (a.b.c.d)
                    parts.extend(self._norm(p) for p in node.flatten())
                else:
                    parts.append(self._norm(node))
        return tuple(parts)

    @staticmethod
    def _matches(ref: tuple[str, ...], entry: tuple[str, ...]) -> bool:
        """A reference matches a policy entry when the entry names it at least as precisely."""
        return len(ref) <= len(entry) and entry[len(entry) - len(ref) :] == ref

    @staticmethod
    def _denied_match(ref: tuple[str, ...], entry: tuple[str, ...]) -> bool:
        n = min(len(ref), len(entry))
        return ref[len(ref) - n :] == entry[len(entry) - n :]

    # ------------------------------------------------------------------ entry
    def check(self, sql: str, params: Mapping[str, object] | None = None) -> Verdict:
        """Check one SQL text. Never raises for any input string."""
        run = _Run(self, sql, params or {})
        try:
            return run.execute()
        except RecursionError:
            message = "the statement is nested too deeply to check"
            code = C.TOO_DEEP
        except Exception as exc:  # fail closed: an unexpected tree shape is refused
            message = (
                f"the checker does not understand this statement ({type(exc).__name__}); refusing"
            )
            code = C.UNKNOWN_NODE
        return Verdict(allowed=False, violations=(Violation(code=code, message=message),))


class _Run:
    """State of one check (private to one call)."""

    def __init__(self, checker: Checker, sql: str, params: Mapping[str, object]) -> None:
        self.c = checker
        self.p = checker.policy
        self.sql = sql
        self.params = params
        self.violations: list[Violation] = []
        self.seen: set[tuple[ViolationCode, str]] = set()
        self.tables: set[str] = set()
        self.columns: set[str] = set()
        self.wraps: list[tuple[exp.Table, exp.Expr]] = []
        self.rewritten = False
        self.depth = 0
        self.too_deep = False
        self.width: int | None = None
        self.carry: set[str] | None = None
        self.last_denied: frozenset[str] = frozenset()
        self.edits: list[tuple[int, int, str]] = []
        self.bound_outside = False
        self.statement_end: int | None = None
        self.idiom: set[int] = set()
        # conditions ``constants`` already found to depend on the row (not re-walked)
        self.row_dependent: set[int] = set()
        self.bool_seen: set[int] = set()
        self.backslashes = checker.policy.dialect in _MYSQL_FAMILY and bool(
            checker.dialect.tokenizer_class.STRING_ESCAPES
            and "\\" in checker.dialect.tokenizer_class.STRING_ESCAPES
            and "\\" in sql
        )
        self.anchor: exp.Expr | None = None

    # ---------------------------------------------------------------- helpers
    def flag(
        self,
        code: ViolationCode,
        message: str,
        node: exp.Expr | None = None,
        offset: int | None = None,
    ) -> None:
        key = (code, message)
        if key in self.seen:
            return
        self.seen.add(key)
        self.violations.append(
            Violation(code=code, message=message, position=self.position(node, offset))
        )

    def position(self, node: exp.Expr | None, offset: int | None = None) -> Position | None:
        if offset is None and node is not None:
            best: int | None = None
            for sub in node.walk():
                meta = getattr(sub, "_meta", None)
                if meta and "start" in meta:
                    start = meta["start"]
                    if isinstance(start, int) and (best is None or start < best):
                        best = start
            offset = best
            if offset is None and node.parent is not None:
                return self.position(node.parent)
        if offset is None:
            return None
        line = self.sql.count("\n", 0, offset) + 1
        col = offset - (self.sql.rfind("\n", 0, offset) + 1) + 1
        return Position(line=line, col=col, offset=offset)

    # ------------------------------------------------------------------- main
    def execute(self) -> Verdict:
        sql: object = self.sql
        if not isinstance(sql, str):
            self.flag(C.PARSE_ERROR, f"expected SQL text, got {type(sql).__name__}")
            return self.verdict(None, None)
        if len(sql) > self.p.max_length:
            self.flag(
                C.TOO_LONG,
                f"the statement is {len(sql)} characters long; the limit is {self.p.max_length}",
            )
            return self.verdict(None, None)
        try:
            tokenizer, parser = self.c.tools()
            tokens = tokenizer.tokenize(sql)
            trees = parser.parse(tokens, sql)
        except sqlglot.errors.ParseError as exc:
            err = exc.errors[0] if exc.errors else {}
            line, col = err.get("line"), err.get("col")
            pos = (
                Position(line=line, col=col)
                if isinstance(line, int) and isinstance(col, int)
                else None
            )
            desc = str(err.get("description") or exc).splitlines()[0]
            self.violations.append(
                Violation(
                    code=C.PARSE_ERROR,
                    message=f"does not parse as {self.p.dialect}: {desc}",
                    position=pos,
                )
            )
            self.into_outfile(sql)
            return self.verdict(None, None)
        except RecursionError:
            self.flag(C.TOO_DEEP, "the statement is nested too deeply to parse")
            return self.verdict(None, None)
        except Exception as exc:
            self.flag(
                C.PARSE_ERROR,
                f"does not parse as {self.p.dialect}: {type(exc).__name__}: {str(exc)[:200]}",
            )
            return self.verdict(None, None)
        self.scan_comments(tokens)
        last = len(tokens) - 1
        while last >= 0 and tokens[last].token_type == TokenType.SEMICOLON:
            last -= 1
        if last >= 0:
            self.statement_end = tokens[last].end + 1
        statements = [t for t in trees if t is not None and not isinstance(t, exp.Semicolon)]
        if not statements:
            self.flag(C.EMPTY, "there is no SQL statement")
            return self.verdict(None, None)
        if len(statements) > self.p.max_statements:
            self.flag(
                C.MULTIPLE_STATEMENTS,
                f"{len(statements)} statements; at most {self.p.max_statements} allowed",
                statements[1],
            )
        kind = _KIND_BY_CLASS.get(type(statements[0]), StatementKind.OTHER)
        try:
            for tree in statements:
                self.statement(tree)
            if self.violations:
                return self.verdict(None, kind)
            out = self.rewrite(statements)
        except RecursionError:
            self.flag(C.TOO_DEEP, "the statement is nested too deeply to check")
            return self.verdict(None, kind)
        if self.violations:
            return self.verdict(None, kind)
        return self.verdict(out, kind)

    def verdict(self, sql: str | None, kind: StatementKind | None) -> Verdict:
        allowed = not self.violations and sql is not None
        return Verdict(
            allowed=allowed,
            violations=tuple(self.violations),
            sql=sql if allowed else None,
            kind=kind,
            tables=tuple(sorted(self.tables)),
            columns=tuple(sorted(self.columns)),
        )

    def into_outfile(self, sql: str) -> None:
        """Name the usual reason MySQL's ``INTO OUTFILE``/``DUMPFILE`` does not parse."""
        try:
            tokens = self.c.dialect.tokenize(sql)
        except Exception:  # fail closed: the parse error is already reported
            return
        texts = [t.text.upper() for t in tokens]
        for i, text in enumerate(texts[:-1]):
            if text == "INTO" and texts[i + 1] in ("OUTFILE", "DUMPFILE"):
                self.flag(C.INTO, f"INTO {texts[i + 1]} writes a file", offset=tokens[i].start)

    # --------------------------------------------------------------- comments
    def mysql_dashes(self, tokens: list[Token]) -> None:
        """MySQL reads ``--`` as a comment only before a space or control character.

        ``1 --0 UNION SELECT ...`` is ``1 - -0 UNION SELECT ...`` to MySQL, while a
        reader that takes ``--`` as a comment sees only ``1``: code the checker
        would never see. Such a ``--`` between tokens (outside strings) is refused.
        """
        sql = self.sql
        bounds = [-1] + [b for t in tokens for b in (t.start, t.end)] + [len(sql)]
        for gap_start, gap_end in zip(bounds[0::2], bounds[1::2], strict=False):
            gap = sql[gap_start + 1 : gap_end]
            at = gap.find("--")
            while at >= 0:
                after = gap[at + 2 : at + 3]
                if after and after > " ":
                    self.flag(
                        C.COMMENT_HIDDEN_CODE,
                        "MySQL does not read '--' without a following space as a comment",
                        offset=gap_start + 1 + at,
                    )
                    return
                at = gap.find("--", at + 2)

    def scan_comments(self, tokens: list[Token]) -> None:
        sql = self.sql
        if "--" not in sql and "/*" not in sql and "#" not in sql:
            return
        if "--" in sql and self.p.dialect in _MYSQL_FAMILY:
            self.mysql_dashes(tokens)
        last = len(tokens) - 1
        while last > 0 and tokens[last].token_type == TokenType.SEMICOLON:
            last -= 1
        for i, token in enumerate(tokens):
            for comment in token.comments:
                text = comment.strip()
                if text.startswith(("!", "+")) and ("/*!" in sql or "/*+" in sql):
                    # MySQL runs /*! ... */ as code; /*+ ... */ is an optimizer hint
                    self.flag(
                        C.COMMENT_HIDDEN_CODE,
                        f"executable comment or hint: /*{text[:40]}*/",
                        offset=token.start,
                    )
                elif _looks_like_code(comment, trailing=i >= last, inline_empty="/**/" in sql):
                    self.flag(
                        C.COMMENT_HIDDEN_CODE,
                        f"a comment hides SQL code: {text[:60]!r}",
                        offset=token.start,
                    )

    # ------------------------------------------------------------- statements
    def statement(self, tree: exp.Expr) -> None:
        kind = _KIND_BY_CLASS.get(type(tree), StatementKind.OTHER)
        if kind not in self.p.allowed_kinds:
            what = tree.name.upper() if isinstance(tree, exp.Command) else kind.value.upper()
            self.flag(
                C.STATEMENT_KIND,
                f"{what} statements are not allowed (allowed: "
                f"{', '.join(sorted(k.value for k in self.p.allowed_kinds))})",
                tree,
            )
            return
        if kind is StatementKind.SELECT:
            self.query(tree, None)
            return
        # a kind the policy explicitly allows (INSERT, UPDATE, DELETE...): the root is
        # accepted, everything under it is walked like any expression
        scope = _Scope(None)
        for child in tree.iter_expressions():
            self.generic(child, scope)

    def query(self, node: exp.Expr, outer: _Scope | None) -> frozenset[str] | tuple[()] | None:
        """Visit a query node; return its output column names (None if unknown)."""
        if isinstance(node, exp.Select):
            return self.select(node, outer)
        if isinstance(node, _SETOPS):
            return self.setop(node, outer)
        if isinstance(node, exp.Subquery):
            return self.subquery(node, outer)
        if isinstance(node, exp.Values):
            self.generic(node, outer or _Scope(None))
            return None
        if isinstance(node, _WRITE_NODES):
            self.flag(
                C.DATA_MODIFYING_CTE,
                f"a {type(node).__name__.upper()} inside a query changes data",
                node,
            )
            return None
        self.unknown(node)
        return None

    def enter(self, node: exp.Expr) -> None:
        self.depth += 1
        if self.depth > self.p.max_depth and not self.too_deep:
            self.too_deep = True
            self.flag(C.TOO_DEEP, f"queries nested more than {self.p.max_depth} deep", node)

    def subquery(self, node: exp.Subquery, outer: _Scope | None) -> frozenset[str] | None:
        for key, value in node.args.items():
            if value is None or key in ("this", "alias"):
                continue
            if key in ("order", "limit", "offset"):
                self.generic(value, outer or _Scope(None))
            elif key == "locks":
                self.flag(
                    C.LOCKING_CLAUSE, "locking clauses (FOR UPDATE/SHARE) are not allowed", node
                )
            elif key == "with_":
                self.unknown(value)
            else:
                self.unknown(value if isinstance(value, exp.Expr) else node)
        inner = node.this
        if not isinstance(inner, exp.Expr):
            self.unknown(node)
            return None
        out = self.query(inner, outer)
        return out if isinstance(out, frozenset) else None

    def with_(self, node: exp.Expr, scope: _Scope) -> None:
        if not isinstance(node, exp.With):
            self.unknown(node)
            return
        recursive = bool(node.args.get("recursive"))
        for key in ("search", "cycle", "udfs"):
            if node.args.get(key):
                self.unknown(node.args[key])
        for cte in node.expressions:
            if not isinstance(cte, exp.CTE):
                self.unknown(cte)
                continue
            name = _lower(cte.alias_or_name)
            alias = cte.args.get("alias")
            declared = None
            if isinstance(alias, exp.TableAlias) and alias.columns:
                declared = frozenset(_lower(c.name) for c in alias.columns)
            body = cte.this
            if isinstance(body, _WRITE_NODES):
                self.flag(
                    C.DATA_MODIFYING_CTE,
                    f"CTE {cte.alias_or_name!r} runs a {type(body).__name__.upper()}",
                    body,
                )
                scope.ctes[name] = (None, frozenset())
                continue
            if recursive:
                scope.ctes[name] = (declared, frozenset())
                if (
                    isinstance(body, _SETOPS)
                    and self.references(body.expression, name)
                    and not _has_stop(body.expression)
                ):
                    self.flag(
                        C.UNBOUNDED_RECURSION,
                        f"recursive CTE {cte.alias_or_name!r} has no stopping condition",
                        cte,
                    )
            if recursive and isinstance(body, _SETOPS):
                self.anchor = body  # the anchor of a recursive CTE may select constants
            self.last_denied = frozenset()
            out = self.query(body, scope) if isinstance(body, exp.Expr) else None
            scope.ctes[name] = (
                declared if declared is not None else (out if isinstance(out, frozenset) else None),
                self.last_denied,
            )

    @staticmethod
    def references(node: exp.Expr, name: str) -> bool:
        return any(
            not t.args.get("db") and _lower(t.name) == name for t in node.find_all(exp.Table)
        )

    # ----------------------------------------------------------------- setops
    def setop(self, node: exp.Expr, outer: _Scope | None) -> frozenset[str] | None:
        scope = _Scope(outer)
        args = node.args
        for key, value in args.items():
            if (
                value is None
                or value is False
                or (type(value) is list and not value)
                or key in _SETOP_HANDLED
            ):
                continue
            self.unknown(
                value[0]
                if isinstance(value, list)
                else value
                if isinstance(value, exp.Expr)
                else node
            )
        if args.get("locks"):
            self.flag(
                C.LOCKING_CLAUSE,
                "locking clauses (FOR UPDATE/SHARE) are not allowed",
                args["locks"][0],
            )
        if args.get("with_") is not None:
            self.with_(args["with_"], scope)
        outs: list[frozenset[str] | None] = []
        widths: list[int | None] = []
        for side in (args.get("this"), args.get("expression")):
            if not isinstance(side, exp.Expr):
                self.unknown(node)
                continue
            self.width = None
            out = self.query(side, scope)
            outs.append(out if isinstance(out, frozenset) else None)
            widths.append(self.width)
            branch = side.this if isinstance(side, exp.Subquery) else side
            if (
                isinstance(branch, exp.Select)
                and node is not self.anchor
                and _constant_branch(branch)
                and not _inline_table(node)
            ):
                self.flag(C.CONSTANT_UNION, "a set-operation branch selects only constants", branch)
        if (
            len(widths) == 2
            and widths[0] is not None
            and widths[1] is not None
            and widths[0] != widths[1]
        ):
            self.flag(
                C.SET_OPERATION_MISMATCH,
                f"the sides of {type(node).__name__.upper()} select {widths[0]} and {widths[1]} columns",
                node,
            )
        order = args.get("order")
        if order is not None:
            if widths and widths[0] is not None:
                self.positions(order, widths[0], "ORDER BY")
            result = _Scope(outer)
            result.sources["<setop>"] = _Source(
                "<setop>", outs[0] if outs else None, None, frozenset()
            )
            self.generic(order, result)
        for key in ("limit", "offset"):
            if args.get(key) is not None:
                self.generic(args[key], scope)
        self.width = widths[0] if widths else None
        self.last_denied = frozenset()
        return outs[0] if outs else None

    # ----------------------------------------------------------------- select
    def select(self, node: exp.Select, outer: _Scope | None) -> frozenset[str] | None:
        scope = _Scope(outer)
        self.enter(node)
        # a derived table or CTE body: denied columns its SELECT * passes on are
        # carried to the outer query (reported where they are read), not reported here
        parent = node.parent
        inline = isinstance(parent, exp.CTE) or (
            isinstance(parent, exp.Subquery) and isinstance(parent.parent, (exp.From, exp.Join))
        )
        saved_carry = self.carry
        self.carry = set() if inline else None
        args = node.args
        for key, value in () if args.keys() <= _SELECT_KNOWN else args.items():
            if (
                key in _SELECT_HANDLED
                or value is None
                or value is False
                or (type(value) is list and not value)
            ):
                continue
            if key in ("operation_modifiers", "exclude", "options"):
                continue  # MySQL SQL_CALC_FOUND_ROWS etc. / Snowflake EXCLUDE: no side effects
            self.unknown(
                value[0]
                if isinstance(value, list)
                else value
                if isinstance(value, exp.Expr)
                else node
            )
        if args.get("into") is not None:
            self.flag(C.INTO, "SELECT ... INTO writes a table, variable or file", args["into"])
        if args.get("locks"):
            self.flag(
                C.LOCKING_CLAUSE,
                "locking clauses (FOR UPDATE/SHARE) are not allowed",
                args["locks"][0],
            )
        if args.get("hint") is not None:
            self.flag(C.COMMENT_HIDDEN_CODE, "optimizer hints are not allowed", args["hint"])
        if args.get("with_") is not None:
            self.with_(args["with_"], scope)
        joins = args.get("joins") or []
        if len(joins) > self.p.max_joins:
            self.flag(
                C.TOO_MANY_JOINS,
                f"{len(joins)} joins; at most {self.p.max_joins} allowed",
                joins[0],
            )
        from_ = args.get("from_")
        sources: list[exp.Expr] = []
        if from_ is not None:
            if isinstance(from_, exp.From) and isinstance(from_.this, exp.Expr):
                sources.append(from_.this)
                for extra in from_.expressions:
                    sources.append(extra)
            else:
                self.unknown(from_)
        for join in joins:
            if isinstance(join, exp.Join) and isinstance(join.this, exp.Expr):
                sources.append(join.this)
            else:
                self.unknown(join)
        for lateral in args.get("laterals") or []:
            sources.append(lateral)
        for pivot in args.get("pivots") or []:
            self.generic(pivot, scope)
        for src in sources:
            self.source(src, scope)
        # joins' conditions, once every source is known
        links: list[exp.Expr | None] = []  # join conditions (None: USING)
        for join in joins:
            if not isinstance(join, exp.Join):
                continue
            for key, value in join.args.items():
                if (
                    value is None
                    or value is False
                    or (type(value) is list and not value)
                    or key in ("this", "side", "kind", "method", "global_", "natural")
                ):
                    continue
                if key == "on":
                    self.condition(value, scope, "ON")
                    links.append(value)
                elif key == "using":
                    names = {_lower(i.name) for i in value}
                    for n in names:
                        self.column_name(n, None, scope, join)
                    links.append(None)
                elif key in ("match_condition",):
                    self.generic(value, scope)
                else:
                    self.unknown(
                        value[0]
                        if isinstance(value, list) and value
                        else value
                        if isinstance(value, exp.Expr)
                        else join
                    )
        # select list
        projections = node.expressions
        outputs: list[str] = []
        star_cols: set[str] | None = set()
        # select-list aliases are known everywhere in this SELECT (ORDER BY, GROUP BY,
        # HAVING, and the lateral aliases of Snowflake, BigQuery, DuckDB...)
        scope.aliases = frozenset(
            proj.alias.lower() for proj in projections if type(proj) is exp.Alias
        )
        pending: list[exp.Expr] = []  # projections walked together, in order
        for proj in projections:
            if isinstance(proj, exp.Star) or (
                isinstance(proj, exp.Column) and isinstance(proj.this, exp.Star)
            ):
                if pending:
                    self.generic(pending[::-1], scope)
                    pending = []
                cols = self.star(proj, scope)
                if cols is None or star_cols is None:
                    star_cols = None
                else:
                    star_cols |= cols
                continue
            outputs.append(proj.alias_or_name.lower())
            pending.append(proj)
        if pending:
            self.generic(pending[::-1], scope)
        distinct = args.get("distinct")
        if distinct is not None:
            self.generic(distinct, scope)
        where = args.get("where")
        if where is not None:
            self.condition(where.this, scope, "WHERE")
            self.cartesian(node, sources, links, where.this, scope)
        elif len(sources) > self.p.max_cartesian:
            self.cartesian(node, sources, links, None, scope)
        for key in ("group", "having", "qualify", "windows"):
            value = args.get(key)
            if value is None:
                continue
            if key == "having":
                self.condition(value.this, scope, "HAVING")
            elif key == "qualify":
                self.condition(value.this, scope, "QUALIFY")
            elif key == "windows":
                for w in value:
                    self.generic(w, scope)
            else:
                self.positions(value, len(projections), "GROUP BY")
                self.generic(value, scope)
        order = args.get("order")
        if order is not None:
            self.positions(order, len(projections), "ORDER BY")
            self.generic(order, scope)
        for key in ("limit", "offset"):
            if args.get(key) is not None:
                self.generic(args[key], scope)
        self.depth -= 1
        carried, self.carry = self.carry, saved_carry
        self.last_denied = frozenset(carried) if carried else frozenset()
        if star_cols is None:
            self.width = None
            return None
        has_star = len(outputs) != len(projections)
        self.width = len(outputs) + len(star_cols) if has_star else len(projections)
        return frozenset(outputs) | frozenset(star_cols)

    def positions(self, node: exp.Expr, count: int, clause: str) -> None:
        for item in node.expressions:
            target = item.this if isinstance(item, exp.Ordered) else item
            if isinstance(target, exp.Literal) and not target.is_string:
                try:
                    pos = int(target.this)
                except ValueError:
                    continue
                if pos < 1 or pos > count:
                    self.flag(
                        C.ORDER_BY_POSITION,
                        f"{clause} {pos} is past the {count} selected columns",
                        target,
                    )

    def cartesian(
        self,
        node: exp.Select,
        sources: list[exp.Expr],
        links: list[exp.Expr | None],
        where: exp.Expr | None,
        scope: _Scope,
    ) -> None:
        if len(sources) <= self.p.max_cartesian:
            return
        # each join with a real condition ties its table to another: only cross
        # joins (and comma joins) can multiply independent sources (tested first:
        # the cheaper of the two pure early exits)
        row_dependent = self.row_dependent
        conditioned = sum(
            1 for on in links if on is None or id(on) in row_dependent or not _is_constant(on)
        )
        if len(sources) - conditioned <= self.p.max_cartesian:
            return
        names = [
            _lower(s.alias_or_name)
            for s in sources
            if isinstance(s, exp.Table)
            and isinstance(s.this, exp.Identifier)
            and not (not s.args.get("db") and scope.cte(_lower(s.name))[0])
        ]
        if len(names) <= self.p.max_cartesian:
            return
        groups: list[set[str]] = [
            self.qualifiers(on, scope) if on is not None else {"*using*"} for on in links
        ]
        if where is not None:
            for conj in where.flatten() if isinstance(where, exp.And) else [where]:
                groups.append(self.qualifiers(conj, scope))
        if any("*using*" in g or "*unknown*" in g for g in groups):
            return
        parent = {n: n for n in names}

        def find(x: str) -> str:
            while parent[x] != x:
                x = parent[x]
            return x

        for g in groups:
            members = [n for n in g if n in parent]
            for other in members[1:]:
                parent[find(other)] = find(members[0])
        components = len({find(n) for n in names})
        if components > self.p.max_cartesian:
            self.flag(
                C.TOO_MANY_JOINS, f"a cartesian product of {components} unrelated sources", node
            )

    def qualifiers(self, node: exp.Expr, scope: _Scope) -> set[str]:
        out: set[str] = set()
        for col in node.find_all(exp.Column):
            if col.table:
                out.add(_lower(col.table))
            else:
                owner = self.owner(_lower(col.name), scope)
                out.add(owner if owner else "*unknown*")
        return out

    def owner(self, name: str, scope: _Scope) -> str | None:
        found = [
            alias
            for alias, src in scope.sources.items()
            if src.columns is not None and name in src.columns
        ]
        if len(found) == 1:
            return found[0]
        if len(scope.sources) == 1:
            return next(iter(scope.sources))
        return None

    # ---------------------------------------------------------------- sources
    def source(self, node: exp.Expr, scope: _Scope) -> None:
        if isinstance(node, exp.Table):
            self.table(node, scope)
        elif isinstance(node, exp.Subquery):
            self.last_denied = frozenset()
            out = (
                self.subquery(node, scope.parent if scope.parent else None)
                if not isinstance(node.this, exp.Values)
                else None
            )
            if isinstance(node.this, exp.Values):
                self.generic(node.this, scope)
            alias = node.args.get("alias")
            cols: frozenset[str] | None = out if isinstance(out, frozenset) else None
            if isinstance(alias, exp.TableAlias) and alias.columns:
                cols = frozenset(_lower(c.name) for c in alias.columns)
            name = _lower(node.alias) or f"<subquery{len(scope.sources)}>"
            scope.sources[name] = _Source(name, cols, None, self.last_denied)
        elif isinstance(node, (exp.Unnest, exp.Lateral, exp.TableFromRows)):
            self.generic(node, scope)
            alias = node.args.get("alias")
            name = _lower(node.alias) or f"<{type(node).__name__.lower()}{len(scope.sources)}>"
            cols = None
            if isinstance(alias, exp.TableAlias) and alias.columns:
                cols = frozenset(_lower(c.name) for c in alias.columns)
            scope.sources[name] = _Source(name, cols, None, frozenset())
        elif isinstance(node, exp.Values):
            self.generic(node, scope)
            name = _lower(node.alias) or f"<values{len(scope.sources)}>"
            scope.sources[name] = _Source(name, None, None, frozenset())
        else:
            self.unknown(node)

    def table(self, node: exp.Table, scope: _Scope) -> None:
        args = node.args
        for key, value in () if args.keys() <= _TABLE_NAME_ARGS else args.items():
            if key in _TABLE_NAME_ARGS or value is None or value is False:
                continue
            if key in (
                "joins",
                "laterals",
                "pivots",
                "hints",
                "sample",
                "version",
                "only",
                "ordinality",
            ):
                if isinstance(value, list):
                    for v in value:
                        self.generic(v, scope)
                elif isinstance(value, exp.Expr):
                    self.generic(value, scope)
                continue
            self.unknown(
                value[0]
                if isinstance(value, list) and value
                else value
                if isinstance(value, exp.Expr)
                else node
            )
        this = node.this
        alias_node = node.args.get("alias")
        alias = node.alias.lower()
        declared = None
        if isinstance(alias_node, exp.TableAlias) and alias_node.columns:
            declared = frozenset(
                _lower(c.name) for c in alias_node.columns if isinstance(c, exp.Expr)
            )
        if isinstance(this, (exp.Func, exp.Anonymous)):
            # a table function: read_csv(...), generate_series(...), dblink(...)
            self.generic(this, scope)
            name = alias or f"<function{len(scope.sources)}>"
            scope.sources[name] = _Source(name, declared, None, frozenset())
            return
        if not isinstance(this, exp.Identifier):
            self.unknown(this if isinstance(this, exp.Expr) else node)
            return
        parts = self.c._parts_of(node)
        if len(parts) == 1:
            is_cte, cte_cols, cte_denied = scope.cte(this.name.lower())
            if is_cte:
                name = alias or this.name.lower()
                scope.sources[name] = _Source(
                    name, declared if declared is not None else cte_cols, None, cte_denied
                )
                return
        info = self.c.table_info(parts)
        display = info.display
        self.tables.add(display)
        if info.problem is not None:
            self.flag(info.problem[0], info.problem[1], node)
        columns = info.columns
        if declared is not None:
            columns = declared
        denied = info.denied
        name = alias or parts[-1].lower()
        scope.sources[name] = _Source(parts[-1], columns, display, denied)
        if not alias and len(parts) > 1:
            scope.sources.setdefault(_lower(".".join(parts)), scope.sources[name])
        for fparts, cond, _names in self.c.row_filters:
            # like a deny rule: public.orders is filtered by a filter on orders
            if self.c._denied_match(parts, fparts) and not self.already_filtered(node, cond):
                self.wraps.append((node, cond))

    def already_filtered(self, node: exp.Table, cond: exp.Expr) -> bool:
        from_ = node.parent
        select = from_.parent if from_ is not None else None
        if not (isinstance(from_, exp.From) and isinstance(select, exp.Select)):
            return False
        if not isinstance(select.parent, exp.Subquery) or select.args.get("joins"):
            return False
        exprs = select.expressions
        where = select.args.get("where")
        if len(exprs) != 1 or not isinstance(exprs[0], exp.Star) or where is None:
            return False
        bound = self.bind(cond)
        return bound is not None and where.this == bound

    # ---------------------------------------------------------------- columns
    def star(self, node: exp.Expr, scope: _Scope) -> set[str] | None:
        qualifier = _lower(node.table) if isinstance(node, exp.Column) else ""
        if isinstance(node, exp.Column):
            for key in ("db", "catalog"):
                if node.args.get(key) is not None:
                    qualifier = ""
        star = node.this if isinstance(node, exp.Column) else node
        if isinstance(star, exp.Star):
            for value in star.args.values():
                if value:
                    self.generic(value[0] if isinstance(value, list) else value, scope)
        if qualifier:
            src = self.lookup(qualifier, scope)
            if src is None:
                if self.c.schema is not None:
                    self.flag(C.UNKNOWN_TABLE, f"{qualifier!r} is not a table in scope", node)
                return None
            srcs = [src]
        else:
            srcs = list(scope.sources.values())
        out: set[str] | None = set()
        carry = self.carry if isinstance(node.parent, exp.Select) else None
        for src in srcs:
            if src.denied:
                for col in sorted(src.denied):
                    if carry is not None:
                        carry.add(col)
                    elif src.columns is None or col in src.columns:
                        self.flag(
                            C.COLUMN_DENIED,
                            f"SELECT * reads the denied column {src.name}.{col}",
                            node,
                        )
            if src.columns is None:
                out = None
            else:
                if src.key:
                    self.columns.update(f"{src.key}.{c}" for c in src.columns)
                if out is not None:
                    out |= src.columns
        return out

    def lookup(self, qualifier: str, scope: _Scope) -> _Source | None:
        s: _Scope | None = scope
        while s is not None:
            src = s.sources.get(qualifier)
            if src is not None:
                return src
            s = s.parent
        return None

    def column(self, node: exp.Column, scope: _Scope) -> None:
        args = node.args
        this = args.get("this")
        if type(this) is exp.Star:
            self.star(node, scope)
            return
        name = str(this.this).lower() if type(this) is exp.Identifier else node.name.lower()
        qualifier = args.get("table")
        if qualifier is not None:
            # the common case, alias.column of a source in scope (what lookup + use do)
            qname = str(qualifier.name).lower()
            s: _Scope | None = scope
            while s is not None:
                src = s.sources.get(qname)
                if src is not None:
                    cols = src.columns
                    if cols is not None and name in cols and name not in src.denied:
                        if src.key:
                            self.columns.add(f"{src.key}.{name}")
                        return
                    break
                s = s.parent
        # db.table.column: the table part is matched against the sources
        self.column_name(
            name,
            str(qualifier.name).lower() if qualifier is not None else None,
            scope,
            node,
        )

    def column_name(self, name: str, qualifier: str | None, scope: _Scope, node: exp.Expr) -> None:
        if qualifier:
            src = self.lookup(qualifier, scope)
            if src is None:
                if self.c.schema is not None:
                    self.flag(
                        C.UNKNOWN_TABLE,
                        f"{qualifier!r} is not a table in scope (column {qualifier}.{name})",
                        node,
                    )
                else:
                    self.denied_any(name, node)
                return
            self.use(src, name, node)
            return
        s: _Scope | None = scope
        all_known = True
        while s is not None:
            whole = s.sources.get(name)
            if (
                whole is not None
                and whole.denied
                and (whole.columns is None or name not in whole.columns)
            ):
                # PostgreSQL reads a bare table name or alias as the whole row
                self.flag(
                    C.COLUMN_DENIED,
                    f"{name!r} reads whole rows of {whole.name}, denied columns included",
                    node,
                )
                return
            hits = [
                src for src in s.sources.values() if src.columns is not None and name in src.columns
            ]
            unknown = [src for src in s.sources.values() if src.columns is None]
            if hits:
                for src in hits:
                    self.use(src, name, node)
                for src in unknown:
                    if name in src.denied:
                        self.flag(C.COLUMN_DENIED, f"column {src.name}.{name} is denied", node)
                return
            if unknown:
                all_known = False
                for src in unknown:
                    self.use(src, name, node)
                return
            if name in s.aliases:
                return
            s = s.parent
        if self.c.schema is not None and all_known:
            if self.sqlite_string(node):
                return
            self.flag(C.UNKNOWN_COLUMN, f"column {name!r} is not in any table in scope", node)
        else:
            self.denied_any(name, node)

    def sqlite_string(self, node: exp.Expr) -> bool:
        # SQLite reads an unresolvable "double-quoted" identifier as a string
        if not self.c.sqlite_strings or not isinstance(node, exp.Column):
            return False
        ident = node.this
        return (
            isinstance(ident, exp.Identifier) and bool(ident.args.get("quoted")) and not node.table
        )

    def denied_any(self, name: str, node: exp.Expr) -> None:
        if name in self.c.denied_cols:
            self.flag(C.COLUMN_DENIED, f"column {name!r} may be a denied column", node)

    def use(self, src: _Source, name: str, node: exp.Expr) -> None:
        if src.columns is not None and name not in src.columns:
            if self.c.schema is not None:
                self.flag(C.UNKNOWN_COLUMN, f"{src.name} has no column {name!r}", node)
            return
        if name in src.denied:
            self.flag(C.COLUMN_DENIED, f"column {src.name}.{name} is denied", node)
        if src.key:
            self.columns.add(f"{src.key}.{name}")

    # ------------------------------------------------------------- conditions
    def condition(self, node: exp.Expr, scope: _Scope, clause: str) -> None:
        if self.p.flag_constant_predicates:
            self.constants(node, clause, top=clause in ("WHERE", "ON"))
        self.generic(node, scope)

    def constants(self, node: exp.Expr, clause: str, top: bool, in_or: bool = False) -> None:
        """Flag conditions that do not depend on the row.

        ``WHERE 1=1 AND ...`` (a constant TRUE as the first conjunct, the
        query-builder idiom) and ``... OR 1=0`` (a constant FALSE disjunct) change
        nothing and pass; ``... OR 1=1`` (makes the whole condition true),
        ``... AND 1=0`` and every other constant condition are reported.
        """
        if not in_or and type(node) in _COMPARISONS:
            args = node.args
            if type(args.get("this")) is exp.Column or type(args.get("expression")) is exp.Column:
                # the common ``column <op> ...`` outside an OR: depends on the row,
                # nothing more to check (what the general path below concludes)
                self.row_dependent.add(id(node))
                return
        while isinstance(node, exp.Paren):
            node = node.this
        if isinstance(node, exp.And):
            for i, part in enumerate(self.operands(node, exp.And)):
                self.constants(part, clause, top and i == 0)
            return
        if id(node) in self.row_dependent:
            pass  # already found to depend on the row (a condition seen again)
        elif not _is_constant(node):
            self.row_dependent.add(id(node))
        else:
            if (top and _trivially_true(node)) or (
                in_or and _const_eval(node) is False and not _has_string(node)
            ):
                self.mark(node)
                return
            self.flag(
                C.CONSTANT_PREDICATE,
                f"constant condition in {clause}: {node.sql(self.c.dialect)[:60]}",
                node,
            )
            self.mark(node)
            return
        if in_or and type(node) in _REFLEXIVE:
            this, other = node.args.get("this"), node.args.get("expression")
            if type(this) is exp.Column and type(other) is exp.Column and this == other:
                # OR x = x: true on every row where x is set
                self.flag(
                    C.CONSTANT_PREDICATE,
                    f"{this.sql(self.c.dialect)} is compared with itself in an OR",
                    node,
                )
                return
        if isinstance(node, exp.Or):
            for part in self.operands(node, exp.Or):
                self.constants(part, clause, False, in_or=True)
        elif isinstance(node, exp.Not):
            self.constants(node.this, clause, False)
        elif isinstance(node, exp.Xor):
            self.flag(C.CONSTANT_PREDICATE, f"XOR in {clause} is not allowed as a condition", node)

    def operands(self, node: exp.Expr, cls: type[exp.Expr]) -> list[exp.Expr]:
        """The operands of a chain of ``cls`` (AND or OR), left to right.

        Every ``cls`` node of the chain (``a AND b AND c`` is ``(a AND b) AND c``) is
        remembered as seen, so the expression walk does not judge an inner link
        again as a condition of its own.
        """
        out: list[exp.Expr] = []
        stack = [node]
        while stack:
            n = stack.pop()
            if type(n) is cls:
                self.bool_seen.add(id(n))
                stack.append(n.args["expression"])
                stack.append(n.this)
            else:
                out.append(n)
        return out

    def mark(self, node: exp.Expr) -> None:
        """Remember an already-reported constant condition so it is reported once."""
        for sub in node.walk():
            self.idiom.add(id(sub))
            self.bool_seen.add(id(sub))

    # ------------------------------------------------------------ expressions

    def generic(self, node: exp.Expr | list[exp.Expr], scope: _Scope | None) -> None:
        """Walk an expression: every node class must be known (fail closed).

        ``node`` may be a list of expressions, walked last first (it is the stack).
        """
        if scope is None:
            scope = _Scope(None)
        action, special, plain = _DISPATCH.get, _SPECIAL, self.c.plain_functions
        stack: list[exp.Expr] = node if isinstance(node, list) else [node]
        pop, push, expr = stack.pop, stack.append, exp.Expr
        ident, column, add_column = exp.Identifier, exp.Column, self.columns.add
        backslashes = self.backslashes
        while stack:
            n = pop()
            cls = type(n)
            if cls is ident:
                continue
            if cls is column:
                # alias.column of a known, allowed column of a source in scope: recorded
                # here (the common case); everything else goes through ``column``
                args = n.args
                this, qualifier = args.get("this"), args.get("table")
                if type(this) is ident and type(qualifier) is ident and type(qualifier.this) is str:
                    qname = qualifier.this.lower()
                    s: _Scope | None = scope
                    src = None
                    while s is not None:
                        src = s.sources.get(qname)
                        if src is not None:
                            break
                        s = s.parent
                    if src is not None and src.columns is not None:
                        name = str(this.this).lower()
                        if name in src.columns and name not in src.denied:
                            if src.key:
                                add_column(f"{src.key}.{name}")
                            continue
                self.column(n, scope)  # type: ignore[arg-type]
                continue
            if cls is exp.Literal:
                if backslashes:
                    self.special(n, cls)
                continue
            act = action(cls)
            if act is None:
                # not a class the walker knows
                if cls in _WRITE_NODES or isinstance(n, _WRITE_NODES):
                    self.flag(
                        C.DATA_MODIFYING_CTE,
                        f"a {cls.__name__.upper()} inside a query changes data",
                        n,
                    )
                else:
                    self.unknown(n)
                continue
            if act == _ACT_FUNCTION:
                if cls not in plain or isinstance(n.parent, exp.Dot):
                    self.function(n)
                if cls in special:
                    self.special(n, cls)
            elif act == _ACT_SPECIAL:
                self.special(n, cls)
            elif act == _ACT_RARE:
                if cls in _QUERY_ROOTS:
                    self.width = None
                    self.query(n, scope)
                    self.scalar_width(n)
                    continue
                if cls is exp.Table:
                    self.source(n, _Scope(scope))
                    continue
                if self.rare(n, cls, scope):
                    continue
            # the children, last first (what ``extend(n.iter_expressions(reverse=True))``
            # pushes, without the generator)
            for value in reversed(n.args.values()):
                if isinstance(value, list):
                    for item in reversed(value):
                        if isinstance(item, expr):
                            push(item)
                elif isinstance(value, expr):
                    push(value)

    def scalar_width(self, n: exp.Expr) -> None:
        """A subquery used as a value must select one column (or the IN tuple's width)."""
        width = self.width
        parent = n.parent
        if width is None or isinstance(parent, (exp.Exists, exp.Array, exp.Lateral, *_SETOPS)):
            return
        expected = 1
        if isinstance(parent, exp.In) and isinstance(parent.this, exp.Tuple):
            expected = len(parent.this.expressions)
        if width != expected:
            self.flag(
                C.SUSPICIOUS_EXPRESSION,
                f"a subquery used as a value selects {width} columns (expected {expected})",
                n,
            )

    def rare(self, n: exp.Expr, cls: type[exp.Expr], scope: _Scope) -> bool:
        """Rules for uncommon node classes; True when the children are handled."""
        if cls is exp.SessionParameter or (
            cls is exp.Parameter and self.p.dialect in ("mysql", "tsql")
        ):
            self.flag(
                C.SYSTEM_CATALOG, f"system variable {n.sql(self.c.dialect)} is not allowed", n
            )
            return True
        if cls is exp.PropertyEQ and isinstance(n.this, (exp.Parameter, exp.SessionParameter)):
            self.flag(C.VARIABLE_ASSIGNMENT, "assignments (:=) are not allowed", n)
        elif cls is exp.Into:
            self.flag(C.INTO, "INTO writes a table, variable or file", n)
        elif cls is exp.Lock:
            self.flag(C.LOCKING_CLAUSE, "locking clauses (FOR UPDATE/SHARE) are not allowed", n)
        elif cls is exp.Hint:
            self.flag(C.COMMENT_HIDDEN_CODE, "optimizer hints are not allowed", n)
        elif cls is exp.Star and isinstance(n.parent, exp.Select):
            self.star(n, scope)
            return True
        return False

    def special(self, n: exp.Expr, cls: type[exp.Expr]) -> None:
        """Rules for operators that injections abuse (cheap: only these classes)."""
        if cls in _COMPARISONS:
            this, other = n.args.get("this"), n.args.get("expression")
            if type(this) in _NESTED_SIDES or type(other) in _NESTED_SIDES:
                for side, rest in ((this, other), (other, this)):
                    inner = side.this if type(side) is exp.Paren else side
                    if type(inner) in _COMPARISONS and (
                        side is inner or (isinstance(rest, exp.Literal) and cls is not exp.In)
                    ):
                        # a = 'x' = '' (unparenthesised), or (a = 'x') IS 0 / <=> 'B': the
                        # result of a comparison compared with a constant string or number
                        self.flag(
                            C.SUSPICIOUS_EXPRESSION,
                            "a comparison compares the result of another comparison",
                            n,
                        )
                        return
            if (
                self.p.flag_constant_predicates
                and id(n) not in self.row_dependent
                and id(n) not in self.idiom
                and isinstance(this, exp.Expr)
                and (isinstance(other, exp.Expr) or cls is exp.In or cls is exp.Between)
                and _is_constant(n)
            ):
                if cls is exp.In and not n.expressions and n.args.get("query") is None:
                    self.flag(C.SUSPICIOUS_EXPRESSION, "an empty IN () list", n)
                    return
                self.flag(
                    C.CONSTANT_PREDICATE,
                    f"a comparison of constants: {n.sql(self.c.dialect)[:60]}",
                    n,
                )
            elif (
                cls is exp.In
                and not n.expressions
                and n.args.get("query") is None
                and not n.args.get("unnest")
            ):
                self.flag(C.SUSPICIOUS_EXPRESSION, "an empty IN () list", n)
        elif cls in _ARITH:
            this, other = n.args.get("this"), n.args.get("expression")
            if (
                cls in _DIVISIONS
                and isinstance(other, exp.Literal)
                and not other.is_string
                and _number(other) == 0
            ):
                self.flag(
                    C.SUSPICIOUS_EXPRESSION, "division by a zero constant (an error probe)", n
                )
                return
            if isinstance(this, exp.Interval) or isinstance(other, exp.Interval):
                return  # date arithmetic: '2024-01-01' - INTERVAL 1 DAY
            if (
                isinstance(this, exp.Expr)
                and isinstance(other, exp.Expr)
                and (_is_string(this) or _is_string(other))
                and _is_constant(this)
                and _is_constant(other)
            ):
                self.flag(C.SUSPICIOUS_EXPRESSION, "arithmetic on string constants", n)
            elif isinstance(this, exp.Boolean) or isinstance(other, exp.Boolean):
                self.flag(C.SUSPICIOUS_EXPRESSION, "arithmetic on TRUE/FALSE", n)
            elif cls is not exp.Add and (_numeric_string(this) or _numeric_string(other)):
                self.flag(C.SUSPICIOUS_EXPRESSION, "arithmetic on a number written as a string", n)
        elif cls in _BOOLEANS:
            if id(n) not in self.bool_seen and self.p.flag_constant_predicates:
                self.constants(n, "an expression", top=False)
        elif cls is exp.Concat:
            self.concat(n)
        elif cls is exp.Case:
            operand = n.args.get("this")
            for when in n.args.get("ifs") or []:
                cond = when.this if isinstance(when, exp.If) else None
                if cond is None:
                    continue
                if (operand is None and isinstance(cond, _CONST_LEAVES)) or (
                    operand is not None and _is_constant(operand) and _is_constant(cond)
                ):
                    self.flag(
                        C.CONSTANT_PREDICATE, "a CASE branch whose condition is a constant", n
                    )
                    return
        elif cls is exp.If:
            if isinstance(n.this, _CONST_LEAVES) and not isinstance(n.parent, exp.Case):
                self.flag(C.CONSTANT_PREDICATE, "an IF whose condition is a constant", n)
        elif cls is exp.Dot:
            if isinstance(n.this, exp.Literal):
                self.flag(C.SUSPICIOUS_EXPRESSION, "a member access on a constant", n)
        elif cls is exp.Chr:
            args = list(n.iter_expressions())
            parent = n.parent
            hexed = any(isinstance(a, exp.HexString) for a in args)
            joined = isinstance(parent, (exp.DPipe, exp.Add, exp.Concat)) and any(
                isinstance(sib, exp.Chr) for sib in parent.iter_expressions() if sib is not n
            )
            if hexed or joined:
                self.flag(C.OBFUSCATION, "a string built from character codes", n)
        elif cls is exp.HexString:
            text = str(n.this or "")
            if len(text) >= 4:
                try:
                    raw = bytes.fromhex(text if len(text) % 2 == 0 else "0" + text)
                except ValueError:
                    return
                chars = raw.replace(b"\x00", b"")
                printable = sum(32 <= b < 127 for b in chars)
                if len(chars) >= 2 and printable >= 0.8 * len(chars):
                    self.flag(C.OBFUSCATION, "a hex literal that spells text", n)
        elif cls is exp.Literal:
            if self.backslashes and n.is_string:
                meta = getattr(n, "_meta", None)
                if meta and "start" in meta and "end" in meta:
                    source = self.sql[meta["start"] : meta["end"] + 1]
                    if "\\'" in source or '\\"' in source:
                        self.flag(
                            C.AMBIGUOUS_LITERAL,
                            "a backslash-escaped quote: where this string ends depends on the server's escape mode",
                            n,
                        )
        elif cls is exp.Anonymous:
            if n.name.lower() in _KEYWORDS:
                self.flag(
                    C.SUSPICIOUS_EXPRESSION,
                    f"a function named like the keyword {n.name.upper()}",
                    n,
                )
            elif any(isinstance(a, exp.Select) for a in n.expressions):
                self.flag(C.SUSPICIOUS_EXPRESSION, f"a bare query as an argument of {n.name}()", n)

    def concat(self, n: exp.Expr) -> None:
        args = list(n.iter_expressions())
        if len(args) < 2 or not all(isinstance(a, exp.Literal) and a.is_string for a in args):
            return
        spans: list[tuple[int, int]] = []
        for a in args:
            meta = getattr(a, "_meta", None)
            if not meta or "start" not in meta or "end" not in meta:
                spans = []  # sqlglot keeps no position for the later pieces of 'a' 'b'
                break
            spans.append((meta["start"], meta["end"]))
        spans.sort()
        for (_, end), (start, _) in itertools.pairwise(spans):
            if self.sql[end + 1 : start].strip():
                return  # an explicit CONCAT('a', 'b')
        self.flag(C.OBFUSCATION, "a string literal split into adjacent pieces", n)

    def function(self, node: exp.Expr) -> None:
        if isinstance(node, exp.Anonymous):
            name = node.name.lower()
        else:
            name = _FUNCTION_NAMES.get(type(node)) or type(node).__name__.lower()
        full = name
        parent = node.parent
        if isinstance(parent, exp.Dot) and parent.expression is node:
            qual = parent.this.sql(self.c.dialect).lower().replace('"', "").replace("`", "")
            full = f"{qual}.{name}"
            root = qual.split(".")[0]
            if (
                root in R.DENIED_PACKAGES or qual.startswith(("dbms_", "utl_"))
            ) and full not in self.c.allowed_functions:
                self.flag(C.FUNCTION_DENIED, f"function {full}() is not allowed", node)
                return
        if name in self.c.allowed_functions or full in self.c.allowed_functions:
            return
        if (
            name in self.c.denied_functions
            or full in self.c.denied_functions
            or name.startswith(R.DENIED_FUNCTION_PREFIXES)
        ):
            self.flag(C.FUNCTION_DENIED, f"function {full}() is not allowed", node)
            return
        if (
            name in R.INFO_FUNCTIONS or type(node) in _INFO_CLASSES
        ) and not self.p.allow_system_catalogs:
            self.flag(
                C.SYSTEM_CATALOG, f"server information function {name}() is not allowed", node
            )
            return
        if (
            name in R.GENERATOR_FUNCTIONS
            or name in R.SIZE_FUNCTIONS
            or "generate" in name
            or "series" in name
            or "range" in name
        ):
            limit = self.p.max_generated_rows
            for arg in node.iter_expressions():
                value = _number(arg)
                if value is not None and abs(value) > limit:
                    self.flag(
                        C.RESOURCE_EXHAUSTION,
                        f"{name}() asked for {value:g}; the limit is {limit}",
                        node,
                    )
                    return

    def unknown(self, node: exp.Expr | Any) -> None:
        if isinstance(node, exp.Expr):
            self.flag(
                C.UNKNOWN_NODE,
                f"{type(node).__name__} is not something the checker knows; refusing",
                node,
            )
        else:
            self.flag(C.UNKNOWN_NODE, f"unexpected syntax {node!r}; refusing")

    # ---------------------------------------------------------------- rewrite
    def bind(self, cond: exp.Expr) -> exp.Expr | None:
        bound = cond.copy()
        ok = True

        def sub(n: exp.Expr) -> exp.Expr:
            nonlocal ok
            if isinstance(n, exp.Placeholder):
                key = n.name
                if key not in self.params:
                    ok = False
                    return n
                lit = _literal(self.params[key])
                if lit is None:
                    ok = False
                    return n
                return lit
            return n

        bound = bound.transform(sub, copy=False)
        return bound if ok else None

    def rewrite(self, statements: list[exp.Expr]) -> str:
        changed = False
        for table, cond in self.wraps:
            missing = [p.name for p in cond.find_all(exp.Placeholder) if p.name not in self.params]
            if missing:
                self.flag(
                    C.MISSING_PARAMETER,
                    f"the row filter on {table.name!r} needs the parameter(s) {', '.join(sorted(set(missing)))}",
                    table,
                )
                continue
            bound = self.bind(cond)
            if bound is None:
                self.flag(
                    C.INVALID_PARAMETER,
                    f"a parameter of the row filter on {table.name!r} is not a str, int, float, bool or None",
                    table,
                )
                continue
            alias = table.alias or table.name
            inner = table.copy()
            inner.set("alias", None)
            wrapped = (
                exp.select("*").from_(inner).where(bound).subquery(alias=exp.to_identifier(alias))
            )
            table.replace(wrapped)
            changed = True
        if self.violations:
            return ""
        textual = not changed and self.p.dialect in _LIMIT_LAST
        if self.p.max_rows is not None and len(statements) == 1:
            changed = self.limit(statements[0], textual) or changed
            root = statements[0]
            if self.bound_outside and isinstance(root, exp.Query):
                outer = exp.select("*").from_(root.subquery("_bounded"))
                outer.set("limit", exp.Limit(expression=exp.Literal.number(self.p.max_rows)))
                statements[0] = outer
                self.edits = []
        if self.violations:
            return ""
        if self.edits:
            # only LIMIT changed: edit the text at the token positions (no regeneration)
            out = self.sql
            for start, end, text in sorted(self.edits, reverse=True):
                out = out[:start] + text + out[end:]
            return out
        if not changed:
            return (
                self.sql.strip().rstrip(";").rstrip()
                if self.sql.strip().endswith(";") and not self._ends_in_comment()
                else self.sql
            )
        try:
            # RAISE: a construct sqlglot cannot write in this dialect must not be
            # silently dropped from the statement we hand back (fail closed)
            return ";\n".join(
                s.sql(dialect=self.c.dialect, unsupported_level=ErrorLevel.RAISE)
                for s in statements
            )
        except Exception as exc:
            self.flag(
                C.UNKNOWN_NODE,
                f"the rewritten statement cannot be written in {self.p.dialect}: {exc}",
            )
            return ""

    def _ends_in_comment(self) -> bool:
        tail = self.sql.rstrip().rstrip(";")
        return "--" in tail.rsplit("\n", 1)[-1] or tail.endswith("*/")

    def limit(self, root: exp.Expr, textual: bool) -> bool:
        max_rows = self.p.max_rows
        assert max_rows is not None
        if not isinstance(root, (exp.Select, *_SETOPS)):
            if isinstance(root, exp.Subquery):
                # (SELECT ...) as a whole statement: limit the outside
                if root.args.get("limit") is None:
                    root.set("limit", exp.Limit(expression=exp.Literal.number(max_rows)))
                    return True
                return False
            return False
        current = root.args.get("limit")
        if current is None:
            end = self.statement_end
            if textual and end is not None:
                self.edits.append((end, len(self.sql), f" LIMIT {max_rows}"))
                return False
            root.set("limit", exp.Limit(expression=exp.Literal.number(max_rows)))
            return True
        value_node = (
            current.args.get("expression")
            if isinstance(current, exp.Limit)
            else current.args.get("count")
        )
        if isinstance(current, exp.Fetch) and value_node is None:
            value_node = exp.Literal.number(1)
        if isinstance(current, (exp.Fetch, exp.Limit)):
            opts = current.args.get("limit_options")
            if opts is not None and (opts.args.get("percent") or opts.args.get("with_ties")):
                # PERCENT and WITH TIES can return any number of rows: bound them from outside
                self.bound_outside = True
                return True
        value = _number(value_node) if isinstance(value_node, exp.Expr) else None
        if value is None or value != int(value) or value < 0:
            self.flag(C.LIMIT_TOO_LARGE, "the row limit is not a constant number", current)
            return False
        if value <= max_rows:
            return False
        if not self.p.clamp_limit:
            self.flag(
                C.LIMIT_TOO_LARGE, f"LIMIT {int(value)} is above max_rows={max_rows}", current
            )
            return False
        meta = getattr(value_node, "_meta", None)
        if (
            textual
            and isinstance(value_node, exp.Literal)
            and meta
            and "start" in meta
            and "end" in meta
        ):
            self.edits.append((meta["start"], meta["end"] + 1, str(max_rows)))
            return False
        key = "expression" if isinstance(current, exp.Limit) else "count"
        current.set(key, exp.Literal.number(max_rows))
        return True


# -------------------------------------------------------------------- helpers
def _is_catalog(parts: tuple[str, ...]) -> bool:
    name = parts[-1]
    if any(p in R.CATALOG_SCHEMAS for p in parts[:-1]):
        return True
    if name in R.CATALOG_TABLES or name == "information_schema":
        return True
    return name.startswith(R.CATALOG_PREFIXES)


def _inline_table(node: exp.Expr) -> bool:
    """Whether a set operation builds a named inline table (a CTE body or a derived
    table) or selects only constants on every side: a list of constants, not a
    UNION appended to a query that reads a table."""
    branches: list[exp.Expr] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, _SETOPS):
            stack.extend(x for x in (n.this, n.expression) if isinstance(x, exp.Expr))
        elif isinstance(n, exp.Subquery) and isinstance(n.this, exp.Expr):
            stack.append(n.this)
        else:
            branches.append(n)
    if all(
        isinstance(b, exp.Select) and _constant_branch(b) and not b.args.get("from_")
        for b in branches
    ):
        return True
    parent = node.parent
    while isinstance(parent, (*_SETOPS, exp.Subquery)):
        if isinstance(parent, exp.Subquery) and isinstance(parent.parent, (exp.From, exp.Join)):
            return True
        parent = parent.parent
    return isinstance(parent, (exp.CTE, exp.From, exp.Join))


def _constant_branch(node: exp.Select) -> bool:
    """A SELECT whose every projection is a constant (``SELECT NULL, 2, 'x'``)."""
    projections = node.expressions
    if not projections:
        return False
    for proj in projections:
        if isinstance(proj, exp.Alias):
            proj = proj.this
        if not _is_constant(proj):
            return False
    return True


def _harmless_name(
    name: str, denied: frozenset[str], allowed: frozenset[str], system_catalogs: bool
) -> bool:
    """Whether ``_Run.function`` passes an unqualified call of ``name`` whatever its arguments."""
    if name in allowed:
        return True
    if name in denied or name.startswith(R.DENIED_FUNCTION_PREFIXES):
        return False
    if name in R.INFO_FUNCTIONS and not system_catalogs:
        return False
    return not (
        name in R.GENERATOR_FUNCTIONS
        or name in R.SIZE_FUNCTIONS
        or "generate" in name
        or "series" in name
        or "range" in name
    )


def _is_constant(node: exp.Expr) -> bool:
    """Whether an expression depends on no row: no column, parameter or table read.

    A subquery without FROM (``EXISTS (SELECT 1)``, ``(SELECT 1) = 1``) is constant.
    """
    if isinstance(node, _CONST_LEAVES):
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


_VOLATILE = frozenset({exp.Rand})
_NOT_CONSTANT_CLASSES = frozenset({exp.Column, exp.Placeholder, exp.Parameter, exp.Star, exp.Table})
_FUNCTION_NAMES: Mapping[type[exp.Expr], str] = MappingProxyType(
    {cls: str(cls.sql_name()).lower() for cls in R.FUNCTION_CLASSES if hasattr(cls, "sql_name")}
)
# dialects whose row limit is a trailing LIMIT clause (text can be appended)
_LIMIT_LAST = frozenset(
    {"sqlite", "postgres", "mysql", "duckdb", "snowflake", "bigquery", "redshift", "spark",
     "spark2", "databricks", "hive", "presto", "trino", "athena", "clickhouse", "doris",
     "starrocks", "materialize", "risingwave", "singlestore", "dune"}
)  # fmt: skip
_MYSQL_FAMILY = frozenset({"mysql", "doris", "starrocks", "singlestore"})
_INFO_CLASSES = frozenset(
    cls
    for cls in R.FUNCTION_CLASSES
    if cls.__name__.startswith(("Current", "Session"))
    and cls.__name__
    not in (
        "CurrentDate",
        "CurrentTime",
        "CurrentTimestamp",
        "CurrentDatetime",
        "CurrentTimestampLTZ",
    )
)
_COMPARISONS = frozenset(
    {exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ, exp.Like,
     exp.ILike, exp.RegexpLike, exp.RegexpILike, exp.Is, exp.In, exp.Between, exp.Glob, exp.SimilarTo}
)  # fmt: skip
_ARITH = frozenset(
    {exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.IntDiv, exp.Pow, exp.BitwiseAnd, exp.BitwiseOr,
     exp.BitwiseXor, exp.BitwiseLeftShift, exp.BitwiseRightShift}
)  # fmt: skip
_DIVISIONS = frozenset({exp.Div, exp.Mod, exp.IntDiv})
_REFLEXIVE = frozenset({exp.EQ, exp.GTE, exp.LTE, exp.NullSafeEQ, exp.Like, exp.ILike})
_BOOLEANS = frozenset({exp.And, exp.Or, exp.Xor})
# the side classes under which a comparison may hide another (``(a = 'x') = 0``)
_NESTED_SIDES = _COMPARISONS | {exp.Paren}
_SPECIAL = _COMPARISONS | _ARITH | _BOOLEANS | {exp.Case, exp.If} | {
    exp.Concat, exp.Dot, exp.Chr, exp.HexString, exp.Literal, exp.Anonymous
}  # fmt: skip
_RARE = frozenset(
    {exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Subquery, exp.Table,
     exp.SessionParameter, exp.Parameter, exp.PropertyEQ, exp.Into, exp.Lock, exp.Hint, exp.Star}
)  # fmt: skip
_TABLE_NAME_ARGS = frozenset({"this", "db", "catalog", "alias"})
# what ``_Run.generic`` does with a node class (absent: an unknown node, refused)
_ACT_PLAIN, _ACT_FUNCTION, _ACT_SPECIAL, _ACT_RARE = 0, 1, 2, 3
_DISPATCH: Mapping[type[exp.Expr], int] = MappingProxyType(
    {
        **dict.fromkeys(R.KNOWN_NODES, _ACT_PLAIN),
        **dict.fromkeys(_RARE & R.KNOWN_NODES, _ACT_RARE),
        **dict.fromkeys(_SPECIAL, _ACT_SPECIAL),
        **dict.fromkeys(R.FUNCTION_CLASSES, _ACT_FUNCTION),
    }
)
_KEYWORDS = frozenset(
    {"union", "select", "from", "where", "and", "or", "not", "having", "order", "group", "limit",
     "into", "insert", "update", "delete", "drop", "exec", "execute", "waitfor", "declare", "xor"}
)  # fmt: skip


def _has_string(node: exp.Expr) -> bool:
    """Whether a constant condition compares strings (``'a'='a'``, never an idiom)."""
    return any(isinstance(n, exp.Literal) and n.is_string for n in node.walk())


def _numeric_string(node: object) -> bool:
    if not (isinstance(node, exp.Literal) and node.is_string):
        return False
    try:
        float(str(node.this))
    except ValueError:
        return False
    return True


def _is_string(node: exp.Expr) -> bool:
    return isinstance(node, exp.Literal) and node.is_string


def _const_eval(node: exp.Expr) -> bool | None:
    """The truth value of a simple constant condition, or None when unsure."""
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, exp.Literal) and not node.is_string:
        value = _number(node)
        return None if value is None else value != 0
    if isinstance(node, exp.Not):
        inner = _const_eval(node.this)
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
        na, nb = _number(left), _number(right)
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


def _trivially_true(node: exp.Expr) -> bool:
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


def _has_stop(node: exp.Expr) -> bool:
    """Whether a recursive step has a WHERE, LIMIT or join condition that can end it."""
    if not isinstance(node, exp.Select):
        return True
    return any(
        node.args.get(k) is not None for k in ("where", "limit", "having", "qualify")
    ) or any(
        isinstance(j, exp.Join) and j.args.get("on") is not None
        for j in node.args.get("joins") or []
    )


def _number(node: exp.Expr | None) -> float | None:
    negative = False
    while isinstance(node, (exp.Paren, exp.Neg)):
        if isinstance(node, exp.Neg):
            negative = not negative
        node = node.this
    if isinstance(node, exp.Literal) and not node.is_string:
        try:
            value = float(node.this)
        except ValueError:
            return None
        return -value if negative else value
    if isinstance(node, (exp.Mul, exp.Pow, exp.Div, exp.Add, exp.Sub)):
        a, b = _number(node.this), _number(node.expression)
        if a is None or b is None:
            return None
        try:
            if isinstance(node, exp.Mul):
                return a * b
            if isinstance(node, exp.Div):
                return a / b if b else None
            if isinstance(node, exp.Add):
                return a + b
            if isinstance(node, exp.Sub):
                return a - b
            return float(a**b) if abs(b) < 400 else float("inf")
        except (OverflowError, ZeroDivisionError):
            return float("inf")
    return None


def _literal(value: object) -> exp.Expr | None:
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int):
        return exp.Literal.number(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return None
        return exp.Literal.number(repr(value))
    if isinstance(value, str):
        if "\x00" in value:
            return None
        return exp.Literal.string(value)
    return None


_CODE_PATTERN = re.compile(
    r"\b(order|group)\s+by\b|\blimit\s+\d|\(\s*select\b|\bunion\b.*\bselect\b|"
    r"\b(and|or)\s+[\w.]+\s*(=|<|>|!=|like\b|in\s*\()|;\s*(drop|delete|insert|update|shutdown|exec|declare)\b|"
    r"\bsp_password\b",
    re.IGNORECASE,
)
_STRAY_QUOTE = re.compile(r"(?<![A-Za-z])['\"`]|['\"`](?![A-Za-z])")


def _looks_like_code(text: str, trailing: bool, inline_empty: bool = False) -> bool:
    """A comment that holds SQL it swallowed, rather than prose.

    Comments written by people or models are prose (``-- top customers``). A
    comment that is empty (the bare ``--`` that cuts a query short), that starts
    by closing a string or parenthesis, that holds a quote outside a word (the
    leftover of the string an injection escaped), or that holds clauses such as
    ``ORDER BY``/``AND x =``/``(SELECT`` is the tail of a query that an
    injection cut off.
    """
    stripped = text.strip()
    if not stripped:
        # a bare trailing -- cuts a query short; an empty /**/ is a space in disguise
        return trailing or inline_empty
    if stripped[0] in "'\")`":
        return True
    if not trailing:
        return False
    if _STRAY_QUOTE.search(stripped):
        return True
    return bool(_CODE_PATTERN.search(stripped))
