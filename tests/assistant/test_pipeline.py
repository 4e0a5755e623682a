"""One path through the pipeline: stages as spans, one token estimator, abstentions,
any SqlWriter, and the house rules (no isinstance on a concrete model)."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest

from avl.assistant import Answer, Assistant, EventKind
from avl.assistant._pipeline import STAGES
from avl.cli._common import print_answer
from avl.history import History
from avl.llm import estimate_tokens
from avl.metrics import Metrics
from avl.schema import SqlDraft, WriteContext
from avl.testing import FakeChatModel

from .conftest import ended

ROOT = Path(__file__).resolve().parents[2]


def test_stages_are_spans_with_attributes_and_never_row_values(
    shop: Path, span_exporter: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AVL_OTEL_RECORD_SQL", raising=False)
    model = FakeChatModel(
        ["SELECT nme FROM customers"], default="SELECT name FROM customers WHERE id = 4"
    )
    a = Assistant(db=f"sqlite:///{shop}", model=model, cache_threshold=0.9, history=History())
    a.train_from_database()
    answer = a.ask("Who is customer 4?", user="ann")
    assert answer.rows == (("Dee",),)
    spans = span_exporter.get_finished_spans()
    names = [s.name for s in spans]
    for stage in ("admit", "retrieve", "cache", "model", "check", "execute", "record"):
        assert f"avl.{stage}" in names, stage
    assert names.count("avl.model") == 2  # one per attempt
    by = {s.name: s for s in spans}
    model_attrs = dict(by["avl.model"].attributes)
    assert model_attrs["gen_ai.request.model"] == "fake"
    assert model_attrs["gen_ai.usage.input_tokens"] > 0
    check = dict(by["avl.check"].attributes)
    assert check["avl.verdict.allowed"] is True
    assert dict(by["avl.execute"].attributes)["db.response.returned_rows"] == 1
    record = dict(by["avl.record"].attributes)
    assert (record["avl.outcome"], record["db.response.returned_rows"]) == ("ok", 1)
    everything = repr([dict(s.attributes) for s in spans])
    assert "Dee" not in everything  # no row values
    assert "db.query.text" not in everything  # SQL text only when configured
    span_exporter.clear()
    monkeypatch.setenv("AVL_OTEL_RECORD_SQL", "1")
    a.ask("Who is customer 4?", user="bob")
    texts = [
        s.attributes["db.query.text"]
        for s in span_exporter.get_finished_spans()
        if "db.query.text" in s.attributes and s.name == "avl.execute"
    ]
    assert texts == ["SELECT name FROM customers WHERE id = ? LIMIT ?"]


def test_one_token_estimator(shop: Path) -> None:
    a = Assistant(db=f"sqlite:///{shop}", cache_threshold=None)  # the offline writer
    a.train_from_database()
    events = list(a.stream("How many customers are there?"))
    prompt = next(e for e in events if e.kind is EventKind.PROMPT)
    answer = events[-2].answer
    assert answer is not None
    # the offline writer counts no tokens: the pipeline's one estimate is used
    assert answer.usage.input_tokens == prompt.data["tokens"]
    assert answer.usage.output_tokens == estimate_tokens(answer.sql.replace(" LIMIT 1000", ""))


def test_a_chat_model_that_says_it_cannot_answer_abstains(shop: Path) -> None:
    history, metrics = History("memory://"), Metrics()
    model = FakeChatModel(
        ["CANNOT ANSWER: this database has no weather data\nUnderstood: tomorrow's weather"]
    )
    a = Assistant(db=f"sqlite:///{shop}", model=model, history=history, metrics=metrics)
    a.train_from_database()
    events = list(a.stream("What is the weather in Paris tomorrow?", user="ann"))
    assert [e.kind.value for e in events if e.kind is not EventKind.TOKEN] == [
        "retrieved",
        "prompt",
        "answer",
        "done",
    ]
    answer = events[-2].answer
    assert answer is not None
    assert (answer.outcome, answer.abstained, answer.error, answer.sql) == (
        "abstained",
        True,
        "",
        "",
    )
    assert answer.reason == "this database has no weather data"
    assert answer.understood == "tomorrow's weather"
    assert answer.to_dict()["reason"] == answer.reason
    assert events[-1].data == {"outcome": "abstained"}
    assert len(model.calls) == 1  # an abstention is an answer: no repair attempt
    (entry,) = ended(history)
    assert (entry.outcome.value, entry.error, entry.sql) == (
        "abstained",
        "this database has no weather data",
        "",
    )
    counters = metrics.snapshot().counters
    assert counters['asks{model="fake",outcome="abstained"}'] == 1
    assert not any("error" in k for k in counters)
    out = io.StringIO()
    print_answer(answer, out)
    assert "abstained: this database has no weather data" in out.getvalue()
    assert "Answer(abstained, 0 row(s), attempts=1)" in repr(answer)


class Weatherless:
    """A SqlWriter of one's own: abstains on weather, else a fixed query."""

    name = "weatherless"

    def __init__(self) -> None:
        self.seen: list[WriteContext] = []

    def write(self, context: WriteContext) -> SqlDraft:
        self.seen.append(context)
        if "weather" in context.question.lower():
            return SqlDraft.abstain("no weather here", model=self.name)
        return SqlDraft(sql="SELECT COUNT(*) FROM customers", model=self.name, cost_usd=0.01)


def test_any_sql_writer_plugs_in(shop: Path) -> None:
    writer = Weatherless()
    a = Assistant(db=f"sqlite:///{shop}", model=writer, cache_threshold=None)
    a.train_from_database()
    ok = a.ask("How many customers?")
    assert (ok.rows, ok.cost_usd, ok.outcome) == (((4,),), 0.01, "ok")
    no = a.ask("Weather in Rome?")
    assert (no.abstained, no.reason, no.rows) == (True, "no weather here", ())
    ctx = writer.seen[0]
    assert {t.name for t in ctx.tables} == {"customers", "orders"}
    assert ctx.values  # an in-process writer gets the (scoped) stored values
    assert ctx.dialect == "sqlite"


def test_ask_is_one_screen_and_no_concrete_model_is_special_cased() -> None:
    src = (ROOT / "avl" / "assistant" / "_assistant.py").read_text()
    body = src[src.index("    def ask(") : src.index("    def stream(")]
    code = body[body.index('"""', body.index('"""') + 3) + 3 :]
    assert len([line for line in code.splitlines() if line.strip()]) <= 12
    for path in (ROOT / "avl" / "assistant").glob("*.py"):
        text = path.read_text()
        assert not re.search(r"isinstance\([^)]*(Offline|FakeChat|OpenAI|Anthropic|Gemini)", text)
        assert "avl.llm._" not in text
        assert "avl.llm.offline" not in text.replace("from avl.llm.offline import create", "")
    assert [s.__name__ for s in STAGES] == ["admit", "retrieve", "cache", "attempts"]


def test_answer_has_the_outcome(shop: Path) -> None:
    a = Assistant(
        db=f"sqlite:///{shop}", model=FakeChatModel(["DROP TABLE orders"]), max_attempts=1
    )
    answer: Answer = a.ask("drop?")
    assert (answer.outcome, answer.abstained, answer.ok) == ("rejected", False, False)
