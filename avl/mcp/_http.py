"""The MCP server over streamable HTTP, as an ASGI app the web adapter mounts at ``/mcp``.

The web adapter's middlewares run first (host check, cross-site guard, body limit,
authentication, rate limit): by the time a request reaches this app, its caller is
known. Each POST is served statelessly with a JSON response, so the app keeps no
session between requests and any worker behind a load balancer can answer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from avl.errors import AuthenticationError
from avl.mcp._server import create_server, current_caller
from avl.mcp._tools import Caller

__all__ = ["http_app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def http_app(console: Any, caller_of: Callable[[Scope], Caller | None]) -> ASGIApp:
    """An ASGI app serving ``console``'s MCP tools over streamable HTTP.

    Args:
        console: the :class:`~avl.console.Console`.
        caller_of: the caller of a request, read from its ASGI scope (the web
            adapter's authenticated identity); ``None`` refuses the request.

    Returns:
        The ASGI app (POST only; stateless, JSON responses).

    Raises:
        MissingDependencyError: the ``mcp`` extra is not installed.
    """

    def caller(ctx: Any) -> Caller:
        request = getattr(ctx.request_context, "request", None)
        scope = getattr(request, "scope", None)
        found = caller_of(scope) if isinstance(scope, MutableMapping) else None
        if found is None:
            raise AuthenticationError("no authenticated caller for this MCP request")
        return found

    return _StatelessApp(create_server(console, caller), caller_of)


class _StatelessApp:
    """Serves each POST with its own stateless session manager.

    Nothing outlives a request, and no lifespan is needed (a test transport, or a
    server run without lifespan events, works). A class, not a function, so a
    router takes it for an ASGI app rather than a request handler.
    """

    def __init__(self, server: Any, caller_of: Callable[[Scope], Caller | None]) -> None:
        # the low-level server the SDK's session manager drives (what
        # ``MCPServer.streamable_http_app`` hands it)
        self.lowlevel = server._lowlevel_server
        self.caller_of = caller_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

        who = self.caller_of(scope)
        if who is None:
            raise AuthenticationError("no authenticated caller for this MCP request")
        token = current_caller.set(who)
        manager = StreamableHTTPSessionManager(
            app=self.lowlevel, stateless=True, json_response=True, security_settings=None
        )
        try:
            async with manager.run():
                await manager.handle_request(scope, receive, send)
        finally:
            current_caller.reset(token)
