"""The route table: one declaration per endpoint, read by both the ASGI app and the
OpenAPI generator (so the document cannot drift from what is served). Pure."""

from __future__ import annotations

from typing import Any

import attrs

from avl.web import _schemas as S

__all__ = ["FAVICON", "MCP", "ROUTES", "STATIC", "Param", "RouteSpec", "match_route"]


@attrs.frozen(kw_only=True)
class Param:
    """A query, path or header parameter."""

    name: str
    where: str = "query"
    type: Any = str
    description: str = ""
    required: bool = False
    constraints: dict[str, Any] = attrs.field(factory=dict, hash=False)


@attrs.frozen(kw_only=True)
class RouteSpec:
    """One endpoint.

    Attributes:
        name: the handler name (also the OpenAPI ``operationId``).
        method: ``GET`` or ``POST``.
        path: the path (Starlette syntax, ``{id}`` for path parameters).
        summary: one line for the document.
        request: the attrs class of the JSON body, if any.
        response: the attrs class of the 200 JSON body, or ``None`` for non-JSON.
        media: the 200 media type when it is not JSON.
        params: query/path/header parameters.
        errors: the error statuses this route can answer (besides the ones every
            authenticated route can: 401, 429).
        public: served without authentication or rate limiting.
        stream: can answer ``text/event-stream`` (runs the pipeline; capped per user).
        tag: the OpenAPI tag.
        page: the console page or one of its files (browser security headers, CSP).
    """

    name: str
    method: str
    path: str
    summary: str
    request: Any = None
    response: Any = None
    media: str = "application/json"
    params: tuple[Param, ...] = ()
    errors: tuple[int, ...] = ()
    public: bool = False
    stream: bool = False
    tag: str = "console"
    page: bool = False


_HISTORY_PARAMS = (
    Param(name="q", description="Full-text search over questions and SQL."),
    Param(name="user", description="Only this user's entries (needs `history:all` for others)."),
    Param(name="outcome", description="Only entries with this outcome (e.g. `ok`, `refused`)."),
    Param(name="since", type=float, description="Only entries at or after this Unix time."),
    Param(name="until", type=float, description="Only entries before this Unix time."),
    Param(
        name="limit",
        type=int,
        description="Page size (1-500, default 50).",
        constraints={"minimum": 1, "maximum": 500},
    ),
    Param(name="cursor", description="The `next_cursor` of the previous page."),
)

#: Every endpoint, in routing order (the hottest first: routing is a linear scan).
ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec(
        name="sql_check",
        method="POST",
        path="/v1/sql/check",
        summary="Check SQL against the caller's SafeQuery policy (200 whatever the verdict).",
        request=S.CheckRequest,
        response=S.VerdictOut,
        errors=(400, 403, 413, 415, 422),
        tag="sql",
    ),
    RouteSpec(
        name="healthz",
        method="GET",
        path="/healthz",
        summary="Liveness.",
        response=S.Health,
        public=True,
        tag="ops",
    ),
    RouteSpec(
        name="ask",
        method="POST",
        path="/v1/ask",
        summary="Ask a question: a JSON answer, or an SSE stream of events with "
        "`Accept: text/event-stream` (`Last-Event-ID` resumes a stream).",
        request=S.AskRequest,
        response=S.AnswerOut,
        params=(
            Param(
                name="Last-Event-ID",
                where="header",
                description="Resume a stream after this event id.",
            ),
        ),
        errors=(400, 403, 404, 413, 415, 422, 502, 503, 504),
        stream=True,
    ),
    RouteSpec(
        name="ask_stream",
        method="GET",
        path="/v1/ask/stream",
        summary="Ask a question as an SSE stream (for EventSource, which can only GET).",
        media="text/event-stream",
        params=(
            Param(
                name="question",
                description="The question.",
                required=True,
                constraints={"minLength": 1, "maxLength": 4000},
            ),
            Param(
                name="session",
                description="Ask within a conversation (as `session` of `POST /v1/ask`): "
                'an earlier answer\'s `session`, or `"new"`.',
                constraints={"minLength": 1, "maxLength": 256},
            ),
            Param(
                name="Last-Event-ID",
                where="header",
                description="Resume a stream after this event id.",
            ),
        ),
        errors=(400, 403, 404, 422),
        stream=True,
    ),
    RouteSpec(
        name="sql_run",
        method="POST",
        path="/v1/sql/run",
        summary="Check SQL, then run it read-only on the console's database.",
        request=S.RunRequest,
        response=S.RunResult,
        errors=(400, 403, 404, 413, 415, 422, 503, 504),
        tag="sql",
    ),
    RouteSpec(
        name="train",
        method="POST",
        path="/v1/train",
        summary="Store training material (needs the `train` permission; SQL must pass SafeQuery).",
        request=S.TrainRequest,
        response=S.TrainResult,
        errors=(400, 403, 404, 413, 415, 422, 503),
    ),
    RouteSpec(
        name="history_search",
        method="GET",
        path="/v1/history",
        summary="Search the history (the caller's own unless the role allows more).",
        response=S.HistoryPage,
        params=_HISTORY_PARAMS,
        errors=(400, 403, 404, 422, 503),
        tag="history",
    ),
    RouteSpec(
        name="history_verify",
        method="GET",
        path="/v1/history/verify",
        summary="Verify the history's hash chain (needs `history:all`).",
        response=S.VerifyOut,
        errors=(403, 404, 503),
        tag="history",
    ),
    RouteSpec(
        name="history_get",
        method="GET",
        path="/v1/history/{entry_id}",
        summary="One history entry (the caller's own unless the role allows more).",
        response=S.EntryOut,
        params=(Param(name="entry_id", where="path", description="The entry id.", required=True),),
        errors=(403, 404, 503),
        tag="history",
    ),
    RouteSpec(
        name="ratelimit_status",
        method="GET",
        path="/v1/ratelimit",
        summary="The caller's rate-limit status.",
        response=S.RateLimitStatus,
        tag="limits",
    ),
    RouteSpec(
        name="readyz",
        method="GET",
        path="/readyz",
        summary="Readiness: the backends answer (503 when one does not).",
        response=S.Ready,
        errors=(503,),
        public=True,
        tag="ops",
    ),
    RouteSpec(
        name="metrics",
        method="GET",
        path="/metrics",
        summary="Prometheus metrics (text exposition format).",
        media="text/plain",
        errors=(404,),
        tag="ops",
    ),
    RouteSpec(
        name="openapi",
        method="GET",
        path="/openapi.json",
        summary="This document.",
        media="application/json",
        public=True,
        tag="ops",
    ),
    RouteSpec(
        name="page",
        method="GET",
        path="/",
        summary="The console page.",
        media="text/html",
        public=True,
        tag="ops",
        page=True,
    ),
)

#: The page's static files (not in the OpenAPI document).
STATIC = RouteSpec(
    name="static",
    method="GET",
    path="/static/{name}",
    summary="A file of the console page.",
    media="text/plain",
    public=True,
    tag="ops",
    page=True,
)

#: The page's icon at the path browsers probe on their own (an SVG; the page also
#: links it). Not in the OpenAPI document.
FAVICON = RouteSpec(
    name="favicon",
    method="GET",
    path="/favicon.ico",
    summary="The console's icon (SVG).",
    media="image/svg+xml",
    public=True,
    tag="ops",
    page=True,
)

#: The MCP server over streamable HTTP (not in the OpenAPI document: MCP describes
#: itself). Behind every middleware, like the API routes.
MCP = RouteSpec(
    name="mcp",
    method="POST",
    path="/mcp",
    summary="The MCP server (streamable HTTP, stateless, JSON responses).",
    tag="mcp",
)

_EXACT: dict[str, RouteSpec] = {r.path: r for r in (*ROUTES, FAVICON, MCP) if "{" not in r.path}
_PREFIXED: tuple[tuple[str, RouteSpec], ...] = tuple(
    (r.path.split("{", 1)[0], r) for r in (*ROUTES, STATIC) if "{" in r.path
)


def match_route(path: str) -> RouteSpec | None:
    """The route a path (inside the app, without ``root_path``) belongs to.

    Methods are not compared: a wrong method still belongs to the route (and gets
    its checks, then 405). Path parameters match one non-empty segment.

    Args:
        path: the request path.

    Returns:
        The route, or ``None`` for a path no route serves.

    Example:
        >>> match_route("/v1/history/abc").name, match_route("/nope")
        ('history_get', None)
    """
    route = _EXACT.get(path)
    if route is not None:
        return route
    for prefix, spec in _PREFIXED:
        if path.startswith(prefix):
            rest = path[len(prefix) :]
            if rest and "/" not in rest:
                return spec
    return None
