"""The offline generator: shapes, literal adaptation, prompt parsing, registry."""

from __future__ import annotations

import pytest

from avl.errors import ConfigError, InvalidInputError
from avl.llm import Message
from avl.llm.offline import (
    ColumnSpec,
    ExamplePair,
    ForeignKeySpec,
    GenerationContext,
    OfflineChatModel,
    TableSpec,
    create,
    estimate_tokens,
    parse_prompt,
)

CTX = GenerationContext(
    tables=[
        TableSpec(
            name="singer",
            columns=[
                ColumnSpec(name="singer_id", type="INT", primary_key=True),
                ColumnSpec(name="name", type="TEXT"),
                ColumnSpec(name="country", type="TEXT"),
                ColumnSpec(name="age", type="INT"),
            ],
        ),
        TableSpec(
            name="concert",
            columns=[
                ColumnSpec(name="concert_id", type="INT", primary_key=True),
                ColumnSpec(name="concert_name", type="TEXT"),
                ColumnSpec(name="singer_id", type="INT"),
                ColumnSpec(name="year", type="INT"),
            ],
        ),
    ],
    foreign_keys=[
        ForeignKeySpec(
            table="concert", columns=["singer_id"], ref_table="singer", ref_columns=["singer_id"]
        )
    ],
    values={("singer", "country"): ("France", "Netherlands", "United States")},
)


@pytest.mark.parametrize(
    ("question", "sql"),
    [
        ("How many singers are there?", "SELECT COUNT(*) FROM singer"),
        ("What is the average age of singers?", "SELECT AVG(age) FROM singer"),
        (
            "List the names of singers from France.",
            "SELECT name FROM singer WHERE country = 'France'",
        ),
        ("Show singers not from France.", "SELECT name FROM singer WHERE country <> 'France'"),
        ("How many singers are older than 40?", "SELECT COUNT(*) FROM singer WHERE age > 40"),
        (
            "Show the number of singers in each country.",
            "SELECT country, COUNT(*) FROM singer GROUP BY country",
        ),
        (
            "What is the name of the oldest singer?",
            "SELECT name FROM singer ORDER BY age DESC LIMIT 1",
        ),
        (
            "List singer names ordered by age descending.",
            "SELECT name FROM singer ORDER BY age DESC",
        ),
        (
            "What are the concert names of singers from France?",
            "SELECT T1.concert_name FROM concert AS T1 JOIN singer AS T2 ON T1.singer_id = T2.singer_id "
            "WHERE T2.country = 'France'",
        ),
    ],
)
def test_shapes(question: str, sql: str) -> None:
    assert OfflineChatModel().generate(question, CTX) == sql


def test_reuse_adapts_values_and_numbers() -> None:
    ctx = GenerationContext(
        tables=CTX.tables,
        foreign_keys=CTX.foreign_keys,
        values=CTX.values,
        examples=[
            ExamplePair(
                question="What is the average age of singers from France older than 20?",
                sql="SELECT avg(age) FROM singer WHERE country = 'France' AND age > 20",
            ),
            ExamplePair(
                question="How many concerts are there?", sql="SELECT count(*) FROM concert"
            ),
        ],
    )
    got = OfflineChatModel().generate(
        "What is the average age of singers from Netherlands older than 35?", ctx
    )
    # the pair's SQL, its literals swapped on the tree (written back by sqlglot)
    assert got == "SELECT AVG(age) FROM singer WHERE country = 'Netherlands' AND age > 35"


def test_a_pair_stating_a_number_the_question_lacks_is_not_reused() -> None:
    ctx = GenerationContext(
        tables=CTX.tables,
        foreign_keys=CTX.foreign_keys,
        examples=[
            ExamplePair(
                question="How many concerts are held by singers older than 20?",
                sql="SELECT count(*) FROM concert AS c JOIN singer AS s "
                "ON c.singer_id = s.singer_id WHERE s.age > 20",
            )
        ],
    )
    model = OfflineChatModel()
    # without the number the pair's filter would stay: the question is composed
    assert model.generate("How many singers are there?", ctx) == "SELECT COUNT(*) FROM singer"
    # with one, the pair is reused and its number adapted
    assert model.generate("How many concerts are held by singers older than 30?", ctx) == (
        "SELECT COUNT(*) FROM concert AS c JOIN singer AS s "
        "ON c.singer_id = s.singer_id WHERE s.age > 30"
    )


def test_low_similarity_composes_instead() -> None:
    ctx = GenerationContext(
        tables=CTX.tables,
        examples=[
            ExamplePair(question="How many concerts are there?", sql="SELECT count(*) FROM concert")
        ],
    )
    assert (
        OfflineChatModel().generate("What is the average age of singers?", ctx)
        == "SELECT AVG(age) FROM singer"
    )


def test_complete_parses_the_prompt() -> None:
    prompt = (
        "### Schema\nCREATE TABLE singer (\n  singer_id INT PRIMARY KEY,\n  name TEXT,\n  age INT\n);\n"
        "CREATE TABLE concert (\n  concert_id INT,\n  singer_id INT,\n"
        "  FOREIGN KEY (singer_id) REFERENCES singer(singer_id)\n);\n"
        "### Examples\nQ: How many concerts are there?\nSQL: SELECT count(*) FROM concert\n\n"
        "Question: How many concerts are there?"
    )
    messages = [Message(role="system", content="write SQL"), Message(role="user", content=prompt)]
    question, ctx = parse_prompt(messages)
    assert question == "How many concerts are there?"
    assert [t.name for t in ctx.tables] == ["singer", "concert"]
    assert ctx.tables[0].columns[0].primary_key is True
    assert ctx.foreign_keys == (
        ForeignKeySpec(
            table="concert", columns=["singer_id"], ref_table="singer", ref_columns=["singer_id"]
        ),
    )
    assert ctx.examples == (
        ExamplePair(question="How many concerts are there?", sql="SELECT count(*) FROM concert"),
    )
    model = OfflineChatModel()
    done = model.complete(messages)
    assert done.text == "```sql\nSELECT count(*) FROM concert\n```"
    assert done.usage.input_tokens == estimate_tokens("write SQL\n" + prompt)
    deltas = list(model.stream(messages))
    assert "".join(d.text for d in deltas) == done.text
    assert deltas[-1].done is True
    with pytest.raises(InvalidInputError):
        model.complete([Message(role="system", content="x")])


def test_registry_factory() -> None:
    assert isinstance(create("offline://"), OfflineChatModel)
    assert repr(create("offline://?threshold=0.7")) == "OfflineChatModel(reuse_threshold=0.7)"
    with pytest.raises(ConfigError):
        create("offline://?threshold=high")
    with pytest.raises(ConfigError):
        create("openai://")
    with pytest.raises(InvalidInputError):
        OfflineChatModel(reuse_threshold=2.0)
    with pytest.raises(InvalidInputError):
        OfflineChatModel().generate("  ", CTX)


def test_estimate_tokens() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("SELECT 1") == 2
    assert estimate_tokens("a b c d e") == 5
