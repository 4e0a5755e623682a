"""SafeQuery templates: literals written per dialect and proved by parse-tree comparison.

A :class:`Template` is application SQL with named placeholders (``:name``). It is
parsed once with sqlglot in its dialect. :meth:`Template.render` writes each value
as a literal in the dialect's syntax and then proves, by parsing the result and
comparing it with the template's tree, that each value became exactly one literal
and that nothing else changed (parse-tree validation, Buehrer et al., 2005).
:meth:`Template.verify` runs the same comparison on SQL that legacy code built by
splicing strings and returns the values it found, or raises
:class:`~avl.errors.UnsafeQueryError`.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import math
import re
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Literal as _LiteralType

import attrs
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.dialects.mysql import MySQL
from sqlglot.dialects.postgres import Postgres
from sqlglot.dialects.sqlite import SQLite
from sqlglot.errors import ErrorLevel, SqlglotError
from sqlglot.tokenizer_core import Token, TokenType

from avl.errors import AvlError, ConfigError, InvalidInputError, UnsafeQueryError

__all__ = ["Template", "template"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INT = re.compile(r"-?[0-9]+")
_FLOAT = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_CLASS = re.compile(r"<class '(?:[\w.]+\.)?(\w+)'>")
_SNIPPET = 80

_Kind = _LiteralType["string", "number", "null", "bool", "hex"]


@attrs.frozen
class _Lit:
    """One literal as the parser read it: its kind and its content."""

    kind: _Kind
    text: str | bool | None


@attrs.frozen
class _Syntax:
    """How a dialect writes literals (derived from its sqlglot tokenizer)."""

    backslash_escapes: bool
    quote_doubling: bool
    escape_strings: bool
    blob_literals: bool
    mode_dependent: bool
    nul_escape: bool


def _syntax_of(dialect: Dialect) -> _Syntax:
    tokenizer = dialect.tokenizer_class
    escapes = tuple(tokenizer.STRING_ESCAPES)
    byte_strings = [tuple(pair) for pair in getattr(tokenizer, "BYTE_STRINGS", ())]
    return _Syntax(
        backslash_escapes="\\" in escapes,
        quote_doubling="'" in escapes,
        escape_strings=("E'", "'") in byte_strings,
        blob_literals=isinstance(dialect, (SQLite, MySQL)),
        mode_dependent=isinstance(dialect, (MySQL, Postgres)),
        nul_escape=isinstance(dialect, MySQL) and "\\" in escapes,
    )


def _clean(text: str) -> str:
    return _CLASS.sub(r"\1", _ANSI.sub("", text)).strip()


def _describe(exc: BaseException) -> str:
    """A short, dependency-free description of a sqlglot error."""
    errors = getattr(exc, "errors", None)
    if errors:
        first = errors[0]
        description = _clean(str(first.get("description") or "syntax error"))
        line, col = first.get("line"), first.get("col")
        if line is not None and col is not None:
            return f"{description} at line {line}, column {col}"
        return description
    if isinstance(exc, RecursionError):
        return "the statement is nested too deeply"
    text = _clean(str(exc)).splitlines()
    if isinstance(exc, SqlglotError):
        return text[0] if text else "syntax error"
    return f"internal parser error ({type(exc).__name__})"


@contextmanager
def _translate(error: type[AvlError], what: str, sql: str) -> Iterator[None]:
    """Re-raise any parser failure as ``error``: sqlglot errors never escape."""
    try:
        yield
    except AvlError:
        raise
    except Exception as exc:  # fail closed: every parser failure is a refusal
        message = f"{what} does not parse: {_describe(exc)}"
        if error is UnsafeQueryError:
            raise UnsafeQueryError(message, sql=sql) from exc
        raise error(message) from exc


def _snippet(node: exp.Expr | None, dialect: Dialect) -> str:
    if node is None:
        return "nothing"
    try:
        text = node.sql(dialect=dialect, unsupported_level=ErrorLevel.IGNORE)
    except Exception:  # only used to word a message
        text = type(node).__name__
    text = " ".join(text.split())
    return f"`{text[:_SNIPPET]}{'...' if len(text) > _SNIPPET else ''}`"


def _absent(value: object) -> bool:
    return value is None or value is False or (isinstance(value, list) and not value)


def _all_comments(node: exp.Expr) -> list[str]:
    out: list[str] = []
    for sub in node.walk():
        out.extend(sub.comments or ())
    return out


_PLACEHOLDER = exp.Placeholder


class _Mismatch(Exception):
    """Internal: where and how a candidate tree differs from the template's.

    ``node`` is the template node where the difference was found (``key`` and
    ``index`` narrow it to one of its arguments); the path from the root is
    computed only when the message is written.
    """

    def __init__(
        self, node: exp.Expr, message: str, *, key: str | None = None, index: int | None = None
    ) -> None:
        super().__init__(message)
        self.node = node
        self.key = key
        self.index = index
        self.message = message

    def where(self) -> str:
        labels: list[str] = []
        if self.index is not None:
            labels.append(f"[{self.index}]")
        if self.key is not None:
            labels.append(self.key)
        node: exp.Expr | None = self.node
        while node is not None and node.parent is not None:
            if node.index is not None:
                labels.append(f"[{node.index}]")
            labels.append(str(node.arg_key))
            node = node.parent
        return ".".join(reversed(labels)) or "the root"


_DIALECT_ALIASES = (
    ("postgresql", "postgres"),
    ("mariadb", "mysql"),
    ("mssql", "tsql"),
    ("sqlserver", "tsql"),
)


def _dialect_name(value: object) -> str:
    """Normalise a dialect name the way :class:`~avl.safety.Policy` does."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"dialect must be a sqlglot dialect name, got {value!r}")
    name = value.strip().lower()
    return dict(_DIALECT_ALIASES).get(name, name)


@attrs.frozen(kw_only=True)
class Template:
    """Application SQL with named ``:name`` placeholders, parsed once.

    Build one with :func:`template` (or ``SafeQuery.template``). It is immutable and
    safe to share between threads.

    Attributes:
        sql: the template SQL, with ``:name`` placeholders in value positions.
        dialect: the sqlglot dialect name the SQL is written in, normalised
            (lower case; ``postgresql``, ``mariadb``, ``mssql`` and ``sqlserver``
            are read as ``postgres``, ``mysql`` and ``tsql``).
        params: the placeholder names, in order of first appearance.

    Example:
        >>> t = template("SELECT id FROM users WHERE name = :name", dialect="sqlite")
        >>> t.params
        ('name',)
        >>> t.render(name="O'Brien")
        "SELECT id FROM users WHERE name = 'O''Brien'"
        >>> t.verify("SELECT id FROM users WHERE name = 'Ann'")
        {'name': 'Ann'}
    """

    sql: str = attrs.field(validator=attrs.validators.instance_of(str))
    dialect: str = attrs.field(default="sqlite", converter=_dialect_name)
    params: tuple[str, ...] = attrs.field(init=False)
    _dialect: Dialect = attrs.field(init=False, eq=False, repr=False)
    _syntax: _Syntax = attrs.field(init=False, eq=False, repr=False)
    _tree: exp.Expr = attrs.field(init=False, eq=False, repr=False)
    _comments: tuple[str, ...] = attrs.field(init=False, eq=False, repr=False)
    _semicolons: int = attrs.field(init=False, eq=False, repr=False)
    _segments: tuple[str, ...] = attrs.field(init=False, eq=False, repr=False)
    _slots: tuple[str, ...] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        dialect = _get_dialect(self.dialect)
        sql = self.sql
        with _translate(ConfigError, "the template SQL", sql):
            tokens = dialect.tokenize(sql)
            statements = dialect.parser().parse(tokens, sql)
        if len(statements) != 1 or statements[0] is None:
            count = sum(1 for statement in statements if statement is not None)
            raise ConfigError(f"the template SQL must be exactly one statement, got {count}")
        tree = statements[0]
        segments, slots = _placeholder_spans(tokens, sql)
        in_tree: dict[str, int] = {}
        for node in tree.find_all(exp.Placeholder):
            name = node.this
            if not isinstance(name, str) or not _NAME.fullmatch(name):
                raise ConfigError(
                    f"the template uses an unsupported placeholder {_snippet(node, dialect)}; "
                    "use named placeholders such as :name"
                )
            in_tree[name] = in_tree.get(name, 0) + 1
        in_text: dict[str, int] = {}
        for name in slots:
            in_text[name] = in_text.get(name, 0) + 1
        if in_tree != in_text:
            odd = sorted(set(in_tree.items()) ^ set(in_text.items()))
            names = ", ".join(f":{name}" for name in dict(odd))
            raise ConfigError(
                f"placeholder(s) {names} are not in a value position that the "
                f"{self.dialect} parser reads as a parameter"
            )
        object.__setattr__(self, "params", tuple(dict.fromkeys(slots)))
        object.__setattr__(self, "_dialect", dialect)
        object.__setattr__(self, "_syntax", _syntax_of(dialect))
        object.__setattr__(self, "_tree", tree)
        object.__setattr__(self, "_comments", tuple(c for t in tokens for c in t.comments))
        object.__setattr__(self, "_semicolons", _count_semicolons(tokens))
        object.__setattr__(self, "_segments", segments)
        object.__setattr__(self, "_slots", slots)

    # ------------------------------------------------------------------ render

    def render(self, **values: object) -> str:
        """Write each value as a literal in the template and prove the result.

        Strings follow the dialect's quoting rules (``'`` doubled; backslashes
        doubled where the dialect treats them as escapes, as MySQL does; a
        PostgreSQL string with a backslash is written as ``E'...'`` so that it reads
        the same whatever ``standard_conforming_strings`` is). Numbers, booleans,
        ``None`` (``NULL``), :class:`~decimal.Decimal`, dates and times (ISO strings),
        UUIDs (strings) and, in SQLite and MySQL, ``bytes`` (``X'..'``) are
        supported. The rendered SQL is then parsed and compared with the template's
        tree: each value must be exactly one literal of the expected kind and
        content at its placeholder, and nothing else may differ.

        Args:
            **values: one value per placeholder name.

        Returns:
            The SQL with every placeholder replaced by its literal.

        Raises:
            InvalidInputError: a value is missing or not a parameter of the
                template, has an unsupported type, is NaN or infinite, or cannot
                be held by the dialect (e.g. a NUL character in SQLite or
                PostgreSQL, a string that is not valid Unicode, ``bytes`` in a
                dialect without blob literals).
            UnsafeQueryError: the rendered SQL did not parse back as the template
                with one literal per placeholder (the value is refused).

        Example:
            >>> template("SELECT :v AS v").render(v="it's")
            "SELECT 'it''s' AS v"
        """
        self._check_names(values.keys())
        written: dict[str, tuple[str, _Lit]] = {
            name: self._write(name, value) for name, value in values.items()
        }
        segments = self._segments
        parts: list[str] = [segments[0]]
        for index, name in enumerate(self._slots):
            text = written[name][0]
            before = parts[-1][-1:]
            if (text[0] == "-" and before == "-") or (
                (text[0].isalnum() or text[0] == "_") and (before.isalnum() or before == "_")
            ):
                parts.append(" ")  # keep "- -5" from becoming a comment, "THEN:v" apart
            parts.append(text)
            parts.append(segments[index + 1])
        sql = "".join(parts)
        found = self._match(sql, "the rendered SQL")
        for name, lits in found.items():
            expected = written[name][1]
            for lit, _node in lits:
                # A parser may normalise a number to a string of the same text (the
                # quantity of an INTERVAL, for one): still exactly the value written.
                same_number = (
                    expected.kind == "number" and lit.kind == "string" and lit.text == expected.text
                )
                if lit != expected and not same_number:
                    raise UnsafeQueryError(
                        f"the value for :{name} did not read back as the literal written "
                        f"in {self.dialect} ({expected.kind} expected, the parser read a "
                        f"{lit.kind} {lit.text!r})",
                        sql=sql,
                    )
        return sql

    def _check_names(self, given: Iterable[str]) -> None:
        names = set(given)
        expected = set(self.params)
        missing = [n for n in self.params if n not in names]
        unknown = sorted(names - expected)
        problems = []
        if missing:
            problems.append("missing value(s) for " + ", ".join(f":{n}" for n in missing))
        if unknown:
            problems.append("unknown parameter(s) " + ", ".join(unknown))
        if problems:
            have = ", ".join(f":{n}" for n in self.params) or "no parameters"
            raise InvalidInputError(f"{'; '.join(problems)} (the template has {have})")

    def _write(self, name: str, value: object) -> tuple[str, _Lit]:
        """The SQL text for ``value`` and the literal the parser must read back."""
        if value is None:
            return "NULL", _Lit(kind="null", text=None)
        if isinstance(value, bool):
            return ("TRUE" if value else "FALSE"), _Lit(kind="bool", text=value)
        if isinstance(value, int):
            text = str(int(value))
            return text, _Lit(kind="number", text=text)
        if isinstance(value, float):
            if not math.isfinite(value):
                raise InvalidInputError(
                    f"the value for :{name} is {value!r}; SQL has no literal for NaN or infinity"
                )
            text = repr(float(value))
            return text, _Lit(kind="number", text=text)
        if isinstance(value, decimal.Decimal):
            if not value.is_finite():
                raise InvalidInputError(
                    f"the value for :{name} is Decimal({str(value)!r}); SQL has no literal "
                    "for NaN or infinity"
                )
            text = format(value, "f")
            if text.startswith("-") and value.is_zero():
                text = text[1:]
            return text, _Lit(kind="number", text=text)
        if isinstance(value, str):
            return self._write_string(name, str.__str__(value))
        if isinstance(value, (bytes, bytearray, memoryview)):
            if not self._syntax.blob_literals:
                raise InvalidInputError(
                    f"the value for :{name} is bytes, and the {self.dialect} dialect has no "
                    "blob literal; pass it as a bound parameter of your driver instead"
                )
            hexed = bytes(value).hex().upper()
            return f"X'{hexed}'", _Lit(kind="hex", text=hexed)
        if isinstance(value, _dt.datetime):
            return self._write_string(name, value.isoformat(sep=" "))
        if isinstance(value, (_dt.date, _dt.time)):
            return self._write_string(name, value.isoformat())
        if isinstance(value, uuid.UUID):
            return self._write_string(name, str(value))
        raise InvalidInputError(
            f"unsupported value type {type(value).__name__} for :{name}; use str, int, "
            "float, Decimal, bool, None, bytes, date, datetime, time or UUID"
        )

    def _write_string(self, name: str, value: str) -> tuple[str, _Lit]:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidInputError(
                f"the value for :{name} is not valid Unicode (it holds a lone surrogate at "
                f"index {exc.start}) and cannot be sent to a database"
            ) from exc
        syntax = self._syntax
        expected = _Lit(kind="string", text=value)
        if "\x00" in value and not syntax.nul_escape:
            raise InvalidInputError(
                f"the value for :{name} holds a NUL character (index {value.index(chr(0))}); "
                f"the {self.dialect} dialect cannot hold one in a string"
            )
        if syntax.backslash_escapes:
            body = value.replace("\\", "\\\\").replace("\x00", "\\0")
            body = body.replace("'", "''") if syntax.quote_doubling else body.replace("'", "\\'")
            return f"'{body}'", expected
        body = value.replace("'", "''")
        if syntax.escape_strings and "\\" in value:
            return "E'" + body.replace("\\", "\\\\") + "'", expected
        return f"'{body}'", expected

    # ------------------------------------------------------------------ verify

    def verify(self, sql: str) -> dict[str, object]:
        """Check that ``sql`` is this template with one literal per placeholder.

        Use it where legacy code builds SQL by splicing strings: the statement is
        parsed in the template's dialect and compared with the template's tree.
        Every node must match, comments included (a spliced ``admin' --`` leaves a
        comment that the template does not have), and each placeholder must hold
        exactly one literal: a string, a number (``-5`` included), ``NULL``, a
        boolean or, in SQLite and MySQL, a blob literal ``X'..'``. A placeholder
        that appears more than once must hold the same value each time.

        Args:
            sql: the statement to check.

        Returns:
            The values found, by placeholder name: ``str``, ``int``, ``float`` (for
            numbers with a fraction or exponent), ``bool``, ``None`` or ``bytes``.

        Raises:
            UnsafeQueryError: the SQL does not parse, holds more than one
                statement, or differs from the template anywhere other than one
                literal per placeholder; the message says where.
            InvalidInputError: ``sql`` is not a string.

        Example:
            >>> t = template("SELECT * FROM users WHERE name = :name")
            >>> t.verify("SELECT * FROM users WHERE name = 'O''Brien'")
            {'name': "O'Brien"}
        """
        if not isinstance(sql, str):
            raise InvalidInputError(f"verify() takes SQL as a str, got {type(sql).__name__}")
        found = self._match(sql, "the SQL")
        values: dict[str, object] = {}
        for name in self.params:
            lits = found[name]
            first = self._python(lits[0][0], sql)
            for lit, node in lits[1:]:
                other = self._python(lit, sql)
                if type(other) is not type(first) or other != first:
                    raise UnsafeQueryError(
                        f":{name} appears more than once in the template with different "
                        f"values here ({first!r} and {_snippet(node, self._dialect)})",
                        sql=sql,
                    )
            values[name] = first
        return values

    def _python(self, lit: _Lit, sql: str) -> object:
        if lit.kind == "string" or lit.kind == "bool" or lit.kind == "null":
            return lit.text
        text = str(lit.text)
        if lit.kind == "hex":
            return bytes.fromhex(text)
        if _INT.fullmatch(text):
            return int(text)
        return float(text)

    # ------------------------------------------------------------------ the proof

    def _match(self, sql: str, what: str) -> dict[str, list[tuple[_Lit, exp.Expr]]]:
        """Parse ``sql`` once and compare it with the template's tree.

        Returns the literals found at each placeholder; raises UnsafeQueryError.
        """
        dialect = self._dialect
        with _translate(UnsafeQueryError, what, sql):
            tokens = dialect.tokenize(sql)
            comments = tuple(c for t in tokens if t.comments for c in t.comments)
            if comments != self._comments:
                extra = [c for c in comments if c not in self._comments]
                shown = repr(extra[0][:40]) if extra else "a comment"
                raise UnsafeQueryError(
                    f"{what} has comments that the template does not have (e.g. {shown}); "
                    "a comment can hide the rest of a statement",
                    sql=sql,
                )
            if self._syntax.mode_dependent:
                self._check_unambiguous(tokens, sql, what)
            statements = dialect.parser().parse(tokens, sql)
        semicolons = _count_semicolons(tokens)
        if semicolons != self._semicolons:
            raise UnsafeQueryError(
                f"{what} has {semicolons} semicolon(s), the template {self._semicolons}; "
                "a statement separator is not part of a value",
                sql=sql,
            )
        if len(statements) != 1 or statements[0] is None:
            count = sum(1 for statement in statements if statement is not None)
            raise UnsafeQueryError(
                f"{what} holds {count} statement(s); the template is one statement",
                sql=sql,
            )
        found: dict[str, list[tuple[_Lit, exp.Expr]]] = {}
        try:
            self._compare(self._tree, statements[0], found)
        except _Mismatch as mismatch:
            raise UnsafeQueryError(
                f"{what} differs from the template at {mismatch.where()}: {mismatch.message}",
                sql=sql,
            ) from None
        except RecursionError as exc:
            raise UnsafeQueryError(f"{what} is nested too deeply to compare", sql=sql) from exc
        return found

    def _check_unambiguous(self, tokens: list[Token], sql: str, what: str) -> None:
        """Refuse string literals whose end depends on a server setting.

        MySQL reads backslash escapes unless ``NO_BACKSLASH_ESCAPES`` is set, and
        PostgreSQL reads them in plain strings when ``standard_conforming_strings``
        is off. A literal such as ``'a\\' OR 1=1 --'`` is one string in one mode
        and an injection in the other, so a string whose closing quote moves
        between the two readings is refused.
        """
        backslash = self._syntax.backslash_escapes
        for token in tokens:
            if token.token_type not in _PLAIN_STRINGS:
                continue
            raw = sql[token.start : token.end + 1]
            if "\\" in raw and _ends_elsewhere(raw, other_reads_backslash=not backslash):
                setting = (
                    "sql_mode NO_BACKSLASH_ESCAPES"
                    if backslash
                    else "standard_conforming_strings = off"
                )
                raise UnsafeQueryError(
                    f"{what} has a string literal whose end depends on the server setting "
                    f"{setting} ({raw[:40]!r}); write backslashes so both readings agree",
                    sql=sql,
                )

    def _compare(
        self,
        root_tmpl: exp.Expr,
        root_cand: exp.Expr,
        found: dict[str, list[tuple[_Lit, exp.Expr]]],
    ) -> None:
        """Walk both trees side by side (iteratively); raise _Mismatch at a difference.

        Two parallel stacks and no per-node allocation: a freshly parsed tree is
        young garbage-collector work, and allocating here would trigger collections.
        """
        dialect = self._dialect
        expr = exp.Expr
        tstack: list[exp.Expr] = [root_tmpl]
        cstack: list[exp.Expr] = [root_cand]
        tpop, cpop, tpush, cpush = tstack.pop, cstack.pop, tstack.append, cstack.append
        while tstack:
            tmpl, cand = tpop(), cpop()
            if tmpl.__class__ is _PLACEHOLDER:
                name = str(tmpl.this)
                lit = self._literal(cand)
                if lit is None:
                    raise _Mismatch(
                        tmpl,
                        f"the value of :{name} must be one literal, found "
                        f"{type(cand).__name__} {_snippet(cand, dialect)}",
                    )
                if _all_comments(cand) != list(tmpl.comments or ()):
                    raise _Mismatch(tmpl, f"the value of :{name} carries a comment")
                found.setdefault(name, []).append((lit, cand))
                continue
            if tmpl.__class__ is not cand.__class__:
                raise _Mismatch(
                    tmpl,
                    f"the template has {type(tmpl).__name__} {_snippet(tmpl, dialect)}, "
                    f"the SQL has {type(cand).__name__} {_snippet(cand, dialect)}",
                )
            tcom, ccom = tmpl.comments, cand.comments
            if (tcom or ccom) and list(tcom or ()) != list(ccom or ()):
                raise _Mismatch(tmpl, f"comments differ near {_snippet(cand, dialect)}")
            targs, cargs = tmpl.args, cand.args
            for key, tval in targs.items():
                cval = cargs.get(key)
                if tval is None or tval is False:
                    if cval is None or cval is False or (cval.__class__ is list and not cval):
                        continue
                elif isinstance(tval, expr):
                    if isinstance(cval, expr):
                        tpush(tval)
                        cpush(cval)
                        continue
                elif tval.__class__ is list:
                    if cval.__class__ is list and len(cval) == len(tval):
                        for index, titem in enumerate(tval):
                            citem = cval[index]
                            if isinstance(titem, expr) and isinstance(citem, expr):
                                tpush(titem)
                                cpush(citem)
                            elif (
                                isinstance(titem, expr)
                                or isinstance(citem, expr)
                                or titem.__class__ is not citem.__class__
                                or titem != citem
                            ):
                                raise _Mismatch(
                                    tmpl,
                                    f"the template has {_snippet(tmpl, dialect)}, "
                                    f"the SQL has {_snippet(cand, dialect)}",
                                    key=key,
                                    index=index,
                                )
                        continue
                    if not tval and (cval is None or cval is False):
                        continue
                    count = len(cval) if isinstance(cval, list) else "no"
                    raise _Mismatch(
                        tmpl,
                        f"the template has {len(tval)} item(s) in {_snippet(tmpl, dialect)}, "
                        f"the SQL has {count} in {_snippet(cand, dialect)}",
                        key=key,
                    )
                elif tval.__class__ is cval.__class__ and tval == cval:
                    continue
                raise _Mismatch(
                    tmpl,
                    f"the template has {_snippet(tmpl, dialect)}, "
                    f"the SQL has {_snippet(cand, dialect)}",
                    key=key,
                )
            if len(cargs) != len(targs) or cargs.keys() != targs.keys():
                for key, cval in cargs.items():
                    if key not in targs and not _absent(cval):
                        raise _Mismatch(
                            tmpl,
                            f"the SQL has {_snippet(cand, dialect)} where the template "
                            f"has {_snippet(tmpl, dialect)}",
                            key=key,
                        )

    def _literal(self, node: exp.Expr) -> _Lit | None:
        """The literal ``node`` is, or None when it is anything else."""
        if isinstance(node, exp.Literal):
            text = node.this
            if not isinstance(text, str):
                return None
            if node.is_string:
                return _Lit(kind="string", text=text)
            return _Lit(kind="number", text=text) if _FLOAT.fullmatch(text) else None
        if isinstance(node, exp.Neg):
            inner = node.this
            if isinstance(inner, exp.Literal) and not inner.is_string:
                lit = self._literal(inner)
                if lit is not None and not str(lit.text).startswith("-"):
                    return _Lit(kind="number", text=f"-{lit.text}")
            return None
        if isinstance(node, exp.Null):
            return _Lit(kind="null", text=None)
        if isinstance(node, exp.Boolean):
            value = node.this
            return _Lit(kind="bool", text=value) if isinstance(value, bool) else None
        if isinstance(node, exp.HexString) and self._syntax.blob_literals:
            text = node.this
            if isinstance(text, str) and len(text) % 2 == 0 and not node.args.get("is_integer"):
                try:
                    bytes.fromhex(text)
                except ValueError:
                    return None
                return _Lit(kind="hex", text=text.upper())
            return None
        if isinstance(node, exp.National) or (
            isinstance(node, exp.ByteString) and self._syntax.escape_strings
        ):
            text = node.this
            return _Lit(kind="string", text=text) if isinstance(text, str) else None
        return None


def _get_dialect(name: str) -> Dialect:
    try:
        return Dialect.get_or_raise(name)
    except Exception as exc:  # sqlglot raises ValueError with a "did you mean"
        raise ConfigError(f"unknown SQL dialect {name!r}: {_clean(str(exc))}") from exc


_PLAIN_STRINGS = frozenset({TokenType.STRING, TokenType.NATIONAL_STRING})


def _ends_elsewhere(raw: str, *, other_reads_backslash: bool) -> bool:
    """Whether ``raw`` (a quoted literal) ends elsewhere when read in the other mode."""
    start = next((i for i, ch in enumerate(raw) if ch in "'\""), -1)
    if start < 0:
        return False
    quote, index, last = raw[start], start + 1, len(raw) - 1
    while index <= last:
        char = raw[index]
        if char == "\\" and other_reads_backslash:
            index += 2
            continue
        if char == quote:
            if index < last and raw[index + 1] == quote:
                index += 2
                continue
            return index != last
        index += 1
    return True


def _count_semicolons(tokens: list[Token]) -> int:
    semicolon = TokenType.SEMICOLON
    return [token.token_type for token in tokens].count(semicolon)


def _placeholder_spans(tokens: list[Token], sql: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Split ``sql`` around each ``:name`` token pair: (text segments, names)."""
    segments: list[str] = []
    names: list[str] = []
    cursor = 0
    for index in range(len(tokens) - 1):
        colon, word = tokens[index], tokens[index + 1]
        if (
            colon.token_type == TokenType.COLON
            and word.start == colon.end + 1
            and sql[colon.start : colon.end + 1] == ":"
            and _NAME.fullmatch(sql[word.start : word.end + 1])
        ):
            segments.append(sql[cursor : colon.start])
            names.append(sql[word.start : word.end + 1])
            cursor = word.end + 1
    segments.append(sql[cursor:])
    return tuple(segments), tuple(names)


def template(sql: str, *, dialect: str = "sqlite") -> Template:
    """Parse application SQL with ``:name`` placeholders into a :class:`Template`.

    Args:
        sql: one statement with named placeholders (``:name``) in value positions.
            A name may appear more than once; it gets the same value each time.
        dialect: the sqlglot dialect the SQL is written in (``"sqlite"``,
            ``"postgres"``, ``"mysql"``...).

    Returns:
        The parsed template; :meth:`Template.render` and :meth:`Template.verify`
        reuse its parse.

    Raises:
        ConfigError: the dialect is unknown, the SQL does not parse, holds more
            than one statement, or uses a placeholder that is not ``:name`` in a
            value position.

    Example:
        >>> t = template("SELECT * FROM orders WHERE id = :id", dialect="postgres")
        >>> t.render(id=42)
        'SELECT * FROM orders WHERE id = 42'
    """
    if not isinstance(sql, str):
        raise ConfigError(f"the template SQL must be a str, got {type(sql).__name__}")
    return Template(sql=sql, dialect=dialect)
