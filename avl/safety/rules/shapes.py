"""Injection shapes: expressions no analyst writes but injected payloads produce.

``suspicious_expression``: arithmetic on string constants, on TRUE/FALSE or on a number
written as a string, division by a zero constant (an error probe), a member access on a
constant, a function named like a keyword, a bare query as a function argument.
``obfuscation``: a hex literal that spells text, a string built from character codes, a
string literal split into adjacent pieces. ``ambiguous_literal``: a MySQL string whose end
depends on the server's backslash-escape mode.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from sqlglot import exp

from avl.safety._verdict import ViolationCode
from avl.safety.rules._util import (
    ARITH,
    DIVISIONS,
    is_constant,
    is_string,
    number,
    numeric_string,
)

if TYPE_CHECKING:
    from avl.safety._walk import Handler, Run, Scope

__all__ = ["anonymous", "arithmetic", "chr_", "concat", "dot", "hex_string", "literal"]

C = ViolationCode
_KEYWORDS = frozenset(
    {"union", "select", "from", "where", "and", "or", "not", "having", "order", "group", "limit",
     "into", "insert", "update", "delete", "drop", "exec", "execute", "waitfor", "declare", "xor"}
)  # fmt: skip


def arithmetic(run: Run, n: exp.Expr, scope: Scope) -> bool:
    """Arithmetic on string or boolean constants, or a division by a zero constant."""
    cls = type(n)
    this, other = n.args.get("this"), n.args.get("expression")
    if (
        cls in DIVISIONS
        and isinstance(other, exp.Literal)
        and not other.is_string
        and number(other) == 0
    ):
        run.flag(C.SUSPICIOUS_EXPRESSION, "division by a zero constant (an error probe)", n)
        return False
    if isinstance(this, exp.Interval) or isinstance(other, exp.Interval):
        return False  # date arithmetic: '2024-01-01' - INTERVAL 1 DAY
    if (
        isinstance(this, exp.Expr)
        and isinstance(other, exp.Expr)
        and (is_string(this) or is_string(other))
        and is_constant(this)
        and is_constant(other)
    ):
        run.flag(C.SUSPICIOUS_EXPRESSION, "arithmetic on string constants", n)
    elif isinstance(this, exp.Boolean) or isinstance(other, exp.Boolean):
        run.flag(C.SUSPICIOUS_EXPRESSION, "arithmetic on TRUE/FALSE", n)
    elif cls is not exp.Add and (numeric_string(this) or numeric_string(other)):
        run.flag(C.SUSPICIOUS_EXPRESSION, "arithmetic on a number written as a string", n)
    return False


def dot(run: Run, n: exp.Expr, scope: Scope) -> bool:
    """A member access on a constant (``'x'.y``)."""
    if isinstance(n.this, exp.Literal):
        run.flag(C.SUSPICIOUS_EXPRESSION, "a member access on a constant", n)
    return False


def concat(run: Run, n: exp.Expr, scope: Scope) -> bool:
    """A string literal split into adjacent pieces (``'ad' 'min'``)."""
    args = list(n.iter_expressions())
    if len(args) < 2 or not all(isinstance(a, exp.Literal) and a.is_string for a in args):
        return False
    spans: list[tuple[int, int]] = []
    for a in args:
        meta = getattr(a, "_meta", None)
        if not meta or "start" not in meta or "end" not in meta:
            spans = []  # sqlglot keeps no position for the later pieces of 'a' 'b'
            break
        spans.append((meta["start"], meta["end"]))
    spans.sort()
    for (_, end), (start, _) in itertools.pairwise(spans):
        if run.sql[end + 1 : start].strip():
            return False  # an explicit CONCAT('a', 'b')
    run.flag(C.OBFUSCATION, "a string literal split into adjacent pieces", n)
    return False


def chr_(run: Run, n: exp.Expr, scope: Scope) -> bool:
    """``CHR()``/``CHAR()`` pieces joined into a string, or given hex codes."""
    args = list(n.iter_expressions())
    parent = n.parent
    hexed = any(isinstance(a, exp.HexString) for a in args)
    joined = isinstance(parent, (exp.DPipe, exp.Add, exp.Concat)) and any(
        isinstance(sib, exp.Chr) for sib in parent.iter_expressions() if sib is not n
    )
    if hexed or joined:
        run.flag(C.OBFUSCATION, "a string built from character codes", n)
    return False


def hex_string(run: Run, n: exp.Expr, scope: Scope) -> bool:
    """A hex literal that spells text (``0x61646d696e``)."""
    text = str(n.this or "")
    if len(text) >= 4:
        try:
            raw = bytes.fromhex(text if len(text) % 2 == 0 else "0" + text)
        except ValueError:
            return True
        chars = raw.replace(b"\x00", b"")
        printable = sum(32 <= b < 127 for b in chars)
        if len(chars) >= 2 and printable >= 0.8 * len(chars):
            run.flag(C.OBFUSCATION, "a hex literal that spells text", n)
    return True


def literal(run: Run, n: exp.Expr, scope: Scope) -> bool:
    """MySQL: ``'\\''`` ends in a different place without backslash escapes."""
    if run.backslashes and n.is_string:
        meta = getattr(n, "_meta", None)
        if meta and "start" in meta and "end" in meta:
            source = run.sql[meta["start"] : meta["end"] + 1]
            if "\\'" in source or '\\"' in source:
                run.flag(
                    C.AMBIGUOUS_LITERAL,
                    "a backslash-escaped quote: where this string ends depends on the "
                    "server's escape mode",
                    n,
                )
    return True


def anonymous(run: Run, n: exp.Expr, scope: Scope) -> bool:
    """A function named like a keyword, or given a bare query as an argument."""
    if n.name.lower() in _KEYWORDS:
        run.flag(C.SUSPICIOUS_EXPRESSION, f"a function named like the keyword {n.name.upper()}", n)
    elif any(isinstance(a, exp.Select) for a in n.expressions):
        run.flag(C.SUSPICIOUS_EXPRESSION, f"a bare query as an argument of {n.name}()", n)
    return False


RULES: dict[type[exp.Expr], Handler] = {
    **dict.fromkeys(ARITH, arithmetic),
    exp.Dot: dot,
    exp.Concat: concat,
    exp.Chr: chr_,
    exp.HexString: hex_string,
    exp.Literal: literal,
    exp.Anonymous: anonymous,
}
