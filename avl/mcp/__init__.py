"""avl as an MCP server: the safe way for an agent to ask a database.

Built on the official ``mcp`` SDK (``pip install 'avl[mcp]'``). Run it over stdio
with ``avl mcp --db URL`` (the command an MCP client such as Claude Desktop starts),
or build it in code::

    from avl.console import Console
    from avl.mcp import Caller, create_server

    server = create_server(Console(db="sqlite:///shop.db"), Caller(user="agent", role="analyst"))
    server.run()  # stdio

Tools: ``ask``, ``check_sql``, ``run_sql``, ``list_tables``, ``describe_table``,
``search_history``, ``explain``; resource ``avl://schema``. Every call goes through
the same Console as the REST API (policy and role, row filters, rate limits, token
budgets, history), and nothing a tool returns goes beyond what the REST API would
return to the same caller.
"""

from __future__ import annotations

from avl.mcp._http import http_app
from avl.mcp._server import CallerFor, create_server
from avl.mcp._tools import Caller

__all__ = ["Caller", "CallerFor", "create_server", "http_app"]
