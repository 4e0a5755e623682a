"""What a database's error may say to a caller: the one redaction every path uses.

A database's error text can quote a stored value: PostgreSQL's
``invalid input syntax for type integer: "hunter2"``, DuckDB's
``Could not convert string 'hunter2' to INT32``, a ``DETAIL``/``CONTEXT`` line holding a
JSON document, MySQL's ``Incorrect DATETIME value: '...'``. The value may come from a
row or a column the caller's policy hides (the row-filter fence keeps other tenants'
rows away from the caller's expressions; this is the second wall). Every database error
that reaches a caller goes through :func:`safe_message`, in
``Database._translate``, so the Assistant's answer, its events, the history, the web
problem details, MCP tool errors and the CLI all carry the same redacted text:

* only the first line (the primary message; ``DETAIL``, ``HINT``, ``CONTEXT`` and the
  ``LINE 1: ...`` echo with its caret are dropped);
* a quoted piece stays only when it names something the statement itself wrote (an
  identifier or keyword of the SQL, a literal of the SQL, a ``schema.name`` whose
  last part the SQL wrote, MySQL's clause names such as ``'field list'``); every
  other quoted piece becomes ``<value>``;
* at most 300 characters.

The error's class or code (PostgreSQL's SQLSTATE, MySQL's error number, SQLite's
error name, DuckDB's exception class) is kept apart, in :func:`error_code`.
"""

from __future__ import annotations

import re

__all__ = ["driver_text", "error_code", "safe_message"]

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_LITERAL = re.compile(r"""'((?:[^']|'')*)'|"((?:[^"]|"")*)"|`((?:[^`]|``)*)`""")
# the clause names MySQL/MariaDB quote in "Unknown column 'x' in 'field list'"
_CLAUSES = frozenset(
    {"field list", "where clause", "on clause", "order clause", "group statement",
     "having clause", "from clause", "having"}
)  # fmt: skip
_MAX = 300


def _vocabulary(sql: str) -> tuple[frozenset[str], frozenset[str]]:
    """The words and the literal values the statement wrote (case-folded)."""
    words = frozenset(w.lower() for w in _WORD.findall(sql))
    literals = frozenset(
        (a or b or c).lower() for a, b, c in _LITERAL.findall(sql) if (a or b or c)
    )
    return words, literals


def _written(inner: str, words: frozenset[str], literals: frozenset[str]) -> bool:
    low = inner.strip().lower()
    if not low or low in words or low in literals or low in _CLAUSES:
        return True
    parts = [p.strip('"`[]') for p in low.split(".")]
    # schema.table the server qualified: the last part is the caller's, the others names
    return len(parts) > 1 and parts[-1] in words and all(_WORD.fullmatch(p) for p in parts[:-1])


def _redact_quoted(text: str, words: frozenset[str], literals: frozenset[str]) -> str:
    """Each quoted piece kept or replaced; an apostrophe inside a word (``doesn't``) is
    no quote, and a quote left open (a value the driver cut) hides the rest."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch not in "'\"`" or (i > 0 and text[i - 1].isalnum()):
            out.append(ch)
            i += 1
            continue
        j = i + 1
        while j < n and not (text[j] == ch and not (j + 1 < n and text[j + 1].isalnum())):
            j += 1
        if j >= n:  # never closed
            out.append(ch + "<value>")
            break
        inner = text[i + 1 : j]
        out.append(text[i : j + 1] if _written(inner, words, literals) else f"{ch}<value>{ch}")
        i = j + 1
    return "".join(out)


def safe_message(text: str, sql: str) -> str:
    """A database error's text with nothing in it the statement did not write.

    Args:
        text: the driver's message.
        sql: the statement that ran (its names and literals may be quoted back).

    Returns:
        The first line, with every other quoted piece replaced by ``<value>``.

    Example:
        >>> safe_message('invalid input syntax for type integer: "hunter2"\\nLINE 1: x',
        ...              "SELECT CAST(notes AS int) FROM orders")
        'invalid input syntax for type integer: "<value>"'
        >>> safe_message('column "nme" does not exist', "SELECT nme FROM t")
        'column "nme" does not exist'
    """
    first = text.strip().split("\n", 1)[0].strip()
    words, literals = _vocabulary(sql)

    out = _redact_quoted(first, words, literals)
    if len(out) > _MAX:
        out = out[:_MAX] + "..."
    return out or "error"


def error_code(exc: BaseException) -> str:
    """The error's class or code: SQLSTATE, MySQL errno, SQLite error name, class name."""
    state = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    if isinstance(state, str) and state:
        return state
    name = getattr(exc, "sqlite_errorname", None)
    if isinstance(name, str) and name:
        return name
    args: tuple[object, ...] = tuple(getattr(exc, "args", ()))
    if args and isinstance(args[0], int) and not isinstance(args[0], bool):
        return str(args[0])
    return type(exc).__name__


def driver_text(exc: BaseException) -> str:
    """The driver's message without its wrapping (PyMySQL's ``(errno, "text")``)."""
    args: tuple[object, ...] = tuple(getattr(exc, "args", ()))
    if (
        len(args) >= 2
        and isinstance(args[0], int)
        and not isinstance(args[0], bool)
        and isinstance(args[1], str)
    ):
        return str(args[1])
    return str(exc).strip() or type(exc).__name__
