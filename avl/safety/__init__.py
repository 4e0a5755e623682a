"""SafeQuery: a SQL guard that nothing unsafe gets through.

``SafeQuery(policy).check(sql)`` parses the SQL once with sqlglot in the
policy's dialect, walks the tree against the :class:`Policy`, and returns a
:class:`Verdict` with stable violation codes and the (rewritten) SQL to run.
``SafeQuery.template(...)`` gives parameter templates for application code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from avl.safety._policy import Policy
from avl.safety._safequery import PolicySet, SafeQuery
from avl.safety._verdict import Position, StatementKind, Verdict, Violation, ViolationCode

if TYPE_CHECKING:
    from avl.safety._template import Template

__all__ = [
    "Policy",
    "PolicySet",
    "Position",
    "SafeQuery",
    "StatementKind",
    "Template",
    "Verdict",
    "Violation",
    "ViolationCode",
]


def __getattr__(name: str) -> Any:
    # Template (and the MySQL/Postgres/SQLite dialects it reads) loads on first use:
    # checking SQL does not need it
    if name == "Template":
        from avl.safety._template import Template

        globals()["Template"] = Template
        return Template
    raise AttributeError(f"module 'avl.safety' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
