"""The route handlers (one instance per app: the caches, the stream hub, the pool).

Handlers raise :mod:`avl.errors` exceptions; the app's exception table
(:data:`avl.web._app.EXCEPTION_HANDLERS`) turns them into problem responses.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Any

import anyio.to_thread
import cachetools
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from avl import errors as E
from avl.web import _schemas as S
from avl.web._auth import Identity
from avl.web._jsonschema import decode, encode_value
from avl.web._middleware import DECISION, IDENTITY
from avl.web._problems import BadRequestError
from avl.web._protocols import (
    AssistantLike,
    ConsoleLike,
    DecisionLike,
    GuardLike,
    HistoryLike,
    MetricsLike,
)
from avl.web._settings import WebSettings
from avl.web._streams import PipelineRunner, StreamHub, sse_response

__all__ = ["FixedAnswer", "Handlers", "VerdictCache", "json_bytes"]

log = logging.getLogger("avl.web")

_JSON = "application/json"
_FAST_KEY_BYTES = 4096


def json_bytes(data: object) -> bytes:
    """Compact UTF-8 JSON."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class _Json(Response):
    media_type = _JSON

    def render(self, content: Any) -> bytes:
        return content if isinstance(content, bytes) else json_bytes(encode_value(content))


def _rate_headers(decision: DecisionLike | None) -> dict[str, str]:
    if decision is None:
        return {}
    return {str(k): str(v) for k, v in decision.headers().items()}


class VerdictCache:
    """``/v1/sql/check`` answers, by (role, SQL, parameters) and by caller shape +
    exact body bytes (the fast key :class:`~avl.web._middleware.CheckCache` reads).

    Args:
        size: entries kept (least recently used dropped first); 0 disables it.
    """

    def __init__(self, size: int) -> None:
        self._cache: cachetools.LRUCache[Any, bytes] | None = (
            cachetools.LRUCache(size) if size > 0 else None
        )
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """Whether anything is cached."""
        return self._cache is not None

    @staticmethod
    def fast_key(identity: Identity, raw: bytes) -> tuple[Any, ...] | None:
        """Same caller shape (role, context, permissions) + same bytes: same answer."""
        if len(raw) > _FAST_KEY_BYTES:
            return None
        context = tuple(sorted((k, repr(v)) for k, v in identity.context.items()))
        return (identity.role, context, identity.permissions, raw)

    def lookup(self, identity: Identity, raw: bytes) -> bytes | None:
        """The cached answer for these exact bytes from this caller shape, if any."""
        cache = self._cache
        if cache is None:
            return None
        key = self.fast_key(identity, raw)
        if key is None:
            return None
        with self._lock:
            return cache.get(key)

    def get(self, key: tuple[Any, ...]) -> bytes | None:
        """The answer under a (role, SQL, parameters) key."""
        if self._cache is None:
            return None
        with self._lock:
            return self._cache.get(key)

    def put(self, keys: tuple[tuple[Any, ...] | None, ...], answer: bytes) -> None:
        """Store an answer under each key given."""
        if self._cache is None:
            return
        with self._lock:
            for key in keys:
                if key is not None:
                    self._cache[key] = answer


class FixedAnswer:
    """A raw ASGI app answering 200 with fixed bytes (a fresh message each time)."""

    def __init__(self, body: bytes, media_type: bytes) -> None:
        self.body = body
        self.length = str(len(body)).encode("latin-1")
        self.media_type = media_type

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", self.length), (b"content-type", self.media_type)],
            }
        )
        await send({"type": "http.response.body", "body": self.body, "more_body": False})


class _AsgiResponse(Response):
    """A Response that delegates to a raw ASGI app (for the SSE streams)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Any]) -> None:
        super().__init__(status_code=200)
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)


def _identity(request: Request) -> Identity:
    identity: Identity = request.scope["state"][IDENTITY]
    return identity


def _decision(request: Request) -> DecisionLike | None:
    decision: DecisionLike | None = request.scope["state"].get(DECISION)
    return decision


class Handlers:
    """The handlers of every route (named as in :data:`avl.web._routes.ROUTES`).

    Args:
        console: the console.
        settings: the settings.
        cache: the verdict cache shared with the ``CheckCache`` middleware.
    """

    def __init__(self, console: ConsoleLike, settings: WebSettings, cache: VerdictCache) -> None:
        self.console = console
        self.settings = settings
        self.cache = cache
        self.hub = StreamHub(settings.resume_streams, settings.resume_events)
        self.runner = PipelineRunner(
            threads=settings.pipeline_threads,
            max_runs=settings.max_streams,
            max_runs_per_user=settings.max_streams_per_user,
            retry_after_s=settings.stream_retry_after_s,
        )
        self.guards: dict[str, GuardLike] = {}
        self.guard_lock = threading.Lock()
        self._spec: bytes | None = None
        self._page: bytes | None = None
        self._icon: bytes | None = None
        #: ``GET /healthz``: a raw ASGI answer (load balancers call it a lot).
        self.healthz = FixedAnswer(b'{"status":"ok"}', b"application/json")

    # -- helpers -------------------------------------------------------------------

    def guard(self, role: str) -> GuardLike:
        """The SafeQuery of ``role`` (cached).

        Raises:
            avl.errors.PermissionDeniedError: the role is not configured (403).
        """
        guard = self.guards.get(role)
        if guard is None:
            with self.guard_lock:
                guard = self.guards.get(role)
                if guard is None:
                    guard = self.console.guard_for(role)
                    self.guards[role] = guard
        return guard

    def assistant(self) -> AssistantLike:
        return self.console.assistant

    def history(self) -> HistoryLike:
        history = self.console.history
        if history is None:
            raise E.NotFoundError("no history is configured on this console")
        return history

    def metrics_source(self) -> MetricsLike:
        metrics = self.console.metrics
        if metrics is None:
            raise E.NotFoundError("no metrics are configured on this console")
        return metrics

    @staticmethod
    async def raw_body(request: Request) -> bytes:
        # The media type was checked by CrossSiteGuard (415 for anything but JSON).
        return await request.body()

    @staticmethod
    def parse(raw: bytes, cls: type[Any]) -> Any:
        try:
            data = json.loads(raw)
        except RecursionError as exc:
            raise BadRequestError("the request body is nested too deeply") from exc
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequestError("the request body is not valid JSON") from exc
        try:
            return decode(cls, data)
        except RecursionError as exc:
            raise BadRequestError("the request body is nested too deeply") from exc

    async def body(self, request: Request, cls: type[Any]) -> Any:
        return self.parse(await self.raw_body(request), cls)

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

    async def sql_check(self, request: Request) -> Response:
        identity = _identity(request)
        raw = await self.raw_body(request)
        cache = self.cache
        hit = cache.lookup(identity, raw)
        if hit is not None:
            return _Json(hit)
        body: S.CheckRequest = self.parse(raw, S.CheckRequest)
        role = self.role_for(identity, body.role)
        params = self.params(identity, body.params)
        key = (role, body.sql, tuple(sorted((k, repr(v)) for k, v in params.items())))
        answer = cache.get(key)
        if answer is None:
            verdict = self.guard(role).check(body.sql, params=params or None)
            answer = json_bytes(S.verdict_body(verdict, role=role))
        cache.put((key, cache.fast_key(identity, raw)), answer)
        return _Json(answer)

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
        history = self.console.history
        if history is None:
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
        identity = _identity(request)
        body: S.RunRequest = await self.body(request, S.RunRequest)
        params = self.params(identity, body.params)
        verdict = self.guard(identity.role).check(body.sql, params=params or None)
        out = S.verdict_out(verdict, identity.role)
        if not out.allowed:
            record_rejection = getattr(self.console.metrics, "record_rejection", None)
            if record_rejection is not None:
                for v in out.violations:
                    record_rejection(v.code, source="sql_run")
            await anyio.to_thread.run_sync(
                lambda: self._record_run(identity, body.sql, out, "rejected")
            )
            raise E.UnsafeQueryError(
                "the query was refused by SafeQuery",
                violations=list(verdict.violations),
                sql=body.sql,
            )
        database = self.assistant().db
        sql = out.sql or body.sql

        def execute() -> Any:
            try:
                result = database.execute(sql)
            except E.QueryTimeoutError as exc:
                self._record_run(identity, sql, out, "timeout", error=str(exc))
                raise
            except E.QueryError as exc:
                self._record_run(identity, sql, out, "db_error", error=str(exc))
                raise
            self._record_run(identity, sql, out, "ok", row_count=len(result.rows))
            return result

        result = await anyio.to_thread.run_sync(execute)
        columns = [str(c) for c in (result.columns or ())]
        rows = S.rows_out(result.rows)
        return _Json(S.RunResult(verdict=out, columns=columns, rows=rows, row_count=len(rows)))

    async def ask(self, request: Request) -> Response:
        identity = _identity(request)
        accept = request.headers.get("accept", "")
        last_id = request.headers.get("last-event-id")
        wants_stream = "text/event-stream" in accept
        if wants_stream and last_id:
            return self.stream_response(identity, None, last_id)
        body: S.AskRequest = await self.body(request, S.AskRequest)
        if wants_stream:
            return self.stream_response(identity, body.question, None, body.session)
        assistant = self.assistant()
        ticket = self.runner.admit(identity.user)
        extra = {"session": body.session} if body.session else {}
        answer = await self.runner.call(
            ticket,
            lambda: assistant.ask(
                body.question,
                user=identity.user,
                role=identity.role,
                context=dict(identity.context) or None,
                **extra,
            ),
        )
        return _Json(S.answer_body(answer, role=identity.role, question=body.question))

    async def ask_stream(self, request: Request) -> Response:
        identity = _identity(request)
        last_id = request.headers.get("last-event-id")
        question = request.query_params.get("question")
        if not last_id and not question:
            raise E.InvalidInputError("question: required")
        if question is not None and len(question) > 4000:
            raise E.InvalidInputError("question: must be at most 4000 characters")
        session = request.query_params.get("session") or None
        if session is not None and len(session) > 256:
            raise E.InvalidInputError("session: must be at most 256 characters")
        return self.stream_response(identity, question, last_id, session)

    def stream_response(
        self,
        identity: Identity,
        question: str | None,
        last_id: str | None,
        session: str | None = None,
    ) -> Response:
        if not last_id:
            # A role the console does not configure is a 403 before the stream
            # starts, not a 200 whose first event is the refusal.
            self.guard(identity.role)
        app = sse_response(
            hub=self.hub,
            runner=self.runner,
            assistant=self.assistant(),
            question=question,
            identity=identity,
            session=session,
            last_event_id=last_id,
            stream_id=self.settings.stream_ids(),
            heartbeat_s=self.settings.heartbeat_s,
        )
        return _AsgiResponse(app)

    async def train(self, request: Request) -> Response:
        identity = _identity(request)
        if not identity.can("train"):
            raise E.PermissionDeniedError("training needs the 'train' permission")
        body: S.TrainRequest = await self.body(request, S.TrainRequest)
        if not any((body.question, body.sql, body.ddl, body.documentation)):
            raise E.InvalidInputError("give at least one of question, sql, ddl, documentation")
        if body.question and not body.sql:
            raise E.InvalidInputError("sql: required with question")
        if body.sql:
            verdict = self.guard(identity.role).check(body.sql, params=self.params(identity, None))
            if not verdict.allowed:
                raise E.UnsafeQueryError(
                    "training SQL was refused by SafeQuery",
                    violations=list(verdict.violations),
                    sql=body.sql,
                )
        assistant = self.assistant()
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
        identity = _identity(request)
        history = self.history()
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
        # user: belt and braces, never another user's entry
        return _Json(S.history_body(page, next_cursor=page.next_cursor, user=user))

    async def history_get(self, request: Request) -> Response:
        identity = _identity(request)
        history = self.history()
        entry_id = request.path_params["entry_id"]
        entry = await anyio.to_thread.run_sync(lambda: history.get(entry_id))
        out = S.entry_out(entry)
        if not identity.can("history:all") and out.user != identity.user:
            # Same answer as a missing entry: do not confirm that the id exists.
            raise E.NotFoundError(f"no history entry {entry_id!r}")
        return _Json(out)

    async def history_verify(self, request: Request) -> Response:
        identity = _identity(request)
        if not identity.can("history:all"):
            raise E.PermissionDeniedError("verifying the whole history needs 'history:all'")
        history = self.history()
        report = await anyio.to_thread.run_sync(history.verify)
        record_verification = getattr(self.console.metrics, "record_verification", None)
        if record_verification is not None:
            record_verification(bool(report.ok), int(report.checked))
        problem = report.problem
        return _Json(
            S.VerifyOut(
                ok=bool(report.ok),
                checked=int(report.checked),
                problem=None if problem is None else str(encode_value(problem)),
                entry_id=report.entry_id,
                message=str(report.message),
            )
        )

    async def ratelimit_status(self, request: Request) -> Response:
        identity = _identity(request)
        key = f"web:{identity.user}"
        decision = _decision(request)
        if decision is None:
            return _Json(S.RateLimitStatus(key=key, limited=False))
        return _Json(
            S.RateLimitStatus(
                key=key,
                limited=True,
                allowed=bool(decision.allowed),
                remaining=decision.remaining,
                limit=decision.limit,
                reset_after=decision.reset_after,
                retry_after=decision.retry_after,
                headers=_rate_headers(decision),
            )
        )

    def _probes(self) -> list[tuple[str, Callable[[], object]]]:
        probes: list[tuple[str, Callable[[], object]]] = []
        history = self.console.history
        if history is not None:
            probes.append(("history", lambda: history.search(limit=1)))
        limiter = self.console.limiter
        if limiter is not None:
            probes.append(("limiter", lambda: limiter.peek("avl:readyz")))
        database = self.console.assistant.db
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
        text = self.metrics_source().prometheus_text()
        body = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    async def openapi(self, request: Request) -> Response:
        if self._spec is None:
            from avl.web._openapi import build_spec

            self._spec = json_bytes(build_spec())
        return Response(self._spec, media_type=_JSON)

    async def page(self, request: Request) -> Response:
        if self._page is None:
            self._page = resources.files("avl.web").joinpath("static/index.html").read_bytes()
        return Response(self._page, media_type="text/html; charset=utf-8")

    async def favicon(self, request: Request) -> Response:
        if self._icon is None:
            self._icon = resources.files("avl.web").joinpath("static/favicon.svg").read_bytes()
        return Response(
            self._icon,
            media_type="image/svg+xml",
            headers={"cache-control": "public, max-age=86400"},
        )

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        types = {"js": "text/javascript", "css": "text/css", "svg": "image/svg+xml"}
        ext = name.rsplit(".", 1)[-1]
        if "/" in name or name.startswith(".") or ext not in types:
            raise E.NotFoundError(f"no static file {name!r}")
        file = resources.files("avl.web").joinpath("static").joinpath(name)
        if not file.is_file():
            raise E.NotFoundError(f"no static file {name!r}")
        return Response(file.read_bytes(), media_type=f"{types[ext]}; charset=utf-8")
