"""AI metrics: counters, latency histograms, gauges, cost, Prometheus exposition, tracing.

Tracing follows the OpenTelemetry convention for libraries: avl uses the global
tracer provider the application sets, and does nothing without one (see
:func:`start_span`).
"""

from __future__ import annotations

from avl.metrics._cost import DEFAULT_PRICES, CostTable, ModelPrice
from avl.metrics._metrics import (
    DEFAULT_BUCKETS,
    GaugeValue,
    Metrics,
    MetricsSnapshot,
    ModelUsage,
    Percentiles,
    StageSnapshot,
)
from avl.metrics._otel import (
    RECORD_SQL_ENV,
    AttributeValue,
    NoOpTracer,
    Span,
    SpanKind,
    TraceContext,
    TraceIds,
    Tracer,
    current_ids,
    extract_context,
    inject_context,
    otel_tracer,
    sanitize_sql,
    span_attributes,
    sql_attributes,
    start_span,
    tracing_enabled,
)

__all__ = [
    "DEFAULT_BUCKETS",
    "DEFAULT_PRICES",
    "RECORD_SQL_ENV",
    "AttributeValue",
    "CostTable",
    "GaugeValue",
    "Metrics",
    "MetricsSnapshot",
    "ModelPrice",
    "ModelUsage",
    "NoOpTracer",
    "Percentiles",
    "Span",
    "SpanKind",
    "StageSnapshot",
    "TraceContext",
    "TraceIds",
    "Tracer",
    "current_ids",
    "extract_context",
    "inject_context",
    "otel_tracer",
    "sanitize_sql",
    "span_attributes",
    "sql_attributes",
    "start_span",
    "tracing_enabled",
]
