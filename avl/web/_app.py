"""The Starlette application (imported only through :func:`avl.web.create_app`)."""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Awaitable, Callable, Mapping
from importlib import resources
from typing import Any

import anyio.to_thread
import cachetools
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from avl import errors as E
from avl.web import _schemas as S
from avl.web._auth import Identity, is_loopback
from avl.web._jsonschema import decode, encode_value
from avl.web._openapi import build_spec
from avl.web._problems import (
    BadRequestError,
    MethodNotAllowedError,
    RequestTooLargeError,
    UnsupportedMediaTypeError,
    problem_for,
)
from avl.web._routes import ROUTES, RouteSpec
from avl.web._settings import WebSettings
from avl.web._streams import StreamHub, sse_response

__all__ = ["build_app"]

log = logging.getLogger("avl.web")

_IDENTITY = "avl.identity"
_DECISION = "avl.decision"
_JSON = "application/json"
_PROBLEM = "application/problem+json"
_FAST_KEY_BYTES = 4096
_HEALTH_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"application/json"), (b"content-length", b"15")],
}
_HEALTH_BODY = {"type": "http.response.body", "body": b'{"status":"ok"}', "more_body": False}


def _json_bytes(data: object) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class _Json(Response):
    media_type = _JSON

    def render(self, content: Any) -> bytes:
        return content if isinstance(content, bytes) else _json_bytes(encode_value(content))


def problem_response(exc: BaseException, path: str | None) -> Response:
    """The problem+json response for an exception (no stack trace, ever)."""
    problem, headers = problem_for(exc, instance=path)
    body = {k: v for k, v in encode_value(problem).items() if v is not None}
    return Response(
        _json_bytes(body), status_code=problem.status, headers=headers, media_type=_PROBLEM
    )


def _rate_headers(decision: Any) -> dict[str, str]:
    headers = getattr(decision, "headers", None)
    if not callable(headers):
        return {}
    return {str(k): str(v) for k, v in headers().items()}


def _route_path(scope: Scope) -> str:
    """The path inside this app (without the mount prefix, ``root_path``)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and (len(path) == len(root) or path[len(root)] == "/"):
        return path[len(root) :] or "/"
    return path


_FORWARD_HEADERS = frozenset({b"forwarded", b"x-forwarded-for", b"x-real-ip"})


def _forwarded_from_elsewhere(headers: list[tuple[bytes, bytes]]) -> bool:
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


def _json_content(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether the request says its body is JSON (what ``raw_body`` accepts)."""
    for name, value in headers:
        if name == b"content-type":
            return value.split(b";", 1)[0].strip().lower() == b"application/json"
    return False


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body (``None`` if the client disconnected).

    Raises:
        RequestTooLargeError: it is over ``limit`` bytes.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise RequestTooLargeError(f"request body over {limit} bytes")
        chunks.append(chunk)
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


class _Gate:
    """Pure ASGI middleware: body limit, authentication, rate limiting, headers."""

    def __init__(
        self, app: ASGIApp, console: Any, settings: WebSettings, api: _Api | None = None
    ) -> None:
        self.app = app
        self.console = console
        self.settings = settings
        self.api = api
        self.header_names: dict[str, bytes] = {}
        self.public = frozenset(r.path for r in ROUTES if r.public) | {"/static"}
        if settings.limit_local is None:
            config = getattr(console, "config", None)
            self.limit_local = isinstance(config, Mapping) and "ratelimit" in config
        else:
            self.limit_local = settings.limit_local

    def identify(self, scope: Scope) -> Identity:
        client = scope.get("client")
        host = client[0] if client else None
        auth = self.settings.authenticator
        if auth is None:
            if is_loopback(host) and not _forwarded_from_elsewhere(scope["headers"]):
                return self.settings.local_identity
            raise E.AuthenticationError(
                "this server has no authenticator configured and serves loopback callers only"
            )
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        identity = auth.authenticate(headers, host)
        if identity is None:
            raise E.AuthenticationError("credentials required (X-API-Key or Authorization: Bearer)")
        return identity

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = _route_path(scope)
        if path == "/healthz" and scope["method"] == "GET":  # hot for load balancers
            await send(_HEALTH_START)
            await send(_HEALTH_BODY)
            return
        if path in self.public or path.startswith("/static/"):
            await self.app(scope, receive, send)
            return
        try:
            for name, value in scope["headers"]:
                if name == b"content-length":
                    if not value.isdigit():
                        raise BadRequestError("invalid Content-Length")
                    if int(value) > self.settings.max_body_bytes:
                        raise RequestTooLargeError(
                            f"request body over {self.settings.max_body_bytes} bytes"
                        )
            identity = self.identify(scope)
            extra: list[tuple[bytes, bytes]] = []
            limiter = getattr(self.console, "limiter", None)
            if limiter is not None:
                key = f"web:{identity.user}"
                peek = getattr(limiter, "peek", None)
                if self.settings.authenticator is None and not self.limit_local and callable(peek):
                    decision = peek(key)  # the local developer: headers, never refused
                else:
                    decision = limiter.hit(key, self.settings.rate_cost)
                names = self.header_names
                for k, v in _rate_headers(decision).items():
                    name = names.get(k)
                    if name is None:
                        name = names[k] = k.lower().encode("latin-1")
                    extra.append((name, v.encode("latin-1")))
                if not getattr(decision, "allowed", True):
                    retry = float(getattr(decision, "retry_after", 1.0))
                    raise E.RateLimitedError(
                        f"rate limit exceeded for {identity.user!r}; retry in {retry:.3g} s",
                        retry_after_s=retry,
                        decision=decision,
                    )
                scope.setdefault("state", {})[_DECISION] = decision
        except E.AvlError as exc:
            await problem_response(exc, scope["path"])(scope, receive, send)
            return
        scope.setdefault("state", {})[_IDENTITY] = identity
        limit = self.settings.max_body_bytes
        reply = send
        if extra:

            async def send_with_headers(message: Message) -> None:
                if message["type"] == "http.response.start":
                    names = {k for k, _ in message.get("headers", [])}
                    message = dict(message)
                    message["headers"] = list(message.get("headers", [])) + [
                        (k, v) for k, v in extra if k not in names
                    ]
                await send(message)

            reply = send_with_headers
        if (
            self.api is not None
            and self.api.check_cache is not None
            and path == "/v1/sql/check"
            and scope["method"] == "POST"
            and _json_content(scope["headers"])
        ):
            # The hottest route: a verdict already given to the same caller shape for
            # the same bytes is answered here, without routing or request objects.
            try:
                raw = await _read_body(receive, limit)
            except E.AvlError as exc:
                await problem_response(exc, scope["path"])(scope, receive, reply)
                return
            if raw is None:  # the client went away
                return
            hit = self.api.cached_check(identity, raw)
            if hit is not None:
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [
                            (b"content-length", str(len(hit)).encode("latin-1")),
                            (b"content-type", b"application/json"),
                            *extra,
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": hit, "more_body": False})
                return
            receive = _replay(raw, receive)
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise RequestTooLargeError(f"request body over {limit} bytes")
            return message

        await self.app(scope, limited_receive, reply)


Handler = Callable[[Request], Awaitable[Response]]


class _Api:
    """The handlers; one instance per app (holds the caches and the stream hub)."""

    def __init__(self, console: Any, settings: WebSettings) -> None:
        self.console = console
        self.settings = settings
        self.hub = StreamHub(settings.resume_streams, settings.resume_events)
        self.guards: dict[str, Any] = {}
        self.guard_lock = threading.Lock()
        self.check_cache: cachetools.LRUCache[Any, bytes] | None = (
            cachetools.LRUCache(settings.check_cache_size)
            if settings.check_cache_size > 0
            else None
        )
        self.cache_lock = threading.Lock()
        self._spec: bytes | None = None
        self._page: bytes | None = None

    # -- helpers -------------------------------------------------------------------

    @staticmethod
    def identity(request: Request) -> Identity:
        identity: Identity = request.scope["state"][_IDENTITY]
        return identity

    def guard(self, role: str) -> Any:
        guard = self.guards.get(role)
        if guard is None:
            with self.guard_lock:
                guard = self.guards.get(role)
                if guard is None:
                    guard = self.console.guard_for(role)
                    self.guards[role] = guard
        return guard

    def need(self, name: str) -> Any:
        value = getattr(self.console, name, None)
        if value is None:
            raise E.NotFoundError(f"no {name} is configured on this console")
        return value

    @staticmethod
    async def raw_body(request: Request) -> bytes:
        ctype = request.headers.get("content-type", "")
        if ctype.split(";")[0].strip().lower() not in (_JSON, "") and not ctype.lower().startswith(
            "application/json"
        ):
            raise UnsupportedMediaTypeError(f"expected application/json, got {ctype!r}")
        return await request.body()

    @staticmethod
    def parse(raw: bytes, cls: type[Any]) -> Any:
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequestError("the request body is not valid JSON") from exc
        return decode(cls, data)

    async def body(self, request: Request, cls: type[Any]) -> Any:
        return self.parse(await self.raw_body(request), cls)

    def _executor(self) -> Callable[[str], Any]:
        """How to run checked SQL read-only: the Assistant's database (``db``)."""
        assistant = self.need("assistant")
        database = getattr(assistant, "db", None) or getattr(assistant, "database", None)
        execute = getattr(database, "execute", None) or getattr(assistant, "execute", None)
        if not callable(execute):
            raise E.NotFoundError("this console's assistant has no database to run SQL on")
        return execute  # type: ignore[no-any-return]  # duck-typed Database.execute

    def role_for(self, identity: Identity, role: str | None) -> str:
        if role is None or role == identity.role:
            return identity.role
        if not identity.can("sql:any-role"):
            raise E.PermissionDeniedError(
                f"role {role!r} is not yours; checking under another role needs 'sql:any-role'"
            )
        return role

    @staticmethod
    def params(identity: Identity, given: Mapping[str, Any] | None) -> dict[str, Any]:
        merged = dict(given or {})
        merged.update(identity.context)
        return merged

    # -- routes --------------------------------------------------------------------

    @staticmethod
    def _fast_key(identity: Identity, raw: bytes) -> tuple[Any, ...] | None:
        if len(raw) > _FAST_KEY_BYTES:
            return None
        # Same caller shape (role, context, permissions) + same bytes: same answer.
        context = tuple(sorted((k, repr(v)) for k, v in identity.context.items()))
        return (identity.role, context, identity.permissions, raw)

    def cached_check(self, identity: Identity, raw: bytes) -> bytes | None:
        """The cached ``/v1/sql/check`` answer for these exact bytes, if any."""
        cache = self.check_cache
        key = self._fast_key(identity, raw)
        if cache is None or key is None:
            return None
        with self.cache_lock:
            return cache.get(key)

    async def sql_check(self, request: Request) -> Response:
        identity = self.identity(request)
        raw = await self.raw_body(request)
        cache = self.check_cache
        fast_key = None
        if cache is not None:
            fast_key = self._fast_key(identity, raw)
            hit = self.cached_check(identity, raw)
            if hit is not None:
                return _Json(hit)
        body: S.CheckRequest = self.parse(raw, S.CheckRequest)
        role = self.role_for(identity, body.role)
        params = self.params(identity, body.params)
        key = None
        if cache is not None:
            key = (role, body.sql, tuple(sorted((k, repr(v)) for k, v in params.items())))
            with self.cache_lock:
                cached = cache.get(key)
            if cached is None:
                verdict = self.guard(role).check(body.sql, params=params or None)
                cached = _json_bytes(encode_value(S.verdict_out(verdict, role)))
            with self.cache_lock:
                cache[key] = cached
                if fast_key is not None:
                    cache[fast_key] = cached
            return _Json(cached)
        verdict = self.guard(role).check(body.sql, params=params or None)
        return _Json(_json_bytes(encode_value(S.verdict_out(verdict, role))))

    def _record_run(
        self,
        identity: Identity,
        sql: str,
        out: S.VerdictOut,
        outcome: str,
        row_count: int | None = None,
        error: str = "",
    ) -> None:
        """Record a direct SQL run in the console's history (when it has one)."""
        history = getattr(self.console, "history", None)
        if history is None or not callable(getattr(history, "record", None)):
            return
        from avl.history import Entry

        history.record(
            Entry(
                user=identity.user,
                role=identity.role,
                sql=sql,
                allowed=out.allowed,
                violations=[v.code for v in out.violations],
                outcome=outcome,
                row_count=row_count,
                error=error,
                tags=("via:web-sql",),
            )
        )

    async def sql_run(self, request: Request) -> Response:
        identity = self.identity(request)
        body: S.RunRequest = await self.body(request, S.RunRequest)
        params = self.params(identity, body.params)
        verdict = self.guard(identity.role).check(body.sql, params=params or None)
        out = S.verdict_out(verdict, identity.role)
        if not out.allowed:
            await anyio.to_thread.run_sync(
                lambda: self._record_run(identity, body.sql, out, "rejected")
            )
            raise E.UnsafeQueryError(
                "the query was refused by SafeQuery",
                violations=list(getattr(verdict, "violations", ())),
                sql=body.sql,
            )
        run = self._executor()
        sql = out.sql or body.sql

        def execute() -> Any:
            try:
                result = run(sql)
            except E.QueryTimeoutError as exc:
                self._record_run(identity, sql, out, "timeout", error=str(exc))
                raise
            except E.QueryError as exc:
                self._record_run(identity, sql, out, "db_error", error=str(exc))
                raise
            rows = getattr(result, "rows", result)
            self._record_run(identity, sql, out, "ok", row_count=len(rows))
            return result

        result = await anyio.to_thread.run_sync(execute)
        columns = [str(c) for c in (getattr(result, "columns", None) or ())]
        rows = S.rows_out(getattr(result, "rows", result))
        return _Json(S.RunResult(verdict=out, columns=columns, rows=rows, row_count=len(rows)))

    async def ask(self, request: Request) -> Response:
        identity = self.identity(request)
        accept = request.headers.get("accept", "")
        last_id = request.headers.get("last-event-id")
        wants_stream = "text/event-stream" in accept
        if wants_stream and last_id:
            return self.stream_response(request, identity, None, last_id)
        body: S.AskRequest = await self.body(request, S.AskRequest)
        if wants_stream:
            return self.stream_response(request, identity, body.question, None)
        assistant = self.need("assistant")
        answer = await anyio.to_thread.run_sync(
            lambda: assistant.ask(
                body.question, user=identity.user, role=identity.role, **_context_kw(identity)
            )
        )
        return _Json(S.answer_out(answer, body.question, identity.role))

    async def ask_stream(self, request: Request) -> Response:
        identity = self.identity(request)
        last_id = request.headers.get("last-event-id")
        question = request.query_params.get("question")
        if not last_id and not question:
            raise E.InvalidInputError("question: required")
        if question is not None and len(question) > 4000:
            raise E.InvalidInputError("question: must be at most 4000 characters")
        return self.stream_response(request, identity, question, last_id)

    def stream_response(
        self, request: Request, identity: Identity, question: str | None, last_id: str | None
    ) -> Response:
        assistant = self.need("assistant")
        decision = request.scope["state"].get(_DECISION)
        app = sse_response(
            hub=self.hub,
            assistant=assistant,
            question=question,
            identity=identity,
            last_event_id=last_id,
            stream_id=self.settings.stream_ids(),
            heartbeat_s=self.settings.heartbeat_s,
            headers=_rate_headers(decision),
        )
        return _AsgiResponse(app)

    async def train(self, request: Request) -> Response:
        identity = self.identity(request)
        if not identity.can("train"):
            raise E.PermissionDeniedError("training needs the 'train' permission")
        body: S.TrainRequest = await self.body(request, S.TrainRequest)
        if not any((body.question, body.sql, body.ddl, body.documentation)):
            raise E.InvalidInputError("give at least one of question, sql, ddl, documentation")
        if body.question and not body.sql:
            raise E.InvalidInputError("sql: required with question")
        if body.sql:
            verdict = self.guard(identity.role).check(body.sql, params=self.params(identity, None))
            if not getattr(verdict, "allowed", False):
                raise E.UnsafeQueryError(
                    "training SQL was refused by SafeQuery",
                    violations=list(getattr(verdict, "violations", ())),
                    sql=body.sql,
                )
        assistant = self.need("assistant")
        kwargs = {
            k: v
            for k, v in (
                ("question", body.question),
                ("sql", body.sql),
                ("ddl", body.ddl),
                ("documentation", body.documentation),
            )
            if v
        }
        result = await anyio.to_thread.run_sync(lambda: assistant.train(**kwargs))
        if isinstance(result, str):
            ids = [result]
        elif isinstance(result, (list, tuple)):
            ids = [str(x) for x in result]
        else:
            ids = []
        return _Json(S.TrainResult(stored=len(ids), ids=ids))

    def _history_user(self, identity: Identity, requested: str | None) -> str | None:
        if identity.can("history:all"):
            return requested
        if requested is not None and requested != identity.user:
            raise E.PermissionDeniedError("reading another user's history needs 'history:all'")
        return identity.user

    async def history_search(self, request: Request) -> Response:
        identity = self.identity(request)
        history = self.need("history")
        q = request.query_params
        unknown = set(q.keys()) - {"q", "user", "outcome", "since", "until", "limit", "cursor"}
        if unknown:
            raise E.InvalidInputError(f"unknown query parameter(s) {sorted(unknown)}")
        kwargs: dict[str, Any] = {}
        user = self._history_user(identity, q.get("user"))
        if user is not None:
            kwargs["user"] = user
        if q.get("q"):
            kwargs["text"] = q["q"]
        if q.get("outcome"):
            kwargs["outcome"] = q["outcome"]
        for name in ("since", "until"):
            if name in q:
                try:
                    value = float(q[name])
                except ValueError as exc:
                    raise E.InvalidInputError(f"{name}: expected a number") from exc
                if not math.isfinite(value):
                    raise E.InvalidInputError(f"{name}: expected a finite number")
                kwargs[name] = value
        limit = 50
        if "limit" in q:
            if not q["limit"].isdigit() or not 1 <= int(q["limit"]) <= 500:
                raise E.InvalidInputError("limit: expected an integer from 1 to 500")
            limit = int(q["limit"])
        kwargs["limit"] = limit
        if q.get("cursor"):
            kwargs["cursor"] = q["cursor"]
        page = await anyio.to_thread.run_sync(lambda: history.search(**kwargs))
        items = [S.entry_out(e) for e in page]
        if user is not None:  # belt and braces: never leak another user's entry
            items = [e for e in items if e.user == user]
        return _Json(S.HistoryPage(items=items, next_cursor=getattr(page, "next_cursor", None)))

    async def history_get(self, request: Request) -> Response:
        identity = self.identity(request)
        history = self.need("history")
        entry_id = request.path_params["entry_id"]
        entry = await anyio.to_thread.run_sync(lambda: history.get(entry_id))
        out = S.entry_out(entry)
        if not identity.can("history:all") and out.user != identity.user:
            # Same answer as a missing entry: do not confirm that the id exists.
            raise E.NotFoundError(f"no history entry {entry_id!r}")
        return _Json(out)

    async def history_verify(self, request: Request) -> Response:
        identity = self.identity(request)
        if not identity.can("history:all"):
            raise E.PermissionDeniedError("verifying the whole history needs 'history:all'")
        history = self.need("history")
        report = await anyio.to_thread.run_sync(history.verify)
        problem = getattr(report, "problem", None)
        return _Json(
            S.VerifyOut(
                ok=bool(getattr(report, "ok", report)),
                checked=int(getattr(report, "checked", 0)),
                problem=None if problem is None else str(encode_value(problem)),
                entry_id=getattr(report, "entry_id", None),
                message=str(getattr(report, "message", "")),
            )
        )

    async def ratelimit_status(self, request: Request) -> Response:
        identity = self.identity(request)
        key = f"web:{identity.user}"
        decision = request.scope["state"].get(_DECISION)
        if decision is None:
            return _Json(S.RateLimitStatus(key=key, limited=False))
        return _Json(
            S.RateLimitStatus(
                key=key,
                limited=True,
                allowed=bool(getattr(decision, "allowed", True)),
                remaining=getattr(decision, "remaining", None),
                limit=getattr(decision, "limit", None),
                reset_after=getattr(decision, "reset_after", None),
                retry_after=getattr(decision, "retry_after", None),
                headers=_rate_headers(decision),
            )
        )

    async def healthz(self, request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type=_JSON)

    def _probes(self) -> list[tuple[str, Callable[[], object]]]:
        probes: list[tuple[str, Callable[[], object]]] = []
        history = getattr(self.console, "history", None)
        if history is not None and callable(getattr(history, "search", None)):
            probes.append(("history", lambda: history.search(limit=1)))
        limiter = getattr(self.console, "limiter", None)
        if limiter is not None and callable(getattr(limiter, "peek", None)):
            probes.append(("limiter", lambda: limiter.peek("avl:readyz")))
        assistant = getattr(self.console, "assistant", None)
        database = getattr(assistant, "db", None) or getattr(assistant, "database", None)
        if database is not None and callable(getattr(database, "execute", None)):
            probes.append(("database", lambda: database.execute("SELECT 1")))
        return probes

    async def readyz(self, request: Request) -> Response:
        checks: dict[str, str] = {}
        for name, probe in self._probes():
            try:
                await anyio.to_thread.run_sync(probe)
                checks[name] = "ok"
            except E.AvlError as exc:
                log.warning("readiness probe %s failed: %s", name, exc)
                checks[name] = "unavailable"
        ok = all(v == "ok" for v in checks.values())
        status = 200 if ok else 503
        return _Json(
            S.Ready(status="ok" if ok else "unavailable", checks=checks), status_code=status
        )

    async def metrics(self, request: Request) -> Response:
        metrics = self.need("metrics")
        for name in ("prometheus_text", "exposition", "render", "to_prometheus"):
            fn = getattr(metrics, name, None)
            if callable(fn):
                text = fn()
                body = text.encode("utf-8") if isinstance(text, str) else bytes(text)
                return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
        raise E.NotFoundError("this console's metrics have no Prometheus exposition")

    async def openapi(self, request: Request) -> Response:
        if self._spec is None:
            self._spec = _json_bytes(build_spec())
        return Response(self._spec, media_type=_JSON)

    async def page(self, request: Request) -> Response:
        if self._page is None:
            self._page = resources.files("avl.web").joinpath("static/index.html").read_bytes()
        return Response(self._page, media_type="text/html; charset=utf-8")

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        types = {"js": "text/javascript", "css": "text/css"}
        ext = name.rsplit(".", 1)[-1]
        if "/" in name or name.startswith(".") or ext not in types:
            raise E.NotFoundError(f"no static file {name!r}")
        file = resources.files("avl.web").joinpath("static").joinpath(name)
        if not file.is_file():
            raise E.NotFoundError(f"no static file {name!r}")
        return Response(file.read_bytes(), media_type=f"{types[ext]}; charset=utf-8")


def _context_kw(identity: Identity) -> dict[str, Any]:
    return {"context": dict(identity.context)} if identity.context else {}


class _AsgiResponse(Response):
    """A Response that delegates to a raw ASGI app (for the SSE streams)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Any]) -> None:
        super().__init__(status_code=200)
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)


def _endpoint(handler: Handler) -> Handler:
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except E.AvlError as exc:
            return problem_response(exc, request.url.path)
        except Exception as exc:  # the boundary: log it, answer an opaque 500
            log.exception("unhandled error in %s", request.url.path, exc_info=exc)
            return problem_response(exc, request.url.path)

    endpoint.__name__ = handler.__name__
    return endpoint


async def _http_exception(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 500)
    if status == 405:
        response = problem_response(
            MethodNotAllowedError(f"{request.method} is not allowed here"), request.url.path
        )
        allow = (getattr(exc, "headers", None) or {}).get("Allow")
        if allow:
            response.headers["Allow"] = allow
        return response
    if status == 404:
        return problem_response(E.NotFoundError(f"no route {request.url.path!r}"), request.url.path)
    return problem_response(E.AvlError("request failed"), request.url.path)


def build_app(console: Any, settings: WebSettings) -> ASGIApp:
    """Assemble the Starlette app, the gate middleware and (optionally) CORS."""
    api = _Api(console, settings)
    routes: list[BaseRoute] = [
        Route(spec.path, _endpoint(getattr(api, spec.name)), methods=[spec.method])
        for spec in ROUTES
    ]
    routes.append(Route("/static/{name}", _endpoint(api.static), methods=["GET"]))
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_exception})
    app.state.avl_api = api
    gated: ASGIApp = _Gate(app, console, settings, api)
    if settings.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        gated = CORSMiddleware(
            gated,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["authorization", "x-api-key", "content-type", "last-event-id"],
            expose_headers=[
                "retry-after",
                "ratelimit-limit",
                "ratelimit-remaining",
                "ratelimit-reset",
            ],
        )
    return gated


def route_specs() -> tuple[RouteSpec, ...]:
    """The route table (for tests and tools)."""
    return ROUTES
