"""The MCP server: avl's tools and the schema resource on the official ``mcp`` SDK.

No ``from __future__ import annotations`` here: the SDK reads the tools' annotations
at run time (the ``Context`` parameter, the output schemas), and ``Context`` is only
imported when a server is built, inside :func:`create_server`.
"""

import contextvars
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from avl import __version__
from avl._optional import require
from avl.errors import AvlError, RateLimitedError, UnknownRoleError, UnsafeQueryError
from avl.mcp import _tools as T
from avl.mcp._tools import Caller
from avl.typing import violation_code

if TYPE_CHECKING:
    from mcp.server.mcpserver import Context, MCPServer

__all__ = ["CallerFor", "create_server", "current_caller"]

#: the caller of the request being served, set by an HTTP adapter around the MCP app
#: (resources cannot take the request context, so they read it from here)
current_caller: contextvars.ContextVar[Caller | None] = contextvars.ContextVar(
    "avl_mcp_caller", default=None
)

R = TypeVar("R")

#: how a tool call finds its caller: a fixed :class:`Caller` (stdio), or a function
#: of the MCP request context (HTTP, where the web adapter authenticated the request)
CallerFor = Caller | Callable[["Context[Any, Any]"], Caller]

_INSTRUCTIONS = (
    "avl answers questions about one database safely. Use list_tables and describe_table "
    "to see what you may read, ask for a plain-language question, check_sql before run_sql "
    "for SQL you write. Only read-only SQL that the caller's policy allows ever runs; a "
    "refusal lists the rules it broke."
)


def _quiet_server(name: str) -> "MCPServer[Any]":
    """The SDK's server, without the SDK configuring the application's logging.

    Building an ``MCPServer`` calls :func:`logging.basicConfig` (a handler on the
    root logger at INFO) when the root logger has no handler yet. A library must
    not: every record of every logger would then be written (the web adapter's
    access log on each request among them). The root logger's handlers and level
    are put back as they were.
    """
    import logging

    from mcp.server.mcpserver import MCPServer

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        return MCPServer(name, version=__version__, instructions=_INSTRUCTIONS)
    finally:
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)
        root.setLevel(level)


def _error_result(exc: AvlError) -> Any:
    """An avl error as an MCP tool error whose text is JSON (the violations included)."""
    from mcp.types import CallToolResult, TextContent

    message = str(exc)
    if isinstance(exc, UnknownRoleError):  # name the role asked for, not the configured ones
        message = f"no policy is configured for role {exc.role!r}"
    body: dict[str, Any] = {"error": type(exc).__name__, "message": message}
    if isinstance(exc, UnsafeQueryError):
        body["allowed"] = False
        body["violations"] = [
            {
                "code": violation_code(v),
                "message": str(v.message),
                "position": None
                if v.position is None
                else {"line": v.position.line, "col": v.position.col},
            }
            for v in exc.violations
        ]
    if isinstance(exc, RateLimitedError):
        body["retry_after_s"] = exc.retry_after_s
    return CallToolResult(
        content=[TextContent(type="text", text=json.dumps(body))],
        structured_content=body,
        is_error=True,
    )


def create_server(
    console: Any, caller: CallerFor | None = None, *, name: str = "avl"
) -> "MCPServer[Any]":
    """An MCP server whose tools answer through ``console`` as ``caller``.

    Tools: ``ask``, ``check_sql``, ``run_sql``, ``list_tables``, ``describe_table``,
    ``search_history``, ``explain``; resource: ``avl://schema`` (the caller's view
    of the schema). Each goes through the same Console as the REST API: the
    caller's policy and row filters, rate limits, token budgets and history.

    Args:
        console: a :class:`~avl.console.Console`.
        caller: the caller of every tool call (default ``Caller()``: user ``mcp``,
            the default policy), or a function of the request context returning it.
        name: the server name shown to clients.

    Returns:
        The server; ``server.run()`` serves it over stdio.

    Raises:
        MissingDependencyError: the ``mcp`` extra is not installed.
    """
    require("mcp", extra="mcp")
    import anyio
    from mcp.server.mcpserver import Context
    from mcp.types import ToolAnnotations

    who: CallerFor = caller if caller is not None else Caller()

    def caller_of(ctx: Context[Any, Any]) -> Caller:
        if isinstance(who, Caller):
            return who
        c = who(ctx)
        current_caller.set(c)
        return c

    async def call(ctx: Context[Any, Any], fn: Callable[[Caller], R]) -> R:
        c = caller_of(ctx)
        try:
            return await anyio.to_thread.run_sync(lambda: fn(c))
        except AvlError as exc:
            return cast(R, _error_result(exc))

    server = _quiet_server(name)
    read_only = ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=False)

    @server.tool(
        description="Answer a question about the database in plain language: the SQL that "
        "ran, SafeQuery's verdict, the columns and rows, a one-sentence summary. Give "
        '`session` ("new", then the answer\'s `session`) to ask follow-up questions that '
        "refine the earlier answers.",
        annotations=read_only,
    )
    async def ask(
        question: str, ctx: Context[Any, Any], session: str | None = None
    ) -> T.AnswerResult:
        return await call(ctx, lambda c: T.ask(console, c, question, session))

    @server.tool(
        description="Check SQL with SafeQuery without running it: allowed or not, each "
        "broken rule with its code, message and position, and the rewritten SQL.",
        annotations=read_only,
    )
    async def check_sql(sql: str, ctx: Context[Any, Any]) -> T.VerdictResult:
        return await call(ctx, lambda c: T.check_sql(console, c, sql))

    @server.tool(
        description="Run one read-only SQL query after SafeQuery allowed it. A refused "
        "query is a tool error listing the violations.",
        annotations=read_only,
    )
    async def run_sql(sql: str, ctx: Context[Any, Any]) -> T.RunResult:
        return await call(ctx, lambda c: T.run_sql(console, c, sql))

    @server.tool(description="The tables you may read.", annotations=read_only)
    async def list_tables(ctx: Context[Any, Any]) -> T.TablesResult:
        return await call(ctx, lambda c: T.list_tables(console, c))

    @server.tool(
        description="The columns of one table you may read (denied columns are not shown).",
        annotations=read_only,
    )
    async def describe_table(name: str, ctx: Context[Any, Any]) -> T.TableInfo:
        return await call(ctx, lambda c: T.describe_table(console, c, name))

    @server.tool(
        description="Your own earlier questions and queries, newest first, optionally "
        "matching a text.",
        annotations=read_only,
    )
    async def search_history(
        ctx: Context[Any, Any], text: str = "", limit: int = 20
    ) -> T.HistoryResult:
        return await call(ctx, lambda c: T.search_history(console, c, text, limit))

    @server.tool(
        description="The database's plan for a query (checked by SafeQuery first) and "
        "index suggestions.",
        annotations=read_only,
    )
    async def explain(sql: str, ctx: Context[Any, Any]) -> T.ExplainResult:
        return await call(ctx, lambda c: T.explain(console, c, sql))

    @server.resource(
        "avl://schema",
        name="schema",
        description="The tables and columns you may read, as CREATE TABLE statements.",
        mime_type="text/plain",
    )
    async def schema() -> str:
        c = who if isinstance(who, Caller) else current_caller.get()
        if c is None:  # no authenticated caller in this request: show nothing
            raise AvlError("the schema resource needs an authenticated caller")
        return await anyio.to_thread.run_sync(lambda: T.schema_text(console, c))

    return server
