"""Execution-accuracy evaluation of an Assistant on a question set (used by
``avl eval`` and ``benches/eval_text2sql.py``)."""

from __future__ import annotations

import collections
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from avl.assistant._assistant import Assistant
from avl.assistant._prompt import build_messages
from avl.errors import AvlError

__all__ = ["EvalReport", "evaluate_questions"]


@attrs.frozen(kw_only=True)
class EvalReport:
    """Figures of one evaluation.

    Attributes:
        n: questions evaluated.
        schema_only: correct answers with schema-only training.
        leave_one_out: correct answers with the other questions trained as pairs
            (``None`` when not run).
        recall: questions whose gold tables were all in the retrieved context.
        prompt_tokens: mean tokens of the schema part of the prompt.
        full_schema_tokens: mean tokens when pasting the whole schema.
        misses: ``(question, gold sql, produced sql)`` of leave-one-out misses
            (or schema-only misses when leave-one-out was not run).
    """

    n: int
    schema_only: int
    leave_one_out: int | None
    recall: int
    prompt_tokens: float
    full_schema_tokens: float
    misses: tuple[tuple[str, str, str], ...] = ()


def _multiset(rows: Any) -> collections.Counter[tuple[Any, ...]]:
    return collections.Counter(tuple(r) for r in rows)


def _gold_tables(sql: str, dialect: str) -> set[str]:
    import sqlglot
    from sqlglot import expressions as exp

    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except sqlglot.errors.SqlglotError:
        return set()
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    return {t.name.lower() for t in tree.find_all(exp.Table) if t.name.lower() not in ctes}


def evaluate_questions(
    assistant: Assistant,
    questions: Sequence[tuple[str, str]],
    *,
    leave_one_out: bool = True,
    count_tokens: Callable[[str], int] | None = None,
) -> EvalReport:
    """Measure execution accuracy of ``assistant`` on ``(question, gold_sql)`` pairs.

    The assistant should be trained from its database already and have its cache
    off. Correct means the same multiset of rows as the gold SQL. With
    ``leave_one_out``, every pair is trained, and each question is asked with its
    own pair removed.

    Args:
        assistant: the assistant to evaluate.
        questions: ``(question, gold_sql)`` pairs.
        leave_one_out: also run the leave-one-out setting.
        count_tokens: a token counter (default: :func:`avl.llm.count_tokens`).

    Returns:
        The report.

    Raises:
        QueryError: a gold SQL does not run.
    """
    if count_tokens is None:
        from avl.llm import count_tokens as _ct

        def count_tokens(text: str) -> int:
            return int(_ct(text))

    db = assistant.db
    golds = [_multiset(db.execute(sql, max_rows=10**7).rows) for _, sql in questions]
    view = assistant.view()
    all_tables = list(view.tables)
    schema_ok = recall = 0
    ptoks: list[int] = []
    ftoks: list[int] = []
    misses: list[tuple[str, str, str]] = []
    for (q, gold_sql), gold in zip(questions, golds, strict=False):
        sql = ""
        try:
            ans = assistant.ask(q)
            sql = ans.sql
            ok = ans.error == "" and _multiset(ans.rows) == gold
        except AvlError:
            ok = False
        schema_ok += ok
        if not ok and not leave_one_out:
            misses.append((q, gold_sql, sql))
        retrieved = {t.lower() for t in assistant.retrieval_tables(q)}
        recall += _gold_tables(gold_sql, assistant.dialect) <= retrieved
        kw: dict[str, Any] = {
            "dialect": assistant.dialect,
            "foreign_keys": view.foreign_keys,
            "examples": (),
            "documentation": (),
        }
        part = build_messages(
            q, tables=[t for t in all_tables if t.name.lower() in retrieved], **kw
        )
        full = build_messages(q, tables=all_tables, **kw)
        ptoks.append(count_tokens(part[1].content))
        ftoks.append(count_tokens(full[1].content))
    loo: int | None = None
    if leave_one_out:
        loo = 0
        ids = [assistant.train(question=q, sql=s, added_by="eval")[0] for q, s in questions]
        for i, ((q, gold_sql), gold) in enumerate(zip(questions, golds, strict=False)):
            sql = ""
            assistant.remove(ids[i])
            try:
                ans = assistant.ask(q)
                sql = ans.sql
                ok = ans.error == "" and _multiset(ans.rows) == gold
            except AvlError:
                ok = False
            finally:
                assistant.train(question=q, sql=gold_sql, added_by="eval")
            loo += ok
            if not ok:
                misses.append((q, gold_sql, sql))
    n = len(questions)
    return EvalReport(
        n=n,
        schema_only=schema_ok,
        leave_one_out=loo,
        recall=recall,
        prompt_tokens=sum(ptoks) / max(1, n),
        full_schema_tokens=sum(ftoks) / max(1, n),
        misses=tuple(misses),
    )
