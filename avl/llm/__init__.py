"""Chat models: one Protocol, providers over httpx, and an offline generator."""

from __future__ import annotations

from avl.llm._types import AsyncChatModel, ChatModel, Completion, Delta, Message, Role, Usage

__all__ = ["AsyncChatModel", "ChatModel", "Completion", "Delta", "Message", "Role", "Usage"]
