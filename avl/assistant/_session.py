"""Sessions: follow-up questions that carry the earlier turns of a conversation.

A turn is one answered question of a session: the question, the SQL that answered
it and the columns of its result. Turns are kept per ``(source, session, user,
role)``: a session id names a conversation of one user in one role, and another
user (or role) who sends the same id sees none of its turns (they are scoped at
the source: the read itself is filtered by user and role).

Where they live:

- with a :class:`~avl.history.History` attached, in the History itself (its
  ``session`` column): every answered request is recorded there anyway, so every
  worker sharing the History sees the same conversation;
- otherwise in a bounded store in this process (least recently used sessions are
  dropped beyond ``max_sessions``, idle ones after ``ttl_s``).

The History records the SQL that ran, which is SafeQuery's rewrite (a row filter
spliced in as ``(SELECT * FROM t WHERE <filter>) AS t``, a ``LIMIT`` added).
:func:`unwrap` takes those back out before a turn reaches a writer, so a model
never sees the caller's filter values and a refined query is not filtered twice.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections import deque
from collections.abc import Callable, Collection, Generator, Mapping
from typing import TYPE_CHECKING, Any

import cachetools

from avl.errors import AvlError, InvalidInputError
from avl.llm import estimate_tokens
from avl.schema import Turn

if TYPE_CHECKING:
    from avl.assistant._answer import Answer, Event
    from avl.assistant._assistant import Assistant

__all__ = [
    "NEW_SESSION",
    "HistoryTurns",
    "MemoryTurns",
    "Session",
    "TurnKey",
    "bound_turns",
    "new_session_id",
    "output_columns",
    "unwrap",
]

#: The session value that asks for a fresh session id (``ask(..., session="new")``).
NEW_SESSION = "new"
_log = logging.getLogger("avl.assistant")

#: ``(source, session, user, role)``: whose conversation a turn belongs to.
TurnKey = tuple[str, str, str, str]


def new_session_id() -> str:
    """A fresh, unguessable session id (22 URL-safe characters)."""
    import secrets  # loaded when a session starts (it loads OpenSSL)

    return secrets.token_urlsafe(16)


class MemoryTurns:
    """The turns of recent sessions in this process: bounded in sessions, turns and time.

    Args:
        max_sessions: sessions kept; the least recently used is dropped beyond it.
        ttl_s: a session idle this long (seconds) is dropped.
        max_turns: turns kept per session (the oldest is dropped).
        timer: the monotonic clock (seconds).
    """

    def __init__(
        self,
        *,
        max_sessions: int = 10_000,
        ttl_s: float = 3600.0,
        max_turns: int = 20,
        timer: Callable[[], float] | None = None,
    ) -> None:
        import time

        self.max_turns = max_turns
        self._lock = threading.Lock()
        self._sessions: cachetools.TTLCache[TurnKey, deque[Turn]] = cachetools.TTLCache(
            maxsize=max_sessions, ttl=ttl_s, timer=timer or time.monotonic
        )

    def load(self, key: TurnKey, limit: int) -> list[Turn]:
        """The last ``limit`` turns of ``key``'s session, oldest first."""
        with self._lock:
            got = self._sessions.get(key)
            if got is None:
                return []
            self._sessions[key] = got  # touched: the session's idle time starts again
            return list(got)[-limit:] if limit > 0 else []

    def add(self, key: TurnKey, turn: Turn) -> None:
        """Append one answered turn to ``key``'s session."""
        with self._lock:
            got = self._sessions.get(key)
            if got is None:
                got = deque(maxlen=self.max_turns)
            got.append(turn)
            self._sessions[key] = got

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)


class HistoryTurns:
    """The turns of a session read from a History (shared by every worker using it).

    Only answered entries (outcome ``ok``) of the same data source, session, user
    and role are read: the History filters them, so another user's turns are never
    loaded. Nothing is written here: the Assistant records every request anyway.

    Args:
        history: a :class:`~avl.history.History` (anything with ``search(session=,
            user=, role=, outcome=, tags=, limit=)``).
    """

    def __init__(self, history: Any) -> None:
        self.history = history

    def load(self, key: TurnKey, limit: int) -> list[Turn]:
        """The last ``limit`` answered turns of ``key``'s session, oldest first.

        Raises:
            AvlError: the History could not be read.
        """
        if limit <= 0:
            return []
        source, session, user, role = key
        page = self.history.search(
            session=session,
            user=user,
            role=role,
            outcome="ok",
            tags=f"source:{source}",
            limit=limit,
        )
        turns = [Turn(question=str(e.question), sql=str(e.sql)) for e in page if e.sql]
        turns.reverse()
        return turns

    def add(self, key: TurnKey, turn: Turn) -> None:
        """Nothing to do: the request's History entry is the turn."""


def unwrap(
    sql: str,
    *,
    dialect: str,
    filtered: Collection[str] = (),
    max_rows: int | None = None,
) -> str:
    """``sql`` without SafeQuery's rewrites: row-filter subqueries and the row cap.

    A subquery ``(SELECT * FROM t WHERE ...) AS a`` over a table in ``filtered``
    (lower-case names) becomes ``t AS a`` (``t`` when the alias is the table's
    name); ``SELECT * FROM (<query>) AS _bounded LIMIT n`` becomes ``<query>``; a
    ``LIMIT max_rows`` is dropped. The result is what the writer wrote (up to
    formatting) when ``sql`` is the guard's rewrite of it; the next query made from
    it is checked (and filtered) again. Text that does not parse is returned as is.
    """
    if not sql:
        return sql
    return _unwrap(sql, dialect, frozenset(f.lower() for f in filtered), max_rows)


@functools.lru_cache(maxsize=1024)
def _unwrap(sql: str, dialect: str, low: frozenset[str], max_rows: int | None) -> str:
    import sqlglot
    from sqlglot import expressions as exp

    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except (sqlglot.errors.SqlglotError, ValueError):
        return sql
    changed = False
    # SELECT * FROM (<query>) AS _bounded LIMIT n
    if isinstance(tree, exp.Select) and _is_star(tree) and not tree.args.get("where"):
        src = tree.args.get("from_") or tree.args.get("from")
        sub = src.this if src is not None else None
        if (
            isinstance(sub, exp.Subquery)
            and sub.alias == "_bounded"
            and not tree.args.get("joins")
            and isinstance(sub.this, exp.Query)
        ):
            tree, changed = sub.this, True
    for sub in list(tree.find_all(exp.Subquery)):
        inner = sub.this
        if not isinstance(inner, exp.Select) or not _is_star(inner) or not inner.args.get("where"):
            continue
        if any(inner.args.get(k) for k in ("joins", "group", "having", "order")):
            continue
        if not _is_fence(inner, dialect):
            continue
        src = inner.args.get("from_") or inner.args.get("from")
        table = src.this if src is not None else None
        if not isinstance(table, exp.Table) or table.name.lower() not in low or table.alias:
            continue
        alias = sub.alias
        plain = table.copy()
        if alias and alias.lower() != table.name.lower():
            plain.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
        sub.replace(plain)
        changed = True
    limit = tree.args.get("limit")
    if max_rows is not None and isinstance(limit, exp.Limit):
        value = limit.expression
        if isinstance(value, exp.Literal) and value.is_int and int(value.this) == max_rows:
            tree.set("limit", None)
            changed = True
    return tree.sql(dialect=dialect) if changed else sql


#: ``LIMIT`` values that do not limit (the guard's fence keeps a filter's subquery
#: from being merged: ``LIMIT -1 OFFSET 0`` on SQLite, ``OFFSET 0`` on PostgreSQL,
#: ``LIMIT 18446744073709551615`` on MySQL).
_NO_LIMIT = frozenset({"-1", "18446744073709551615", "ALL"})


def _is_fence(select: Any, dialect: str) -> bool:
    """Whether ``select``'s ``LIMIT``/``OFFSET`` (if any) keep every row."""
    from sqlglot import expressions as exp

    limit, offset = select.args.get("limit"), select.args.get("offset")
    if offset is not None:
        value = offset.expression if isinstance(offset, exp.Offset) else offset
        if value is None or value.sql(dialect=dialect) != "0":
            return False
    if limit is not None:
        value = limit.expression if isinstance(limit, exp.Limit) else limit
        if value is None or value.sql(dialect=dialect).replace(" ", "").upper() not in _NO_LIMIT:
            return False
    return True


def _is_star(select: Any) -> bool:
    from sqlglot import expressions as exp

    return len(select.expressions) == 1 and isinstance(select.expressions[0], exp.Star)


@functools.lru_cache(maxsize=1024)
def output_columns(sql: str, dialect: str) -> tuple[str, ...]:
    """The names of ``sql``'s result columns as far as the text tells (``()`` if unknown)."""
    import sqlglot
    from sqlglot import expressions as exp

    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except (sqlglot.errors.SqlglotError, ValueError):
        return ()
    if not isinstance(tree, exp.Query):
        return ()
    names = []
    for e in tree.selects:
        if isinstance(e, exp.Star):
            return ()
        if e.alias:
            names.append(e.alias)
        elif isinstance(e, exp.Column):
            names.append(e.name)
        else:
            names.append(e.sql(dialect=dialect))
    return tuple(names)


def bound_turns(turns: list[Turn], *, max_turns: int, max_tokens: int) -> tuple[Turn, ...]:
    """The last ``max_turns`` turns whose text fits ``max_tokens`` (the newest always kept)."""
    kept: list[Turn] = []
    used = 0
    for t in reversed(turns[-max_turns:] if max_turns > 0 else []):
        cost = estimate_tokens(t.question) + estimate_tokens(t.sql) + 8
        if kept and used + cost > max_tokens:
            break
        kept.append(t)
        used += cost
    kept.reverse()
    return tuple(kept)


class Session:
    """A conversation with an :class:`~avl.assistant.Assistant`: follow-up questions.

    Each question is asked with the earlier turns of the session (question, SQL,
    result columns), so "and only in France?" refines the previous query. Made by
    :meth:`Assistant.session <avl.assistant.Assistant.session>`; the same
    conversation continues from any worker with ``ask(..., session=session.id)``
    when the Assistants share a History.

    Attributes:
        id: the session id (give it back to continue the conversation).
        user: who asks.
        role: the role whose policy applies.
        context: the row-filter parameters.

    Example:
        >>> chat = assistant.session(user="ann")  # doctest: +SKIP
        >>> chat.ask("orders per country").sql  # doctest: +SKIP
        >>> chat.ask("and only in France?").sql  # doctest: +SKIP
    """

    def __init__(
        self,
        assistant: Assistant,
        *,
        id: str,
        user: str,
        role: str | None,
        context: Mapping[str, object],
    ) -> None:
        self.assistant = assistant
        self.id = id
        self.user = user
        self.role = role
        self.context: Mapping[str, object] = dict(context)

    @property
    def turns(self) -> tuple[Turn, ...]:
        """The answered turns of this session so far, oldest first (at most the
        Assistant's ``max_turns``)."""
        return self.assistant.session_turns(self.id, user=self.user, role=self.role)

    def ask(self, question: str) -> Answer:
        """Ask within the session (see :meth:`Assistant.ask <avl.assistant.Assistant.ask>`).

        Raises:
            InvalidInputError: an empty or oversized question.
            RateLimitedError: the user is over a rate limit or token budget.
            ProviderError: the model failed.
        """
        return self.assistant.ask(
            question, user=self.user, role=self.role, context=self.context, session=self.id
        )

    def stream(
        self, question: str, *, cancel: threading.Event | None = None
    ) -> Generator[Event, None, None]:
        """Ask within the session as a stream of events (see
        :meth:`Assistant.stream <avl.assistant.Assistant.stream>`).

        Raises:
            InvalidInputError: an empty or oversized question.
        """
        return self.assistant.stream(
            question,
            user=self.user,
            role=self.role,
            context=self.context,
            session=self.id,
            cancel=cancel,
        )

    def __repr__(self) -> str:
        return f"Session(id={self.id!r}, user={self.user!r}, role={self.role!r})"


def load_turns(store: MemoryTurns | HistoryTurns, key: TurnKey, limit: int) -> list[Turn]:
    """The stored turns, or none when the store cannot be read (logged, not raised:
    the question is then answered on its own)."""
    try:
        return store.load(key, limit)
    except AvlError as exc:
        _log.warning("the turns of a session could not be read (%s); answering without", exc)
        return []


def check_session(value: object) -> str:
    """A session id: ``""`` (none), ``"new"`` or a name of at most 256 characters.

    Raises:
        InvalidInputError: anything else.
    """
    from avl.assistant._audit import check_name

    if value is None:
        return ""
    got = check_name(value, "session")
    if got is None:  # pragma: no cover - check_name returns a string when not optional
        raise InvalidInputError("session must be a string")
    return got
