"""Rejections and rate-limit refusals are counted from every path, by source."""

from __future__ import annotations

import pytest

from avl.console import Console
from avl.errors import RateLimitedError, UnsafeQueryError
from avl.mcp import Caller
from avl.mcp._tools import run_sql


def test_mcp_run_sql_rejections_and_rate_limits_are_counted() -> None:
    with Console(ratelimit={"rates": "2/minute"}) as console:
        caller = Caller(user="agent-1")
        with pytest.raises(UnsafeQueryError):
            run_sql(console, caller, "DELETE FROM customers")
        run_sql(console, caller, "SELECT count(*) FROM customers")
        with pytest.raises(RateLimitedError):
            run_sql(console, caller, "SELECT count(*) FROM customers")
        text = console.metrics.prometheus_text().decode()
    assert 'avl_rejections_total{code="' in text
    rejected = [line for line in text.splitlines() if line.startswith("avl_rejections_total{")]
    assert rejected
    assert all('source="mcp"' in line for line in rejected)
    assert 'avl_rate_limited_total{source="mcp",user="agent-1"} 1.0' in text


def test_web_paths_count_rejections_rate_limits_and_verification() -> None:
    from avl.web import create_app
    from tests.ops.test_chaos import request

    with Console(ratelimit={"rates": "4/minute"}) as console:
        app = create_app(console)
        refused = request(app, "POST", "/v1/sql/run", {"sql": "DELETE FROM customers"})
        assert refused.status_code == 422
        assert request(app, "GET", "/v1/history/verify").status_code == 200
        statuses = [request(app, "GET", "/v1/ratelimit").status_code for _ in range(5)]
        assert statuses[-1] == 429
        snap = console.metrics.snapshot()
        text = console.metrics.prometheus_text().decode()
    assert 'source="sql_run"' in text
    assert [line for line in text.splitlines() if 'avl_rate_limited_total{source="web"' in line]
    assert snap.verification is not None
    assert snap.verification[:2] == (True, 1)  # the refused run is the one entry
    assert "avl_sse_streams" in text
