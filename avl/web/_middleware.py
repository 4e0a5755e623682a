"""The app's ASGI middlewares: each one job, each an app wrapping an app.

:func:`avl.web._app.build_app` composes them in one list (outermost first)::

    Envelope         what every answer gets: its span (when OpenTelemetry is on), its
                     request id and access record, its route metrics, CSP / nosniff /
                     no-referrer / no framing (API answers not cached)
    HostCheck        the Host allow-list (DNS rebinding): 400 / 421 before routing
    CORSMiddleware   Starlette's, only when ``cors_origins`` is set
    CrossSiteGuard   requests another web page made: JSON-only writes, Origin, Sec-Fetch-Site
    BodyLimit        413 over ``max_body_bytes``
    Authenticate     who is calling (401), into ``scope["state"]``
    RateLimit        the console's limiter per user (429), its headers on every answer
    CheckCache       a verdict already given for the same caller shape and bytes

Each refuses with an RFC 9457 problem built per response (no response object or
header list is shared between requests) and otherwise calls the app it wraps.
Public routes (the page, its files, ``/healthz``, ``/readyz``, ``/openapi.json``)
pass the guard, authentication and rate limiting untouched.

A layer decides synchronously and returns the awaitable of the app it calls (or of
its refusal): ``__call__`` is a plain method returning an awaitable, so a layer with
nothing to do after the app adds no coroutine frame to the request. Only the work
that must follow the app (the envelope's access record and metrics, a span, reading
a body) is a coroutine. (The app they
compose is wrapped once more in a coroutine function, as servers tell ASGI 3 apps
by that.)
"""

from __future__ import annotations

import ipaddress
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from avl import errors as E
from avl.logs import AccessLog, bind_log_fields
from avl.web._auth import AsyncAuthenticator, Authenticator, Identity, is_loopback
from avl.web._jsonschema import encode_value
from avl.web._problems import (
    BadRequestError,
    CrossSiteRequestError,
    MisdirectedRequestError,
    RequestTooLargeError,
    UnsupportedMediaTypeError,
    problem_for,
)
from avl.web._protocols import DecisionLike, LimiterLike, RequestMetrics, RequestSink
from avl.web._routes import RouteSpec, match_route
from avl.web._settings import LOOPBACK_HOSTS

__all__ = [
    "DECISION",
    "IDENTITY",
    "RESPONSE_HEADERS",
    "Authenticate",
    "BodyLimit",
    "CheckCache",
    "CrossSiteGuard",
    "Envelope",
    "HostCheck",
    "RateLimit",
    "Tracing",
    "VerdictCacheLike",
    "route_of",
    "send_problem",
]

log = logging.getLogger("avl.web")

IDENTITY = "avl.identity"
DECISION = "avl.decision"
#: ``scope`` key: response headers inner layers add (written by SecurityHeaders).
RESPONSE_HEADERS = "avl.response_headers"
_ROUTE = "avl.route"
_HEADERS = "avl.headers"
_UNSET = object()
_PROBLEM_TYPE = b"application/problem+json"


# -- shared helpers ---------------------------------------------------------------------


def _route_path(scope: Scope) -> str:
    """The path inside this app (without the mount prefix, ``root_path``)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and (len(path) == len(root) or path[len(root)] == "/"):
        return path[len(root) :] or "/"
    return path


def route_of(scope: Scope) -> RouteSpec | None:
    """The route a request belongs to (looked up once, kept in the scope)."""
    route: RouteSpec | object | None = scope.get(_ROUTE, _UNSET)
    if route is _UNSET:  # (not a try/except KeyError: raising costs more than a lookup)
        route = scope[_ROUTE] = match_route(_route_path(scope))
    return route  # type: ignore[return-value]


def _guarded(scope: Scope) -> RouteSpec | None:
    """The route when this request reaches its handler and is not public.

    ``None`` for public routes, unknown paths and methods the route does not serve
    (the router answers those 404/405 without running anything).
    """
    route = route_of(scope)
    if route is None or route.public:
        return None
    method = scope["method"]
    if method != route.method and not (method == "HEAD" and route.method == "GET"):
        return None
    return route


def headers_of(scope: Scope) -> dict[bytes, bytes]:
    """The request headers by name, the last value of a repeated one (built once per
    request, kept in the scope: every layer reads it with dict lookups)."""
    headers: dict[bytes, bytes] | None = scope.get(_HEADERS)
    if headers is None:
        headers = scope[_HEADERS] = dict(scope["headers"])
    return headers


def _repeats(scope: Scope, headers: Mapping[bytes, bytes], name: bytes) -> bool:
    """Whether the request sent ``name`` more than once."""
    if len(headers) == len(scope["headers"]):  # no header repeated at all
        return False
    return sum(1 for key, _ in scope["headers"] if key == name) > 1


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value  # type: ignore[no-any-return]  # ASGI headers are bytes
    return None


def _state(scope: Scope) -> dict[str, Any]:
    state: dict[str, Any] = scope.setdefault("state", {})
    return state


async def send_problem(
    exc: BaseException, scope: Scope, send: Send, extra: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    """Answer with the problem for ``exc`` (a fresh body and header list every time)."""
    problem, headers = problem_for(exc, instance=scope.get("path"))
    body = json.dumps(
        {k: v for k, v in encode_value(problem).items() if v is not None},
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8")
    raw = [
        (b"content-type", _PROBLEM_TYPE),
        (b"content-length", str(len(body)).encode("latin-1")),
        *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()),
    ]
    names = {k for k, _ in raw}
    raw += [(k, v) for k, v in extra if k not in names]
    await send({"type": "http.response.start", "status": problem.status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _refuse(exc: BaseException, scope: Scope, send: Send) -> Awaitable[None]:
    if not isinstance(exc, E.AvlError):
        log.error("unexpected error in a middleware on %s", scope.get("path"), exc_info=exc)
    return send_problem(exc, scope, send)


# -- Tracing ------------------------------------------------------------------------------

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _method(scope: Scope) -> str:
    method: str = scope.get("method", "GET")
    return method if method in _METHODS else "_OTHER"


class Tracing:
    """A server span per request, child of the caller's W3C ``traceparent``.

    Uses the global OpenTelemetry tracer provider (``opentelemetry-api``, the
    ``otel`` extra), as libraries should; until the application sets one (which it
    may do at any time: the test is one attribute read per request) and without
    ``opentelemetry-api``, requests pass untouched. Spans opened while the request
    runs (the pipeline's stages, in this request's context) are its children.

    Attributes follow the HTTP semantic conventions: ``http.request.method``,
    ``http.route``, ``url.path``, ``url.scheme``, ``server.address``,
    ``server.port``, ``client.address``, ``network.protocol.version``,
    ``user_agent.original``, ``http.response.status_code`` (and ``error.type``
    for 5xx). The query string is not recorded (it can hold a question).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        try:
            from opentelemetry import propagate, trace
        except ImportError:
            self._trace: Any = None
            return
        self._trace = trace
        self._propagate = propagate
        self._tracer = trace.get_tracer("avl.web")
        self._proxy = trace.ProxyTracerProvider
        # The API keeps the provider the application sets in a module global
        # (``set_tracer_provider``), and hands out a proxy until then: reading that
        # global is the whole test, so a provider set after the app was built is used
        # from the next request on. Without the global (another API version), ask
        # ``get_tracer_provider()`` each time instead.
        self._direct = hasattr(trace, "_TRACER_PROVIDER")
        if self._direct:
            trace.get_tracer_provider()  # loads one named by OTEL_PYTHON_TRACER_PROVIDER

    def configured(self) -> bool:
        """Whether the application has set a tracer provider (looked up each time)."""
        trace = self._trace
        if trace is None:
            return False
        if self._direct:
            return trace._TRACER_PROVIDER is not None
        return not isinstance(trace.get_tracer_provider(), self._proxy)

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        trace = self._trace
        if (
            trace is None
            or scope["type"] != "http"
            or (trace._TRACER_PROVIDER is None if self._direct else not self.configured())
        ):
            return self.app(scope, receive, send)
        return self._traced(scope, receive, send)

    async def _traced(self, scope: Scope, receive: Receive, send: Send) -> None:
        trace = self._trace
        route = route_of(scope)
        template = route.path if route is not None else None
        method = _method(scope)
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "url.path": scope["path"],
            "url.scheme": scope.get("scheme", "http"),
            "network.protocol.version": scope.get("http_version", "1.1"),
        }
        if template is not None:
            attributes["http.route"] = template
        server = scope.get("server")
        if server:
            attributes["server.address"] = str(server[0])
            if server[1] is not None:
                attributes["server.port"] = int(server[1])
        client = scope.get("client")
        if client:
            attributes["client.address"] = str(client[0])
        agent = _header(scope, b"user-agent")
        if agent is not None:
            attributes["user_agent.original"] = agent.decode("latin-1")
        name = f"{method} {template}" if template is not None else method
        with self._tracer.start_as_current_span(
            name,
            context=self._extract(scope["headers"]),
            kind=trace.SpanKind.SERVER,
            attributes=attributes,
        ) as span:

            def traced_send(message: Message) -> Awaitable[None]:
                if message["type"] == "http.response.start":
                    status_code = int(message["status"])
                    span.set_attribute("http.response.status_code", status_code)
                    if status_code >= 500:
                        span.set_attribute("error.type", str(status_code))
                        span.set_status(trace.Status(trace.StatusCode.ERROR))
                return send(message)

            await self.app(scope, receive, traced_send)

    def _extract(self, headers: list[tuple[bytes, bytes]]) -> Any:
        carrier = {
            k.decode("latin-1"): v.decode("latin-1")
            for k, v in headers
            if k in (b"traceparent", b"tracestate", b"baggage")
        }
        return self._propagate.extract(carrier)


# -- Envelope ----------------------------------------------------------------------------


class Envelope:
    """What every answer gets on its way out: one layer, one ``send`` wrapper.

    - **Tracing**: a server span per request (:class:`Tracing`), when the
      application has set a tracer provider.
    - **The access log** (:class:`avl.logs.AccessLog`): a request id
      (``X-Request-Id``), the log fields of the request, one record on
      ``avl.web.access`` (built only when that logger is enabled for INFO). The
      probes and the scrape pass without id or record.
    - **Route metrics**: every request counted by route template, method and
      status, and its latency by route and method
      (:meth:`avl.metrics.Metrics.observe_request`). The route label is the
      template (``/v1/history/{entry_id}``), or ``unmatched`` for paths no route
      serves, so a scanner cannot grow the label set. Latency runs until the
      answer's last byte is handed to the server (an SSE stream's whole life, also
      when its client leaves early); a request that got no answer at all (its
      client left while sending the body) is not counted.
    - **Browser security headers**: the page and its files get the page's
      Content-Security-Policy (no inline script, ``frame-ancestors 'none'``),
      ``X-Frame-Options: DENY``, ``X-Content-Type-Options: nosniff``,
      ``Referrer-Policy: no-referrer``, ``Cross-Origin-Opener-Policy:
      same-origin`` and ``Cross-Origin-Resource-Policy: same-origin``. Everything
      else (the API, its problems and refusals) gets ``X-Content-Type-Options:
      nosniff`` (JSON is never run as a script or sniffed into HTML, so no other
      page can read it through ``<script>``) and ``Cache-Control: no-store``; the
      extra page headers mean nothing on JSON and each costs the server on every
      answer.

    It is also where the other layers' response headers leave: a layer inside it
    appends ``(name, value)`` pairs to ``scope[RESPONSE_HEADERS]`` (the rate-limit
    headers) instead of wrapping ``send`` again. The app's own answers never set
    these names (nor ``X-Request-Id``), so nothing is filtered; every header list
    is built per response.

    These four jobs only add to what the app answers and never refuse anything, so
    they share one coroutine and one ``send`` wrapper instead of four of each (the
    layers that refuse stay one per job, inside it).

    Args:
        app: the app to wrap.
        page_csp: the page's Content-Security-Policy.
        metrics: where requests are counted (``observe_request``), or ``None``.
        access_log: the access log, or ``None`` for none.
        tracing: open server spans when a tracer provider is set.
        clock: ``() -> seconds`` (monotonic), for the metrics.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        page_csp: str,
        metrics: RequestMetrics | None = None,
        access_log: AccessLog | None = None,
        tracing: bool = True,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.app = app
        self.page: tuple[tuple[bytes, bytes], ...] = (
            (b"content-security-policy", page_csp.encode("latin-1")),
            (b"x-frame-options", b"DENY"),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"cross-origin-resource-policy", b"same-origin"),
        )
        self.api: tuple[tuple[bytes, bytes], ...] = (
            (b"x-content-type-options", b"nosniff"),
            (b"cache-control", b"no-store"),
        )
        self.metrics = metrics
        self._observe: Callable[[str, str, int, float], None] | None = (
            None
            if metrics is None
            else metrics.request_sink()
            if isinstance(metrics, RequestSink)
            else metrics.observe_request
        )
        self.access_log = access_log
        self.clock = clock
        # The span, when there is one, wraps the rest of this layer.
        self.tracing: Tracing | None = Tracing(self._serve) if tracing else None
        if self.tracing is not None and self.tracing._trace is None:
            self.tracing = None  # no opentelemetry-api

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] != "http":
            return self.app(scope, receive, send)
        tracing = self.tracing
        if tracing is not None and (
            tracing._trace._TRACER_PROVIDER is not None  # Tracing.configured(), inline
            if tracing._direct
            else tracing.configured()
        ):
            return tracing._traced(scope, receive, send)
        return self._serve(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = route_of(scope)
        if route is None:
            extra, label, stream = self.api, "unmatched", False
        else:
            extra, label, stream = (self.page if route.page else self.api), route.path, route.stream
        added: list[tuple[bytes, bytes]] = []
        scope[RESPONSE_HEADERS] = added
        access = self.access_log
        begun = access.begin(scope) if access is not None else None
        if begun is not None:
            extra = (*extra, (b"x-request-id", begun[0].encode("latin-1")))
        observe = self._observe
        at_last_body = observe is not None and not stream
        method = scope["method"]
        if method not in _METHODS:
            method = "_OTHER"
        clock = self.clock
        start = clock()
        status = 500

        def envelope_send(message: Message) -> Awaitable[None]:
            nonlocal status
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), *added, *extra]}
            elif (
                at_last_body
                and kind == "http.response.body"
                and not message.get("more_body", False)
            ):
                observe(label, method, status, clock() - start)  # type: ignore[misc]
            return send(message)

        try:
            await self.app(scope, receive, envelope_send)
        finally:
            if stream and observe is not None:
                # A stream can end without a last message (the client went away):
                # it is timed around the app instead.
                observe(label, method, status, clock() - start)
            if begun is not None:
                access.end(begun, scope, status)  # type: ignore[union-attr]


# -- HostCheck ----------------------------------------------------------------------------

_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-_")


def split_host(value: str) -> tuple[str, str | None] | None:
    """``(host, port)`` from a ``Host`` header value (lower case), or ``None`` if malformed.

    Example:
        >>> split_host("[::1]:8000"), split_host("Example.com."), split_host("a b")
        (('[::1]', '8000'), ('example.com', None), None)
    """
    value = value.strip().lower()
    if not value:
        return None
    port: str | None = None
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        host, rest = value[: end + 1], value[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                return None
            port = rest[1:]
        if not all(c in "0123456789abcdef:." for c in host[1:-1]) or len(host) < 4:
            return None
    else:
        host, sep, tail = value.partition(":")
        if sep:
            port = tail
        host = host.rstrip(".")
        if not host or not all(c in _HOST_CHARS for c in host):
            return None
    if port is not None and not (port.isdigit() and 0 < len(port) <= 5):
        return None
    return host, port


class HostCheck:
    """Serve only the configured host names (DNS rebinding), before routing.

    ``localhost``, ``127.0.0.1`` and ``[::1]`` are always served, with any port;
    ``allowed_hosts`` adds names (see :func:`avl.web.WebSettings`). A missing,
    repeated or malformed ``Host`` gets 400; any other host 421 (Misdirected Request).

    Args:
        app: the app to wrap.
        allowed_hosts: normalized patterns (:func:`normalize_host_pattern`).
    """

    def __init__(self, app: ASGIApp, *, allowed_hosts: Sequence[str] = ()) -> None:
        self.app = app
        names: set[str] = set()
        with_port: set[str] = set()
        suffixes: list[str] = []
        networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for p in (*LOOPBACK_HOSTS, *allowed_hosts):
            if p.startswith("*."):
                suffixes.append(p[1:])
            elif "/" in p:
                networks.append(ipaddress.ip_network(p))
            elif ("]:" in p) if p.startswith("[") else (":" in p):
                with_port.add(p)
            else:
                names.add(p)
        self.any = "*" in names
        self._decided: dict[bytes, int] = {}  # raw Host -> 0 served, 400 or 421
        self.names = frozenset(names)
        self.with_port = frozenset(with_port)
        self.suffixes = tuple(suffixes)
        self.networks = tuple(networks)

    def allowed(self, host: str, port: str | None) -> bool:
        """Whether ``host`` (with ``port``) is served."""
        if self.any or host in self.names:
            return True
        if port is not None and f"{host}:{port}" in self.with_port:
            return True
        if self.networks:
            try:
                address = ipaddress.ip_address(host.strip("[]"))
            except ValueError:
                pass
            else:
                if any(address in net for net in self.networks):
                    return True
        return any(host.endswith(s) for s in self.suffixes)

    def decide(self, raw: bytes | None) -> int:
        """0 when a raw ``Host`` value is served, else the status to refuse it with."""
        if raw is None:
            return 400
        decided = self._decided.get(raw)
        if decided is None:
            parsed = split_host(raw.decode("latin-1"))
            decided = 400 if parsed is None else 0 if self.allowed(*parsed) else 421
            if len(self._decided) < 1024:  # bounded: made-up hosts are not remembered
                self._decided[raw] = decided
        return decided

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] != "http" or self.any:
            return self.app(scope, receive, send)
        headers = headers_of(scope)
        raw = headers.get(b"host")
        if raw is not None and _repeats(scope, headers, b"host"):
            raw = b""  # more than one Host: 400 (RFC 9112, section 3.2)
        decided = self._decided.get(raw) if raw else None  # decide(), its cached answer
        if decided is None:
            decided = self.decide(raw)
        if not decided:
            return self.app(scope, receive, send)
        if decided == 400:
            return send_problem(BadRequestError("a valid Host header is required"), scope, send)
        shown = split_host((raw or b"").decode("latin-1"))
        return send_problem(
            MisdirectedRequestError(
                f"this server does not serve the host {shown[0] if shown else ''!r} "
                "(add it to allowed_hosts to serve it)"
            ),
            scope,
            send,
        )


# -- CrossSiteGuard -----------------------------------------------------------------------

_SAFE_METHODS = frozenset({"GET", "HEAD"})


def _strip_default_port(netloc: str, scheme: str | None = None) -> str:
    if scheme in (None, "http") and netloc.endswith(":80"):
        return netloc[:-3]
    if scheme in (None, "https") and netloc.endswith(":443"):
        return netloc[:-4]
    return netloc


class CrossSiteGuard:
    """Refuse what another web page makes the browser send.

    On every route that is not public:

    - a request whose ``Origin`` is neither this server's own (same host and
      port as the ``Host`` header) nor one of ``cors_origins`` gets 403, and so
      does a browser request marked ``Sec-Fetch-Site: cross-site`` or
      ``same-site`` without such an Origin (an ``<img>``, another port);
    - a request that may change state or run the pipeline (any method but GET and
      HEAD) must carry ``Content-Type: application/json`` (415 otherwise, a
      missing one included): HTML forms and ``fetch(..., {mode: "no-cors"})``
      cannot send it cross-origin;
    - a GET stream (``/v1/ask/stream``) runs the pipeline, so it also needs positive
      evidence that it is not cross-site: ``Sec-Fetch-Site: same-origin`` or
      ``none``, an allowed ``Origin``, or an ``X-API-Key`` / ``Authorization:
      Bearer`` header (which no other page can attach without a CORS grant); 403
      otherwise. Clients without a browser use ``POST /v1/ask`` with ``Accept:
      text/event-stream``.

    Args:
        app: the app to wrap.
        cors_origins: normalized origins allowed besides the server's own.
    """

    def __init__(self, app: ASGIApp, *, cors_origins: Sequence[str] = ()) -> None:
        self.app = app
        self.cors_origins = frozenset(cors_origins)

    def origin_allowed(self, origin: bytes, host: bytes | None) -> bool:
        """Whether an ``Origin`` value is this server's or a configured CORS origin."""
        text = origin.decode("latin-1").strip().lower().rstrip("/")
        if text in self.cors_origins:
            return True
        scheme, sep, netloc = text.partition("://")
        if not sep or host is None or scheme not in ("http", "https") or "/" in netloc:
            return False
        own = _strip_default_port(host.decode("latin-1").strip().lower())
        return _strip_default_port(netloc, scheme) == own

    def refusal(
        self, route: RouteSpec, method: str, headers: Mapping[bytes, bytes]
    ) -> E.AvlError | None:
        """Why a request to a guarded route is refused, or ``None`` when it is not.

        Args:
            route: the route (not public, served with this method).
            method: the request method.
            headers: the request headers by name (:func:`headers_of`).
        """
        origin = headers.get(b"origin")
        site = headers.get(b"sec-fetch-site")
        origin_ok = origin is not None and self.origin_allowed(origin, headers.get(b"host"))
        if origin is not None and not origin_ok:
            return CrossSiteRequestError(
                f"requests from the origin {origin.decode('latin-1')[:200]!r} are refused"
            )
        if site is not None:
            site = site.strip().lower()
            if site in (b"cross-site", b"same-site") and not origin_ok:
                return CrossSiteRequestError("a request another web page made is refused")
        if method not in _SAFE_METHODS:
            ctype = headers.get(b"content-type")
            if ctype != b"application/json" and (
                ctype is None or ctype.split(b";", 1)[0].strip().lower() != b"application/json"
            ):
                got = "none" if ctype is None else repr(ctype.decode("latin-1")[:100])
                return UnsupportedMediaTypeError(
                    f"the body must be application/json (Content-Type: {got})"
                )
        elif route.stream and not (
            origin_ok or site in (b"same-origin", b"none") or self._credentials(headers)
        ):
            return CrossSiteRequestError(
                "a GET stream needs Sec-Fetch-Site: same-origin (the console page), an "
                "allowed Origin or credentials; other clients use POST /v1/ask with "
                "Accept: text/event-stream"
            )
        return None

    @staticmethod
    def _credentials(headers: Mapping[bytes, bytes]) -> bool:
        """Credentials no other page can attach without a CORS grant."""
        auth = headers.get(b"authorization")
        return b"x-api-key" in headers or (auth is not None and auth[:7].lower() == b"bearer ")

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] != "http":
            return self.app(scope, receive, send)
        headers = headers_of(scope)
        if (
            headers.get(b"content-type") == b"application/json"
            and b"origin" not in headers
            and b"sec-fetch-site" not in headers
            and scope["method"] not in _SAFE_METHODS
        ):  # a JSON write from no browser page: passed on every route, decided early
            return self.app(scope, receive, send)
        route = _guarded(scope)
        if route is None:
            return self.app(scope, receive, send)
        refused = self.refusal(route, scope["method"], headers)
        if refused is not None:
            return send_problem(refused, scope, send)
        return self.app(scope, receive, send)


# -- BodyLimit ----------------------------------------------------------------------------


class BodyLimit:
    """413 for a body over ``max_bytes`` (declared or streamed); 400 for a bad length.

    Args:
        app: the app to wrap.
        max_bytes: the largest body accepted.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] != "http":
            return self.app(scope, receive, send)
        limit = self.max_bytes
        declared = headers_of(scope).get(b"content-length")
        if declared is not None:
            if not declared.isdigit() or len(declared) > 18:
                return send_problem(BadRequestError("invalid Content-Length"), scope, send)
            if int(declared) > limit:
                return send_problem(
                    RequestTooLargeError(f"request body over {limit} bytes"), scope, send
                )
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise RequestTooLargeError(f"request body over {limit} bytes")
            return message

        return self.app(scope, limited_receive, send)


# -- Authenticate -------------------------------------------------------------------------


_FORWARD_HEADERS = frozenset({b"forwarded", b"x-forwarded-for", b"x-real-ip"})


def _headers_dict(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def _forwarded_from_elsewhere(headers: Sequence[tuple[bytes, bytes]]) -> bool:
    """Whether a proxy says the request came from another machine.

    A reverse proxy on the same host connects from loopback; without an
    authenticator, its ``Forwarded``/``X-Forwarded-For``/``X-Real-IP`` naming a
    non-loopback client (or anything unparseable) means the caller is not local.
    """
    for name, value in headers:
        if name not in _FORWARD_HEADERS:
            continue
        text = value.decode("latin-1")
        if name == b"forwarded":
            hosts = [
                part.strip()[4:].strip('"')
                for element in text.split(",")
                for part in element.split(";")
                if part.strip().lower().startswith("for=")
            ]
        else:
            hosts = [h.strip() for h in text.split(",")]
        for host in hosts:
            if host.startswith("[") and "]" in host:  # "[::1]:port"
                host = host[1 : host.index("]")]
            elif host.count(":") == 1:  # "127.0.0.1:port"
                host = host.split(":", 1)[0]
            if not host or not is_loopback(host):
                return True
    return False


class Authenticate:
    """Who is calling: an :class:`~avl.web.Identity` in ``scope["state"]``, or 401.

    With no authenticator, loopback callers (not forwarded from elsewhere by a
    proxy) are ``local_identity`` and everyone else gets 401.

    Args:
        app: the app to wrap.
        authenticator: the authenticator, or ``None``.
        local_identity: the identity of loopback callers without an authenticator.
    """

    def __init__(
        self, app: ASGIApp, *, authenticator: Authenticator | None, local_identity: Identity
    ) -> None:
        self.app = app
        self.authenticator = authenticator
        self.local_identity = local_identity
        self.identify_async: (
            Callable[[Mapping[str, str], str | None], Awaitable[Identity | None]] | None
        ) = (
            authenticator.authenticate_async
            if isinstance(authenticator, AsyncAuthenticator)
            else None
        )

    def identify(self, scope: Scope) -> Identity | None:
        """The caller's identity; ``None`` when an asynchronous authenticator must
        be awaited (:meth:`identify_later`).

        Raises:
            avl.errors.AuthenticationError: no or wrong credentials.
        """
        client = scope.get("client")
        host = client[0] if client else None
        auth = self.authenticator
        if auth is None:
            if is_loopback(host) and (
                _FORWARD_HEADERS.isdisjoint(headers_of(scope))
                or not _forwarded_from_elsewhere(scope["headers"])
            ):
                return self.local_identity
            raise E.AuthenticationError(
                "this server has no authenticator configured and serves loopback callers only"
            )
        if self.identify_async is not None:
            return None
        return self._known(auth.authenticate(_headers_dict(scope), host))

    @staticmethod
    def _known(identity: Identity | None) -> Identity:
        if identity is None:
            raise E.AuthenticationError("credentials required (X-API-Key or Authorization: Bearer)")
        return identity

    async def identify_later(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Await the asynchronous authenticator, then go on (or refuse)."""
        assert self.identify_async is not None
        client = scope.get("client")
        try:
            found = await self.identify_async(_headers_dict(scope), client[0] if client else None)
            identity = self._known(found)
        except Exception as exc:  # an authenticator's own bug must not become a bare 500
            await _refuse(exc, scope, send)
            return
        _state(scope)[IDENTITY] = identity
        bind_log_fields(user=identity.user)
        await self.app(scope, receive, send)

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] != "http" or _guarded(scope) is None:
            return self.app(scope, receive, send)
        try:
            identity = self.identify(scope)
        except Exception as exc:  # an authenticator's own bug must not become a bare 500
            return _refuse(exc, scope, send)
        if identity is None:
            return self.identify_later(scope, receive, send)
        _state(scope)[IDENTITY] = identity
        bind_log_fields(user=identity.user)
        return self.app(scope, receive, send)


# -- RateLimit ----------------------------------------------------------------------------


class RateLimit:
    """The console's limiter, per user (``web:<user>``): 429 over it, headers always.

    Args:
        app: the app to wrap.
        limiter: the limiter.
        cost: what one request costs.
        count_local: whether the local identity (no authenticator) is counted;
            when not, its answers carry the headers of a peek and are never refused.
        local_identity: that identity, or ``None`` when an authenticator is set.
        metrics: where refusals are counted (``record_rate_limited``), or ``None``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        limiter: LimiterLike,
        cost: int,
        count_local: bool,
        local_identity: Identity | None,
        metrics: Any = None,
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.cost = cost
        self.count_local = count_local
        self.local_identity = local_identity
        self.metrics = metrics  # refusals count in avl_rate_limited_total (source="web")
        self.names: dict[str, bytes] = {}

    def _headers(self, decision: DecisionLike) -> list[tuple[bytes, bytes]]:
        names = self.names
        out = []
        for k, v in decision.headers().items():
            name = names.get(k)
            if name is None:
                name = names[k] = k.lower().encode("latin-1")
            out.append((name, str(v).encode("latin-1")))
        return out

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] != "http" or _guarded(scope) is None:
            return self.app(scope, receive, send)
        state = _state(scope)
        identity: Identity = state[IDENTITY]
        key = f"web:{identity.user}"
        try:
            if not self.count_local and identity is self.local_identity:
                decision = self.limiter.peek(key)
            else:
                decision = self.limiter.hit(key, self.cost)
            extra = self._headers(decision)
            if not decision.allowed:
                retry = float(decision.retry_after)
                if self.metrics is not None:
                    self.metrics.record_rate_limited(identity.user, source="web")
                raise E.RateLimitedError(
                    f"rate limit exceeded for {identity.user!r}; retry in {retry:.3g} s",
                    retry_after_s=retry,
                    decision=decision,
                )
        except Exception as exc:
            return _refuse(exc, scope, send)
        state[DECISION] = decision
        added = scope.get(RESPONSE_HEADERS)
        if added is not None:
            added.extend(extra)
            return self.app(scope, receive, send)

        def limited_send(message: Message) -> Awaitable[None]:  # alone, without SecurityHeaders
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            return send(message)

        return self.app(scope, receive, limited_send)


# -- CheckCache ---------------------------------------------------------------------------


class VerdictCacheLike(Protocol):
    """The verdict cache :class:`CheckCache` reads (filled by the check handler)."""

    def lookup(self, identity: Identity, raw: bytes) -> bytes | None:
        """The cached answer for this caller shape and these exact body bytes."""
        ...


async def read_body(receive: Receive) -> bytes | None:
    """The whole request body (``None`` if the client went away)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands over an already read body, then the real channel."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class CheckCache:
    """Answer ``POST /v1/sql/check`` from the verdict cache, before routing.

    The hottest route: a verdict already given to the same caller shape (role,
    context, permissions) for the same body bytes is sent without parsing,
    routing or request objects. A miss goes on with the body replayed.

    Args:
        app: the app to wrap.
        cache: the verdict cache.
    """

    def __init__(self, app: ASGIApp, *, cache: VerdictCacheLike) -> None:
        self.app = app
        self.cache = cache

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] != "http":
            return self.app(scope, receive, send)
        route = route_of(scope)
        if route is None or route.name != "sql_check" or scope["method"] != "POST":
            return self.app(scope, receive, send)
        return self._answer(scope, receive, send)

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            raw = await read_body(receive)
        except Exception as exc:
            await _refuse(exc, scope, send)
            return
        if raw is None:  # the client went away
            return
        hit = self.cache.lookup(_state(scope)[IDENTITY], raw)
        if hit is None:
            await self.app(scope, _replay(raw, receive), send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-length", str(len(hit)).encode("latin-1")),
                    (b"content-type", b"application/json"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": hit, "more_body": False})
