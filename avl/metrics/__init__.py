"""AI metrics: counters, latency histograms, cost, Prometheus exposition."""

from __future__ import annotations

from avl.metrics._cost import DEFAULT_PRICES, CostTable, ModelPrice
from avl.metrics._metrics import (
    DEFAULT_BUCKETS,
    Metrics,
    MetricsSnapshot,
    ModelUsage,
    Percentiles,
    StageSnapshot,
)
from avl.metrics._otel import NoOpTracer, Tracer, otel_tracer

__all__ = [
    "DEFAULT_BUCKETS",
    "DEFAULT_PRICES",
    "CostTable",
    "Metrics",
    "MetricsSnapshot",
    "ModelPrice",
    "ModelUsage",
    "Percentiles",
    "NoOpTracer",
    "StageSnapshot",
    "Tracer",
    "otel_tracer",
]
