"""Cost budgets, alerts and a showback report.

Budgets are limits in USD per user, role or team and calendar period; a call reserves
its most expensive estimate first and settles its real cost after. Alerts fire at 50,
80 and 100% (here printed; ``WebhookAlerts(url)`` posts them). The report reads the
History every question is recorded in.

Run: ``python examples/ops_budgets.py``
"""

from __future__ import annotations

from avl.costs import Budget, BudgetAlert, Budgets, cost_report, estimate_cost
from avl.errors import BudgetExceededError
from avl.history import Entry, History


def alert(a: BudgetAlert) -> None:
    s = a.status
    print(f"ALERT {s.budget} at {100 * s.share:.0f}% of {s.limit_usd} USD in {s.period}")


budgets = Budgets(
    [
        Budget(scope="user", name="*", limit_usd=0.05),  # each user, per month
        Budget(scope="team", name="data", limit_usd=1.00),
    ],
    teams={"ann": "data", "bob": "data"},
    on_alert=alert,
)
history = History("memory://")

for i in range(30):
    user = "ann" if i % 3 else "bob"
    estimate = estimate_cost("openai/gpt-4o-mini", input_tokens=2_000, max_output_tokens=500)
    try:
        reservation = budgets.reserve(estimate, user=user)
    except BudgetExceededError as exc:
        print("refused:", exc)
        break
    cost = 0.004  # what the provider reported for the call
    budgets.settle(reservation, cost)
    history.record(Entry(user=user, model="openai/gpt-4o-mini", cost_usd=cost, question=f"q{i}"))

report = cost_report(history, by="user", since="30d", forecast=True)
print(report.to_csv())
assert report.forecast is not None
print(f"month-end forecast: {report.forecast.projected_usd:.4f} USD ({report.forecast.method})")
