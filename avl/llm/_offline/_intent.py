"""The intent of a question: what to select, filter, group, order and join (pure values).

The steps in :mod:`avl.llm._offline._steps` fill one :class:`Intent` from a linked
question; :mod:`avl.llm._offline._render` writes it as one SQL statement. Nothing here
knows about words.
"""

from __future__ import annotations

import attrs

__all__ = ["Col", "Cond", "Having", "Intent", "Item", "Order", "Subquery"]


@attrs.frozen
class Col:
    """A column of a table (``column == "*"`` for every column)."""

    table: str
    column: str


@attrs.frozen(kw_only=True)
class Item:
    """One selected expression: a column, an aggregate of one, or ``COUNT(*)``.

    Attributes:
        col: the column (``None`` with ``agg="COUNT"``: ``COUNT(*)``).
        agg: ``COUNT``, ``SUM``, ``AVG``, ``MIN``, ``MAX`` or ``None``.
        distinct: ``COUNT(DISTINCT col)``.
        pos: the token where the question asks for it (selection order).
    """

    col: Col | None = None
    agg: str | None = None
    distinct: bool = False
    pos: int = 0

    @property
    def tables(self) -> set[str]:
        """The tables it reads."""
        return {self.col.table} if self.col is not None else set()


@attrs.frozen(kw_only=True)
class Subquery:
    """``col [NOT] IN (SELECT inner FROM ... WHERE ...)`` or a scalar aggregate
    ``(SELECT AGG(inner) FROM ... WHERE ...)``."""

    inner: Col
    where: tuple[Cond, ...] = ()
    agg: str | None = None
    group: tuple[Col, ...] = ()
    having: tuple[Having, ...] = ()


@attrs.frozen(kw_only=True)
class Cond:
    """One condition of the WHERE clause.

    Attributes:
        col: the column tested.
        op: ``=``, ``!=``, ``>``, ``<``, ``>=``, ``<=``, ``LIKE``, ``NOT LIKE``,
            ``BETWEEN``, ``IN``, ``NOT IN``.
        value: a string or number; a ``(low, high)`` pair for ``BETWEEN``; a
            :class:`Subquery` for ``IN``/``NOT IN`` or a scalar comparison.
        pos: the token where the question states it.
        either: conditions sharing a non-zero ``either`` are OR-ed ("before 1990
            or after 2000").
    """

    col: Col
    op: str
    value: object
    pos: int = 0
    either: int = 0


@attrs.frozen(kw_only=True)
class Having:
    """A condition on a group: ``AGG(col) op value`` (``col=None``: ``COUNT(*)``)."""

    agg: str
    col: Col | None
    op: str
    value: float


@attrs.frozen(kw_only=True)
class Order:
    """One ORDER BY key: a column or an aggregate (an :class:`Item`)."""

    item: Item
    desc: bool = False


@attrs.define
class Intent:
    """What the question asks, built step by step.

    Attributes:
        subject: the table the question is about (the row it lists or counts).
        select: the selected expressions.
        where: the conditions (same-column equalities are OR-ed by the renderer).
        group: the GROUP BY keys.
        having: the HAVING conditions.
        order: the ORDER BY keys.
        limit: the LIMIT.
        distinct: ``SELECT DISTINCT``.
        setop: ``("INTERSECT" | "UNION" | "EXCEPT", other intent)``.
        joined: tables joined though no item reads them (the rows counted).
        notes: what was understood, for an abstention message.
        problems: what could not be fitted (each lowers the confidence).
    """

    subject: str = ""
    select: list[Item] = attrs.field(factory=list)
    where: list[Cond] = attrs.field(factory=list)
    group: list[Col] = attrs.field(factory=list)
    having: list[Having] = attrs.field(factory=list)
    order: list[Order] = attrs.field(factory=list)
    limit: int | None = None
    distinct: bool = False
    setop: tuple[str, Intent] | None = None
    joined: list[str] = attrs.field(factory=list)
    notes: list[str] = attrs.field(factory=list)
    problems: list[str] = attrs.field(factory=list)

    def tables(self) -> list[str]:
        """Every table the intent reads outside subqueries, subject first."""
        out: list[str] = [self.subject] if self.subject else []

        def add(t: str) -> None:
            if t and t not in out:
                out.append(t)

        for it in self.select:
            for t in sorted(it.tables):
                add(t)
        for c in self.where:
            add(c.col.table)
        for g in self.group:
            add(g.table)
        for h in self.having:
            if h.col is not None:
                add(h.col.table)
        for o in self.order:
            for t in sorted(o.item.tables):
                add(t)
        for t in self.joined:
            add(t)
        return out
