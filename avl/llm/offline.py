"""The offline generator: deterministic NL-to-SQL with no model at all (``offline://``).

:class:`OfflineChatModel` is a :class:`~avl.llm.ChatModel` that needs no key and no
network. It is the default model of the Assistant, the README demo and the CLI.

It has three entry points:

- :meth:`OfflineChatModel.write` takes a structured :class:`~avl.schema.WriteContext`
  (the question, tables, columns, types, foreign keys, stored values, trained
  question->SQL pairs) and returns a :class:`~avl.schema.SqlDraft`: SQL, or an
  abstention with the reason and what was understood. It is a
  :class:`~avl.typing.SqlWriter`, which the Assistant calls directly, so nothing is
  lost in a text round trip. :meth:`OfflineChatModel.generate` is the same with the
  question passed beside the context, returning only the SQL (``""`` when it
  abstains).
- :meth:`OfflineChatModel.complete` takes chat messages like any model. It reads the
  prompt back: ``CREATE TABLE`` statements become tables and foreign keys, lines
  ``Q: ...`` followed by ``SQL: ...`` become trained pairs, and the last line starting
  with ``Question:`` (or else the last user message) is the question; earlier user
  and assistant messages are the conversation's earlier turns. The answer is a
  fenced ``sql`` block, or ``CANNOT ANSWER: <reason>``.

How it answers, in order:

1. It does not read what is no question: an imperative write ("delete all orders",
   "please drop the table", a SQL write statement) is never answered with a read;
   text that addresses the model ("ignore previous instructions"), gibberish and
   text far longer than a question abstain with the reason.
2. Words link to tables, columns and stored values: stems, word forms
   (``opened``/``open``), derivations (``located``/``location``), typos, words
   written apart (``play list``), parts of multi-word names that hold their
   informative words, ``<table>_id`` read as the table, ``number of X`` as an
   ``X`` count column, demonyms (``Asian``/``Asia``); no value hits on schema words
   or intent words.
3. A trained pair close enough is adapted to the question (its literal, column,
   order direction and limit swapped on the SQL's tree) when the pair's SQL agrees
   with what the question names.
4. Otherwise ordered intent steps read the subject, filters, counts, aggregates,
   grouping, ranking, order and limit, and one renderer writes the sqlglot tree in
   the database's dialect, joining every table the intent reads along foreign keys
   (through bridge tables).
5. Below a confidence threshold (the share of the question's content words linked to
   the schema or its values), it abstains and says what it understood.

With earlier turns (:attr:`WriteContext.turns <avl.schema.WriteContext.turns>`), a
follow-up question ("and only in France?", "sort them by total", "what about
Berlin?", "only the top 3", "how many are there?") refines the last turn's SQL
instead (its conditions, order, limit; a count of its rows), read against that
query's own tables; a question that names another table is answered on its own.

Example:
    >>> from avl.llm.offline import ColumnSpec, GenerationContext, OfflineChatModel, TableSpec
    >>> ctx = GenerationContext(tables=[TableSpec(name="singer", columns=[
    ...     ColumnSpec(name="name", type="TEXT"), ColumnSpec(name="age", type="INT")])])
    >>> OfflineChatModel().generate("How many singers are there?", ctx)
    'SELECT COUNT(*) FROM singer'
    >>> import attrs
    >>> draft = OfflineChatModel().write(attrs.evolve(ctx, question="delete all singers"))
    >>> draft.abstained, draft.reason
    (True, 'it asks to delete data; the assistant only reads data and never changes it, so it does not answer this with a query')
"""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator, Iterator, Sequence

from avl.errors import InvalidInputError
from avl.llm._offline._context import GenerationContext, build_value_index
from avl.llm._offline._generator import OfflineDraft, OfflineGenerator
from avl.llm._types import Completion, Delta, Message, Usage
from avl.schema import (
    ColumnSpec,
    ExamplePair,
    ForeignKeySpec,
    SqlDraft,
    TableSpec,
    Turn,
    WriteContext,
    parse_ddl,
)

__all__ = [
    "AsyncOfflineChatModel",
    "ColumnSpec",
    "ExamplePair",
    "ForeignKeySpec",
    "GenerationContext",
    "OfflineChatModel",
    "TableSpec",
    "build_value_index",
    "create",
    "estimate_tokens",
    "parse_prompt",
]

_FENCED = re.compile(r"```[ \t]*[A-Za-z0-9_-]*[^\n]*\n(.*?)(?:```|\Z)", re.S)
_PAIR = re.compile(r"^\s*(?:--\s*)?Q:\s*(.+?)\s*$\n^\s*(?:--\s*)?SQL:\s*(.+?)\s*$", re.M)
_QUESTION = re.compile(r"^\s*Question:\s*(.+?)\s*$", re.M)


def estimate_tokens(text: str) -> int:
    """Estimate the number of tokens of ``text`` without an encoding.

    About four characters per token for English and SQL, never less than the number
    of words; this is the documented estimator used where no tiktoken encoding is
    available.

    Args:
        text: any text.

    Returns:
        The estimated token count (0 for an empty text).
    """
    if not text:
        return 0
    return max(len(text.split()), (len(text) + 3) // 4)


def parse_prompt(
    messages: Sequence[Message], *, dialect: str = "sqlite"
) -> tuple[str, GenerationContext]:
    """Read a question and a :class:`GenerationContext` back from prompt messages.

    Args:
        messages: chat messages as the Assistant builds them (any text works: the
            parts that are not recognised are ignored).
        dialect: the SQL dialect used to parse ``CREATE TABLE`` statements.

    Returns:
        ``(question, context)``.

    Raises:
        InvalidInputError: there is no user message.
    """
    text = "\n".join(m.content for m in messages)
    users = [m.content for m in messages if m.role == "user"]
    if not users:
        raise InvalidInputError("the offline model needs at least one user message")
    found = _QUESTION.findall(users[-1]) or _QUESTION.findall(text)
    question = found[-1] if found else users[-1].strip().splitlines()[-1]
    tables, fks = parse_ddl(text, dialect=dialect)
    pairs = [ExamplePair(question=q, sql=s.rstrip(";")) for q, s in _PAIR.findall(text)]
    return question, GenerationContext(
        question=question,
        tables=tables,
        foreign_keys=fks,
        examples=pairs,
        dialect=dialect,
        turns=_turns_of(messages),
    )


def _turns_of(messages: Sequence[Message]) -> list[Turn]:
    """Earlier turns of the conversation: each user message followed by an
    assistant message (its SQL in a fenced block, or the reply as it is)."""
    turns: list[Turn] = []
    rest = [m for m in messages if m.role in ("user", "assistant")]
    for asked, answered in itertools.pairwise(rest):
        if asked.role != "user" or answered.role != "assistant":
            continue
        found = _QUESTION.findall(asked.content)
        question = found[-1] if found else asked.content.strip()
        block = _FENCED.search(answered.content)
        sql = (block.group(1) if block else answered.content).strip().rstrip(";").strip()
        if sql.split(None, 1)[:1] and sql.split(None, 1)[0].upper() in ("SELECT", "WITH"):
            turns.append(Turn(question=question, sql=sql))
    return turns


class OfflineChatModel:
    """A chat model that writes SQL from the question and schema, with no model.

    Args:
        reuse_threshold: minimum similarity (0..1) for reusing a trained pair's SQL.
        dialect: the dialect used to read ``CREATE TABLE`` statements in prompts.

    Example:
        >>> from avl.llm import Message
        >>> model = OfflineChatModel()
        >>> prompt = "CREATE TABLE t (id INT, city TEXT);\\nQuestion: how many t are there?"
        >>> model.complete([Message(role="user", content=prompt)]).text
        '```sql\\nSELECT COUNT(*) FROM t\\n```'
    """

    def __init__(self, *, reuse_threshold: float = 0.4, dialect: str = "sqlite") -> None:
        if not 0.0 <= reuse_threshold <= 1.0:
            raise InvalidInputError(f"reuse_threshold must be in [0, 1], got {reuse_threshold!r}")
        self._gen = OfflineGenerator(reuse_threshold=reuse_threshold)
        self.dialect = dialect

    @property
    def name(self) -> str:
        """``"offline"``."""
        return "offline"

    def write(self, context: WriteContext) -> SqlDraft:
        """Write SQL for ``context.question``, or abstain (the :class:`~avl.typing.SqlWriter` side).

        The Assistant calls this with the caller's policy-scoped context; it uses
        nothing else, nothing leaves the process, and there is nothing to pay. An
        abstention (a write intent, text addressed to the model, gibberish, or a
        question the schema and stored values do not cover) has no SQL, a reason
        and what was understood.

        Args:
            context: the question, tables, foreign keys, stored values and trained
                pairs.

        Returns:
            The draft.

        Raises:
            InvalidInputError: the question is not a non-empty string.
        """
        d = self._draft(context.question, context)
        if d.sql:
            return SqlDraft(sql=d.sql, understood=d.understood, model="offline", cost_usd=0.0)
        return SqlDraft.abstain(d.reason, understood=d.understood, model="offline", cost_usd=0.0)

    def generate(self, question: str, context: WriteContext) -> str:
        """Write one SQL statement for ``question`` from structured ``context``.

        Args:
            question: the user's question.
            context: tables, foreign keys, stored values and trained pairs.

        Returns:
            The SQL (not yet validated: the Assistant runs it through SafeQuery), or
            ``""`` when the generator abstains (:meth:`write` says why).

        Raises:
            InvalidInputError: ``question`` is not a non-empty string.
        """
        return self._draft(question, context).sql

    def _draft(self, question: str, context: WriteContext) -> OfflineDraft:
        if not isinstance(question, str) or not question.strip():
            raise InvalidInputError("the question must be a non-empty string")
        return self._gen.draft(
            question,
            tables=context.tables,
            foreign_keys=context.foreign_keys,
            examples=context.examples,
            value_index=context.value_index or build_value_index(context.values),
            values=context.values,
            dialect=context.dialect,
            turns=context.turns,
        )

    def complete(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] | None = None,
    ) -> Completion:
        """Answer prompt messages with a fenced SQL block, or ``CANNOT ANSWER: <reason>``
        (see the module docs).

        Raises:
            InvalidInputError: there is no user message.
        """
        question, context = parse_prompt(messages, dialect=self.dialect)
        d = self._draft(question, context)
        text = f"```sql\n{d.sql}\n```" if d.sql else f"CANNOT ANSWER: {d.reason}"
        prompt = "\n".join(m.content for m in messages)
        usage = Usage(input_tokens=estimate_tokens(prompt), output_tokens=estimate_tokens(text))
        return Completion(
            text=text,
            model="offline",
            provider="offline",
            usage=usage,
            cost_usd=0.0,
            stop_reason="stop",
        )

    def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] | None = None,
    ) -> Iterator[Delta]:
        """Yield the completion word by word; the last delta has ``done=True``.

        Raises:
            InvalidInputError: there is no user message.
        """
        done = self.complete(messages)
        for piece in re.findall(r"\S+\s*|\s+", done.text):
            yield Delta(text=piece)
        yield Delta(done=True, usage=done.usage, stop_reason="stop")

    def __repr__(self) -> str:
        return f"OfflineChatModel(reuse_threshold={self._gen.reuse_threshold!r})"


class AsyncOfflineChatModel:
    """The asyncio twin of :class:`OfflineChatModel` (same method names).

    Args:
        reuse_threshold: minimum similarity for reusing a trained pair's SQL.
        dialect: the dialect used to read ``CREATE TABLE`` statements in prompts.
    """

    def __init__(self, *, reuse_threshold: float = 0.4, dialect: str = "sqlite") -> None:
        self._sync = OfflineChatModel(reuse_threshold=reuse_threshold, dialect=dialect)

    @property
    def name(self) -> str:
        """``"offline"``."""
        return "offline"

    def write(self, context: WriteContext) -> SqlDraft:
        """Same as :meth:`OfflineChatModel.write` (pure CPU, no await needed)."""
        return self._sync.write(context)

    def generate(self, question: str, context: WriteContext) -> str:
        """Same as :meth:`OfflineChatModel.generate` (pure CPU, no await needed)."""
        return self._sync.generate(question, context)

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] | None = None,
    ) -> Completion:
        """Same as :meth:`OfflineChatModel.complete`."""
        return self._sync.complete(messages)

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] | None = None,
    ) -> AsyncIterator[Delta]:
        """Same as :meth:`OfflineChatModel.stream`."""
        for d in self._sync.stream(messages):
            yield d


def create(url: str = "offline://", **kwargs: object) -> OfflineChatModel:
    """Build the offline model for ``offline://`` (registry factory).

    ``offline://?threshold=0.6`` sets the reuse threshold.

    Args:
        url: ``offline://`` with optional query ``threshold``.
        **kwargs: ``reuse_threshold`` and ``dialect``.

    Returns:
        The model.

    Raises:
        ConfigError: the URL is not ``offline://`` or the threshold is not a number.
    """
    from urllib.parse import parse_qs, urlsplit

    from avl.errors import ConfigError

    parts = urlsplit(url)
    if parts.scheme != "offline":
        raise ConfigError(f"expected an offline:// URL, got {url!r}")
    q = parse_qs(parts.query)
    threshold: float = 0.4
    if "threshold" in q:
        try:
            threshold = float(q["threshold"][-1])
        except ValueError as exc:
            raise ConfigError(f"threshold in {url!r} is not a number") from exc
    rt = kwargs.get("reuse_threshold", threshold)
    dialect = kwargs.get("dialect", "sqlite")
    if not isinstance(rt, (int, float)) or not isinstance(dialect, str):
        raise ConfigError("reuse_threshold must be a number and dialect a string")
    return OfflineChatModel(reuse_threshold=float(rt), dialect=dialect)
