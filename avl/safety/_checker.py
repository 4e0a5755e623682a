"""The pure checker: one tokenisation, one parse, one walk of the tree.

``Checker`` is built once per policy (it compiles the function allow-lists, pre-parses
row filters and normalises names) and then checks SQL texts without any shared mutable
state, so one instance can serve many threads. A check is, in order:

1. the text limits and the parse (``parse_error``, ``too_long``, ``empty``...);
2. the comment scan (``_comments.py``);
3. one walk of each statement through the node-class -> handler table of
   ``rules/__init__.py``;
4. the rewrite (``_rewrite.py``): row filters, ``LIMIT``, SQLite double-quoted strings.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect, NormalizationStrategy
from sqlglot.parser import Parser
from sqlglot.tokenizer_core import Token, TokenType
from sqlglot.tokens import Tokenizer

from avl._lazy import lazy_module
from avl.errors import AvlError, ConfigError, InvalidTypeError
from avl.safety import _comments
from avl.safety._policy import Policy
from avl.safety._verdict import Position, StatementKind, Verdict, Violation, ViolationCode
from avl.safety._walk import Rel, Run
from avl.safety.allowlists import catalog
from avl.safety.rules import PLAIN_CLASSES, QUERIES, TABLE, nameless, statements

if TYPE_CHECKING:
    from avl.safety import _rewrite
    from avl.safety._template import Template
    from avl.safety.rules import relations, resources
else:  # imported when a check first meets a table, a function call or a rewrite
    _rewrite = lazy_module("avl.safety._rewrite", __name__)
    relations = lazy_module("avl.safety.rules.relations", __name__)
    resources = lazy_module("avl.safety.rules.resources", __name__)

__all__ = ["Checker"]

C = ViolationCode
_MYSQL_FAMILY = frozenset({"mysql", "doris", "starrocks", "singlestore"})


class _TableInfo:
    """The policy's verdict on one real table name (immutable once built)."""

    __slots__ = ("colset", "columns", "denied", "display", "problem")

    def __init__(
        self,
        display: str,
        problem: tuple[ViolationCode, str] | None,
        columns: tuple[str, ...] | None,
        denied: frozenset[str],
    ) -> None:
        self.display = display
        self.problem = problem
        self.columns = columns
        self.colset = frozenset(columns) if columns is not None else None
        self.denied = denied


class RowFilter:
    """One row filter: the table it applies to, its condition and its template."""

    __slots__ = ("cond", "names", "parts", "template")

    def __init__(
        self, parts: tuple[str, ...], cond: exp.Expr, names: tuple[str, ...], template: Template
    ) -> None:
        self.parts = parts
        self.cond = cond
        self.names = names
        self.template = template


_PREFIX = "SELECT * FROM t WHERE "


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
        self.table = TABLE
        self.plain = PLAIN_CLASSES
        self.queries = QUERIES
        self._local = threading.local()  # per-thread tokenizer and parser (they keep state)
        self._tables: dict[tuple[str, ...], _TableInfo] = {}
        self._parts: dict[tuple[str, bool], tuple[str, ...]] = {}
        # bare table names already judged: name -> (scope name, relation, display, problem)
        self.simple_tables: dict[
            tuple[str, object], tuple[str, Rel, str, tuple[ViolationCode, str] | None]
        ] = {}
        # the schema unqualified names resolve to, when the policy pins it
        self.default_schema: tuple[str, ...] = (
            self._table_parts(policy.default_schema) if policy.default_schema else ()
        )
        self.allowed = (
            None
            if policy.allowed_tables is None
            else [self.resolved(self._table_parts(t)) for t in policy.allowed_tables]
        )
        self.denied = [self._table_parts(t) for t in policy.denied_tables]
        # denied columns: column -> list of table-name tuples (() = any table)
        denied_cols: dict[str, list[tuple[str, ...]]] = {}
        for item in policy.denied_columns:
            table, _, column = item.rpartition(".")
            parts = self._table_parts(table) if table else ()
            denied_cols.setdefault(column.strip('"`[]').lower(), []).append(parts)
        self.denied_cols = denied_cols
        self.schema: dict[tuple[str, ...], tuple[str, ...]] | None = None
        self.schema_by_name: dict[str, list[tuple[tuple[str, ...], tuple[str, ...]]]] = {}
        if policy.schema is not None:
            self.schema = {}
            for table, columns in policy.schema:
                parts = self._table_parts(table)
                cols = tuple(dict.fromkeys(c.lower() for c in columns))
                merged = self.schema.get(parts, ())
                self.schema[parts] = tuple(dict.fromkeys(merged + cols))
                self.schema_by_name.setdefault(parts[-1], []).append((parts, cols))
        self.row_filters: list[RowFilter] = []
        for table, predicate in policy.row_filters:
            from avl.safety._template import Template  # loaded only for row filters

            try:
                cond = sqlglot.condition(predicate, dialect=self.dialect)
                template = Template(sql=_PREFIX + predicate, dialect=policy.dialect)
            except (sqlglot.errors.SqlglotError, RecursionError, AvlError) as exc:
                raise ConfigError(
                    f"row_filters[{table!r}]: the predicate does not parse: {exc}"
                ) from exc
            names = tuple(sorted({p.name for p in cond.find_all(exp.Placeholder) if p.name}))
            self.row_filters.append(RowFilter(self._table_parts(table), cond, names, template))
        # names the policy guards: a dropped argument naming one is refused
        guarded = set(denied_cols)
        guarded.update(parts[-1] for parts in self.denied)
        guarded.update(rf.parts[-1] for rf in self.row_filters if rf.parts)
        if self.allowed is not None and self.schema is not None:
            allowed = set(self.allowed)
            guarded.update(parts[-1] for parts in self.schema if parts not in allowed)
        self.guarded: frozenset[str] = frozenset(guarded)
        self.user_functions = frozenset(f.lower() for f in policy.user_functions)
        self.denied_functions = frozenset(f.lower() for f in policy.denied_functions)
        self.functions = catalog(
            policy.dialect,
            allowed=frozenset(f.lower() for f in policy.allowed_functions),
            denied=self.denied_functions,
        )
        # function classes the walk need not visit when written without a name
        self.nameless = nameless(self.functions)
        self.sqlite_strings = policy.dialect == "sqlite"
        self.case_sensitive_quotes = (
            self.strategy
            not in (
                NormalizationStrategy.CASE_INSENSITIVE,
                NormalizationStrategy.CASE_INSENSITIVE_UPPERCASE,
            )
            and policy.dialect not in _MYSQL_FAMILY
        )
        escapes = self.dialect.tokenizer_class.STRING_ESCAPES
        self.backslashes = policy.dialect in _MYSQL_FAMILY and bool(escapes and "\\" in escapes)

    @cached_property
    def allowed_hooks(self) -> dict[str, resources.Hook | None]:
        """Allowed function names -> their size rule (None when they have none)."""
        return {
            name: resources.SIZE_HOOKS.get(name)
            for name in self.functions.names | self.user_functions
        }

    def tools(self) -> tuple[Tokenizer, Parser]:
        """This thread's tokenizer and parser for the dialect (built once per thread)."""
        local = self._local
        tools: tuple[Tokenizer, Parser] | None = getattr(local, "tools", None)
        if tools is None:
            tools = (self.dialect.tokenizer_class(dialect=self.dialect), self.dialect.parser())
            local.tools = tools
        return tools

    # ------------------------------------------------------------------ tables
    def table_info(self, parts: tuple[str, ...]) -> _TableInfo:
        """What the policy says about one real table (cached per checker)."""
        info = self._tables.get(parts)
        if info is not None:
            return info
        display = ".".join(parts)
        problem = self._table_problem(parts, display)
        columns: tuple[str, ...] | None = None
        if self.schema is not None:
            columns = self.schema.get(parts)
            if columns is None:
                candidates = [
                    cols
                    for p, cols in self.schema_by_name.get(parts[-1], [])
                    if self.matches(parts, p)
                ]
                if candidates:
                    columns = tuple(dict.fromkeys(c for cols in candidates for c in cols))
            if columns is None and problem is None:
                problem = (C.UNKNOWN_TABLE, f"table {display!r} is not in the schema")
        denied = frozenset(
            col
            for col, tables in self.denied_cols.items()
            if any(not t or self.denied_match(parts, t) for t in tables)
        )
        info = _TableInfo(display, problem, columns, denied)
        if len(self._tables) < 4096:  # bounded: a dict write is atomic under the GIL
            self._tables[parts] = info
        return info

    def _table_problem(
        self, parts: tuple[str, ...], display: str
    ) -> tuple[ViolationCode, str] | None:
        lowered = tuple(p.lower() for p in parts)
        if not self.policy.allow_system_catalogs and relations.is_catalog(lowered):
            return (C.SYSTEM_CATALOG, f"{display!r} is a system catalogue")
        for entry in self.denied:
            if self.denied_match(parts, entry):
                return (C.TABLE_DENIED, f"table {display!r} is denied")
        if self.allowed is not None and self.resolved(parts) not in self.allowed:
            return (C.TABLE_NOT_ALLOWED, f"table {display!r} is not in the allowed tables")
        return None

    def _table_parts(self, name: str) -> tuple[str, ...]:
        try:
            table = exp.to_table(name, dialect=self.dialect)
        except (sqlglot.errors.SqlglotError, RecursionError, ValueError) as exc:
            raise ConfigError(f"policy: {name!r} is not a valid table name: {exc}") from exc
        return self.parts_of(table)

    def norm(self, ident: exp.Expr | str | None) -> str:
        """An identifier normalised by the dialect's case rules."""
        if ident is None:
            return ""
        if isinstance(ident, exp.Identifier):
            text = str(ident.this)
            strategy = self.strategy
            if strategy is NormalizationStrategy.CASE_INSENSITIVE:
                return text.lower()
            if ident.args.get("quoted") or strategy is NormalizationStrategy.CASE_SENSITIVE:
                return text
            if strategy in (
                NormalizationStrategy.UPPERCASE,
                NormalizationStrategy.CASE_INSENSITIVE_UPPERCASE,
            ):
                return text.upper()
            return text.lower()
        if isinstance(ident, str):
            return ident
        return str(ident.name)

    def parts_of(self, table: exp.Table) -> tuple[str, ...]:
        """A table reference's name parts (catalog, db, name), normalised."""
        args = table.args
        if args.get("db") is None and args.get("catalog") is None:
            this = args.get("this")
            if type(this) is exp.Identifier and type(this.this) is str:
                cached = (this.this, bool(this.args.get("quoted")))
                hit = self._parts.get(cached)
                if hit is None:
                    hit = (self.norm(this),)
                    if len(self._parts) < 4096:
                        self._parts[cached] = hit
                return hit
            return (self.norm(this),)
        parts: list[str] = []
        for key in ("catalog", "db", "this"):
            node = table.args.get(key)
            if node is not None and not (isinstance(node, exp.Identifier) and not node.this):
                if isinstance(node, exp.Dot):  # deeper qualification (a.b.c.d)
                    parts.extend(self.norm(p) for p in node.flatten())
                else:
                    parts.append(self.norm(node))
        return tuple(parts)

    def resolved(self, parts: tuple[str, ...]) -> tuple[str, ...]:
        """A name with the qualifiers ``default_schema`` supplies (as written without one)."""
        ds = self.default_schema
        if ds and len(parts) <= len(ds):
            return ds[: len(ds) + 1 - len(parts)] + parts
        return parts

    def matches(self, ref: tuple[str, ...], entry: tuple[str, ...]) -> bool:
        """A reference matches an allow-list entry only when both name the same table.

        An unqualified name resolves through the server's search path, so it names a
        qualified entry's table only when ``Policy.default_schema`` says where
        unqualified names go (otherwise it fails closed); a name with more qualifiers
        than the entry (``otherdb.public.orders`` against ``orders``) never matches.
        """
        return self.resolved(ref) == self.resolved(entry)

    @staticmethod
    def denied_match(ref: tuple[str, ...], entry: tuple[str, ...]) -> bool:
        """Deny rules match in both directions (``public.users`` is denied by ``users``)
        and whatever the case: whether ``ORDERS`` is ``orders`` is the server's setting
        (MySQL/MariaDB's ``lower_case_table_names``, on by default on Windows and macOS),
        which SafeQuery cannot see; a deny rule applied to a distinct table costs a
        refusal, one missed costs a leak."""
        n = min(len(ref), len(entry))
        if ref[len(ref) - n :] == entry[len(entry) - n :]:
            return True
        return [p.casefold() for p in ref[len(ref) - n :]] == [
            p.casefold() for p in entry[len(entry) - n :]
        ]

    # ------------------------------------------------------------- row filters
    def bound_filter(self, rf: RowFilter, params: Mapping[str, object]) -> exp.Expr | None:
        """A row filter's condition with ``params`` written in, as the rewrite writes it."""
        try:
            text = self.filter_text(rf, params)
            return sqlglot.condition(text, dialect=self.dialect)
        except (AvlError, KeyError, sqlglot.errors.SqlglotError, RecursionError):
            return None

    @staticmethod
    def filter_text(rf: RowFilter, params: Mapping[str, object]) -> str:
        """The predicate with its parameters written by the template writer (proved)."""
        values = {name: params[name] for name in rf.template.params}
        return rf.template.render(**values)[len(_PREFIX) :]

    # ------------------------------------------------------------------ entry
    def check(self, sql: str, params: Mapping[str, object] | None = None) -> Verdict:
        """Check one SQL text. Never raises for any string.

        Raises:
            InvalidTypeError: ``sql`` is not a string.
        """
        if not isinstance(sql, str):
            raise InvalidTypeError(f"SafeQuery.check takes SQL as a str, got {type(sql).__name__}")
        run = Run(self, sql, params or {})
        try:
            return _execute(run)
        except RecursionError:
            message = "the statement is nested too deeply to check"
            code = C.TOO_DEEP
        except Exception as exc:  # fail closed: an unexpected tree shape is refused
            message = (
                f"the checker does not understand this statement ({type(exc).__name__}); refusing"
            )
            code = C.UNKNOWN_NODE
        return Verdict(allowed=False, violations=(Violation(code=code, message=message),), text=sql)


def _verdict(run: Run, sql: str | None, kind: StatementKind | None) -> Verdict:
    violations = run.violations
    allowed = not violations and sql is not None
    read = run.columns
    # the attrs __init__ without its keyword handling (the check's hot path); the
    # value is the same frozen Verdict
    verdict: Verdict = _new(Verdict)
    _set(verdict, "allowed", allowed)
    _set(verdict, "violations", tuple(violations) if violations else ())
    _set(verdict, "sql", sql if allowed else None)
    _set(verdict, "kind", kind)
    _set(verdict, "tables", tuple(sorted(run.tables)) if run.tables else ())
    _set(verdict, "columns", tuple(sorted({f"{t}.{c}" for t, c in read})) if read else ())
    _set(verdict, "text", run.sql)
    return verdict


_new = object.__new__
_set = object.__setattr__


def _execute(run: Run) -> Verdict:
    sql = run.sql
    policy = run.p
    if len(sql) > policy.max_length:
        run.flag(
            C.TOO_LONG,
            f"the statement is {len(sql)} characters long; the limit is {policy.max_length}",
        )
        return _verdict(run, None, None)
    tokens: list[Token] = []
    try:
        tokenizer, parser = run.c.tools()
        tokens = tokenizer.tokenize(sql)
        trees = parser.parse(tokens, sql)
    except sqlglot.errors.ParseError as exc:
        err = exc.errors[0] if exc.errors else {}
        desc, pos = _parse_problem(sql, err, str(exc))
        leading = _unknown_leading_word(sql, tokens, pos)
        if leading is not None:
            desc, pos = leading
        run.violations.append(
            Violation(
                code=C.PARSE_ERROR,
                message=f"does not parse as {policy.dialect}: {desc}",
                position=pos,
            )
        )
        _comments.into_outfile(run)
        return _verdict(run, None, None)
    except RecursionError:
        run.flag(C.TOO_DEEP, "the statement is nested too deeply to parse")
        return _verdict(run, None, None)
    except Exception as exc:  # fail closed: every parser failure is a refusal
        run.flag(
            C.PARSE_ERROR,
            f"does not parse as {policy.dialect}: {type(exc).__name__}: {str(exc)[:200]}",
        )
        return _verdict(run, None, None)
    run.tokens = tokens
    _comments.scan(run, tokens)
    last = len(tokens) - 1
    while last >= 0 and tokens[last].token_type == TokenType.SEMICOLON:
        last -= 1
    if last >= 0:
        run.statement_end = tokens[last].end + 1
    statements_: list[exp.Expr] = [
        t for t in trees if t is not None and not isinstance(t, exp.Semicolon)
    ]
    if not statements_:
        run.flag(C.EMPTY, "there is no SQL statement")
        return _verdict(run, None, None)
    if len(statements_) > policy.max_statements:
        run.flag(
            C.MULTIPLE_STATEMENTS,
            f"{len(statements_)} statements; at most {policy.max_statements} allowed",
            statements_[1],
        )
    unknown = [t for t in statements_ if _is_expression(t) and _unknown_word(run, t)]
    for tree in unknown:
        # an expression where a statement belongs, led by a word no engine begins a
        # statement with (SELEC * FORM t reads as the product of two columns)
        _not_a_statement(run, tree)
    if unknown:
        return _verdict(run, None, None)
    kind = statements.KIND_BY_CLASS.get(type(statements_[0]), StatementKind.OTHER)
    for tree in statements_:
        statements.statement(run, tree)
    if run.violations:
        return _verdict(run, None, kind)
    dropped = _dropped_name(run, tokens, statements_)
    if dropped is not None:
        # sqlglot keeps no trace of some arguments (sha256(1, pw) parses as sha256(1)):
        # the engine would run a name the checker never saw, so it is refused
        run.flag(
            C.UNKNOWN_NODE,
            f"the parser kept no trace of {dropped.text!r}, so it cannot be checked; refusing",
            offset=dropped.start,
        )
        return _verdict(run, None, kind)
    if (
        run.p.max_rows is None
        and not (run.wraps or run.strings or run.edits)
        and not run.sql.strip().endswith(";")
    ):
        out = run.sql  # nothing to rewrite (what _rewrite.rewrite returns then)
    else:
        out = _rewrite.rewrite(run, statements_)
    if run.violations:
        return _verdict(run, None, kind)
    return _verdict(run, out, kind)


_STATEMENT_WORDS = (
    "SELECT", "WITH", "VALUES", "TABLE", "EXPLAIN", "INSERT", "UPDATE", "DELETE", "MERGE",
    "CREATE", "DROP", "ALTER", "SHOW", "DESCRIBE", "FROM",
)  # fmt: skip


# statements of the engines that sqlglot reads as a bare name (a refusal, but a
# statement_kind one, not a parse error)
_ENGINE_COMMANDS = frozenset(
    {
        "ANALYZE", "BACKUP", "BEGIN", "CACHE", "CALL", "CHECK", "CHECKPOINT", "CHECKSUM",
        "CLOSE", "CLUSTER", "COMMENT", "COMMIT", "COPY", "DBCC", "DEALLOCATE", "DECLARE",
        "DENY", "DETACH", "DISCARD", "DO", "END", "EXEC", "EXECUTE", "EXPORT", "FETCH",
        "FLUSH", "GO", "GRANT", "HANDLER", "IMPORT", "INSTALL", "KILL", "LISTEN", "LOAD",
        "LOCK", "MOVE", "NOTIFY", "OPTIMIZE", "PRAGMA", "PREPARE", "PRINT", "PURGE",
        "RAISERROR", "REASSIGN", "RECONFIGURE", "REFRESH", "REINDEX", "RELEASE", "RENAME",
        "REPAIR", "REPLACE", "RESET", "RESTORE", "REVERT", "REVOKE", "ROLLBACK",
        "SAVEPOINT", "SECURITY", "SET", "SETUSER", "SHOW", "SHUTDOWN", "SIGNAL", "START",
        "STOP", "SUMMARIZE", "TRUNCATE", "UNCACHE", "UNLISTEN", "UNLOCK", "UNPIVOT", "USE",
        "VACUUM", "WAITFOR", "XA",
    }
)  # fmt: skip


_NAME_TOKENS = frozenset({TokenType.VAR, TokenType.IDENTIFIER})


def _dropped_name(run: Run, tokens: list[Token], trees: list[exp.Expr]) -> Token | None:
    """The first guarded name in the text that the parse trees do not hold, if any.

    Only names the policy guards are looked at (a denied column or table, a
    row-filtered table, a table of the schema outside the allow-list): syntax
    words sqlglot reads without keeping (``NULLS FIRST``, ``UNBOUNDED PRECEDING``) are
    not names of anything. Such a name is held when a node of the trees starts where it
    starts, or, for the nodes sqlglot keeps no position for, when one carries its text.
    """
    guarded = run.c.guarded
    if not guarded:
        return None
    lowered = run.sql.lower()
    if not any(name in lowered for name in guarded):  # C-speed prefilter
        return None
    last = len(tokens) - 1
    names = [
        t
        for i, t in enumerate(tokens)
        if t.token_type in _NAME_TOKENS
        and t.text.lower() in guarded
        and not (i < last and tokens[i + 1].token_type == TokenType.L_PAREN)
    ]
    if not names:
        return None
    # the usual case: every such name is a table or column the walk read
    seen = {display.rpartition(".")[2].strip('"`[]').lower() for display in run.tables}
    seen.update(column for _, column in run.columns)
    names = [t for t in names if t.text.lower() not in seen]
    if not names:
        return None
    starts: set[int] = set()
    texts: set[str] = set()
    for tree in trees:
        for node in tree.walk():
            meta = node._meta
            if meta and "start" in meta:
                starts.add(meta["start"])
            else:
                this = node.args.get("this")
                if type(this) is str:
                    texts.add(this.lower())
    for token in names:
        if token.start not in starts and token.text.lower() not in texts:
            return token
    return None


def _is_expression(tree: exp.Expr) -> bool:
    return (
        isinstance(tree, (exp.Condition, exp.Alias)) and type(tree) not in statements.KIND_BY_CLASS
    )


def _unknown_word(run: Run, tree: exp.Expr) -> bool:
    pos = run.position(tree)
    start = pos.offset if pos is not None and pos.offset is not None else 0
    rest = run.sql[start:].lstrip()
    word = rest.split(None, 1)[0].upper() if rest else ""
    return word not in _ENGINE_COMMANDS


def _not_a_statement(run: Run, tree: exp.Expr) -> None:
    """``parse_error`` at the first word of a statement that is only an expression."""
    import difflib

    pos = run.position(tree)
    start = pos.offset if pos is not None and pos.offset is not None else 0
    rest = run.sql[start:].lstrip()
    word = rest.split(None, 1)[0] if rest else ""
    word = word[:40]
    close = difflib.get_close_matches(word.upper(), _STATEMENT_WORDS, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]}?" if close and close[0] != word.upper() else ""
    run.flag(
        C.PARSE_ERROR,
        f"does not parse as {run.p.dialect}: {word!r} does not begin a statement{hint}",
        tree,
    )


def _unknown_leading_word(
    sql: str, tokens: list[Token], pos: Position | None
) -> tuple[str, Position] | None:
    """When the statement the parser stopped in begins with a word that is no keyword
    (``SLECT id FROM t``), that word is the problem, whatever the parser tripped on."""
    import difflib

    if not tokens:
        return None
    at = pos.offset if pos is not None and pos.offset is not None else len(sql)
    first = tokens[0]
    for token in tokens:
        if token.start >= at:
            break
        if token.token_type == TokenType.SEMICOLON:
            first = token  # the next token starts the statement
    if first.token_type == TokenType.SEMICOLON:
        index = tokens.index(first) + 1
        if index >= len(tokens):
            return None
        first = tokens[index]
    if first.token_type != TokenType.VAR or first.text.upper() in _ENGINE_COMMANDS:
        return None
    word = first.text[:40]
    close = difflib.get_close_matches(word.upper(), _STATEMENT_WORDS, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]}?" if close else ""
    line_start = sql.rfind("\n", 0, first.start) + 1
    where = Position(
        line=sql.count("\n", 0, first.start) + 1,
        col=first.start - line_start + 1,
        offset=first.start,
    )
    return f"{word!r} does not begin a statement{hint}", where


def _parse_problem(
    sql: str, err: Mapping[str, object], fallback: str
) -> tuple[str, Position | None]:
    """sqlglot's parse error as a sentence for people, and where it is.

    sqlglot's descriptions can name its own classes ("Required keyword: 'this' missing
    for <class 'sqlglot.expressions.core.Paren'>"); those become plain words. The
    position points at the start of the offending token (sqlglot's column is its end).
    """
    desc = str(err.get("description") or fallback).splitlines()[0] if (err or fallback) else ""
    highlight = err.get("highlight")
    token = highlight if isinstance(highlight, str) else ""
    line, col = err.get("line"), err.get("col")
    pos: Position | None = None
    if isinstance(line, int) and isinstance(col, int) and line >= 1:
        start_col = col - len(token) + 1 if token and "\n" not in token else col
        start_col = max(1, start_col)
        line_start = 0
        for _ in range(line - 1):
            found = sql.find("\n", line_start)
            if found < 0:
                break
            line_start = found + 1
        offset = min(len(sql), line_start + start_col - 1)
        pos = Position(line=line, col=start_col, offset=offset)
    shown = repr(token[:40]) if token else "the end"
    at_end = not str(err.get("end_context") or "").strip(" \t\r\n;")
    if "Required keyword" in desc or "<class" in desc:
        if at_end:
            what = f"the text ends before the statement does (after {shown})"
        else:
            what = f"an incomplete expression at {shown}"
    elif desc.startswith("Invalid expression / Unexpected token"):
        what = f"unexpected {shown}"
    elif desc.startswith("Expecting "):
        what = f"expected {desc[len('Expecting ') :]!r} near {shown}"
    else:
        import re

        what = re.sub(r"\s*(for )?<class '[^']*'>", "", desc).strip() or "invalid syntax"
    return what, pos
