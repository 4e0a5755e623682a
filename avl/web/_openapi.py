"""OpenAPI 3.1 from the route table and the attrs types. Pure: no server needed."""

from __future__ import annotations

from typing import Any

import attrs

from avl.web._jsonschema import SchemaBuilder, encode_value
from avl.web._routes import ROUTES, RouteSpec
from avl.web._schemas import Problem

__all__ = ["build_spec"]

_STATUS_TEXT = {
    400: "Malformed request (e.g. the body is not JSON).",
    401: "Missing or invalid credentials.",
    403: "Authenticated, but not allowed.",
    404: "Not found, or not configured on this console.",
    405: "Method not allowed.",
    413: "Request body too large.",
    415: "The body must be `application/json`.",
    422: "The body or a parameter is invalid, or the query was refused.",
    429: "Over the rate limit; see `Retry-After`.",
    499: "The client went away.",
    500: "Internal error (no details are exposed).",
    502: "The model provider failed.",
    503: "A backend is unavailable.",
    504: "A query or the model timed out.",
}

_RATE_HEADERS = {
    "RateLimit-Limit": "Requests allowed in the current window.",
    "RateLimit-Remaining": "Requests left in the current window.",
    "RateLimit-Reset": "Seconds until the window resets.",
}

#: One server-sent event (each event of the stream matches this).
_SSE_EVENT: dict[str, Any] = {
    "title": "SseEvent",
    "type": "object",
    "description": "One event: `event` is retrieved, prompt, token, sql, verdict, rows, "
    "answer, error or done; `data` is JSON; `id` is `<stream>:<n>` (send it back as "
    "`Last-Event-ID` to resume).",
    "properties": {
        "event": {"type": "string"},
        "data": {"type": "string"},
        "id": {"type": "string"},
        "retry": {"type": "integer"},
    },
    "required": ["data"],
}

_SSE_BODY: dict[str, Any] = {
    "type": "string",
    "description": "The whole `text/event-stream` body (parse it with `avl.sse.parse`).",
}

_EXAMPLES: dict[str, Any] = {
    "ask": {"question": "How many customers are there in each country?"},
    "sql_check": {"sql": "SELECT name FROM customers WHERE country = 'FR'"},
    "sql_run": {"sql": "SELECT name FROM customers LIMIT 10"},
    "train": {
        "question": "How many customers?",
        "sql": "SELECT count(*) FROM customers",
    },
}


def _param_schema(builder: SchemaBuilder, tp: Any) -> dict[str, Any]:
    return builder.schema(tp)


def _operation(route: RouteSpec, builder: SchemaBuilder, problem_ref: dict[str, Any]) -> Any:
    op: dict[str, Any] = {
        "operationId": route.name,
        "summary": route.summary,
        "tags": [route.tag],
    }
    params = []
    for p in route.params:
        entry: dict[str, Any] = {
            "name": p.name,
            "in": p.where,
            "required": p.required or p.where == "path",
            "schema": {**_param_schema(builder, p.type), **p.constraints},
        }
        if p.description:
            entry["description"] = p.description
        params.append(entry)
    if params:
        op["parameters"] = params
    if route.request is not None:
        op["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {
                    "schema": builder.schema(route.request),
                    "example": _EXAMPLES.get(route.name, {}),
                }
            },
        }
    ok: dict[str, Any] = {"description": "Success."}
    content: dict[str, Any] = {}
    if route.response is not None:
        media: dict[str, Any] = {"schema": builder.schema(route.response)}
        if attrs.has(route.response):
            try:
                media["example"] = encode_value(route.response())
            except TypeError:
                pass
        content["application/json"] = media
    elif route.media != "text/event-stream":
        content[route.media] = {"schema": {"type": "string"}}
    if route.stream:
        # Each event is an `SseEvent` (what schemathesis checks per event, as OpenAPI
        # before 3.2 reads it); generated clients take the string branch: the
        # whole body, to parse with `avl.sse.parse`.
        content["text/event-stream"] = {"schema": {"anyOf": [_SSE_EVENT, _SSE_BODY]}}
    ok["content"] = content
    if not route.public:
        ok["headers"] = {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in _RATE_HEADERS.items()
        }
    responses: dict[str, Any] = {"200": ok}
    statuses = set(route.errors)
    if not route.public:
        statuses |= {401, 429}
    if route.request is not None:
        statuses |= {400, 413, 415, 422}
    if route.params:
        statuses |= {422}
    statuses |= {500}
    for status in sorted(statuses):
        resp: dict[str, Any] = {
            "description": _STATUS_TEXT.get(status, "Error."),
            "content": {"application/problem+json": {"schema": problem_ref}},
        }
        if status == 429:
            resp["headers"] = {
                "Retry-After": {
                    "description": "Seconds to wait before retrying.",
                    "schema": {"type": "string"},
                }
            }
        responses[str(status)] = resp
    op["responses"] = responses
    if route.public:
        op["security"] = []
    return op


def build_spec(*, title: str = "avl console", version: str = "0.1.0") -> dict[str, Any]:
    """The OpenAPI 3.1 document of the avl web API.

    Args:
        title: ``info.title``.
        version: ``info.version``.

    Returns:
        The document as a JSON-ready dict.
    """
    builder = SchemaBuilder()
    problem_ref = builder.schema(Problem)
    paths: dict[str, Any] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(
            route, builder, problem_ref
        )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "Ask a database safely: text-to-SQL with SafeQuery checks, "
            "rate limits and a tamper-evident history. Errors are RFC 9457 problem "
            "details. Callers on loopback are served without credentials when the "
            "server has no authenticator configured.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(builder.components.items())),
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key or a JWT (HS256) as a bearer token.",
                },
            },
        },
        "security": [{"apiKey": []}, {"bearer": []}, {}],
    }
