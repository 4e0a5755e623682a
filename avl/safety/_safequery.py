"""SafeQuery and PolicySet: the public entry points, with a thread-safe verdict cache."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

import cachetools

from avl._args import describe
from avl.errors import ConfigError, InvalidInputError, UnsafeQueryError
from avl.safety._checker import Checker
from avl.safety._policy import Policy
from avl.safety._verdict import Verdict

if TYPE_CHECKING:
    from avl.safety._template import Template

__all__ = ["PolicySet", "SafeQuery"]

_ParamsKey = tuple[tuple[str, object], ...] | None


class SafeQuery:
    """The guard between SQL that a model or a user wrote and a real database.

    ``check`` tokenises and parses the text once with sqlglot in the policy's
    dialect, walks the tree once, and returns a :class:`Verdict`. It fails
    closed: text that does not parse, or that holds a syntax node the walker
    does not explicitly know, is refused with a code that says so. No sqlglot
    error ever escapes. When the statement is allowed, ``Verdict.sql`` is the
    SQL to run: the original text, or, when the policy asks for it, a rewrite
    with a ``LIMIT`` (``TOP``/``FETCH FIRST`` in the dialects that spell it
    so) and with each row-filtered table replaced by
    ``(SELECT * FROM t WHERE <filter>) AS t``.

    Verdicts are cached in an LRU (keyed by the SQL and the parameters; the
    policy is fixed per instance). One instance can be shared by any number of
    threads: the cache is behind a lock and the checker itself is pure.

    Args:
        policy: the rules to enforce.
        cache_size: how many verdicts to keep (0 turns the cache off).

    Raises:
        ConfigError: the policy's row filters or names do not parse.

    Example:
        >>> guard = SafeQuery(Policy(dialect="sqlite", allowed_tables=["orders"], max_rows=100))
        >>> verdict = guard.check("SELECT id, total FROM orders WHERE total > 10")
        >>> verdict.allowed, verdict.sql
        (True, 'SELECT id, total FROM orders WHERE total > 10 LIMIT 100')
        >>> guard.check("SELECT * FROM orders WHERE id = 1 OR 1=1").violations[0].code.value
        'constant_predicate'
    """

    def __init__(self, policy: Policy, *, cache_size: int = 4096) -> None:
        if not isinstance(policy, Policy):
            raise ConfigError(f"SafeQuery needs a Policy, got {type(policy).__name__}")
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
            raise ConfigError(f"cache_size must be a non-negative integer, got {cache_size!r}")
        self._policy = policy
        self._checker = Checker(policy)
        self._cache: cachetools.LRUCache[tuple[str, _ParamsKey], Verdict] | None = (
            cachetools.LRUCache(maxsize=cache_size) if cache_size else None
        )
        self._lock = threading.Lock()

    @property
    def policy(self) -> Policy:
        """The policy this guard enforces."""
        return self._policy

    def check(self, sql: str, params: Mapping[str, object] | None = None) -> Verdict:
        """Decide whether ``sql`` may run, and give the SQL to run.

        Args:
            sql: the SQL text (one or more statements).
            params: values for the ``:name`` parameters of the policy's row
                filters (str, int, float, bool or None).

        Returns:
            The verdict; ``verdict.allowed`` says whether ``verdict.sql`` may run.
            Never raises for bad SQL: that is a verdict with violations.

        Raises:
            InvalidInputError: ``params`` is not a mapping with string keys.

        Example:
            >>> SafeQuery(Policy()).check("DROP TABLE users").violations[0].code.value
            'statement_kind'
        """
        key = self._key(sql, params)
        cache = self._cache
        if cache is not None and key is not None:
            with self._lock:
                hit = cache.get(key)
            if hit is not None:
                return hit
        verdict = self._checker.check(sql, params)
        if cache is not None and key is not None:
            with self._lock:
                cache[key] = verdict
        return verdict

    def ensure(self, sql: str, params: Mapping[str, object] | None = None) -> str:
        """Return the SQL to run, or raise when the policy refuses it.

        Args:
            sql: the SQL text.
            params: values for the row filters' parameters.

        Returns:
            The (possibly rewritten) SQL to run.

        Raises:
            UnsafeQueryError: the statement is refused; ``.violations`` lists why.
            InvalidInputError: ``params`` is not a mapping with string keys.

        Example:
            >>> SafeQuery(Policy(max_rows=10)).ensure("SELECT 1 AS one")
            'SELECT 1 AS one LIMIT 10'
        """
        verdict = self.check(sql, params)
        if not verdict.allowed or verdict.sql is None:
            reasons = "; ".join(f"{v.code.value}: {v.message}" for v in verdict.violations)
            raise UnsafeQueryError(
                f"query refused: {reasons}", violations=verdict.violations, sql=sql
            )
        return verdict.sql

    @staticmethod
    def template(sql: str, *, dialect: str = "sqlite") -> Template:
        """Build a parameter template (parse-tree validation of rendered/spliced SQL).

        Args:
            sql: the SQL with ``:name`` parameters.
            dialect: the sqlglot dialect.

        Returns:
            A :class:`~avl.safety.Template` with ``render(**values)`` and
            ``verify(sql)``.

        Raises:
            ConfigError: the template or the dialect is invalid.

        Example:
            >>> t = SafeQuery.template("SELECT * FROM users WHERE name = :name")
            >>> t.verify(t.render(name="O'Brien"))
            {'name': "O'Brien"}
        """
        from avl.safety._template import template

        return template(sql, dialect=dialect)

    def cache_info(self) -> tuple[int, int]:
        """Return ``(entries, maxsize)`` of the verdict cache."""
        if self._cache is None:
            return (0, 0)
        with self._lock:
            return (len(self._cache), int(self._cache.maxsize))

    @staticmethod
    def _key(sql: object, params: Mapping[str, object] | None) -> tuple[str, _ParamsKey] | None:
        if not isinstance(sql, str):
            return None
        if params is None:
            return (sql, None)
        if not isinstance(params, Mapping):
            raise InvalidInputError(
                f"params must be a mapping of name -> value, got {type(params).__name__}"
            )
        try:
            items = tuple(sorted(params.items()))
            hash(items)
        except TypeError as exc:
            if any(not isinstance(k, str) for k in params):
                raise InvalidInputError("params keys must be strings") from exc
            return None
        except Exception as exc:  # a value whose comparison or hash raises
            raise InvalidInputError(f"params could not be read: {describe(exc)}") from exc
        return (sql, items)


class PolicySet:
    """Policies by role: ``check(sql, role="analyst")`` uses that role's policy.

    Args:
        policies: role name -> :class:`Policy`.
        cache_size: verdict-cache size per role.

    Raises:
        ConfigError: a role name is empty or a value is not a Policy.

    Example:
        >>> roles = PolicySet({"analyst": Policy(max_rows=100), "admin": Policy()})
        >>> roles.check("SELECT 1 AS x", role="analyst").sql
        'SELECT 1 AS x LIMIT 100'
    """

    def __init__(self, policies: Mapping[str, Policy], *, cache_size: int = 4096) -> None:
        if not isinstance(policies, Mapping) or not policies:
            raise ConfigError("PolicySet needs a non-empty mapping of role -> Policy")
        guards: dict[str, SafeQuery] = {}
        for role, policy in policies.items():
            if not isinstance(role, str) or not role:
                raise ConfigError(f"role names must be non-empty strings, got {role!r}")
            if not isinstance(policy, Policy):
                raise ConfigError(
                    f"policies[{role!r}] must be a Policy, got {type(policy).__name__}"
                )
            guards[role] = SafeQuery(policy, cache_size=cache_size)
        self._guards = guards

    @property
    def roles(self) -> tuple[str, ...]:
        """The role names, sorted."""
        return tuple(sorted(self._guards))

    def guard(self, role: str) -> SafeQuery:
        """The :class:`SafeQuery` of one role.

        Args:
            role: the role name.

        Returns:
            That role's guard.

        Raises:
            InvalidInputError: there is no such role.
        """
        try:
            return self._guards[role]
        except (KeyError, TypeError) as exc:
            raise InvalidInputError(
                f"unknown role {role!r}; roles: {', '.join(self.roles)}"
            ) from exc

    def check(self, sql: str, *, role: str, params: Mapping[str, object] | None = None) -> Verdict:
        """Check ``sql`` with the policy of ``role``.

        Args:
            sql: the SQL text.
            role: the role name.
            params: values for the row filters' parameters.

        Returns:
            The verdict.

        Raises:
            InvalidInputError: there is no such role, or ``params`` is not a mapping.
        """
        return self.guard(role).check(sql, params)

    def ensure(self, sql: str, *, role: str, params: Mapping[str, object] | None = None) -> str:
        """Return the SQL to run for ``role``, or raise.

        Args:
            sql: the SQL text.
            role: the role name.
            params: values for the row filters' parameters.

        Returns:
            The SQL to run.

        Raises:
            UnsafeQueryError: the statement is refused.
            InvalidInputError: there is no such role.
        """
        return self.guard(role).ensure(sql, params)
