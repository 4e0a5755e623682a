"""Structured context for the offline generator (pure values, no I/O).

The values live in :mod:`avl.schema`; this module keeps the old names importable.
"""

from __future__ import annotations

import attrs

from avl.schema import (
    ColumnSpec,
    ExamplePair,
    ForeignKeySpec,
    TableSpec,
    WriteContext,
    build_value_index,
)

__all__ = [
    "ColumnSpec",
    "build_value_index",
    "ExamplePair",
    "ForeignKeySpec",
    "GenerationContext",
    "TableSpec",
]


@attrs.frozen(kw_only=True)
class GenerationContext(WriteContext):
    """A :class:`~avl.schema.WriteContext` whose question may be left empty.

    Kept for code written before :class:`~avl.schema.WriteContext` existed (the
    question was passed to :meth:`OfflineChatModel.generate` beside it); new code
    builds a :class:`~avl.schema.WriteContext`.
    """

    question: str = ""
