"""Budgets wired into the question pipeline: reserve before the model, settle after,
refuse over budget with a clear error (429 on the web), metrics and History agree."""

from __future__ import annotations

from typing import Any

import pytest

from avl.console import Console
from avl.costs import Budget, Budgets
from avl.errors import BudgetExceededError, ConfigError, ProviderTimeoutError
from avl.llm import OpenAIChatModel, RetryPolicy
from avl.web import create_app
from tests.ops.test_chaos import StallingProvider, request


def _model(provider: StallingProvider) -> OpenAIChatModel:
    return OpenAIChatModel(
        "gpt-4o-mini",
        api_key="sk-budget-test",
        base_url=f"http://127.0.0.1:{provider.port}/v1",
        timeout_s=5.0,
        retry=RetryPolicy(max_attempts=1),
    )


@pytest.fixture
def provider() -> Any:
    p = StallingProvider("SELECT COUNT(*) FROM customers")
    p.stall.clear()
    yield p
    p.close()


def test_questions_until_the_budget_refuses(provider: StallingProvider) -> None:
    # gpt-4o-mini: a call costs 400 x 0.15 + 12 x 0.60 per million = 0.0000672 USD, but
    # reserves its prompt plus 1,024 output tokens (about 0.0007 USD) first.
    # summaries from the template: one model call per question (a model-written summary
    # is a second call, budgeted too: tests/assistant/test_summaries.py)
    with Console(
        model=_model(provider),
        history="memory://",
        ratelimit={"rates": ""},
        budgets={"user": {"*": 0.001}, "alerts": [0.05, 1.0]},
        assistant={"summaries": "template"},
    ) as console:
        assert console.budgets is not None
        app = create_app(console)
        statuses = []
        for i in range(12):
            r = request(app, "POST", "/v1/ask", {"question": f"How many customers are there {i}?"})
            statuses.append(r.status_code)
            if r.status_code == 429:
                problem = r.json()
                break
        assert 200 in statuses
        assert statuses[-1] == 429, statuses
        assert f"budget user:{_user(console)}" in problem["detail"]
        assert int(r.headers["retry-after"]) > 0
        (status,) = console.budgets.status(user=_user(console))
        # what was settled is the real cost of the answered calls, nothing reserved is left
        answered = statuses.count(200)
        assert status.spent_usd == pytest.approx(answered * 0.0000672, abs=1e-6)
        snap = console.metrics.snapshot()
        assert snap.counters[f'budget_refusals{{name="{_user(console)}",scope="user"}}'] == 1
        spent_gauge = [v for k, v in snap.gauges.items() if k.startswith("budget_spent_usd")]
        assert spent_gauge == [pytest.approx(status.spent_usd)]
        latest = next(iter(console.history.search(limit=5)))
        assert str(latest.outcome) == "rate_limited"
        assert "budget" in latest.error


def _user(console: Console) -> str:
    from avl.web import WebSettings

    return WebSettings().local_identity.user


def test_a_failed_model_call_is_refunded(provider: StallingProvider) -> None:
    provider.stall.set()
    model = OpenAIChatModel(
        "gpt-4o-mini",
        api_key="sk-budget-test",
        base_url=f"http://127.0.0.1:{provider.port}/v1",
        timeout_s=0.2,
        retry=RetryPolicy(max_attempts=1),
    )
    budgets = Budgets([Budget(scope="user", name="*", limit_usd=1.0)])
    with Console(model=model, history="memory://", budgets=budgets) as console:
        with pytest.raises(ProviderTimeoutError):
            console.assistant.ask("How many customers are there?", user="ann")
        assert budgets.status(user="ann")[0].spent_usd == 0.0


def test_budget_refusal_from_python(provider: StallingProvider) -> None:
    budgets = Budgets([Budget(scope="role", name="analyst", limit_usd=0.0001)])
    with Console(model=_model(provider), history="memory://", budgets=budgets) as console:
        with pytest.raises(BudgetExceededError) as info:
            console.assistant.ask("How many customers are there?", user="ann", role="analyst")
        assert info.value.budget == "role:analyst"
        # another role has no budget: answered
        assert console.assistant.ask("How many customers are there?", user="ann").rows == ((12,),)


def test_bad_budgets_config() -> None:
    with pytest.raises(ConfigError, match="budgets"):
        Console(budgets={"users": {"*": 1}})
