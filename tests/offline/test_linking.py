"""Linking words to tables, columns and stored values, with its guards."""

from __future__ import annotations

import pytest

from avl.llm._offline._linking import Links, fuzzy_key_index, link_question, word_match
from avl.llm._offline._question import form_root, parse_question
from avl.llm._offline._schema import SchemaIndex
from avl.schema import ColumnSpec, ForeignKeySpec, TableSpec, build_value_index

TABLES = [
    TableSpec(
        name="museum",
        columns=[
            ColumnSpec(name="museum_id", type="INT", primary_key=True),
            ColumnSpec(name="name", type="TEXT"),
            ColumnSpec(name="num_of_staff", type="INT"),
            ColumnSpec(name="open_year", type="TEXT"),
            ColumnSpec(name="region", type="TEXT"),
        ],
    ),
    TableSpec(
        name="visit",
        columns=[
            ColumnSpec(name="museum_id", type="INT"),
            ColumnSpec(name="visitor_id", type="INT"),
            ColumnSpec(name="ticket_count", type="INT"),
        ],
    ),
    TableSpec(
        name="visitor",
        columns=[
            ColumnSpec(name="id", type="INT", primary_key=True),
            ColumnSpec(name="name", type="TEXT"),
            ColumnSpec(name="membership_level", type="INT"),
        ],
    ),
]
FKS = [
    ForeignKeySpec(
        table="visit", columns=["museum_id"], ref_table="museum", ref_columns=["museum_id"]
    ),
    ForeignKeySpec(table="visit", columns=["visitor_id"], ref_table="visitor", ref_columns=["id"]),
]
VALUES = {
    ("museum", "region"): ("Asia", "Caribbean", "Europe"),
    ("museum", "name"): ("Average Museum", "Plaza Museum"),
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
    typo = parse_question("musuem").tokens[0]
    assert word_match(typo, "museum", form_root("museum")) == 0.75
    far = parse_question("music").tokens[0]
    assert word_match(far, "museum", form_root("museum")) == 0.0


def test_a_part_of_a_column_name_links_when_it_is_informative() -> None:
    assert ("visitor", "membership_level") in columns("visitors whose membership is high")
    # "year" alone says too little to name open_year
    assert ("museum", "open_year") not in columns("the year")
    assert ("museum", "open_year") in columns("the year it opened")


def test_number_of_x_is_the_x_count_column() -> None:
    got = links("What is the number of staff of each museum?")
    spans = {(c.column, c.start, c.end) for c in got.columns}
    assert ("num_of_staff", 3, 6) in spans  # "number of staff"
    assert ("visit", "ticket_count") in columns("the number of tickets")


def test_a_table_word_is_the_table_not_its_id_column() -> None:
    got = links("How many visitors are there?")
    assert [t.table for t in got.tables] == ["visitor"]
    assert ("visit", "visitor_id") not in {(c.table, c.column) for c in got.columns}


def test_values_fuzzy_and_demonyms() -> None:
    assert values("museums in the Carribean") == [("region", "Caribbean")]
    assert values("Asian museums") == [("region", "Asia")]
    assert values("museums in europe") == [("region", "Europe")]


def test_no_value_hits_on_schema_or_aggregate_words() -> None:
    # "average" is a stored value's first word, but here it asks for an aggregate
    assert values("What is the average ticket count?") == []
    # "museum" is a table, not the value "Plaza Museum"
    assert values("List every museum") == []
    # a quoted value is the value, whatever its words
    assert values('Which museum is called "Average Museum"?') == [("name", "Average Museum")]


@pytest.mark.parametrize(
    ("question", "table"),
    [
        ("Which ones are in Asia?", "museum"),
        ("Who visited Plaza Museum?", "museum"),
    ],
)
def test_a_value_hit_names_the_main_table(question: str, table: str) -> None:
    from avl.llm._offline._steps import read_intent

    q = parse_question(question)
    st = read_intent(q, link_question(q, SCHEMA, INDEX, fuzzy_key_index(INDEX)), SCHEMA)
    assert st.intent.subject == table


def test_capitalised_unknown_words_are_literals() -> None:
    got = links("Which region is Springfield Museum in?")
    lits = [v for v in got.values if v.kind == "literal"]
    assert [v.value for v in lits] == ["Springfield Museum"]
