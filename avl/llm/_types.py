"""Values shared by every chat model (pure, no I/O); the Protocols live in :mod:`avl.typing`."""

from __future__ import annotations

from typing import Literal

import attrs

from avl.typing import AsyncChatModel, ChatModel

__all__ = [
    "AsyncChatModel",
    "ChatModel",
    "Completion",
    "Delta",
    "Message",
    "Role",
    "ToolCall",
    "Usage",
]

Role = Literal["system", "user", "assistant", "tool"]


@attrs.frozen(kw_only=True)
class Message:
    """One chat message.

    Attributes:
        role: ``"system"``, ``"user"``, ``"assistant"`` or ``"tool"``.
        content: the text.
    """

    role: Role = attrs.field(
        validator=attrs.validators.in_(("system", "user", "assistant", "tool"))
    )
    content: str = attrs.field(validator=attrs.validators.instance_of(str))


@attrs.frozen(kw_only=True)
class Usage:
    """Token usage of one call.

    Attributes:
        input_tokens: prompt tokens billed (including cached ones).
        output_tokens: completion tokens.
        cached_tokens: prompt tokens served from the provider's cache (part of
            ``input_tokens``).
        cache_creation_tokens: prompt tokens written to the provider's cache on this
            call (Anthropic's ``cache_creation_input_tokens``; part of ``input_tokens``).
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cache_creation_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """``input_tokens + output_tokens``."""
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
            cache_creation_tokens=self.cache_creation_tokens + other.cache_creation_tokens,
        )


@attrs.frozen(kw_only=True)
class ToolCall:
    """A tool (function) call that a model asked for.

    Attributes:
        id: the provider's id for the call (empty when the provider sends none).
        name: the tool's name.
        arguments: the arguments as the JSON text the model produced.
    """

    id: str = ""
    name: str
    arguments: str = "{}"


@attrs.frozen(kw_only=True)
class Completion:
    """A chat model's answer.

    Attributes:
        text: the generated text.
        model: the model that answered (as the provider names it).
        provider: ``"openai"``, ``"anthropic"``, ``"gemini"``, ``"offline"``...
        usage: token usage.
        cost_usd: the cost from the cost table, or ``None`` if the model is unknown.
        stop_reason: why generation stopped (``"stop"``, ``"length"``, ``"tool_use"``...).
        request_id: the provider's request id, if any.
        tool_calls: the tool calls the model asked for.
    """

    text: str
    model: str = ""
    provider: str = ""
    usage: Usage = attrs.field(factory=Usage)
    cost_usd: float | None = None
    stop_reason: str | None = None
    request_id: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()


@attrs.frozen(kw_only=True)
class Delta:
    """One streamed piece of a completion.

    The last delta of a stream has ``done=True`` and carries ``usage`` and
    ``stop_reason`` when the provider sends them (and, from avl's providers, the
    ``model``, ``cost_usd``, ``request_id`` and the assembled ``tool_calls``).
    """

    text: str = ""
    done: bool = False
    usage: Usage | None = None
    stop_reason: str | None = None
    model: str = ""
    cost_usd: float | None = None
    request_id: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
