"""Verdict values: what SafeQuery decided about one SQL text, and why."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

import attrs

from avl._lazy import lazy_module

if TYPE_CHECKING:
    from avl import _html
else:  # the HTML views load when a notebook first shows one
    _html = lazy_module("avl._html")

__all__ = ["Position", "StatementKind", "Verdict", "Violation", "ViolationCode"]


class ViolationCode(str, enum.Enum):
    """Stable codes for every rule SafeQuery enforces.

    The values are part of the public contract: they never change between
    releases, so logs and tests can match on them (``v.code == "into"``).
    """

    PARSE_ERROR = "parse_error"
    """The text does not parse in the policy's dialect."""
    EMPTY = "empty"
    """There is no statement at all."""
    STATEMENT_KIND = "statement_kind"
    """A statement of a kind the policy does not allow (DML, DDL, opaque command...)."""
    MULTIPLE_STATEMENTS = "multiple_statements"
    """More statements than ``max_statements``."""
    TABLE_NOT_ALLOWED = "table_not_allowed"
    """A table outside the allow-list."""
    TABLE_DENIED = "table_denied"
    """A table on the deny-list."""
    COLUMN_DENIED = "column_denied"
    """A denied column is read (directly or through ``SELECT *``)."""
    UNKNOWN_TABLE = "unknown_table"
    """A table (or qualifier) that the schema does not have."""
    UNKNOWN_COLUMN = "unknown_column"
    """A column that no table in scope has."""
    UNRESOLVED_COLUMN = "unresolved_column"
    """A reference whose column the checker cannot prove (``ORDER BY 4`` or ``#4`` over a
    ``*`` of unknown columns) while a denied column is in reach."""
    DOUBLE_QUOTED_STRING = "double_quoted_string"
    """SQLite, with a schema: a double-quoted name that is no column, which SQLite reads
    as a string, used anywhere but as a value compared with a column."""
    FUNCTION_DENIED = "function_denied"
    """A function on the never-list (it runs SQL text, reads a table by name, a file or
    a URL, changes session state, sleeps or locks...), or one the policy denies."""
    FUNCTION_NOT_ALLOWED = "function_not_allowed"
    """A function that is not on the dialect's allow-list (nor the policy's)."""
    TABLE_FUNCTION_NOT_ALLOWED = "table_function_not_allowed"
    """A function in ``FROM``/``JOIN`` that is not on the table-function allow-list."""
    TYPE_NOT_ALLOWED = "type_not_allowed"
    """A cast to (or a column of) a type the checker does not know, such as a
    user-defined type."""
    SYSTEM_CATALOG = "system_catalog"
    """A system catalogue, system variable or server-information function."""
    CONSTANT_PREDICATE = "constant_predicate"
    """A condition that does not depend on any row (``OR 1=1``, ``'a'='a'``)."""
    CONSTANT_UNION = "constant_union"
    """A set-operation branch that selects only constants (``UNION SELECT NULL, 2``)."""
    TOO_MANY_JOINS = "too_many_joins"
    """More joins than ``max_joins``, or a cartesian product of too many sources."""
    TOO_DEEP = "too_deep"
    """Subqueries nested deeper than ``max_depth``."""
    TOO_LONG = "too_long"
    """The text is longer than ``max_length``."""
    LIMIT_TOO_LARGE = "limit_too_large"
    """A ``LIMIT`` above ``max_rows`` (when not clamped) or one that is not a constant."""
    RESOURCE_EXHAUSTION = "resource_exhaustion"
    """A row generator or blob function asked for an absurd size."""
    UNBOUNDED_RECURSION = "unbounded_recursion"
    """A recursive CTE whose recursive step has no stopping condition."""
    UNKNOWN_NODE = "unknown_node"
    """A syntax node the checker does not know (fail closed)."""
    COMMENT_HIDDEN_CODE = "comment_hidden_code"
    """An executable comment (``/*! ... */``), an optimizer hint, or a comment that
    swallows the rest of a query."""
    INTO = "into"
    """``SELECT ... INTO`` (a table, variable or file)."""
    LOCKING_CLAUSE = "locking_clause"
    """``FOR UPDATE`` / ``FOR SHARE`` and other locking clauses."""
    DATA_MODIFYING_CTE = "data_modifying_cte"
    """A CTE or subquery that inserts, updates or deletes."""
    SET_OPERATION_MISMATCH = "set_operation_mismatch"
    """The sides of a set operation have different column counts."""
    ORDER_BY_POSITION = "order_by_position"
    """``ORDER BY n`` (or ``GROUP BY n``) past the end of the select list."""
    MISSING_PARAMETER = "missing_parameter"
    """A row filter needs a parameter that ``check`` did not get."""
    INVALID_PARAMETER = "invalid_parameter"
    """A row-filter parameter has a type that cannot be written as a literal."""
    SUSPICIOUS_EXPRESSION = "suspicious_expression"
    """An expression no real query needs but injections produce: chained
    comparisons (``a = 'x' = ''``), arithmetic on string constants, division by
    a zero constant, boolean operators used as values, keyword-named functions."""
    OBFUSCATION = "obfuscation"
    """Text hidden from readers: hex literals that spell text, strings built from
    character codes, a string literal split into adjacent pieces."""
    AMBIGUOUS_LITERAL = "ambiguous_literal"
    """A string literal whose end depends on the server's backslash-escape mode."""
    VARIABLE_ASSIGNMENT = "variable_assignment"
    """A session or user variable is assigned (``@a := ...``)."""

    def __str__(self) -> str:
        return self.value


class StatementKind(str, enum.Enum):
    """What a statement does, as decided from its parse tree's root."""

    SELECT = "select"
    INSERT = "insert"
    UPDATE = "update"
    DELETE = "delete"
    MERGE = "merge"
    CREATE = "create"
    DROP = "drop"
    ALTER = "alter"
    TRUNCATE = "truncate"
    COPY = "copy"
    SET = "set"
    PRAGMA = "pragma"
    ATTACH = "attach"
    TRANSACTION = "transaction"
    GRANT = "grant"
    DESCRIBE = "describe"
    USE = "use"
    COMMAND = "command"
    OTHER = "other"

    def __str__(self) -> str:
        return self.value


@attrs.frozen(kw_only=True)
class Position:
    """Where in the SQL text a violation was found.

    Attributes:
        line: 1-based line number.
        col: 1-based column of the start of the token on that line.
        offset: 0-based character offset of the start of the token, when known.
        end: 0-based offset just past the end of the syntax the violation is about
            (``sql[offset:end]`` is it), when known; not part of equality.
    """

    line: int
    col: int
    offset: int | None = None
    end: int | None = attrs.field(default=None, eq=False)


@attrs.frozen(kw_only=True)
class Violation:
    """One broken rule.

    Attributes:
        code: the stable code of the rule.
        message: an explanation for people.
        position: where in the SQL text, when known.
    """

    code: ViolationCode
    message: str
    position: Position | None = None


@attrs.frozen(kw_only=True)
class Verdict:
    """What SafeQuery decided about one SQL text.

    Attributes:
        allowed: whether the statement may run.
        violations: every broken rule (empty when allowed).
        sql: the SQL to run, rewritten where the policy asks (``LIMIT``, row
            filters), in the policy's dialect; ``None`` when not allowed.
        kind: the kind of the (first) statement, ``None`` when it did not parse.
        tables: the tables read, as written (normalised to the dialect's case
            rules), sorted.
        columns: the columns read as ``table.column`` where resolved, sorted.
        text: the SQL text that was checked, as given (the violations' positions
            point into it). Not part of equality: two texts with the same verdict
            compare equal.

    In a notebook a verdict shows itself as its SQL with each violation marked at
    its position and the numbered violations beneath; ``repr()`` gives the same
    in plain text.
    """

    allowed: bool
    violations: tuple[Violation, ...] = ()
    sql: str | None = None
    kind: StatementKind | None = None
    tables: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    text: str = attrs.field(default="", eq=False)

    @property
    def codes(self) -> tuple[ViolationCode, ...]:
        """The codes of the violations, in order."""
        return tuple(v.code for v in self.violations)

    def __repr__(self) -> str:
        kind = f", {self.kind.value}" if self.kind is not None else ""
        if self.allowed:
            lines = [f"Verdict(allowed{kind})"]
            if self.sql is not None:
                lines.append(f"  sql: {_html.truncate(self.sql, 2000)}")
            if self.tables:
                lines.append(f"  reads: {_html.truncate(', '.join(self.tables), 500)}")
            return "\n".join(lines)
        n = len(self.violations)
        lines = [f"Verdict(rejected{kind}, {n} violation{'' if n == 1 else 's'})"]
        if self.text:
            lines.append(f"  sql: {_html.truncate(self.text, 2000)}")
        lines.extend("  " + line for line in _html.violations_lines(self.violations))
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """The verdict as HTML (Jupyter calls it): the SQL with the violations marked."""
        return _html.box(
            _html.verdict_parts(
                allowed=self.allowed,
                violations=self.violations,
                text=self.text,
                sql=self.sql,
                kind=self.kind,
                tables=self.tables,
            ),
            kind="verdict",
        )
