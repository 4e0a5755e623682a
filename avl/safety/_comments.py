"""The comment scan, run on the tokens before the walk (``comment_hidden_code``).

Comments written by people or models are prose (``-- top customers``). A comment that is
empty (the bare ``--`` that cuts a query short), that starts by closing a string or a
parenthesis, that holds a quote outside a word, or that holds clauses such as
``ORDER BY``/``AND x =``/``(SELECT`` is the tail of a query an injection cut off. MySQL's
executable ``/*! ... */`` and optimizer hints ``/*+ ... */`` are code.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from sqlglot.tokenizer_core import Token, TokenType

from avl._lazy import LazyPattern
from avl.safety._verdict import ViolationCode

if TYPE_CHECKING:
    from avl.safety._walk import Run

__all__ = ["into_outfile", "looks_like_code", "scan"]

C = ViolationCode
_MYSQL_FAMILY = frozenset({"mysql", "doris", "starrocks", "singlestore"})
_CODE_PATTERN = LazyPattern(
    r"\b(order|group)\s+by\b|\blimit\s+\d|\(\s*select\b|\bunion\b.*\bselect\b|"
    r"\b(and|or)\s+[\w.]+\s*(=|<|>|!=|like\b|in\s*\()|;\s*(drop|delete|insert|update|shutdown|exec|declare)\b|"
    r"\bsp_password\b",
    re.IGNORECASE,
)
_STRAY_QUOTE = LazyPattern(r"(?<![A-Za-z])['\"`]|['\"`](?![A-Za-z])")


def looks_like_code(text: str, trailing: bool, inline_empty: bool = False) -> bool:
    """A comment that holds SQL it swallowed, rather than prose."""
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


def _mysql_dashes(run: Run, tokens: list[Token]) -> None:
    """MySQL reads ``--`` as a comment only before a space or control character.

    ``1 --0 UNION SELECT ...`` is ``1 - -0 UNION SELECT ...`` to MySQL, while a reader
    that takes ``--`` as a comment sees only ``1``: code the checker would never see.
    """
    sql = run.sql
    bounds = [-1] + [b for t in tokens for b in (t.start, t.end)] + [len(sql)]
    for gap_start, gap_end in zip(bounds[0::2], bounds[1::2], strict=False):
        gap = sql[gap_start + 1 : gap_end]
        at = gap.find("--")
        while at >= 0:
            after = gap[at + 2 : at + 3]
            if after and after > " ":
                run.flag(
                    C.COMMENT_HIDDEN_CODE,
                    "MySQL does not read '--' without a following space as a comment",
                    offset=gap_start + 1 + at,
                )
                return
            at = gap.find("--", at + 2)


def scan(run: Run, tokens: list[Token]) -> None:
    """Report comments that hide code (before the walk)."""
    sql = run.sql
    if "--" not in sql and "/*" not in sql and "#" not in sql:
        return
    if "--" in sql and run.p.dialect in _MYSQL_FAMILY:
        _mysql_dashes(run, tokens)
    last = len(tokens) - 1
    while last > 0 and tokens[last].token_type == TokenType.SEMICOLON:
        last -= 1
    for i, token in enumerate(tokens):
        for comment in token.comments:
            text = comment.strip()
            if text.startswith(("!", "+")) and ("/*!" in sql or "/*+" in sql):
                run.flag(
                    C.COMMENT_HIDDEN_CODE,
                    f"executable comment or hint: /*{text[:40]}*/",
                    offset=token.start,
                )
            elif looks_like_code(comment, trailing=i >= last, inline_empty="/**/" in sql):
                run.flag(
                    C.COMMENT_HIDDEN_CODE,
                    f"a comment hides SQL code: {text[:60]!r}",
                    offset=token.start,
                )


def into_outfile(run: Run) -> None:
    """Name the usual reason MySQL's ``INTO OUTFILE``/``DUMPFILE`` does not parse."""
    try:
        tokens = run.c.dialect.tokenize(run.sql)
    except Exception:  # fail closed: the parse error is already reported
        return
    texts = [t.text.upper() for t in tokens]
    for i, text in enumerate(texts[:-1]):
        if text == "INTO" and texts[i + 1] in ("OUTFILE", "DUMPFILE"):
            run.flag(C.INTO, f"INTO {texts[i + 1]} writes a file", offset=tokens[i].start)
