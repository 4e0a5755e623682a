"""The SqlWriter side of the Assistant: any ChatModel adapted once, and the edge adapter."""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Sequence
from typing import TYPE_CHECKING

from avl.assistant._prompt import extract_sql, parse_abstention, render_messages
from avl.errors import ConfigError
from avl.llm import Completion, Message, Usage
from avl.schema import SqlDraft, WriteContext
from avl.typing import ChatModel, SqlWriter, StreamingSqlWriter

if TYPE_CHECKING:
    from avl.metrics import CostTable

__all__ = ["ChatSqlWriter", "as_streaming_writer"]

_PIECES = re.compile(r"\S+\s*|\s+")


class ChatSqlWriter:
    """A :class:`~avl.typing.SqlWriter` over any :class:`~avl.typing.ChatModel`.

    It renders the prompt from the :class:`~avl.schema.WriteContext` (schema,
    documentation, examples, earlier turns and failed attempts: never the stored
    value index), calls the model, and reads its reply: a reply that starts with
    ``CANNOT ANSWER:`` is an abstention; otherwise the SQL is extracted (a fenced
    ``sql`` block, or the statement the reply starts with). The Assistant wraps a
    plain chat model in one of these, once, when it is built.

    Args:
        model: the chat model.
        render: builds the messages from a context (default
            :func:`~avl.assistant.render_messages`).
        max_tokens: passed to the model.
        temperature: passed to the model.

    Raises:
        ConfigError: ``model`` has no ``complete`` method.

    Example:
        >>> from avl.schema import WriteContext
        >>> from avl.testing import FakeChatModel
        >>> writer = ChatSqlWriter(FakeChatModel(["```sql\\nSELECT 1\\n```"]))
        >>> writer.write(WriteContext(question="one?")).sql
        'SELECT 1'
    """

    def __init__(
        self,
        model: ChatModel,
        *,
        render: Callable[[WriteContext], Sequence[Message]] = render_messages,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> None:
        if not callable(getattr(model, "complete", None)):
            raise ConfigError(f"ChatSqlWriter needs a ChatModel, got {type(model).__name__}")
        self.model = model
        self.render = render
        self.max_tokens = max_tokens
        self.temperature = temperature
        self._costs: CostTable | None = None

    @property
    def name(self) -> str:
        """The model's name."""
        return str(self.model.name)

    def write(self, context: WriteContext) -> SqlDraft:
        """Ask the model once; the SQL of its reply, or its abstention.

        Raises:
            ProviderError: the model failed.
        """
        messages = list(self.render(context))
        completion = self.model.complete(
            messages, max_tokens=self.max_tokens, temperature=self.temperature
        )
        return self.draft(completion)

    def write_stream(self, context: WriteContext) -> Generator[str, None, SqlDraft]:
        """Like :meth:`write`, yielding the reply's text as the model streams it.

        Raises:
            ProviderError: the model failed.
        """
        messages = list(self.render(context))
        if not callable(getattr(self.model, "stream", None)):  # a complete-only model
            completion = self.model.complete(
                messages, max_tokens=self.max_tokens, temperature=self.temperature
            )
            yield completion.text
            return self.draft(completion)
        text: list[str] = []
        usage: Usage | None = None
        model, cost, stop = "", None, None
        for delta in self.model.stream(
            messages, max_tokens=self.max_tokens, temperature=self.temperature
        ):
            if delta.text:
                text.append(delta.text)
                yield delta.text
            if delta.done:
                usage, model, cost, stop = (
                    delta.usage,
                    delta.model,
                    delta.cost_usd,
                    delta.stop_reason,
                )
        completion = Completion(
            text="".join(text), model=model, usage=usage or Usage(), cost_usd=cost, stop_reason=stop
        )
        return self.draft(completion, usage_known=usage is not None)

    def draft(self, completion: Completion, *, usage_known: bool = True) -> SqlDraft:
        """Read a completion: an abstention, or the SQL it holds.

        Args:
            completion: the model's completion.
            usage_known: whether ``completion.usage`` holds the provider's counts
                (else the Assistant estimates them).

        Returns:
            The draft (its ``sql`` is ``""`` when the reply held none).
        """
        usage = completion.usage
        model = completion.model or self.name
        cost = completion.cost_usd
        if cost is None and usage_known:
            if self._costs is None:
                from avl.metrics import CostTable

                self._costs = CostTable.default()
            cost = self._costs.cost_usd(
                str(getattr(self.model, "provider", "") or ""),
                model,
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                cached_tokens=usage.cached_tokens,
            )
        inp = usage.input_tokens if usage_known else None
        out = usage.output_tokens if usage_known else None
        abstention = parse_abstention(completion.text)
        if abstention is not None:
            reason, understood = abstention
            return SqlDraft.abstain(
                reason,
                understood=understood,
                model=model,
                input_tokens=inp,
                output_tokens=out,
                cost_usd=cost,
                text=completion.text,
            )
        return SqlDraft(
            sql=extract_sql(completion.text),
            model=model,
            input_tokens=inp,
            output_tokens=out,
            cached_tokens=usage.cached_tokens if usage_known else 0,
            cost_usd=cost,
            text=completion.text,
        )

    def __repr__(self) -> str:
        return f"ChatSqlWriter({self.model!r})"


class _PiecewiseWriter:
    """A writer without ``write_stream``: its SQL is streamed word by word after the fact."""

    def __init__(self, writer: SqlWriter) -> None:
        self.writer = writer

    @property
    def name(self) -> str:
        return str(self.writer.name)

    def write(self, context: WriteContext) -> SqlDraft:
        return self.writer.write(context)

    def write_stream(self, context: WriteContext) -> Generator[str, None, SqlDraft]:
        draft = self.writer.write(context)
        yield from _PIECES.findall(draft.sql or draft.text)
        return draft


def as_streaming_writer(model: object) -> StreamingSqlWriter:
    """Adapt a model once, at the edge: a streaming SqlWriter for the pipeline.

    A :class:`~avl.typing.StreamingSqlWriter` is used as it is; another
    :class:`~avl.typing.SqlWriter` streams its SQL word by word once written; a
    :class:`~avl.typing.ChatModel` is wrapped in a :class:`ChatSqlWriter`.

    Raises:
        ConfigError: ``model`` is neither a SqlWriter nor a ChatModel.
    """
    if isinstance(model, StreamingSqlWriter):
        return model
    if isinstance(model, SqlWriter):
        return _PiecewiseWriter(model)
    if isinstance(model, ChatModel) or callable(getattr(model, "complete", None)):
        return ChatSqlWriter(model)  # type: ignore[arg-type]  # duck-typed ChatModel without stream
    raise ConfigError(
        f"model must be a SqlWriter, a ChatModel or a model URL, got {type(model).__name__}"
    )
