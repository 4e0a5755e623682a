"""Scripted chat models for tests (re-exported by :mod:`avl.testing`)."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

import attrs

from avl.llm._tokens import estimate_tokens
from avl.llm._types import AsyncChatModel, ChatModel, Completion, Delta, Message, Usage

__all__ = ["AsyncFakeChatModel", "FakeCall", "FakeChatModel"]

Reply = str | Completion | BaseException


@attrs.frozen(kw_only=True)
class FakeCall:
    """One call a fake model received.

    Attributes:
        messages: the messages, as passed.
        max_tokens: the ``max_tokens`` argument.
        temperature: the ``temperature`` argument.
        stop: the ``stop`` argument.
        streamed: whether it was a ``stream`` call.
    """

    messages: tuple[Message, ...]
    max_tokens: int | None = None
    temperature: float | None = None
    stop: tuple[str, ...] = ()
    streamed: bool = False


class _FakeCore:
    """The script and the call log, shared by the sync and async fakes."""

    def __init__(
        self,
        replies: Iterable[Reply],
        *,
        name: str,
        default: str | None,
        chunk_size: int,
    ) -> None:
        if isinstance(replies, (str, Completion, BaseException)):
            replies = [replies]
        self._replies: list[Reply] = list(replies)
        for i, reply in enumerate(self._replies):
            if not isinstance(reply, (str, Completion, BaseException)):
                raise TypeError(
                    f"replies[{i}] must be a str, a Completion or an exception, "
                    f"got {type(reply).__name__}"
                )
        if not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
        self._name = name
        self._default = default
        self._chunk_size = chunk_size
        self._next = 0
        self._lock = threading.Lock()
        self.calls: list[FakeCall] = []

    @property
    def name(self) -> str:
        """The model's name (``"fake"`` by default)."""
        return self._name

    @property
    def received(self) -> list[tuple[Message, ...]]:
        """The messages of each call, in order."""
        return [call.messages for call in self.calls]

    @property
    def remaining(self) -> int:
        """How many scripted replies are left."""
        return len(self._replies) - self._next

    def _take(
        self,
        messages: Sequence[Message],
        max_tokens: int | None,
        temperature: float | None,
        stop: Sequence[str] | None,
        *,
        streamed: bool,
    ) -> Reply:
        with self._lock:
            self.calls.append(
                FakeCall(
                    messages=tuple(messages),
                    max_tokens=max_tokens,
                    temperature=temperature,
                    stop=tuple(stop or ()),
                    streamed=streamed,
                )
            )
            if self._next < len(self._replies):
                reply = self._replies[self._next]
                self._next += 1
                return reply
            if self._default is not None:
                return self._default
            raise AssertionError(
                f"{type(self).__name__} ran out of scripted replies "
                f"({len(self._replies)} given, this is call #{len(self.calls)})"
            )

    def _as_completion(
        self, reply: str | Completion, messages: Sequence[Message], stop: Sequence[str] | None
    ) -> Completion:
        if isinstance(reply, Completion):
            return reply
        text = reply
        stop_reason = "stop"
        for sequence in stop or ():
            cut = text.find(sequence)
            if cut >= 0:
                text = text[:cut]
        usage = Usage(
            input_tokens=sum(estimate_tokens(m.content) for m in messages),
            output_tokens=estimate_tokens(text),
        )
        return Completion(
            text=text,
            model=self._name,
            provider="fake",
            usage=usage,
            cost_usd=0.0,
            stop_reason=stop_reason,
        )

    def _deltas(self, completion: Completion) -> Iterator[Delta]:
        text = completion.text
        for start in range(0, len(text), self._chunk_size):
            yield Delta(text=text[start : start + self._chunk_size])
        yield Delta(
            done=True,
            usage=completion.usage,
            stop_reason=completion.stop_reason,
            model=completion.model,
            cost_usd=completion.cost_usd,
            request_id=completion.request_id,
            tool_calls=completion.tool_calls,
        )


class FakeChatModel(_FakeCore):
    """A :class:`~avl.llm.ChatModel` that returns scripted replies in order.

    Each reply is a string (wrapped in a :class:`~avl.llm.Completion` with estimated
    usage and zero cost), a ready :class:`~avl.llm.Completion`, or an exception that
    the call raises. Every call is recorded in :attr:`calls`. ``stream`` yields the
    reply in deltas of ``chunk_size`` characters, then a ``done`` delta. Stop
    sequences cut a string reply, as a provider would.

    Args:
        replies: the script.
        name: the model's name.
        default: the reply once the script is used up (``None``: raise
            ``AssertionError``, so a test sees an unexpected extra call).
        chunk_size: characters per streamed delta.

    Example:
        >>> from avl.llm import Message
        >>> model = FakeChatModel(["SELECT 1", "SELECT 2"])
        >>> model.complete([Message(role="user", content="one?")]).text
        'SELECT 1'
        >>> [d.text for d in model.stream([Message(role="user", content="two?")])]
        ['SELE', 'CT 2', '']
        >>> model.received[0][0].content
        'one?'
    """

    def __init__(
        self,
        replies: Iterable[Reply] = (),
        *,
        name: str = "fake",
        default: str | None = None,
        chunk_size: int = 4,
    ) -> None:
        super().__init__(replies, name=name, default=default, chunk_size=chunk_size)

    def complete(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] | None = None,
    ) -> Completion:
        """Return the next scripted reply (or raise the scripted exception)."""
        reply = self._take(messages, max_tokens, temperature, stop, streamed=False)
        if isinstance(reply, BaseException):
            raise reply
        return self._as_completion(reply, messages, stop)

    def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] | None = None,
    ) -> Iterator[Delta]:
        """Yield the next scripted reply in small deltas (the exception is raised
        when iteration starts)."""
        reply = self._take(messages, max_tokens, temperature, stop, streamed=True)
        return self._stream(reply, messages, stop)

    def _stream(
        self, reply: Reply, messages: Sequence[Message], stop: Sequence[str] | None
    ) -> Iterator[Delta]:
        if isinstance(reply, BaseException):
            raise reply
        yield from self._deltas(self._as_completion(reply, messages, stop))

    def __repr__(self) -> str:
        return f"FakeChatModel(name={self.name!r}, calls={len(self.calls)}, remaining={self.remaining})"


class AsyncFakeChatModel(_FakeCore):
    """The asyncio twin of :class:`FakeChatModel` (same arguments and methods).

    Example:
        >>> import asyncio
        >>> from avl.llm import Message
        >>> model = AsyncFakeChatModel(["hi"])
        >>> asyncio.run(model.complete([Message(role="user", content="?")])).text
        'hi'
    """

    def __init__(
        self,
        replies: Iterable[Reply] = (),
        *,
        name: str = "fake",
        default: str | None = None,
        chunk_size: int = 4,
    ) -> None:
        super().__init__(replies, name=name, default=default, chunk_size=chunk_size)

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] | None = None,
    ) -> Completion:
        """Return the next scripted reply (or raise the scripted exception)."""
        reply = self._take(messages, max_tokens, temperature, stop, streamed=False)
        if isinstance(reply, BaseException):
            raise reply
        return self._as_completion(reply, messages, stop)

    def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] | None = None,
    ) -> AsyncIterator[Delta]:
        """Yield the next scripted reply in small deltas."""
        reply = self._take(messages, max_tokens, temperature, stop, streamed=True)
        return self._stream(reply, messages, stop)

    async def _stream(
        self, reply: Reply, messages: Sequence[Message], stop: Sequence[str] | None
    ) -> AsyncIterator[Delta]:
        if isinstance(reply, BaseException):
            raise reply
        for delta in self._deltas(self._as_completion(reply, messages, stop)):
            yield delta

    def __repr__(self) -> str:
        return (
            f"AsyncFakeChatModel(name={self.name!r}, calls={len(self.calls)}, "
            f"remaining={self.remaining})"
        )


if TYPE_CHECKING:  # mypy checks that both twins satisfy the Protocols

    def _satisfies(
        model: FakeChatModel, twin: AsyncFakeChatModel
    ) -> tuple[ChatModel, AsyncChatModel]:
        return model, twin
