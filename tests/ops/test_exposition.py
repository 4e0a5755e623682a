"""Every metric the Grafana dashboard and the Prometheus rules use is in the exposition
of a running avl: drive a real app through the paths that produce each one, scrape
/metrics, and compare names."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from avl.console import Console
from avl.errors import BudgetExceededError
from avl.web import create_app
from tests.conftest import ROOT
from tests.ops.test_chaos import request

DEPLOY = ROOT / "deploy"
_NAME = re.compile(r"\b(avl_[a-z0-9_]+)")


def used_metrics() -> set[str]:
    exprs = [
        t["expr"]
        for p in json.loads((DEPLOY / "grafana" / "dashboards" / "avl.json").read_text())["panels"]
        for t in p.get("targets", [])
    ]
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    exprs += [r["expr"] for g in rules["groups"] for r in g["rules"]]
    return {m for e in exprs for m in _NAME.findall(e)}


def exposed(text: str) -> set[str]:
    return {s.name for fam in text_string_to_metric_families(text) for s in fam.samples}


def test_the_dashboard_and_rules_name_real_metrics(tmp_path: Path) -> None:
    used = used_metrics()
    assert {"avl_http_requests_total", "avl_rejections_total", "avl_cost_usd_total"} <= used
    config = {
        "history": f"sqlite:///{tmp_path / 'history.db'}",
        "ratelimit": {"rates": "8/minute"},
        "budgets": {"user": {"*": 1.0}},
    }
    with Console(**config) as console:
        app = create_app(console)
        assert request(app, "GET", "/healthz").status_code == 200
        ask = {"question": "How many customers are there?"}
        assert request(app, "POST", "/v1/ask", ask).status_code == 200
        assert request(app, "POST", "/v1/ask", ask).status_code == 200  # the cache answers
        run = request(app, "POST", "/v1/sql/run", {"sql": "DELETE FROM customers"})
        assert run.status_code == 422
        verify = request(app, "GET", "/v1/history/verify")
        assert verify.status_code == 200
        # rate limited at the door: the limit is 8 per minute
        statuses = [request(app, "GET", "/v1/ratelimit").status_code for _ in range(10)]
        assert 429 in statuses
        # a budget refusal (the offline model costs nothing, so ask the budget directly)
        assert console.budgets is not None
        with pytest.raises(BudgetExceededError):
            console.budgets.reserve(2.0, user="ann")
        # what /metrics serves (the door's rate limit now refuses this caller)
        scraped = console.metrics.prometheus_text().decode()
    names = exposed(scraped)
    missing = sorted(m for m in used if m not in names)
    assert missing == [], f"used by deploy/ but not exposed: {missing}"


def test_used_metrics_parse() -> None:
    # the extraction itself: histogram parts and counters keep their suffixes
    assert "avl_http_request_duration_seconds_bucket" in used_metrics()
    assert all(not m.endswith("_") for m in used_metrics())
