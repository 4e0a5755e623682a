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
