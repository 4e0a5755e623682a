"""The model-side contract: WriteContext in, SqlDraft out; ChatSqlWriter adapts any
ChatModel once; the offline generator is a SqlWriter itself."""

from __future__ import annotations

from collections.abc import Generator

import pytest

from avl.assistant import ChatSqlWriter, parse_abstention, render_messages
from avl.assistant._writer import as_streaming_writer
from avl.errors import ConfigError, InvalidInputError, ProviderError
from avl.llm import Completion, Usage
from avl.llm.offline import GenerationContext, OfflineChatModel
from avl.schema import (
    ColumnSpec,
    ExamplePair,
    FailedAttempt,
    ForeignKeySpec,
    SqlDraft,
    TableSpec,
    Turn,
    WriteContext,
    build_value_index,
)
from avl.testing import FakeChatModel
from avl.typing import ChatModel, SqlWriter, StreamingSqlWriter

SINGER = TableSpec(
    name="singer",
    columns=[
        ColumnSpec(name="id", type="INT", primary_key=True),
        ColumnSpec(name="name", type="TEXT", samples=("Ann", "Bob")),
        ColumnSpec(name="country", type="TEXT"),
    ],
)
CONCERT = TableSpec(
    name="concert",
    columns=[ColumnSpec(name="id", type="INT"), ColumnSpec(name="singer_id", type="INT")],
)
FK = ForeignKeySpec(table="concert", columns=["singer_id"], ref_table="singer", ref_columns=["id"])


def drain(gen: Generator[str, None, SqlDraft]) -> tuple[list[str], SqlDraft]:
    pieces: list[str] = []
    while True:
        try:
            pieces.append(next(gen))
        except StopIteration as stop:
            return pieces, stop.value


def context(**kw: object) -> WriteContext:
    base: dict[str, object] = {
        "question": "How many singers are from France?",
        "tables": [SINGER, CONCERT],
        "foreign_keys": [FK],
        "examples": [ExamplePair(question="How many singers?", sql="SELECT COUNT(*) FROM singer")],
        "documentation": ["Country names are in English."],
        "values": {("singer", "country"): ("France", "Spain")},
    }
    base.update(kw)
    return WriteContext(**base)  # type: ignore[arg-type]


def test_sql_draft_has_one_constructor_per_case() -> None:
    d = SqlDraft(sql="SELECT 1", model="m", input_tokens=3, output_tokens=2, cost_usd=0.5)
    assert (d.abstained, d.sql, d.reason, d.model, d.cost_usd) == (False, "SELECT 1", "", "m", 0.5)
    a = SqlDraft.abstain("  no weather data  ", understood="weather in Paris")
    assert (a.abstained, a.sql, a.reason, a.understood) == (
        True,
        "",
        "no weather data",
        "weather in Paris",
    )
    with pytest.raises(InvalidInputError, match="not both"):
        SqlDraft(sql="SELECT 1", reason="why")
    with pytest.raises(InvalidInputError, match="non-empty reason"):
        SqlDraft.abstain(" ")
    with pytest.raises(InvalidInputError, match="input_tokens"):
        SqlDraft(sql="SELECT 1", input_tokens=-1)
    assert SqlDraft().abstained is False  # no SQL and no reason: "the reply held none"


def test_write_context_is_frozen_and_keyword_only() -> None:
    ctx = context(failed=[FailedAttempt(sql="SELECT nme FROM singer", error="no such column")])
    assert ctx.table("SINGER") is SINGER
    assert ctx.table("nope") is None
    assert (ctx.previous_sql, ctx.previous_error) == ("SELECT nme FROM singer", "no such column")
    assert context().previous_sql == ""
    assert context().turns == ()
    with pytest.raises(AttributeError):
        ctx.question = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        WriteContext("q")  # type: ignore[misc]
    # the old name still works, question optional
    old = GenerationContext(tables=[SINGER])
    assert isinstance(old, WriteContext)
    assert old.question == ""


def test_rendered_prompt_holds_the_context_but_never_the_value_index() -> None:
    ctx = context(
        turns=[Turn(question="list singers", sql="SELECT name FROM singer")],
        failed=[FailedAttempt(sql="SELECT nme FROM singer", error="no such column: nme")],
    )
    system, asked, wrote, user = render_messages(ctx)
    assert system.role == "system"
    # an earlier turn is a user message and the assistant's reply, before the question
    assert (asked.role, asked.content) == ("user", "Question: list singers")
    assert (wrote.role, wrote.content) == ("assistant", "```sql\nSELECT name FROM singer\n```")
    assert "CANNOT ANSWER:" in system.content
    text = user.content
    assert "CREATE TABLE singer" in text
    assert "FOREIGN KEY (singer_id) REFERENCES singer(id)" in text
    assert "e.g. 'Ann', 'Bob'" in text  # samples ride on the columns
    assert "Q: How many singers?\nSQL: SELECT COUNT(*) FROM singer" in text
    assert "Country names are in English." in text
    assert "list singers" not in text
    assert "previous attempt failed" in text
    assert "no such column: nme" in text
    assert text.endswith("Question: How many singers are from France?")
    assert "Spain" not in text  # the stored-value index stays in the process


def test_mysql_prompt_quotes_with_backticks() -> None:
    odd = TableSpec(name="order items", columns=[ColumnSpec(name="unit price", type="REAL")])
    text = render_messages(WriteContext(question="q", dialect="mysql", tables=[odd]))[1].content
    assert "CREATE TABLE `order items` (\n  `unit price` REAL\n);" in text
    text = render_messages(WriteContext(question="q", dialect="postgres", tables=[odd]))[1].content
    assert 'CREATE TABLE "order items"' in text


def test_chat_sql_writer_reads_sql_usage_and_cost() -> None:
    reply = Completion(
        text="Here:\n```sql\nSELECT COUNT(*) FROM singer;\n```",
        model="gpt-x",
        usage=Usage(input_tokens=120, output_tokens=9, cached_tokens=20),
        cost_usd=0.0012,
    )
    model = FakeChatModel([reply])
    writer = ChatSqlWriter(model, max_tokens=200, temperature=0.0)
    draft = writer.write(context())
    assert (draft.sql, draft.model, draft.input_tokens, draft.output_tokens) == (
        "SELECT COUNT(*) FROM singer",
        "gpt-x",
        120,
        9,
    )
    assert (draft.cached_tokens, draft.cost_usd, draft.abstained) == (20, 0.0012, False)
    (call,) = model.calls
    assert (call.max_tokens, call.temperature) == (200, 0.0)
    assert call.messages == tuple(render_messages(context()))
    assert writer.name == "fake"


def test_chat_sql_writer_maps_cannot_answer_to_an_abstention() -> None:
    model = FakeChatModel(
        [
            "CANNOT ANSWER: the database holds no weather data\nUnderstood: weather in Paris",
            "```\ncannot answer: nothing about planets\n```",
        ]
    )
    writer = ChatSqlWriter(model)
    first = writer.write(context(question="What is the weather in Paris tomorrow?"))
    assert first.abstained
    assert first.sql == ""
    assert (first.reason, first.understood) == (
        "the database holds no weather data",
        "weather in Paris",
    )
    assert writer.write(context()).reason == "nothing about planets"
    assert parse_abstention("SELECT 'CANNOT ANSWER: x'") is None
    assert parse_abstention("CANNOT ANSWER") == (
        "the model says the question cannot be answered from this database",
        "",
    )


def test_chat_sql_writer_streams_pieces_then_returns_the_draft() -> None:
    writer = ChatSqlWriter(FakeChatModel(["SELECT name FROM singer"], chunk_size=6))
    pieces, draft = drain(writer.write_stream(context()))
    assert pieces == ["SELECT", " name ", "FROM s", "inger"]
    assert draft.sql == "SELECT name FROM singer"
    assert draft.input_tokens is not None
    assert draft.input_tokens > 0


def test_chat_sql_writer_lets_provider_errors_through() -> None:
    writer = ChatSqlWriter(FakeChatModel([ProviderError("HTTP 500", provider="x")]))
    with pytest.raises(ProviderError, match="HTTP 500"):
        writer.write(context())
    with pytest.raises(ConfigError, match="needs a ChatModel"):
        ChatSqlWriter(object())  # type: ignore[arg-type]


def test_offline_generator_is_a_sql_writer() -> None:
    model = OfflineChatModel()
    assert isinstance(model, SqlWriter)
    assert isinstance(model, ChatModel)
    ctx = context(question="How many singers are there?", examples=[])
    draft = model.write(ctx)
    assert (draft.sql, draft.model, draft.cost_usd) == (
        "SELECT COUNT(*) FROM singer",
        "offline",
        0.0,
    )
    assert draft.input_tokens is None  # the Assistant estimates (one estimator)
    linked = model.write(
        context(examples=[], value_index=build_value_index({("singer", "country"): ("France",)}))
    )
    assert "'France'" in linked.sql


def test_models_are_adapted_once_at_the_edge() -> None:
    offline = OfflineChatModel()
    streaming = as_streaming_writer(offline)
    assert isinstance(streaming, StreamingSqlWriter)
    pieces, draft = drain(
        streaming.write_stream(context(question="How many singers are there?", examples=[]))
    )
    assert "".join(pieces) == draft.sql == "SELECT COUNT(*) FROM singer"
    chat = as_streaming_writer(FakeChatModel(["SELECT 1"]))
    assert isinstance(chat, ChatSqlWriter)
    assert as_streaming_writer(chat) is chat
    with pytest.raises(ConfigError, match="SqlWriter, a ChatModel"):
        as_streaming_writer(42)
