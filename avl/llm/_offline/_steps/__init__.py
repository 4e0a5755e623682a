"""The ordered steps that read a linked question into an :class:`Intent` (pure).

Each step reads one kind of phrase and fills one part of the intent; a reader looks
for a shape by the step's name. The order matters: filters first (they consume the
column words they test), then counting and aggregates, grouping, ranking, ordering,
the limit, and last the selection (whatever column words are left).

========================  ===========================================================
step                      what it reads
========================  ===========================================================
``choose_subject``        the table the question is about
``value_filters``         stored values and quoted or capitalised literals
``flag_filters``          yes/no columns named as a property ("active students")
``number_filters``        comparisons with numbers, ranges, counts of related rows
``average_comparisons``   "above the average X"
``negated_relations``     "X that have no Y", "X not <related value>"
``counting``              "how many X", "the number of X", "count X"
``aggregates``            "the average / total / maximum / minimum X"
``grouping``              "for each X", "per X", "X and the number of Y"
``ranking``               "which X has the most Y", "top N X by Y", "the oldest X"
``ordering``              "ordered by X", "in descending order of X"
``limit``                 "top N", "the first N"
``selection``             the column words left, or the subject's naming column
``distinct_rows``         "the different X"
``related_tables``        "students who take courses": join the table
``count_rows_once``       a count over a join with many rows per subject
``both_values``           "both A and B" of a related table: INTERSECT
========================  ===========================================================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from avl.llm._offline._linking import Links
from avl.llm._offline._question import Question
from avl.llm._offline._schema import SchemaIndex
from avl.llm._offline._steps._state import State
from avl.llm._offline._steps.aggregates import aggregates, counting
from avl.llm._offline._steps.filters import (
    average_comparisons,
    flag_filters,
    negated_relations,
    number_filters,
    value_filters,
)
from avl.llm._offline._steps.grouping import grouping
from avl.llm._offline._steps.ranking import limit, ordering, ranking
from avl.llm._offline._steps.selection import (
    count_rows_once,
    distinct_rows,
    related_tables,
    selection,
)
from avl.llm._offline._steps.sets import both_values
from avl.llm._offline._steps.subject import choose_subject

#: The steps, in the order they run.
STEPS: tuple[Callable[[State], None], ...] = (
    choose_subject,
    value_filters,
    flag_filters,
    average_comparisons,
    number_filters,
    negated_relations,
    counting,
    aggregates,
    ranking,
    grouping,
    ordering,
    limit,
    selection,
    distinct_rows,
    related_tables,
    count_rows_once,
    both_values,
)


def read_intent(
    q: Question,
    links: Links,
    schema: SchemaIndex,
    values: Mapping[tuple[str, str], Sequence[str]] | None = None,
) -> State:
    """Run every step over a linked question.

    Args:
        q: the parsed question.
        links: its links.
        schema: the schema index.
        values: stored values per ``(table, column)``.

    Returns:
        The state, whose ``intent`` is what the question asks.
    """
    st = State(q=q, links=links, schema=schema, values=values or {})
    for step in STEPS:
        step(st)
    # tables that must be joined though no item reads them (the counted rows)
    st.intent.joined = list(st.extra_tables)
    return st
