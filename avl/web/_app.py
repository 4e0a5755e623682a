"""The ASGI application (imported only through :func:`avl.web.create_app`).

The app is a Starlette router behind Starlette's exception middleware (the avl
exception tree -> RFC 9457 problems, one table looked up by MRO) behind avl's own
middlewares, composed in one list in :func:`middleware_stack`.
"""

from __future__ import annotations

import importlib.util
import logging

from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from avl import errors as E
from avl.logs import AccessLog
from avl.web._auth import Identity
from avl.web._handlers import Handlers, VerdictCache, json_bytes
from avl.web._jsonschema import encode_value
from avl.web._middleware import (
    IDENTITY,
    Authenticate,
    BodyLimit,
    CheckCache,
    CrossSiteGuard,
    Envelope,
    HostCheck,
    RateLimit,
)
from avl.web._problems import MethodNotAllowedError, problem_for
from avl.web._protocols import ConsoleLike, RequestMetrics
from avl.web._routes import FAVICON, MCP, ROUTES, STATIC, RouteSpec
from avl.web._settings import WebSettings

__all__ = ["EXCEPTION_HANDLERS", "build_app", "middleware_stack", "problem_response"]

log = logging.getLogger("avl.web")

_PROBLEM = "application/problem+json"


def problem_response(exc: BaseException, path: str | None) -> Response:
    """The problem+json response for an exception (no stack trace, ever)."""
    problem, headers = problem_for(exc, instance=path)
    body = {k: v for k, v in encode_value(problem).items() if v is not None}
    return Response(
        json_bytes(body), status_code=problem.status, headers=headers, media_type=_PROBLEM
    )


async def _avl_error(request: Request, exc: Exception) -> Response:
    return problem_response(exc, request.url.path)


async def _unexpected(request: Request, exc: Exception) -> Response:
    # The boundary: log it, answer an opaque 500 (no message, no stack trace).
    log.error("unhandled error in %s", request.url.path, exc_info=exc)
    return problem_response(exc, request.url.path)


async def _http_exception(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 405:
        response = problem_response(
            MethodNotAllowedError(f"{request.method} is not allowed here"), request.url.path
        )
        allow = (exc.headers or {}).get("Allow") if isinstance(exc, HTTPException) else None
        if allow:
            response.headers["Allow"] = allow
        return response
    if status == 404:
        return problem_response(E.NotFoundError(f"no route {request.url.path!r}"), request.url.path)
    return problem_response(E.AvlError("request failed"), request.url.path)


#: Exception class -> handler, looked up along the exception's MRO by Starlette's
#: ``ExceptionMiddleware``. Every avl error becomes its problem (status from
#: :data:`avl.web._problems.PROBLEM_TABLE`: ``PermissionDeniedError`` -- an unknown
#: role included -- is 403, ``AuthenticationError`` 401, ``RateLimitedError`` 429...);
#: anything else is logged and answered with an opaque 500.
EXCEPTION_HANDLERS = {
    E.AvlError: _avl_error,
    HTTPException: _http_exception,
    Exception: _unexpected,
}


def middleware_stack(
    console: ConsoleLike, settings: WebSettings, cache: VerdictCache
) -> list[Middleware]:
    """The middlewares, outermost first (see :mod:`avl.web._middleware`).

    Args:
        console: the console (its limiter and metrics).
        settings: the settings.
        cache: the verdict cache the check handler fills.

    Returns:
        The list, each a ``Middleware(cls, **options)``.
    """
    metrics = console.metrics
    limiter = console.limiter
    local = settings.authenticator is None
    count_local = (
        settings.limit_local if settings.limit_local is not None else "ratelimit" in console.config
    )
    stack = [
        Middleware(
            Envelope,
            page_csp=settings.page_csp,
            metrics=metrics if isinstance(metrics, RequestMetrics) else None,
            access_log=AccessLog(None),
        ),
        Middleware(HostCheck, allowed_hosts=settings.allowed_hosts),
        _cors(settings) if settings.cors_origins else None,
        Middleware(CrossSiteGuard, cors_origins=settings.cors_origins),
        Middleware(BodyLimit, max_bytes=settings.max_body_bytes),
        Middleware(
            Authenticate,
            authenticator=settings.authenticator,
            local_identity=settings.local_identity,
        ),
        Middleware(
            RateLimit,
            limiter=limiter,
            cost=settings.rate_cost,
            count_local=count_local,
            local_identity=settings.local_identity if local else None,
            metrics=metrics,
        )
        if limiter is not None
        else None,
        Middleware(CheckCache, cache=cache) if cache.enabled else None,
    ]
    return [m for m in stack if m is not None]


def _cors(settings: WebSettings) -> Middleware:
    from starlette.middleware.cors import CORSMiddleware

    return Middleware(
        CORSMiddleware,
        allow_origins=list(settings.cors_origins),
        allow_methods=["GET", "POST"],
        allow_headers=["authorization", "x-api-key", "content-type", "last-event-id"],
        expose_headers=[
            "retry-after",
            "ratelimit-limit",
            "ratelimit-remaining",
            "ratelimit-reset",
            "x-avl-stream",
        ],
    )


def _routes(handlers: Handlers) -> list[BaseRoute]:
    specs: tuple[RouteSpec, ...] = (*ROUTES, STATIC, FAVICON)
    routes: list[BaseRoute] = [
        Route(spec.path, getattr(handlers, spec.name), methods=[spec.method], name=spec.name)
        for spec in specs
    ]
    mcp = _mcp_app(handlers)
    if mcp is not None:
        routes.append(Route(MCP.path, mcp, methods=[MCP.method], name=MCP.name))
    return routes


def _mcp_app(handlers: Handlers) -> ASGIApp | None:
    """The MCP tools over streamable HTTP, when enabled and the ``mcp`` extra is there.

    The caller of each request is the identity the ``Authenticate`` middleware put
    in the scope; the ``RateLimit`` middleware already counted the request.
    """
    if not handlers.settings.mcp or importlib.util.find_spec("mcp") is None:
        return None
    from avl.mcp import Caller, http_app

    def caller_of(scope: Scope) -> Caller | None:
        identity = scope.get("state", {}).get(IDENTITY)
        if not isinstance(identity, Identity):
            return None
        return Caller(
            user=identity.user, role=identity.role, context=identity.context, admitted=True
        )

    return http_app(handlers.console, caller_of)


def build_app(console: ConsoleLike, settings: WebSettings) -> ASGIApp:
    """Assemble the router, the exception table and the middleware list."""
    cache = VerdictCache(settings.check_cache_size)
    handlers = Handlers(console, settings, cache)
    gauge = getattr(console.metrics, "gauge_callback", None)
    if callable(gauge):  # the open streams, read at every scrape
        runner = handlers.runner
        gauge("sse_streams", lambda: {"running": runner.running}, label="state")
    app: ASGIApp = ExceptionMiddleware(
        Router(routes=_routes(handlers)), handlers=EXCEPTION_HANDLERS
    )
    for cls, args, kwargs in reversed(middleware_stack(console, settings, cache)):
        app = cls(app, *args, **kwargs)
    return _App(app, handlers)


class _App:
    """The composed app, with its handlers reachable for tests and tools.

    It marks the scope as Starlette's own app does (``scope["app"]``), so a wrong
    path or method raises ``HTTPException`` into the exception table.
    """

    def __init__(self, app: ASGIApp, handlers: Handlers) -> None:
        self.app = app
        self.handlers = handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A coroutine function: servers tell ASGI 3 from ASGI 2 by that.
        scope["app"] = self
        await self.app(scope, receive, send)


def route_specs() -> tuple[RouteSpec, ...]:
    """The route table (for tests and tools)."""
    return ROUTES
