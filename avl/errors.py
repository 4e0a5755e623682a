"""The avl exception tree.

Every error that an avl public call raises is an :class:`AvlError`. Errors from
dependencies (sqlite3, psycopg, pymysql, redis, sqlglot, httpx, numpy...) are
translated at the boundary and chained with ``raise ... from exc``, so the original
is still in ``__cause__``. Each class also subclasses the fitting builtin, so
``except ValueError`` keeps working for code that does not know avl::

    AvlError
    ├── ConfigError (ValueError)              bad configuration, URL, rate string, option
    │   └── MissingDependencyError (ImportError)   an optional extra is not installed
    ├── InvalidInputError (ValueError)        bad argument: wrong dimension, NaN, bad value
    │   └── InvalidTypeError (TypeError)      an argument of the wrong type (check(5))
    ├── UnsafeQueryError (ValueError)         SafeQuery rejected a statement
    ├── RateLimitedError                      over a rate limit; carries retry_after_s
    │   └── BudgetExceededError               a call would exceed a cost budget
    ├── NotFoundError (LookupError)           no such id / entry / item
    ├── PermissionDeniedError (PermissionError)  authenticated but not allowed
    │   ├── AuthenticationError               missing or wrong credentials
    │   └── UnknownRoleError                  a role no policy is configured for
    ├── BackendError                          a storage backend failed
    │   ├── BackendUnavailableError (ConnectionError)  unreachable, timed out
    │   ├── CorruptionError                   stored data failed verification
    │   └── LockedError                       another process holds the store
    ├── QueryError                            the database rejected a query
    │   └── QueryTimeoutError (TimeoutError)
    ├── ProviderError                         a model/embedding provider failed
    │   ├── ProviderTimeoutError (TimeoutError)
    │   └── ProviderRateLimitError            the provider answered 429
    └── CancelledError                        an operation was cancelled by the caller
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "AuthenticationError",
    "AvlError",
    "BackendError",
    "BackendUnavailableError",
    "BudgetExceededError",
    "CancelledError",
    "ConfigError",
    "CorruptionError",
    "InvalidInputError",
    "InvalidTypeError",
    "LockedError",
    "MissingDependencyError",
    "NotFoundError",
    "PermissionDeniedError",
    "ProviderError",
    "ProviderRateLimitError",
    "ProviderTimeoutError",
    "QueryError",
    "QueryTimeoutError",
    "RateLimitedError",
    "UnknownRoleError",
    "UnsafeQueryError",
]


class AvlError(Exception):
    """Root of every error raised by avl."""


class ConfigError(AvlError, ValueError):
    """A configuration value, URL, rate string or option is invalid."""


class MissingDependencyError(ConfigError, ImportError):
    """An optional dependency is not installed.

    Attributes:
        module: the module that could not be imported.
        extra: the avl extra that installs it.
    """

    def __init__(self, module: str, extra: str) -> None:
        self.module = module
        self.extra = extra
        super().__init__(
            f"{module!r} is required for this feature but is not installed; "
            f"install it with: pip install 'avl[{extra}]'"
        )


class InvalidInputError(AvlError, ValueError):
    """An argument is invalid (wrong dimension, NaN, wrong type, out of range)."""


class InvalidTypeError(InvalidInputError, TypeError):
    """An argument has the wrong type (a number where SQL text is expected, say); also a
    ``TypeError``, and a ``ValueError`` as every :class:`InvalidInputError`."""


class UnsafeQueryError(AvlError, ValueError):
    """SafeQuery refused a statement.

    Attributes:
        violations: the violations found (objects with ``code``, ``message`` and
            ``position``); empty when the error is not about a specific rule.
        sql: the statement that was refused.
    """

    def __init__(self, message: str, *, violations: Sequence[Any] = (), sql: str = "") -> None:
        self.violations: tuple[Any, ...] = tuple(violations)
        self.sql = sql
        super().__init__(message)

    @property
    def codes(self) -> tuple[str, ...]:
        """The violation codes as strings, in order."""
        return tuple(violation_code(v) for v in self.violations)


class RateLimitedError(AvlError):
    """A rate limit or token budget was exceeded.

    Attributes:
        retry_after_s: seconds until the request could be allowed.
        decision: the rate-limit decision that refused it, if any.
    """

    def __init__(self, message: str, *, retry_after_s: float, decision: Any = None) -> None:
        self.retry_after_s = retry_after_s
        self.decision = decision
        super().__init__(message)


class BudgetExceededError(RateLimitedError):
    """A call would take a user, role or team over its cost budget (``avl.costs``).

    Attributes:
        budget: which budget (``"user:ann"``, ``"role:analyst"``, ``"team:data"``).
        period: the budget's period label (``"2026-12"``, ``"2026-W49"``, ``"2026-12-05"``).
        spent_usd: spent (and reserved) in the period so far.
        limit_usd: the budget.
        retry_after_s: seconds until the period ends and the budget starts afresh.
    """

    def __init__(
        self,
        message: str,
        *,
        budget: str,
        period: str,
        spent_usd: float,
        limit_usd: float,
        retry_after_s: float,
    ) -> None:
        self.budget = budget
        self.period = period
        self.spent_usd = spent_usd
        self.limit_usd = limit_usd
        super().__init__(message, retry_after_s=retry_after_s)


class NotFoundError(AvlError, LookupError):
    """No item with the given id or name."""


class PermissionDeniedError(AvlError, PermissionError):
    """The caller is known but not allowed to do this."""


class AuthenticationError(PermissionDeniedError):
    """Credentials are missing or wrong."""


class UnknownRoleError(PermissionDeniedError):
    """A role was named that no policy is configured for (it fails closed).

    Attributes:
        role: the role that was asked for.
        roles: the configured roles.
    """

    def __init__(self, role: str | None, roles: Sequence[str] = ()) -> None:
        self.role = role
        self.roles = tuple(roles)
        known = ", ".join(self.roles) if self.roles else "none"
        super().__init__(f"no policy is configured for role {role!r} (configured roles: {known})")


class BackendError(AvlError):
    """A storage or database backend failed."""


class BackendUnavailableError(BackendError, ConnectionError):
    """A backend could not be reached or did not answer in time."""


class CorruptionError(BackendError):
    """Stored data failed verification (bad checksum, truncated file, broken chain).

    Attributes:
        path: the damaged file, when there is one.
        offset: the byte offset where the damage starts, when known.
        records_affected: how many acknowledged records the damage reaches (they are
            lost if the store is repaired by truncation), when known.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        offset: int | None = None,
        records_affected: int | None = None,
    ) -> None:
        self.path = path
        self.offset = offset
        self.records_affected = records_affected
        super().__init__(message)


class LockedError(BackendError):
    """Another process holds an exclusive lock on the store."""


class QueryError(AvlError):
    """The database rejected or failed a query.

    The message carries the database's error text as avl makes it safe for the
    caller: its first line, with every quoted piece the statement did not write
    replaced by ``<value>`` (an error can quote a stored value the caller may not
    read). The driver's own exception is chained as ``__cause__``.

    Attributes:
        sql: the statement that failed, if known.
        code: the database's error class or code, if known (PostgreSQL's SQLSTATE
            such as ``"22P02"``, MySQL's error number, SQLite's error name such as
            ``"SQLITE_ERROR"``, DuckDB's exception class).
    """

    def __init__(self, message: str, *, sql: str = "", code: str = "") -> None:
        self.sql = sql
        self.code = code
        super().__init__(message)


class QueryTimeoutError(QueryError, TimeoutError):
    """A query ran past its statement timeout."""


class ProviderError(AvlError):
    """A chat-model or embedding provider failed.

    Attributes:
        provider: provider name (``"openai"``, ``"anthropic"``...).
        status: the HTTP status, if there was a response.
        request_id: the provider's request id, if it sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        self.provider = provider
        self.status = status
        self.request_id = request_id
        parts = [message]
        if provider:
            parts.append(f"provider={provider}")
        if status is not None:
            parts.append(f"status={status}")
        if request_id:
            parts.append(f"request_id={request_id}")
        super().__init__(
            " ".join(parts) if len(parts) == 1 else f"{parts[0]} ({', '.join(parts[1:])})"
        )


class ProviderTimeoutError(ProviderError, TimeoutError):
    """A provider did not answer within the deadline."""


class ProviderRateLimitError(ProviderError):
    """A provider answered 429 and retries ran out.

    Attributes:
        retry_after_s: the provider's ``Retry-After``, if it sent one.
    """

    def __init__(self, message: str, *, retry_after_s: float | None = None, **kwargs: Any) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(message, **kwargs)


class CancelledError(AvlError):
    """The caller cancelled the operation (for example, a client disconnected)."""


def violation_code(violation: Any) -> str:
    """A violation's code as a plain string: an enum's value, or the string itself.

    The one helper for reading the ``code`` of a SafeQuery violation (or of any
    guard's violation), wherever codes are shown, stored or counted.

    Example:
        >>> from avl.safety import Policy, SafeQuery
        >>> violation_code(SafeQuery(Policy()).check("DROP TABLE t").violations[0])
        'statement_kind'
    """
    code = violation.code
    return str(getattr(code, "value", code))
