"""Cost management: budgets per user, role or team, alerts, showback and forecasts.

Example:
    >>> from avl.costs import Budget, Budgets
    >>> budgets = Budgets([Budget(scope="user", name="*", limit_usd=5.0)])
    >>> reservation = budgets.reserve(0.02, user="ann")   # before the model call
    >>> [s.spent_usd for s in budgets.settle(reservation, 0.004)]  # with the real cost
    [0.004]
"""

from __future__ import annotations

from avl.costs._budget import (
    DEFAULT_THRESHOLDS,
    AlertCallback,
    Budget,
    BudgetAlert,
    BudgetReservation,
    Budgets,
    BudgetStatus,
    Period,
    Scope,
    WebhookAlerts,
    estimate_cost,
)
from avl.costs._ledger import LEDGERS, Ledger, MemoryLedger, RedisLedger, ledger_from_url
from avl.costs._report import (
    FORECAST_METHOD,
    GROUPS,
    CostReport,
    CostRow,
    Forecast,
    cost_report,
    daily_costs,
    forecast_month,
    parse_since,
)

__all__ = [
    "DEFAULT_THRESHOLDS",
    "FORECAST_METHOD",
    "GROUPS",
    "LEDGERS",
    "AlertCallback",
    "Budget",
    "BudgetAlert",
    "BudgetReservation",
    "BudgetStatus",
    "Budgets",
    "CostReport",
    "CostRow",
    "Forecast",
    "Ledger",
    "MemoryLedger",
    "Period",
    "RedisLedger",
    "Scope",
    "WebhookAlerts",
    "cost_report",
    "daily_costs",
    "estimate_cost",
    "forecast_month",
    "ledger_from_url",
    "parse_since",
]
