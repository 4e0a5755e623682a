"""SafeQuery: a SQL guard that nothing unsafe gets through.

``SafeQuery(policy).check(sql)`` parses the SQL once with sqlglot in the
policy's dialect, walks the tree against the :class:`Policy`, and returns a
:class:`Verdict` with stable violation codes and the (rewritten) SQL to run.
``SafeQuery.template(...)`` gives parameter templates for application code.
"""

from avl.safety._policy import Policy
from avl.safety._safequery import PolicySet, SafeQuery
from avl.safety._template import Template
from avl.safety._verdict import Position, StatementKind, Verdict, Violation, ViolationCode

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
