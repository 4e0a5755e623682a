"""Model names people already write, beside the URLs (``avl.llm._factory``)."""

from __future__ import annotations

import json

import httpx
import pytest

from avl.errors import ConfigError
from avl.llm import create_async_chat_model, create_chat_model
from avl.llm._factory import model_url


@pytest.mark.parametrize(
    ("name", "url"),
    [
        ("openai:gpt-4o", "openai://?model=gpt-4o"),
        ("openai/gpt-4o", "openai://?model=gpt-4o"),
        ("OpenAI:gpt-4o-mini", "openai://?model=gpt-4o-mini"),
        ("anthropic:claude-sonnet-4-0", "anthropic://?model=claude-sonnet-4-0"),
        ("anthropic/claude-3-5-haiku-latest", "anthropic://?model=claude-3-5-haiku-latest"),
        ("gemini:gemini-2.0-flash", "gemini://?model=gemini-2.0-flash"),
        ("google:gemini-2.0-flash", "gemini://?model=gemini-2.0-flash"),
        ("ollama:llama3", "openai+http://localhost:11434/v1?model=llama3"),
        ("ollama:llama3:8b", "openai+http://localhost:11434/v1?model=llama3%3A8b"),
        ("ollama/qwen2.5-coder:7b", "openai+http://localhost:11434/v1?model=qwen2.5-coder%3A7b"),
        ("llamacpp:any", "openai+http://localhost:8080/v1?model=any"),
        ("offline", "offline://"),
        ("  openai:gpt-4o ", "openai://?model=gpt-4o"),
        ("openai://api.openai.com/v1?model=x", "openai://api.openai.com/v1?model=x"),
    ],
)
def test_short_names_expand_to_urls(name: str, url: str) -> None:
    assert model_url(name) == url


def _openai_reply(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    return httpx.Response(
        200,
        json={
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "SELECT 1"},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
        },
    )


def test_the_models_built_from_short_names_call_the_right_server() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return _openai_reply(request)

    from avl.llm import Message

    ask = [Message(role="user", content="one?")]
    model = create_chat_model("openai:gpt-4o", api_key="k", transport=httpx.MockTransport(handler))
    assert model.name == "openai/gpt-4o"
    assert model.complete(ask).text == "SELECT 1"
    local = create_chat_model("ollama:llama3:8b", transport=httpx.MockTransport(handler))
    assert local.name == "openai/llama3:8b"
    assert local.complete(ask).text == "SELECT 1"
    assert [str(r.url) for r in seen] == [
        "https://api.openai.com/v1/chat/completions",
        "http://localhost:11434/v1/chat/completions",
    ]
    assert [json.loads(r.content)["model"] for r in seen] == ["gpt-4o", "llama3:8b"]
    assert "authorization" not in seen[1].headers  # a local server needs no key
    claude = create_chat_model("anthropic:claude-sonnet-4-0", api_key="k")
    assert claude.name == "anthropic/claude-sonnet-4-0"
    gem = create_async_chat_model("gemini/gemini-2.0-flash", api_key="k")
    assert gem.name == "gemini/gemini-2.0-flash"


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("opneai:gpt-4o", "unknown model provider 'opneai'.*did you mean 'openai:gpt-4o'"),
        ("antropic:claude-3", "did you mean 'anthropic:claude-3'"),
        ("olama:llama3", "did you mean 'ollama:llama3'"),
        ("gpt-4o", "did you mean 'openai:gpt-4o'"),
        ("claude-sonnet-4-0", "did you mean 'anthropic:claude-sonnet-4-0'"),
        ("llama3", "did you mean 'ollama:llama3'"),
        ("openai:", "names no model after 'openai'"),
        ("zzz", "has no scheme or provider"),
        ("opnai://?model=x", "did you mean 'openai'"),
    ],
)
def test_typos_get_clear_errors(name: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        create_chat_model(name, api_key="k")


def test_a_non_string_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="must be a string"):
        model_url(42)  # type: ignore[arg-type]


def test_the_assistant_takes_short_names(tmp_path: object) -> None:
    import sqlite3

    from avl.assistant import Assistant

    conn = sqlite3.connect(":memory:", check_same_thread=False)
    conn.execute("CREATE TABLE t (a INTEGER)")
    with pytest.raises(ConfigError, match="did you mean 'openai:gpt-4o'"):
        Assistant(db=conn, model="gpt-4o")
    a = Assistant(db=conn, model="ollama:llama3")
    assert a.model.name == "openai/llama3"
    conn.close()
