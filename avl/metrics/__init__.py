"""AI metrics: counters, latency histograms, cost, Prometheus exposition."""

from __future__ import annotations

from avl.metrics._cost import DEFAULT_PRICES, CostTable, ModelPrice

__all__ = ["DEFAULT_PRICES", "CostTable", "ModelPrice"]
