"""Earlier turns reach real providers as prior messages, in each provider's wire format
(recorded responses; the request bodies checked exactly)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from avl.assistant import Assistant, ChatSqlWriter
from avl.llm import AnthropicChatModel, GeminiChatModel, OpenAIChatModel
from avl.schema import ColumnSpec, TableSpec, Turn, WriteContext
from avl.testing import FakeClock, recorded_transport
from tests.llm.conftest import ZeroRandom, body_of, recording

CONTEXT = WriteContext(
    question="and only in France?",
    tables=[TableSpec(name="customers", columns=[ColumnSpec(name="country", type="TEXT")])],
    turns=[
        Turn(
            question="customers per country",
            sql="SELECT country, COUNT(*) FROM customers GROUP BY country",
            columns=("country", "COUNT(*)"),
        )
    ],
)
EARLIER_SQL = "```sql\nSELECT country, COUNT(*) FROM customers GROUP BY country\n```"


def _kw() -> dict[str, Any]:
    clock = FakeClock(start=1_764_058_000.0)
    return {"clock": clock, "sleep": lambda s: clock.advance(s), "rng": ZeroRandom()}


def test_openai_gets_the_earlier_turn_as_user_and_assistant_messages() -> None:
    transport = recorded_transport(recording("openai", "chat_ok", "/v1/chat/completions"))
    model = OpenAIChatModel("gpt-4o-mini", api_key="sk-test", transport=transport, **_kw())
    ChatSqlWriter(model).write(CONTEXT)
    (request,) = transport.requests
    messages = body_of(request)["messages"]  # type: ignore[index]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[1] == {"role": "user", "content": "Question: customers per country"}
    assert messages[2] == {"role": "assistant", "content": EARLIER_SQL}
    assert messages[3]["content"].endswith("Question: and only in France?")
    assert "customers per country" not in messages[3]["content"]


def test_anthropic_gets_the_earlier_turn_as_alternating_messages() -> None:
    transport = recorded_transport(recording("anthropic", "messages_ok", "/v1/messages"))
    model = AnthropicChatModel(
        "claude-3-5-haiku-latest", api_key="sk-ant-test", transport=transport, **_kw()
    )
    ChatSqlWriter(model).write(CONTEXT)
    (request,) = transport.requests
    body = body_of(request)
    assert isinstance(body, dict)
    assert "You write one read-only SQL query" in body["system"]
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][0] == {"role": "user", "content": "Question: customers per country"}
    assert body["messages"][1] == {"role": "assistant", "content": EARLIER_SQL}


def test_gemini_gets_the_earlier_turn_as_a_model_turn() -> None:
    transport = recorded_transport(
        recording("gemini", "generate_ok", "/v1beta/models/gemini-2.0-flash:generateContent")
    )
    model = GeminiChatModel("gemini-2.0-flash", api_key="AIza-test", transport=transport, **_kw())
    ChatSqlWriter(model).write(CONTEXT)
    (request,) = transport.requests
    body = body_of(request)
    assert isinstance(body, dict)
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
    assert body["contents"][0]["parts"] == [{"text": "Question: customers per country"}]
    assert body["contents"][1]["parts"] == [{"text": EARLIER_SQL}]


# ------------------------------------------------- a session through the Assistant
def _sse(text: str) -> bytes:
    chunks = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": text}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {"choices": [], "usage": {"prompt_tokens": 50, "completion_tokens": 10}},
    ]
    body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
    return body.encode()


def _openai(seen: list[dict[str, Any]], reply: Any) -> OpenAIChatModel:
    """An OpenAI model over a mock server that records each request body in ``seen``
    and answers with ``reply()`` (streamed when the request asks for a stream)."""

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(body)
        text = reply()
        if body.get("stream"):
            return httpx.Response(
                200, content=_sse(text), headers={"content-type": "text/event-stream"}
            )
        return httpx.Response(
            200,
            json={
                "id": "x",
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 40, "completion_tokens": 9},
            },
        )

    return OpenAIChatModel(
        "gpt-4o-mini", api_key="sk-test", transport=httpx.MockTransport(handler), **_kw()
    )


def test_a_session_with_a_real_provider_sends_turns_and_asks_for_a_summary(demo: Path) -> None:
    seen: list[dict[str, Any]] = []
    replies = iter(
        [
            "```sql\nSELECT country, COUNT(*) AS n FROM customers GROUP BY country\n```",
            "Customers live in six countries, two in each.",
            "```sql\nSELECT country, COUNT(*) AS n FROM customers WHERE country = 'France' "
            "GROUP BY country\n```",
            "France has 2 customers.",
        ]
    )

    model = _openai(seen, lambda: next(replies))
    # sample values on: the caller lets stored values reach the provider, so "auto"
    # summaries are written by the model (rows included)
    a = Assistant(db=f"sqlite:///{demo}", model=model, cache_threshold=None, sample_values=True)
    a.train_from_database()
    chat = a.session(user="ann")
    first = chat.ask("customers per country")
    assert first.summary == "Customers live in six countries, two in each."
    second = chat.ask("and only in France?")
    assert second.rows == (("France", 2),)
    assert second.summary == "France has 2 customers."
    assert len(seen) == 4
    sql_call = seen[2]["messages"]
    assert [m["role"] for m in sql_call] == ["system", "user", "assistant", "user"]
    assert sql_call[1]["content"] == "Question: customers per country"
    assert "GROUP BY country" in sql_call[2]["content"]
    summary_call = seen[3]
    assert summary_call["max_completion_tokens"] <= 100
    assert "Rows (1 of 1)" in summary_call["messages"][-1]["content"]


def test_without_sample_values_no_row_reaches_the_provider(demo: Path) -> None:
    # summaries="auto" with values kept from the model: a template, no second call
    seen: list[dict[str, Any]] = []

    sql = "```sql\nSELECT country, COUNT(*) AS n FROM customers GROUP BY country\n```"
    # the SQL call first, then (only when asked for) the summary call
    model = _openai(seen, lambda: sql if len(seen) == 1 else "Customers live in six countries.")
    a = Assistant(db=f"sqlite:///{demo}", model=model, cache_threshold=None)
    a.train_from_database()
    answer = a.ask("customers per country")
    assert answer.rows
    assert answer.summary
    assert len(seen) == 1  # the SQL call only
    sent = json.dumps(seen)
    assert all(str(country) not in sent for country, _ in answer.rows)
    forced = Assistant(db=f"sqlite:///{demo}", model=model, cache_threshold=None, summaries="model")
    forced.train_from_database()
    seen.clear()
    forced.ask("customers per country")
    assert len(seen) == 2  # "model" asks for the summary, rows included
