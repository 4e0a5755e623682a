"""Join planning: one tree of joins that reaches every table the intent reads (pure).

The tables the question links to are the terminals; the join edges (declared foreign
keys and the ones column names state) are the graph. Starting from the subject, the
nearest terminal not yet reached is joined along a shortest path, through whatever
tables lie between (a bridge table between two linked tables is joined though the
question never names it), until every terminal is reached. A terminal no path
reaches is reported, never silently dropped.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import attrs

from avl.llm._offline._schema import Edge, SchemaIndex

__all__ = ["JoinPlan", "JoinStep", "plan_joins"]


@attrs.frozen(kw_only=True)
class JoinStep:
    """Join ``table`` on ``pairs`` of ``(column of an earlier table, that table, column of this table)``."""

    table: str
    on: tuple[tuple[str, str, str], ...]


@attrs.frozen(kw_only=True)
class JoinPlan:
    """The FROM clause: the first table, the joins, and the terminals not reached."""

    first: str
    steps: tuple[JoinStep, ...] = ()
    unreached: tuple[str, ...] = ()

    @property
    def tables(self) -> list[str]:
        """Every table of the plan, in join order."""
        return [self.first, *(s.table for s in self.steps)]


def _path(
    schema: SchemaIndex, sources: Sequence[str], target: str
) -> list[tuple[str, Edge]] | None:
    """The shortest path from any of ``sources`` to ``target`` as ``(table, edge)`` hops."""
    prev: dict[str, tuple[str, Edge] | None] = dict.fromkeys(sources)
    queue = deque(sources)
    while queue:
        cur = queue.popleft()
        if cur == target:
            hops: list[tuple[str, Edge]] = []
            node = cur
            while prev[node] is not None:
                p = prev[node]
                assert p is not None
                hops.append((node, p[1]))
                node = p[0]
            return list(reversed(hops))
        # declared edges first, then inferred ones; stable order
        for nxt, edge in sorted(schema.neighbours(cur), key=lambda x: (not x[1].declared,)):
            if nxt not in prev:
                prev[nxt] = (cur, edge)
                queue.append(nxt)
    return None


def plan_joins(schema: SchemaIndex, subject: str, tables: Sequence[str]) -> JoinPlan:
    """Plan the joins that reach every table of ``tables`` from ``subject``.

    Args:
        schema: the schema index (tables and join edges).
        subject: the first table of the FROM clause.
        tables: the tables the intent reads.

    Returns:
        The plan; ``unreached`` lists the tables no join path reaches.
    """
    reached = [subject]
    steps: list[JoinStep] = []
    pending = [t for t in dict.fromkeys(tables) if t != subject]
    unreached: list[str] = []
    while pending:
        best: tuple[int, str, list[tuple[str, Edge]]] | None = None
        for t in pending:
            p = _path(schema, reached, t)
            if p is not None and (best is None or len(p) < len(best[2])):
                best = (len(p), t, p)
        if best is None:
            unreached.extend(pending)
            break
        hops = best[2]
        for table, edge in hops:
            if table in reached:
                continue
            src = edge.other(table)
            pairs = tuple((a, src, b) for b, a in edge.pairs_from(table))
            steps.append(JoinStep(table=table, on=pairs))
            reached.append(table)
        pending = [t for t in pending if t not in reached]
    return JoinPlan(first=subject, steps=tuple(steps), unreached=tuple(unreached))
