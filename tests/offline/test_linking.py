"""Linking words to tables, columns and stored values, with its guards."""

from __future__ import annotations

import pytest

from avl.llm._offline._linking import Links, fuzzy_key_index, link_question, word_match
from avl.llm._offline._question import form_root, parse_question
from avl.llm._offline._schema import SchemaIndex
from avl.schema import ColumnSpec, ForeignKeySpec, TableSpec, build_value_index

TABLES = [
    TableSpec(
        name="branch",
        columns=[
            ColumnSpec(name="branch_id", type="INT", primary_key=True),
            ColumnSpec(name="name", type="TEXT"),
            ColumnSpec(name="num_of_staff", type="INT"),
            ColumnSpec(name="open_year", type="TEXT"),
            ColumnSpec(name="region", type="TEXT"),
        ],
    ),
    TableSpec(
        name="loan",
        columns=[
            ColumnSpec(name="branch_id", type="INT"),
            ColumnSpec(name="member_id", type="INT"),
            ColumnSpec(name="book_count", type="INT"),
        ],
    ),
    TableSpec(
        name="member",
        columns=[
            ColumnSpec(name="id", type="INT", primary_key=True),
            ColumnSpec(name="name", type="TEXT"),
            ColumnSpec(name="membership_level", type="INT"),
        ],
    ),
]
FKS = [
    ForeignKeySpec(
        table="loan", columns=["branch_id"], ref_table="branch", ref_columns=["branch_id"]
    ),
    ForeignKeySpec(table="loan", columns=["member_id"], ref_table="member", ref_columns=["id"]),
]
VALUES = {
    ("branch", "region"): ("Canada", "Caribbean", "Europe"),
    ("branch", "name"): ("Average Branch", "Harbour Branch"),
}
SCHEMA = SchemaIndex(TABLES, FKS)
INDEX = build_value_index(VALUES)


def links(question: str) -> Links:
    return link_question(parse_question(question), SCHEMA, INDEX, fuzzy_key_index(INDEX))


def columns(question: str) -> set[tuple[str, str]]:
    return {(c.table, c.column) for c in links(question).columns}


def values(question: str) -> list[tuple[str, str]]:
    return [(v.column, v.value) for v in links(question).values if v.kind == "value"]


def test_word_forms_derivations_and_typos() -> None:
    assert form_root("opened") == form_root("open") == "open"
    assert form_root("founded") == "found"
    q = parse_question("located")
    assert word_match(q.tokens[0], "location", form_root("location")) == 0.8
    typo = parse_question("memebr").tokens[0]
    assert word_match(typo, "member", form_root("member")) == 0.75
    far = parse_question("meme").tokens[0]
    assert word_match(far, "member", form_root("member")) == 0.0


def test_a_part_of_a_column_name_links_when_it_is_informative() -> None:
    assert ("member", "membership_level") in columns("members whose membership is high")
    # "year" alone says too little to name open_year
    assert ("branch", "open_year") not in columns("the year")
    assert ("branch", "open_year") in columns("the year it opened")


def test_number_of_x_is_the_x_count_column() -> None:
    got = links("What is the number of staff of each branch?")
    spans = {(c.column, c.start, c.end) for c in got.columns}
    assert ("num_of_staff", 3, 6) in spans  # "number of staff"
    assert ("loan", "book_count") in columns("the number of books")


def test_a_table_word_is_the_table_not_its_id_column() -> None:
    got = links("How many members are there?")
    assert [t.table for t in got.tables] == ["member"]
    assert ("loan", "member_id") not in {(c.table, c.column) for c in got.columns}


def test_values_fuzzy_and_demonyms() -> None:
    assert values("branches in the Carribean") == [("region", "Caribbean")]
    assert values("Canadian branches") == [("region", "Canada")]
    assert values("branches in europe") == [("region", "Europe")]


def test_no_value_hits_on_schema_or_aggregate_words() -> None:
    # "average" is a stored value's first word, but here it asks for an aggregate
    assert values("What is the average book count?") == []
    # "branch" is a table, not the value "Harbour Branch"
    assert values("List every branch") == []
    # a quoted value is the value, whatever its words
    assert values('Which branch is called "Average Branch"?') == [("name", "Average Branch")]


@pytest.mark.parametrize(
    ("question", "table"),
    [
        ("Which ones are in Canada?", "branch"),
        ("Who borrowed from Harbour Branch?", "branch"),
    ],
)
def test_a_value_hit_names_the_main_table(question: str, table: str) -> None:
    from avl.llm._offline._steps import read_intent

    q = parse_question(question)
    st = read_intent(q, link_question(q, SCHEMA, INDEX, fuzzy_key_index(INDEX)), SCHEMA)
    assert st.intent.subject == table


def test_capitalised_unknown_words_are_literals() -> None:
    got = links("Which region is Riverside Branch in?")
    lits = [v for v in got.values if v.kind == "literal"]
    assert [v.value for v in lits] == ["Riverside Branch"]
