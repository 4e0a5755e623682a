"""RFC 9457 problem details from the avl exception tree: one table, looked up by MRO.

Pure. The web layer's own errors are subclasses of the avl tree too, so one table
covers everything. Unknown exceptions become a bare 500 whose detail says nothing
about the internals (no message, no stack trace).
"""

from __future__ import annotations

import math

import attrs

from avl import errors as E
from avl.web._schemas import Problem, violation_out

__all__ = [
    "BadRequestError",
    "CrossSiteRequestError",
    "MethodNotAllowedError",
    "MisdirectedRequestError",
    "PROBLEM_TABLE",
    "ProblemType",
    "RequestTooLargeError",
    "TooManyStreamsError",
    "UnsupportedMediaTypeError",
    "problem_for",
]


class BadRequestError(E.InvalidInputError):
    """The request is malformed (e.g. the body is not JSON)."""


class RequestTooLargeError(E.InvalidInputError):
    """The request body exceeds the configured limit."""


class UnsupportedMediaTypeError(E.InvalidInputError):
    """The request body is not ``application/json``."""


class MethodNotAllowedError(E.InvalidInputError):
    """The route exists but not for this method."""


class MisdirectedRequestError(E.InvalidInputError):
    """The ``Host`` header names a host this server does not serve (DNS rebinding)."""


class CrossSiteRequestError(E.PermissionDeniedError):
    """A request another web page made the browser send (refused: CSRF)."""


class TooManyStreamsError(E.RateLimitedError):
    """Too many pipeline runs at once (for the caller, or for the whole server)."""


@attrs.frozen(kw_only=True)
class ProblemType:
    """A row of the mapping table.

    Attributes:
        status: the HTTP status.
        slug: the last part of the problem ``type`` URI.
        title: the short, fixed summary.
        expose_detail: whether the exception's message is shown as ``detail``.
    """

    status: int
    slug: str
    title: str
    expose_detail: bool = True


#: Exception class -> problem; the most specific class in the exception's MRO wins.
PROBLEM_TABLE: dict[type[BaseException], ProblemType] = {
    E.AvlError: ProblemType(status=500, slug="internal", title="Internal error"),
    E.ConfigError: ProblemType(
        status=500, slug="configuration", title="Server misconfigured", expose_detail=False
    ),
    E.InvalidInputError: ProblemType(status=422, slug="invalid-input", title="Invalid input"),
    BadRequestError: ProblemType(status=400, slug="bad-request", title="Bad request"),
    RequestTooLargeError: ProblemType(status=413, slug="too-large", title="Request too large"),
    UnsupportedMediaTypeError: ProblemType(
        status=415, slug="unsupported-media-type", title="Unsupported media type"
    ),
    MethodNotAllowedError: ProblemType(
        status=405, slug="method-not-allowed", title="Method not allowed"
    ),
    MisdirectedRequestError: ProblemType(
        status=421, slug="misdirected", title="Host not served here"
    ),
    CrossSiteRequestError: ProblemType(
        status=403, slug="cross-site", title="Cross-site request refused"
    ),
    TooManyStreamsError: ProblemType(
        status=429, slug="too-many-streams", title="Too many streams at once"
    ),
    E.UnsafeQueryError: ProblemType(status=422, slug="unsafe-query", title="Query refused"),
    E.RateLimitedError: ProblemType(status=429, slug="rate-limited", title="Too many requests"),
    E.NotFoundError: ProblemType(status=404, slug="not-found", title="Not found"),
    E.PermissionDeniedError: ProblemType(status=403, slug="forbidden", title="Forbidden"),
    # Not the default policy: refused, without listing the roles that are configured.
    E.UnknownRoleError: ProblemType(
        status=403, slug="unknown-role", title="Role not configured", expose_detail=False
    ),
    E.AuthenticationError: ProblemType(
        status=401, slug="unauthenticated", title="Authentication required"
    ),
    E.BackendError: ProblemType(status=503, slug="backend", title="Backend failure"),
    E.BackendUnavailableError: ProblemType(
        status=503, slug="backend-unavailable", title="Backend unavailable"
    ),
    E.CorruptionError: ProblemType(
        status=500, slug="corruption", title="Stored data failed verification"
    ),
    E.QueryError: ProblemType(status=422, slug="query-failed", title="Query failed"),
    E.QueryTimeoutError: ProblemType(status=504, slug="query-timeout", title="Query timed out"),
    E.ProviderError: ProblemType(status=502, slug="provider", title="Model provider failed"),
    E.ProviderTimeoutError: ProblemType(
        status=504, slug="provider-timeout", title="Model provider timed out"
    ),
    E.ProviderRateLimitError: ProblemType(
        status=503, slug="provider-rate-limited", title="Model provider is rate limiting"
    ),
    E.CancelledError: ProblemType(status=499, slug="cancelled", title="Cancelled"),
}

_UNKNOWN = ProblemType(status=500, slug="internal", title="Internal error", expose_detail=False)
TYPE_PREFIX = "urn:avl:problem:"


def lookup(exc: BaseException) -> ProblemType:
    """The table row for an exception (by MRO; unknown exceptions: opaque 500).

    Args:
        exc: the exception.

    Returns:
        The row.
    """
    for cls in type(exc).__mro__:
        row = PROBLEM_TABLE.get(cls)
        if row is not None:
            return row
    return _UNKNOWN


def problem_for(
    exc: BaseException, *, instance: str | None = None
) -> tuple[Problem, dict[str, str]]:
    """The problem body and extra headers for an exception.

    Args:
        exc: the exception.
        instance: the request path, reported as ``instance``.

    Returns:
        ``(problem, headers)``; headers include ``Retry-After`` for 429 and
        ``WWW-Authenticate`` for 401.

    Example:
        >>> from avl.errors import NotFoundError
        >>> p, _ = problem_for(NotFoundError("no entry 'x'"))
        >>> (p.status, p.type, p.detail)
        (404, 'urn:avl:problem:not-found', "no entry 'x'")
    """
    row = lookup(exc)
    headers: dict[str, str] = {}
    violations = None
    retry_after = None
    if isinstance(exc, E.UnsafeQueryError):
        violations = [violation_out(v) for v in exc.violations]
    if isinstance(exc, E.RateLimitedError):
        retry_after = max(0.0, float(exc.retry_after_s))
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
        decision_headers = getattr(exc.decision, "headers", None)
        if callable(decision_headers):
            headers.update({str(k): str(v) for k, v in decision_headers().items()})
    if row.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="avl"'
    detail = str(exc) if row.expose_detail else ""
    if isinstance(exc, E.UnknownRoleError):  # the role asked for, not the configured ones
        detail = f"no policy is configured for role {exc.role!r}"
    problem = Problem(
        type=TYPE_PREFIX + row.slug,
        title=row.title,
        status=row.status,
        detail=detail,
        instance=instance,
        violations=violations,
        retry_after=retry_after,
    )
    return problem, headers
