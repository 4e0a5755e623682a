"""Optional OpenTelemetry tracing (extra ``otel``): a no-op when the API is absent."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

from avl.typing import Tracer

__all__ = ["NoOpTracer", "Tracer", "otel_tracer"]


class NoOpTracer:
    """A tracer whose spans do nothing (used when opentelemetry-api is not installed)."""

    @contextlib.contextmanager
    def start_as_current_span(
        self, name: str, *, attributes: Mapping[str, str] | None = None
    ) -> Iterator[None]:
        """A span that records nothing."""
        yield None


def otel_tracer(name: str = "avl") -> Tracer:
    """An OpenTelemetry tracer for :class:`~avl.metrics.Metrics` (``tracer=``).

    Uses the application's configured tracer provider (``opentelemetry.trace``).
    Returns a :class:`NoOpTracer` when ``opentelemetry-api`` is not installed
    (``pip install 'avl[otel]'``), so code can pass it unconditionally.

    Example:
        >>> from avl.metrics import Metrics, otel_tracer
        >>> metrics = Metrics(tracer=otel_tracer())
    """
    try:
        import opentelemetry.trace as trace
    except ImportError:
        return NoOpTracer()
    tracer: Tracer = trace.get_tracer(name)
    return tracer
