"""Answer summaries: templates with the offline model, the model's sentence otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from avl.assistant._summary import clean_summary, describe_value, label, template_summary
from avl.costs import Budgets
from avl.errors import ProviderError
from avl.llm import Completion, Usage
from avl.metrics import Metrics
from avl.safety import Policy
from avl.testing import FakeChatModel
from tests.assistant.conftest import trained


# ------------------------------------------------------------------- templates
def test_template_single_cell_names_the_value() -> None:
    assert template_summary(outcome="ok", columns=["COUNT(*)"], rows=[(12,)]) == (
        "The count is 12."
    )
    assert template_summary(outcome="ok", columns=["AVG(price)"], rows=[(50.5,)]) == (
        "The average price is 50.5."
    )
    assert template_summary(outcome="ok", columns=["total_sales"], rows=[(1234567,)]) == (
        "The total sales is 1,234,567."
    )
    assert template_summary(outcome="ok", columns=["?column?"], rows=[(7,)]) == ("The answer is 7.")
    assert template_summary(outcome="ok", columns=["sum"], rows=[(None,)]) == (
        "The total has no value (nothing to compute it from)."
    )


def test_template_counts_rows_and_names_the_top_of_a_ranking() -> None:
    rows = [("Paris", 4), ("Rome", 2), ("Lisbon", 1)]
    assert template_summary(outcome="ok", columns=["city", "n"], rows=rows) == (
        "3 rows, with city, n."
    )
    ranked = template_summary(
        outcome="ok",
        columns=["city", "n"],
        rows=rows,
        sql="SELECT city, COUNT(*) AS n FROM customers GROUP BY city ORDER BY n DESC",
    )
    assert ranked == "3 rows; the first is city Paris, n 4."
    assert template_summary(outcome="ok", columns=["name", "age"], rows=[("Ann", 30)]) == (
        "One row: name Ann, age 30."
    )
    assert template_summary(
        outcome="ok", columns=["name"], rows=[("a",), ("b",)], truncated=True
    ) == ("2 rows (the row cap cut the result), with name.")


def test_template_no_rows_refusal_abstention_and_errors() -> None:
    from avl.safety import SafeQuery

    assert template_summary(outcome="ok", columns=["name"], rows=[]) == (
        "No rows match the question."
    )
    verdict = SafeQuery(Policy(dialect="sqlite")).check("DROP TABLE customers")
    refused = template_summary(outcome="rejected", columns=[], rows=[], verdict=verdict)
    assert refused.startswith("The query was refused by the access policy: ")
    assert str(verdict.violations[0].message).rstrip(".") in refused
    abstained = template_summary(
        outcome="abstained", columns=[], rows=[], reason="weather is not in its tables"
    )
    assert abstained == "This database cannot answer the question: weather is not in its tables."
    assert template_summary(outcome="timeout", columns=[], rows=[], error="took 10 s") == (
        "The query took too long and was stopped: took 10 s."
    )
    assert template_summary(outcome="db_error", columns=[], rows=[], error="") == (
        "The database could not run the query."
    )


def test_values_and_labels_read_as_words() -> None:
    assert label("COUNT(DISTINCT c.name)") == "number of name"
    assert label("SUM(orders.total)") == "total"
    assert label("SUM(amount)") == "total amount"
    assert label("signupYear") == "signup year"
    assert describe_value(True) == "yes"
    assert describe_value(0.123456) == "0.1235"
    assert describe_value(12.0) == "12"
    assert describe_value("x" * 100).endswith("...")
    assert describe_value(b"\x00\x01") == "<2 bytes>"
    assert clean_summary("```sql\nSELECT 1\n```") is None
    assert clean_summary("SELECT name FROM t") is None
    assert clean_summary("  There are   12 customers.\n") == "There are 12 customers."
    assert clean_summary("") is None
    assert len(clean_summary("word " * 400) or "") <= 403


# -------------------------------------------------------- through the Assistant
def test_offline_answers_carry_a_template_summary(demo: Path) -> None:
    a = trained(demo)
    assert a.ask("How many customers are there?").summary == "The count is 12."
    none = a.ask("Which customers are from Atlantis?")
    assert none.summary is not None
    abstained = a.ask("what will the weather be tomorrow?")
    assert abstained.abstained
    assert abstained.summary is not None
    assert abstained.summary.startswith("This database cannot answer the question")
    off = trained(demo, summaries="off")
    assert off.ask("How many customers are there?").summary is None


def test_a_refusal_is_summarised_with_its_reason(demo: Path) -> None:
    model = FakeChatModel(["```sql\nDELETE FROM customers\n```"] * 3)
    a = trained(demo, model=model, cache_threshold=None)
    got = a.ask("remove everyone")
    assert got.verdict is not None
    assert not got.verdict.allowed
    assert got.summary is not None
    assert got.summary.startswith("The query was refused by the access policy")
    assert len(model.calls) == 3  # no summary call for a refusal


def test_a_fake_model_is_not_asked_for_a_summary_by_default(demo: Path) -> None:
    model = FakeChatModel(["```sql\nSELECT COUNT(*) FROM customers\n```"])
    a = trained(demo, model=model, cache_threshold=None)
    got = a.ask("how many customers?")
    assert got.summary == "The count is 12."
    assert len(model.calls) == 1


def test_model_written_summary_is_one_bounded_call_counted_in_costs(demo: Path) -> None:
    metrics = Metrics()
    budgets = Budgets.from_config({"user": {"*": 10.0}})
    model = FakeChatModel(
        [
            Completion(
                text="```sql\nSELECT country, COUNT(*) FROM customers GROUP BY country\n```",
                usage=Usage(input_tokens=100, output_tokens=20),
                cost_usd=0.01,
            ),
            Completion(
                text="Customers come from six countries, most from the United Kingdom.",
                usage=Usage(input_tokens=60, output_tokens=12),
                cost_usd=0.002,
            ),
        ]
    )
    a = trained(
        demo,
        model=model,
        summaries="model",
        cache_threshold=None,
        metrics=metrics,
        budgets=budgets,
    )
    got = a.ask("customers per country", user="ann")
    assert got.summary == "Customers come from six countries, most from the United Kingdom."
    assert len(model.calls) == 2
    call = model.calls[1]
    assert call.max_tokens is not None
    assert call.max_tokens <= 100
    prompt = call.messages[-1].content
    assert "Columns: country, COUNT(*)" in prompt
    assert prompt.count("\n") <= 3 + 5  # question, columns, header and at most 5 rows
    assert got.usage.input_tokens == 160
    assert got.usage.output_tokens == 32
    assert got.cost_usd == pytest.approx(0.012)
    # the summary's cost is settled in the caller's budget too
    assert budgets.status(user="ann")[0].spent_usd == pytest.approx(0.012)
    assert "summary" in got.timings


def test_provider_error_falls_back_to_the_template(demo: Path) -> None:
    metrics = Metrics()
    model = FakeChatModel(
        [
            "```sql\nSELECT COUNT(*) FROM customers\n```",
            ProviderError("openai: HTTP 500"),
        ]
    )
    a = trained(demo, model=model, summaries="model", cache_threshold=None, metrics=metrics)
    got = a.ask("how many customers?")
    assert got.ok
    assert got.summary == "The count is 12."
    assert len(model.calls) == 2


def test_a_reply_that_is_code_falls_back_to_the_template(demo: Path) -> None:
    model = FakeChatModel(["```sql\nSELECT COUNT(*) FROM customers\n```"] * 2)
    a = trained(demo, model=model, summaries="model", cache_threshold=None)
    assert a.ask("how many customers?").summary == "The count is 12."


def test_template_mode_never_calls_the_model_again(demo: Path) -> None:
    model = FakeChatModel(["```sql\nSELECT COUNT(*) FROM customers\n```"])
    a = trained(demo, model=model, summaries="template", cache_threshold=None)
    assert a.ask("how many customers?").summary == "The count is 12."
    assert len(model.calls) == 1


def test_the_stream_carries_the_summary_in_the_answer(demo: Path) -> None:
    a = trained(demo)
    events = list(a.stream("How many customers are there?", session="new"))
    answer = next(e for e in events if e.kind.value == "answer")
    assert answer.data["summary"] == "The count is 12."
    assert answer.data["session"]


def test_avl_ask_prints_the_summary(demo: Path) -> None:
    import io

    from avl.cli._common import print_answer

    answer = trained(demo).ask("How many customers are there?")
    out = io.StringIO()
    print_answer(answer, out)
    assert "summary: The count is 12." in out.getvalue()
    out = io.StringIO()
    print_answer(answer, out, as_json=True)
    assert '"summary": "The count is 12."' in out.getvalue()
