"""The Assistant: ask a database in plain language, safely, with any model or none.

Example:
    >>> from avl.assistant import Assistant
    >>> assistant = Assistant(db="sqlite:///shop.db")  # doctest: +SKIP
    >>> assistant.train_from_database()  # doctest: +SKIP
    >>> answer = assistant.ask("how many orders are there?")  # doctest: +SKIP
    >>> answer.sql, answer.rows, answer.verdict.allowed  # doctest: +SKIP
"""

from __future__ import annotations

from avl.assistant._answer import Answer, Event, EventKind, Explanation, TrainingItem
from avl.assistant._assistant import Assistant, AsyncAssistant, AsyncSession
from avl.assistant._chart import Chart
from avl.assistant._db import Database, QueryResult, SchemaSnapshot
from avl.assistant._demo import DEMO_PAIRS, DEMO_QUESTIONS, create_demo_database
from avl.assistant._eval import EvalReport, evaluate_questions
from avl.assistant._prompt import (
    ABSTAIN_MARKER,
    build_messages,
    extract_sql,
    parse_abstention,
    render_messages,
)
from avl.assistant._session import Session
from avl.assistant._training import MemoryTrainingStore, SqlTrainingStore, open_training_store
from avl.assistant._view import SchemaView, policy_view
from avl.assistant._writer import ChatSqlWriter

__all__ = [
    "ABSTAIN_MARKER",
    "DEMO_PAIRS",
    "DEMO_QUESTIONS",
    "Answer",
    "Assistant",
    "AsyncAssistant",
    "AsyncSession",
    "Chart",
    "ChatSqlWriter",
    "Database",
    "EvalReport",
    "Event",
    "EventKind",
    "Explanation",
    "MemoryTrainingStore",
    "QueryResult",
    "SchemaSnapshot",
    "SchemaView",
    "Session",
    "SqlTrainingStore",
    "TrainingItem",
    "build_messages",
    "create_demo_database",
    "evaluate_questions",
    "extract_sql",
    "open_training_store",
    "parse_abstention",
    "policy_view",
    "render_messages",
]
