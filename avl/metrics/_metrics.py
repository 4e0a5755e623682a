"""In-process AI metrics: counters, stage latency histograms, sliding-window percentiles."""

from __future__ import annotations

import bisect
import contextlib
import logging
import math
import re
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

import attrs

from avl._clock import Clock, SystemClock
from avl._lazy import lazy_module
from avl._optional import require
from avl.errors import ConfigError, InvalidInputError
from avl.metrics._cost import CostTable
from avl.metrics._otel import Tracer

if TYPE_CHECKING:
    from avl import _html
else:  # the HTML views load when a notebook first shows one
    _html = lazy_module("avl._html")

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = [
    "DEFAULT_BUCKETS",
    "GaugeValue",
    "Metrics",
    "MetricsSnapshot",
    "ModelUsage",
    "Percentiles",
    "StageSnapshot",
]

#: Upper bounds (seconds) of the Prometheus latency histogram buckets.
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)

log = logging.getLogger("avl.metrics")

_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

StageKey = tuple[str, str, str, str]  # stage, model, user, outcome

#: Request samples queued before they are folded into the counters (see observe_request).
_FOLD_AT = 1024
_INF = math.inf

#: What a gauge callback returns: one value, or values by one label's value.
GaugeValue = float | Mapping[str, float]


class Percentiles(NamedTuple):
    """p50, p95 and p99 in seconds (unpacks as a 3-tuple)."""

    p50: float
    p95: float
    p99: float


def _percentile(sorted_values: list[float], q: float) -> float:
    # Linear interpolation between closest ranks: numpy.percentile(method="linear").
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def _frozen(value: Mapping[Any, Any]) -> Mapping[Any, Any]:
    return MappingProxyType(dict(value))


@attrs.frozen(kw_only=True)
class StageSnapshot:
    """One stage's latency.

    Attributes:
        count: observations since start.
        sum_s: total seconds since start.
        window_count: observations in the sliding window.
        p50: window median (``None`` when the window is empty).
        p95: window 95th percentile.
        p99: window 99th percentile.
    """

    count: int
    sum_s: float
    window_count: int
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None


@attrs.frozen(kw_only=True)
class ModelUsage:
    """Tokens and cost of one model since start.

    Attributes:
        calls: calls recorded.
        input_tokens: input tokens.
        output_tokens: output tokens.
        cost_usd: known cost in USD.
    """

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


@attrs.frozen(kw_only=True)
class MetricsSnapshot:
    """A frozen copy of every metric (for notebooks and tests).

    Attributes:
        window_s: the percentile window.
        stages: per stage.
        models: tokens and cost per model.
        cache_hits: cache hits.
        cache_misses: cache misses.
        rejections: per violation code (all sources).
        rate_limited: per user (all sources).
        counters: custom counters keyed ``name{label="value",...}`` (labels sorted).
        requests: HTTP requests keyed ``(route, method, status)``.
        gauges: gauges keyed ``name{label="value",...}`` (labels sorted), the
            callbacks' current values included.
        verification: the last history verification ``(ok, checked, at)``, or ``None``.

    ``repr()`` prints each non-empty part as a short aligned table; in a notebook
    the snapshot shows as HTML tables (stage latencies in milliseconds, tokens and
    cost per model, rejections, counters, gauges).
    """

    window_s: float
    stages: Mapping[str, StageSnapshot] = attrs.field(factory=dict, converter=_frozen)
    models: Mapping[str, ModelUsage] = attrs.field(factory=dict, converter=_frozen)
    cache_hits: int = 0
    cache_misses: int = 0
    rejections: Mapping[str, int] = attrs.field(factory=dict, converter=_frozen)
    rate_limited: Mapping[str, int] = attrs.field(factory=dict, converter=_frozen)
    counters: Mapping[str, float] = attrs.field(factory=dict, converter=_frozen)
    requests: Mapping[tuple[str, str, str], int] = attrs.field(factory=dict, converter=_frozen)
    gauges: Mapping[str, float] = attrs.field(factory=dict, converter=_frozen)
    verification: tuple[bool, int, float] | None = None

    @property
    def cache_hit_ratio(self) -> float | None:
        """Hits / (hits + misses), or ``None`` before any lookup."""
        total = self.cache_hits + self.cache_misses
        return None if total == 0 else self.cache_hits / total

    def _sections(
        self,
    ) -> list[tuple[str, tuple[str, ...], list[tuple[object, ...]], tuple[int, ...]]]:
        """(title, columns, rows, right-aligned columns) of every non-empty part."""
        ms = _html.fmt_seconds
        out: list[tuple[str, tuple[str, ...], list[tuple[object, ...]], tuple[int, ...]]] = []
        if self.stages:
            rows: list[tuple[object, ...]] = [
                (name, s.count, ms(s.sum_s), s.window_count, ms(s.p50), ms(s.p95), ms(s.p99))
                for name, s in self.stages.items()
            ]
            out.append(
                (
                    f"stages (percentiles over the last {self.window_s:g} s)",
                    ("stage", "count", "total", "in window", "p50", "p95", "p99"),
                    rows,
                    (2, 4, 5, 6),
                )
            )
        if self.models:
            rows = [
                (m, u.calls, u.input_tokens, u.output_tokens, f"{u.cost_usd:.4f}")
                for m, u in self.models.items()
            ]
            out.append(
                (
                    "models",
                    ("model", "calls", "input tokens", "output tokens", "cost (USD)"),
                    rows,
                    (4,),
                )
            )
        ratio = self.cache_hit_ratio
        if ratio is not None:
            out.append(
                (
                    "cache",
                    ("hits", "misses", "hit ratio"),
                    [(self.cache_hits, self.cache_misses, f"{ratio:.1%}")],
                    (2,),
                )
            )
        for title, head, values in (
            ("rejections", "violation code", self.rejections),
            ("rate limited", "user", self.rate_limited),
            ("counters", "counter", self.counters),
            ("gauges", "gauge", self.gauges),
        ):
            if values:
                out.append((title, (head, "value"), list(values.items()), ()))
        if self.requests:
            rows = [(*key, n) for key, n in self.requests.items()]
            out.append(("HTTP requests", ("route", "method", "status", "count"), rows, ()))
        if self.verification is not None:
            ok, checked, at = self.verification
            out.append(
                (
                    "last history verification",
                    ("ok", "checked", "at (UTC)"),
                    [(str(ok), checked, _html.fmt_time(at))],
                    (),
                )
            )
        return out

    def __repr__(self) -> str:
        sections = self._sections()
        lines = [f"MetricsSnapshot(window_s={self.window_s:g}{'' if sections else ', empty'})"]
        for title, columns, rows, right in sections:
            lines.append(f"  {title}:")
            lines.extend(_html.text_table(columns, rows, indent="    ", max_rows=20, right=right))
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """The snapshot as HTML tables (Jupyter calls it)."""
        parts = ["<div><b>Metrics</b></div>"]
        sections = self._sections()
        if not sections:
            parts.append(_html.muted("nothing recorded yet"))
        for title, columns, rows, right in sections:
            parts.append(f"<div style='margin-top:6px'><b>{_html.esc(title)}</b></div>")
            parts.append(_html.table(columns, rows, right=right))
        return _html.box("".join(parts), kind="metrics")


class _Hist:
    __slots__ = ("buckets", "count", "sum")

    def __init__(self, n: int) -> None:
        self.buckets = [0] * n
        self.count = 0
        self.sum = 0.0


class _Usage:
    __slots__ = ("calls", "cost", "inp", "out")

    def __init__(self) -> None:
        self.calls = 0
        self.inp = 0
        self.out = 0
        self.cost = 0.0


def _label(value: str | None) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInputError(f"metric label values must be strings, got {value!r}")
    return value


def _seconds(value: float, name: str = "seconds") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInputError(f"{name} must be a number, got {value!r}")
    out = float(value)
    if not math.isfinite(out) or out < 0:
        raise InvalidInputError(f"{name} must be finite and non-negative, got {value!r}")
    return out


def _count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInputError(f"{name} must be a non-negative integer, got {value!r}")
    return value


class Metrics:
    """Counters and latency histograms for the question pipeline. Thread-safe.

    Latency is labelled by stage (``retrieve``, ``generate``, ``validate``,
    ``execute``...), model, user and outcome. All-time counts feed the Prometheus
    histogram; percentiles are exact over the samples of the last ``window_s``
    seconds (at most ``max_samples`` per stage, the oldest dropped first), computed
    with linear interpolation between closest ranks (``numpy.percentile``'s default
    ``method="linear"``).

    Args:
        clock: time source; its ``monotonic()`` times stages and ages the window.
        window_s: the sliding window for percentiles, in seconds.
        max_samples: bound on samples kept per stage.
        cost_table: prices used by :meth:`record_tokens` when no cost is given.
        buckets: histogram bucket upper bounds in seconds (ascending).
        tracer: an OpenTelemetry tracer (anything with ``start_as_current_span``);
            each :meth:`timer` becomes a span. ``None``: no spans.

    Raises:
        ConfigError: bad window, bound or buckets.

    Example:
        >>> from avl.metrics import Metrics
        >>> from avl.testing import FakeClock
        >>> clock = FakeClock()
        >>> m = Metrics(clock=clock)
        >>> with m.timer("generate", model="openai/gpt-4o-mini"):
        ...     clock.advance(0.5)
        >>> m.percentiles("generate")
        Percentiles(p50=0.5, p95=0.5, p99=0.5)
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        window_s: float = 300.0,
        max_samples: int = 10_000,
        cost_table: CostTable | None = None,
        buckets: tuple[float, ...] = DEFAULT_BUCKETS,
        tracer: Tracer | None = None,
    ) -> None:
        if not isinstance(window_s, (int, float)) or not window_s > 0:
            raise ConfigError(f"window_s must be a positive number, got {window_s!r}")
        if isinstance(max_samples, bool) or not isinstance(max_samples, int) or max_samples < 1:
            raise ConfigError(f"max_samples must be a positive integer, got {max_samples!r}")
        if not buckets or list(buckets) != sorted(set(buckets)):
            raise ConfigError("buckets must be a non-empty strictly ascending sequence")
        self._clock: Clock = clock if clock is not None else SystemClock()
        self.window_s = float(window_s)
        self.max_samples = max_samples
        self.cost_table = cost_table
        self.buckets = tuple(float(b) for b in buckets)
        self._tracer = tracer
        self._lock = threading.Lock()
        self._hists: dict[StageKey, _Hist] = {}
        self._windows: dict[str, deque[tuple[float, float, str, str, str]]] = {}
        self._usage: dict[tuple[str, str], _Usage] = {}
        self._cache = [0, 0]
        self._rejections: dict[tuple[str, str], int] = {}
        self._rate_limited: dict[tuple[str, str], int] = {}
        self._counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self._requests: dict[tuple[str, str, str], int] = {}
        self._request_hists: dict[tuple[str, str], _Hist] = {}
        # (route, method, status) -> its count key and histogram, made on first use
        self._request_series: dict[tuple[str, str, int], tuple[tuple[str, str, str], _Hist]] = {}
        self._pending_requests: deque[tuple[tuple[tuple[str, str, str], _Hist], float]] = deque()
        self._raw_requests: deque[tuple[str, str, int, float]] = deque()  # request_sink()'s
        self._gauges: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self._gauge_callbacks: dict[str, tuple[Callable[[], GaugeValue], str, str]] = {}
        self._verification: tuple[bool, int, float] | None = None
        self._registry: CollectorRegistry | None = None

    # -- recording -----------------------------------------------------------------

    def observe_stage(
        self,
        stage: str,
        seconds: float,
        *,
        model: str | None = None,
        user: str | None = None,
        outcome: str | None = None,
    ) -> None:
        """Record one stage duration.

        Raises:
            InvalidInputError: a negative or non-finite duration, or a non-string label.
        """
        if not isinstance(stage, str) or not stage:
            raise InvalidInputError(f"stage must be a non-empty string, got {stage!r}")
        secs = _seconds(seconds)
        key = (stage, _label(model), _label(user), _label(getattr(outcome, "value", outcome)))
        now = self._clock.monotonic()
        with self._lock:
            hist = self._hists.get(key)
            if hist is None:
                hist = self._hists[key] = _Hist(len(self.buckets))
            i = bisect.bisect_left(self.buckets, secs)
            if i < len(hist.buckets):
                hist.buckets[i] += 1
            hist.count += 1
            hist.sum += secs
            window = self._windows.get(stage)
            if window is None:
                window = self._windows[stage] = deque(maxlen=self.max_samples)
            window.append((now, secs, key[1], key[2], key[3]))
            self._expire(window, now)

    def _expire(self, window: deque[tuple[float, float, str, str, str]], now: float) -> None:
        cutoff = now - self.window_s
        while window and window[0][0] < cutoff:
            window.popleft()

    @contextlib.contextmanager
    def timer(
        self,
        stage: str,
        *,
        model: str | None = None,
        user: str | None = None,
        outcome: str | None = None,
    ) -> Iterator[None]:
        """Time a block as ``stage`` (and open a tracing span when a tracer is set).

        When the block raises and no ``outcome`` was given, the observation is
        labelled ``outcome="error"``; the exception propagates.

        Example:
            >>> m = Metrics()
            >>> with m.timer("execute", user="ann"):
            ...     pass
            >>> m.snapshot().stages["execute"].count
            1
        """
        start = self._clock.monotonic()
        span_cm: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        if self._tracer is not None:
            attributes = {"avl.stage": stage}
            if model:
                attributes["avl.model"] = model
            if user:
                attributes["avl.user"] = user
            span_cm = self._tracer.start_as_current_span(f"avl.{stage}", attributes=attributes)
        failed = False
        try:
            with span_cm:
                yield
        except BaseException:
            failed = True
            raise
        finally:
            final = outcome if outcome is not None or not failed else "error"
            self.observe_stage(
                stage,
                max(0.0, self._clock.monotonic() - start),
                model=model,
                user=user,
                outcome=final,
            )

    def record_tokens(
        self,
        model: str,
        input_tokens: int,
        output_tokens: int,
        cost_usd: float | None = None,
        *,
        cached_tokens: int = 0,
        user: str | None = None,
    ) -> float | None:
        """Add a model call's tokens and cost.

        Args:
            model: ``"provider/model"`` (``"openai/gpt-4o-mini"``).
            input_tokens: input tokens, cached ones included.
            output_tokens: output tokens.
            cost_usd: the cost; when ``None`` it comes from ``cost_table`` (if the
                model is in it).
            cached_tokens: cached input tokens (for the cost table).
            user: who asked (the ``user`` label of tokens and cost; ``""`` when
                not given).

        Returns:
            The cost counted (``None`` when unknown).

        Raises:
            InvalidInputError: negative token counts or cost.
        """
        model = _label(model)
        who = _label(user)
        inp = _count("input_tokens", input_tokens)
        out = _count("output_tokens", output_tokens)
        cached = _count("cached_tokens", cached_tokens)
        if cost_usd is None and self.cost_table is not None:
            provider, _, name = model.partition("/")
            if name:
                cost_usd = self.cost_table.cost_usd(
                    provider, name, input_tokens=inp, output_tokens=out, cached_tokens=cached
                )
        if cost_usd is not None:
            cost_usd = _seconds(cost_usd, "cost_usd")
        with self._lock:
            usage = self._usage.get((model, who))
            if usage is None:
                usage = self._usage[(model, who)] = _Usage()
            usage.calls += 1
            usage.inp += inp
            usage.out += out
            usage.cost += cost_usd or 0.0
        return cost_usd

    def record_rejection(self, code: str, *, source: str = "ask") -> None:
        """Count a SafeQuery rejection by violation code (an Enum's value is used).

        Args:
            code: the violation code.
            source: the path that refused it (``"ask"``, ``"sql_run"``,
                ``"sql_check"``, ``"train"``, ``"mcp"``...), the ``source`` label.
        """
        key = (_label(getattr(code, "value", code)), _label(source))
        with self._lock:
            self._rejections[key] = self._rejections.get(key, 0) + 1

    def record_rate_limited(self, user: str | None = None, *, source: str = "ask") -> None:
        """Count a request refused by a rate limit.

        Args:
            user: who was refused.
            source: which limit refused it (``"ask"``, ``"web"``, ``"tokens"``...).
        """
        key = (_label(user), _label(source))
        with self._lock:
            self._rate_limited[key] = self._rate_limited.get(key, 0) + 1

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Record one HTTP request: its count by status and its latency by route.

        Use the route's template (``/v1/history/{entry_id}``), not the raw path, so
        the number of series stays bounded.

        Made for the request path: once a series (route, method, status) has been
        seen, a call checks its values and queues the sample; the queue is folded
        into the counts and histograms by every reader (:meth:`snapshot`, the
        scrape) and whenever it holds 1,024 samples.

        Args:
            route: the route template.
            method: the HTTP method.
            status: the response status code.
            seconds: the time to the end of the response.

        Raises:
            InvalidInputError: a bad status or duration, or a non-string label.
        """
        pending = self._pending_requests
        pending.append(self._checked_request(route, method, status, seconds))
        if len(pending) >= _FOLD_AT:
            self._fold_requests()

    def request_sink(self) -> Callable[[str, str, int, float], None]:
        """:meth:`observe_request` for a caller on a hot path (the web adapter).

        The sink only queues ``(route, method, status, seconds)``; the values are
        checked when the queue is folded (by every reader, and whenever it holds
        1,024 samples), not at the call: a sample with a bad value is then dropped
        and a warning logged on ``avl.metrics``.

        Returns:
            ``sink(route, method, status, seconds)``.
        """
        raw = self._raw_requests
        append = raw.append
        fold = self._fold_requests

        def sink(route: str, method: str, status: int, seconds: float) -> None:
            append((route, method, status, seconds))
            if len(raw) >= _FOLD_AT:
                fold()

        return sink

    def _checked_request(
        self, route: str, method: str, status: int, seconds: float
    ) -> tuple[tuple[tuple[str, str, str], _Hist], float]:
        """The series of a request sample and its duration, checked."""
        try:
            series = self._request_series.get((route, method, status))
        except TypeError:  # an unhashable label: refused below
            series = None
        if (
            series is None
            or type(status) is not int
            or type(seconds) is not float
            or not 0.0 <= seconds < _INF
        ):
            # the first request of a series, or a value to check: the full checks
            if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
                raise InvalidInputError(f"status must be an HTTP status code, got {status!r}")
            seconds = _seconds(seconds)
            series = self._new_request_series(_label(route), _label(method), status)
        # A known series with a float duration: the labels were checked when it was made.
        return series, seconds

    def _fold_requests(self) -> None:
        """Fold the queued request samples into the counts and histograms."""
        raw = self._raw_requests
        pending = self._pending_requests
        dropped = 0
        while raw:  # the sink's samples, checked now
            try:
                sample = raw.popleft()
            except IndexError:
                break
            try:
                pending.append(self._checked_request(*sample))
            except InvalidInputError:
                dropped += 1
        if dropped:
            log.warning("%d request samples with a bad value were dropped", dropped)
        buckets = self.buckets
        top = len(buckets)
        bisect_left = bisect.bisect_left
        with self._lock:
            requests = self._requests
            while True:
                try:
                    (skey, hist), seconds = pending.popleft()
                except IndexError:
                    break
                requests[skey] = requests.get(skey, 0) + 1
                i = bisect_left(buckets, seconds)
                if i < top:
                    hist.buckets[i] += 1
                hist.count += 1
                hist.sum += seconds

    def _new_request_series(
        self, route: str, method: str, status: int
    ) -> tuple[tuple[str, str, str], _Hist]:
        with self._lock:
            hist = self._request_hists.get((route, method))
            if hist is None:
                hist = self._request_hists[(route, method)] = _Hist(len(self.buckets))
            series = ((route, method, str(status)), hist)
            self._request_series[(route, method, status)] = series
        return series

    def set_gauge(self, name: str, value: float, /, **labels: str) -> None:
        """Set the gauge ``avl_<name>`` with ``labels`` to ``value``.

        Raises:
            InvalidInputError: a bad name, label name or a non-finite value.
        """
        key = _series_key(name, labels, "gauge")
        number = _finite(value, "gauge value")
        with self._lock:
            self._gauges[key] = number

    def add_gauge(self, name: str, delta: float = 1.0, /, **labels: str) -> None:
        """Add ``delta`` (negative to decrease) to the gauge ``avl_<name>`` with ``labels``.

        Example:
            >>> m = Metrics()
            >>> m.add_gauge("streams_active", 1)
            >>> m.add_gauge("streams_active", -1)
            >>> m.snapshot().gauges["streams_active"]
            0.0

        Raises:
            InvalidInputError: a bad name, label name or a non-finite delta.
        """
        key = _series_key(name, labels, "gauge")
        number = _finite(delta, "gauge delta")
        with self._lock:
            self._gauges[key] = self._gauges.get(key, 0.0) + number

    def gauge_callback(
        self,
        name: str,
        callback: Callable[[], GaugeValue],
        *,
        label: str = "state",
        help: str = "",
    ) -> None:
        """Read the gauge ``avl_<name>`` from ``callback`` at every scrape and snapshot.

        For state another object owns (a connection pool's sizes, the open streams).
        The callback returns a number, or a mapping from a value of ``label`` to a
        number (``{"in_use": 2, "idle": 3}``). A callback that raises is skipped for
        that scrape. Registering the same name again replaces the callback.

        Args:
            name: the gauge's name without the ``avl_`` prefix.
            callback: returns the value(s); called without the metrics lock held.
            label: the label name for a mapping's keys.
            help: the gauge's help text.

        Raises:
            InvalidInputError: a bad name or label, or ``callback`` is not callable.
        """
        _series_key(name, {label: ""}, "gauge")
        if not callable(callback):
            raise InvalidInputError("callback must be callable")
        with self._lock:
            self._gauge_callbacks[name] = (callback, label, help or f"Gauge {name}.")

    def record_verification(self, ok: bool, checked: int, *, at: float | None = None) -> None:
        """Record the result of a history chain verification (``History.verify()``).

        Exposed as ``avl_history_verify_ok`` (1 or 0), ``avl_history_verify_checked``,
        ``avl_history_verify_timestamp_seconds`` and ``avl_history_verifications_total``
        by result, for the "chain verification failure" alert.

        Args:
            ok: whether the chain verified.
            checked: entries checked.
            at: when (seconds since the epoch; default: the clock's ``now()``).

        Raises:
            InvalidInputError: a negative count or a bad time.
        """
        n = _count("checked", checked)
        when = self._clock.now() if at is None else _seconds(at, "at")
        with self._lock:
            self._verification = (bool(ok), n, when)
            key = ("history_verifications", (("result", "ok" if ok else "failed"),))
            self._counters[key] = self._counters.get(key, 0.0) + 1.0

    def record_cache(self, hit: bool) -> None:
        """Count a cache lookup."""
        with self._lock:
            self._cache[0 if hit else 1] += 1

    def count(self, name: str, value: float = 1.0, /, **labels: str) -> None:
        """Add ``value`` to the custom counter ``name`` with ``labels``.

        Raises:
            InvalidInputError: a bad name, label name or negative value.
        """
        key = _series_key(name, labels, "counter")
        amount = _seconds(value, "counter value")
        with self._lock:
            self._counters[key] = self._counters.get(key, 0.0) + amount

    # -- reading -------------------------------------------------------------------

    def percentiles(
        self,
        stage: str,
        *,
        model: str | None = None,
        user: str | None = None,
        outcome: str | None = None,
    ) -> Percentiles | None:
        """p50, p95, p99 of ``stage`` over the sliding window (``None`` if no samples).

        Optional labels narrow the samples to one model, user or outcome.
        """
        samples = self._window_samples(stage, model=model, user=user, outcome=outcome)
        if not samples:
            return None
        samples.sort()
        return Percentiles(*(_percentile(samples, q) for q in (50.0, 95.0, 99.0)))

    def _window_samples(
        self,
        stage: str,
        *,
        model: str | None = None,
        user: str | None = None,
        outcome: str | None = None,
    ) -> list[float]:
        now = self._clock.monotonic()
        with self._lock:
            window = self._windows.get(stage)
            if window is None:
                return []
            self._expire(window, now)
            return [
                s[1]
                for s in window
                if (model is None or s[2] == model)
                and (user is None or s[3] == user)
                and (outcome is None or s[4] == outcome)
            ]

    def snapshot(self) -> MetricsSnapshot:
        """A frozen copy of every metric now."""
        self._fold_requests()
        stages: dict[str, StageSnapshot] = {}
        gauges = {_series(n, lbl): v for (n, lbl), v in self._gauge_series()}
        with self._lock:
            totals: dict[str, list[float]] = {}
            for (stage, *_), hist in self._hists.items():
                acc = totals.setdefault(stage, [0, 0.0])
                acc[0] += hist.count
                acc[1] += hist.sum
            per_model: dict[str, list[float]] = {}
            for (model, _user), u in self._usage.items():
                acc = per_model.setdefault(model, [0, 0, 0, 0.0])
                acc[0] += u.calls
                acc[1] += u.inp
                acc[2] += u.out
                acc[3] += u.cost
            models = {
                m: ModelUsage(
                    calls=int(a[0]), input_tokens=int(a[1]), output_tokens=int(a[2]), cost_usd=a[3]
                )
                for m, a in sorted(per_model.items())
            }
            counters = {_series(n, lbl): v for (n, lbl), v in sorted(self._counters.items())}
            cache = tuple(self._cache)
            rejections: dict[str, int] = {}
            for (code, _source), n in sorted(self._rejections.items()):
                rejections[code] = rejections.get(code, 0) + n
            limited: dict[str, int] = {}
            for (user, _source), n in sorted(self._rate_limited.items()):
                limited[user] = limited.get(user, 0) + n
            requests = dict(sorted(self._requests.items()))
            verification = self._verification
        for stage in sorted(totals):
            p = self.percentiles(stage)
            stages[stage] = StageSnapshot(
                count=int(totals[stage][0]),
                sum_s=float(totals[stage][1]),
                window_count=len(self._window_samples(stage)),
                p50=None if p is None else p.p50,
                p95=None if p is None else p.p95,
                p99=None if p is None else p.p99,
            )
        return MetricsSnapshot(
            window_s=self.window_s,
            stages=stages,
            models=models,
            cache_hits=cache[0],
            cache_misses=cache[1],
            rejections=dict(sorted(rejections.items())),
            rate_limited=dict(sorted(limited.items())),
            counters=counters,
            requests=requests,
            gauges=dict(sorted(gauges.items())),
            verification=verification,
        )

    def _gauge_series(self) -> list[tuple[tuple[str, tuple[tuple[str, str], ...]], float]]:
        """Every gauge sample: the set ones and the callbacks' (called unlocked)."""
        with self._lock:
            out = sorted(self._gauges.items())
            callbacks = sorted(self._gauge_callbacks.items())
        for name, (callback, label, _help) in callbacks:
            try:
                value = callback()
            except Exception:  # a broken callback must not break the scrape
                continue
            if isinstance(value, Mapping):
                for k, v in sorted(value.items()):
                    if isinstance(v, (int, float)) and not isinstance(v, bool):
                        out.append(((name, ((label, str(k)),)), float(v)))
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                out.append(((name, ()), float(value)))
        return out

    # -- Prometheus ------------------------------------------------------------------

    @property
    def registry(self) -> CollectorRegistry:
        """A ``prometheus_client.CollectorRegistry`` of its own (not the global one).

        Raises:
            MissingDependencyError: prometheus_client is not installed (``avl[metrics]``).
        """
        with self._lock:
            if self._registry is None:
                prom = require("prometheus_client", extra="metrics")
                registry: CollectorRegistry = prom.CollectorRegistry(auto_describe=False)
                registry.register(_Collector(self))
                self._registry = registry
            return self._registry

    def prometheus_text(self) -> bytes:
        """The Prometheus text exposition of every metric (serve it at ``/metrics``).

        Raises:
            MissingDependencyError: prometheus_client is not installed (``avl[metrics]``).
        """
        prom = require("prometheus_client", extra="metrics")
        data: bytes = prom.generate_latest(self.registry)
        return data

    def _collect(self) -> Iterator[Any]:
        core = require("prometheus_client.core", extra="metrics")
        self._fold_requests()
        gauge_series = self._gauge_series()
        with self._lock:
            hists = {k: (list(h.buckets), h.count, h.sum) for k, h in self._hists.items()}
            usage = {m: (u.calls, u.inp, u.out, u.cost) for m, u in self._usage.items()}
            cache = tuple(self._cache)
            rejections = dict(self._rejections)
            limited = dict(self._rate_limited)
            counters = dict(self._counters)
            requests = dict(self._requests)
            request_hists = {
                k: (list(h.buckets), h.count, h.sum) for k, h in self._request_hists.items()
            }
            verification = self._verification
            helps = {name: cb[2] for name, cb in self._gauge_callbacks.items()}
        h = core.HistogramMetricFamily(
            "avl_stage_duration_seconds",
            "Duration of pipeline stages.",
            labels=["stage", "model", "user", "outcome"],
        )
        for key, (buckets, count, total) in sorted(hists.items()):
            h.add_metric(list(key), self._cumulative(buckets, count), total)
        yield h
        q = core.GaugeMetricFamily(
            "avl_stage_duration_window_seconds",
            f"Stage duration percentiles over the last {self.window_s:g} s.",
            labels=["stage", "quantile"],
        )
        for stage in sorted({k[0] for k in hists}):
            p = self.percentiles(stage)
            if p is not None:
                for name, value in zip(("0.5", "0.95", "0.99"), p, strict=True):
                    q.add_metric([stage, name], value)
        yield q
        rc = core.CounterMetricFamily(
            "avl_http_requests",
            "HTTP requests by route template, method and status.",
            labels=["route", "method", "status"],
        )
        for (route, method, status), n in sorted(requests.items()):
            rc.add_metric([route, method, status], n)
        yield rc
        rh = core.HistogramMetricFamily(
            "avl_http_request_duration_seconds",
            "HTTP request duration by route template and method.",
            labels=["route", "method"],
        )
        for key2, (buckets, count, total) in sorted(request_hists.items()):
            rh.add_metric(list(key2), self._cumulative(buckets, count), total)
        yield rh
        tokens = core.CounterMetricFamily(
            "avl_tokens", "Model tokens.", labels=["model", "user", "direction"]
        )
        cost = core.CounterMetricFamily(
            "avl_cost_usd", "Model cost in USD.", labels=["model", "user"]
        )
        calls = core.CounterMetricFamily(
            "avl_model_calls", "Model calls.", labels=["model", "user"]
        )
        for (model, user), (n, inp, out, usd) in sorted(usage.items()):
            tokens.add_metric([model, user, "input"], inp)
            tokens.add_metric([model, user, "output"], out)
            cost.add_metric([model, user], usd)
            calls.add_metric([model, user], n)
        yield from (tokens, cost, calls)
        c = core.CounterMetricFamily("avl_cache_lookups", "Cache lookups.", labels=["result"])
        c.add_metric(["hit"], cache[0])
        c.add_metric(["miss"], cache[1])
        yield c
        r = core.CounterMetricFamily(
            "avl_rejections",
            "SafeQuery rejections by violation code and the path that refused.",
            labels=["code", "source"],
        )
        for (code, source), n in sorted(rejections.items()):
            r.add_metric([code, source], n)
        yield r
        rl = core.CounterMetricFamily(
            "avl_rate_limited",
            "Requests refused by rate limits, by user and limit.",
            labels=["user", "source"],
        )
        for (user, source), n in sorted(limited.items()):
            rl.add_metric([user, source], n)
        yield rl
        if verification is not None:
            ok, checked, at = verification
            for gname, ghelp, gvalue in (
                ("avl_history_verify_ok", "1 if the last chain verification passed.", ok),
                ("avl_history_verify_checked", "Entries the last verification checked.", checked),
                (
                    "avl_history_verify_timestamp_seconds",
                    "When the last verification ran (Unix time).",
                    at,
                ),
            ):
                g = core.GaugeMetricFamily(gname, ghelp)
                g.add_metric([], float(gvalue))
                yield g
        yield from _families(core.CounterMetricFamily, sorted(counters.items()), "counter", {})
        yield from _families(core.GaugeMetricFamily, gauge_series, "gauge", helps)

    def _cumulative(self, buckets: list[int], count: int) -> list[tuple[str, int]]:
        cumulative, running = [], 0
        for bound, n in zip(self.buckets, buckets, strict=True):
            running += n
            cumulative.append((_fmt(bound), running))
        cumulative.append(("+Inf", count))
        return cumulative


def _families(
    family: Any,
    samples: list[tuple[tuple[str, tuple[tuple[str, str], ...]], float]],
    kind: str,
    helps: Mapping[str, str],
) -> Iterator[Any]:
    by_name: dict[str, list[tuple[tuple[tuple[str, str], ...], float]]] = {}
    for (name, labels), value in samples:
        by_name.setdefault(name, []).append((labels, value))
    for name, series in by_name.items():
        label_names = sorted({k for labels, _ in series for k, _ in labels})
        fam = family(f"avl_{name}", helps.get(name) or f"Custom {kind} {name}.", labels=label_names)
        for labels, value in series:
            d = dict(labels)
            fam.add_metric([d.get(k, "") for k in label_names], value)
        yield fam


def _series_key(
    name: str, labels: Mapping[str, str], kind: str
) -> tuple[str, tuple[tuple[str, str], ...]]:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInputError(f"{kind} name must match [a-zA-Z_][a-zA-Z0-9_]*: {name!r}")
    for label in labels:
        if not _LABEL.match(label):
            raise InvalidInputError(f"bad label name {label!r}")
    return (name, tuple(sorted((k, _label(v)) for k, v in labels.items())))


def _finite(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInputError(f"{name} must be a number, got {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise InvalidInputError(f"{name} must be finite, got {value!r}")
    return out


def _fmt(bound: float) -> str:
    return repr(bound) if bound != int(bound) else f"{bound:.1f}"


def _series(name: str, labels: tuple[tuple[str, str], ...]) -> str:
    if not labels:
        return name
    inner = ",".join(f'{k}="{v}"' for k, v in labels)
    return f"{name}{{{inner}}}"


class _Collector:
    """A prometheus_client custom collector over a :class:`Metrics`."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Any]:
        return self._metrics._collect()
