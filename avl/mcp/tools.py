"""The tool functions behind the MCP server, as plain functions over a Console.

Each takes the :class:`~avl.mcp.Caller` (user, role, row-filter context) and goes
through the Console exactly as the MCP tools and the REST API do: the caller's
policy (an unknown role is refused), its row filters, the rate limit, the history.
They need no MCP SDK; ``avl shell`` runs its ``\\sql``, ``\\describe``, ``\\explain``
and ``\\history`` commands through them.

Example:
    >>> from avl.console import Console
    >>> from avl.mcp import Caller
    >>> from avl.mcp.tools import run_sql
    >>> with Console() as console:  # doctest: +SKIP
    ...     run_sql(console, Caller(user="ann"), "SELECT COUNT(*) FROM customers")["rows"]
    [[12]]
"""

from __future__ import annotations

from avl.mcp._tools import (
    check_sql,
    describe_table,
    explain,
    list_tables,
    run_sql,
    search_history,
)

__all__ = [
    "check_sql",
    "describe_table",
    "explain",
    "list_tables",
    "run_sql",
    "search_history",
]
