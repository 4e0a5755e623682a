"""Any text gets a draft, never an exception: SQL that parses, or an abstention."""

from __future__ import annotations

import attrs
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st

from avl.llm.offline import OfflineChatModel
from tests.offline.test_abstention import SHOP

WORDS = [
    "how", "many", "orders", "customers", "total", "average", "most", "least", "top",
    "3", "three", "Paris", "Rome", "shipped", "not", "each", "per", "by", "city",
    "status", "the", "of", "in", "with", "more", "than", "between", "and", "or",
    "which", "who", "sorted", "descending", "delete", "'", '"', "?", ",", "1990",
    "name", "highest", "no", "any", "different", "count", "sum", "x" * 40,
]  # fmt: skip
MODEL = OfflineChatModel()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(WORDS), min_size=1, max_size=14))
def test_word_salad_gets_a_draft(words: list[str]) -> None:
    d = MODEL.write(attrs.evolve(SHOP, question=" ".join(words)))
    if d.abstained:
        assert d.reason
    else:
        sqlglot.parse_one(d.sql, read="sqlite")


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=200).filter(lambda s: s.strip()))
def test_any_text_gets_a_draft(text: str) -> None:
    d = MODEL.write(attrs.evolve(SHOP, question=text))
    assert d.abstained or d.sql.startswith("SELECT")
