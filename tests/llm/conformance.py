"""The ChatModel Protocol suite: every model, sync and async, must pass it unchanged."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from avl.llm import AsyncChatModel, ChatModel, Completion, Delta, Message, Usage

QUESTION = [
    Message(role="system", content="CREATE TABLE orders (id INT, total REAL, city TEXT);"),
    Message(role="user", content="Question: how many orders are there?"),
]


def check_completion(completion: Completion) -> None:
    assert isinstance(completion, Completion)
    assert isinstance(completion.text, str)
    assert completion.text != ""
    assert isinstance(completion.usage, Usage)
    assert completion.usage.input_tokens >= completion.usage.cached_tokens >= 0
    assert completion.usage.output_tokens >= 0
    assert completion.cost_usd is None or completion.cost_usd >= 0


def check_deltas(deltas: list[Delta]) -> None:
    assert deltas, "a stream yields at least its final delta"
    *pieces, last = deltas
    assert last.done is True
    assert all(d.done is False and d.text != "" for d in pieces)
    assert "".join(d.text for d in pieces) != ""
    if last.usage is not None:
        assert last.usage.total_tokens >= 0


class ChatModelConformance:
    """Subclass with a ``make`` fixture returning a factory of fresh models."""

    def test_is_a_chat_model(self, make: Callable[[], ChatModel]) -> None:
        model = make()
        assert isinstance(model, ChatModel)
        assert isinstance(model.name, str)
        assert model.name != ""

    def test_complete(self, make: Callable[[], ChatModel]) -> None:
        check_completion(make().complete(QUESTION))

    def test_stream(self, make: Callable[[], ChatModel]) -> None:
        check_deltas(list(make().stream(QUESTION, max_tokens=100)))

    def test_stream_can_be_abandoned(self, make: Callable[[], ChatModel]) -> None:
        stream = iter(make().stream(QUESTION))
        first = next(stream)
        assert isinstance(first, Delta)
        close = getattr(stream, "close", None)
        if close is not None:
            close()


class AsyncChatModelConformance:
    """The same checks for asyncio models."""

    def test_is_an_async_chat_model(self, make_async: Callable[[], AsyncChatModel]) -> None:
        assert isinstance(make_async(), AsyncChatModel)

    def test_complete_and_stream(self, make_async: Callable[[], AsyncChatModel]) -> None:
        async def run() -> tuple[Completion, list[Delta]]:
            completion = await make_async().complete(QUESTION)
            deltas = [d async for d in make_async().stream(QUESTION)]
            return completion, deltas

        completion, deltas = asyncio.run(run())
        check_completion(completion)
        check_deltas(deltas)
