"""Parse errors speak to people: a plain sentence and the position of the token.

sqlglot's descriptions can name its own classes ("Required keyword: 'this' missing for
<class 'sqlglot.expressions.core.Paren'>"); a statement led by an unknown word
(``SELEC * FORM t``, read by sqlglot as the product of two columns) was reported as an
``OTHER`` statement kind. Both are ``parse_error`` with a line and a column, in every
dialect.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from sqlglot.dialects.dialect import Dialect

from avl.safety import Policy, SafeQuery

DIALECTS = sorted(
    {"sqlite", "postgres", "mysql", "duckdb"}
    | {d for d in Dialect.classes if d and d not in ("", "dialect", "dax", "prql")}
)  # DAX and PRQL are not SQL: SELECT begins nothing there
INTERNALS = ("<class", "sqlglot", "Required keyword", "Invalid expression /")


def _problem(dialect: str, sql: str) -> tuple[str, str, tuple[int, int] | None]:
    verdict = SafeQuery(Policy(dialect=dialect, max_statements=3), cache_size=0).check(sql)
    assert verdict.allowed is False
    v = verdict.violations[0]
    pos = (v.position.line, v.position.col) if v.position is not None else None
    return v.code.value, v.message, pos


@pytest.mark.parametrize("dialect", DIALECTS)
def test_unbalanced_parentheses(dialect: str) -> None:
    code, message, pos = _problem(dialect, "(((((")
    assert code == "parse_error"
    assert not any(word in message for word in INTERNALS), message
    assert pos is not None
    assert pos[0] == 1


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    ("sql", "word", "at"),
    [
        ("SELEC * FORM", "SELEC", (1, 1)),
        ("SLECT id FROM t", "SLECT", (1, 1)),
        ("SELECT 1;\n  SELCT 2", "SELCT", (2, 3)),
    ],
)
def test_unknown_leading_word(dialect: str, sql: str, word: str, at: tuple[int, int]) -> None:
    code, message, pos = _problem(dialect, sql)
    assert code == "parse_error", message
    assert repr(word) in message
    assert "does not begin a statement" in message
    assert "did you mean SELECT?" in message
    assert pos == at


@pytest.mark.parametrize("dialect", ["sqlite", "postgres", "mysql", "duckdb"])
def test_incomplete_statements_name_the_token(dialect: str) -> None:
    code, message, pos = _problem(dialect, "SELECT 1 +")
    assert code == "parse_error"
    assert not any(word in message for word in INTERNALS), message
    assert "'+'" in message
    assert pos == (1, 10)
    code, message, pos = _problem(dialect, "SELECT name\nFROM users WHERE (id")
    assert code == "parse_error"
    assert not any(word in message for word in INTERNALS), message
    assert pos == (2, 19)  # the start of the token, not its end


def test_engine_commands_sqlglot_does_not_know_stay_statement_kinds() -> None:
    for dialect, sql in [
        ("postgres", "CHECKPOINT"),
        ("postgres", "LISTEN c"),
        ("sqlite", "REINDEX"),
    ]:
        code, _, _ = _problem(dialect, sql)
        assert code == "statement_kind", sql


def test_cli_check_prints_a_clean_parse_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "avl", "check", "((((("],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 1
    assert "parse_error at 1:5" in out
    assert not any(word in out for word in INTERNALS), out
    done = subprocess.run(
        [sys.executable, "-m", "avl", "check", "SELEC * FORM"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "parse_error at 1:1" in done.stdout
    assert "'SELEC' does not begin a statement" in done.stdout
