"""Settings of the web adapter (a frozen value; no framework imports)."""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Callable
from typing import Any

import attrs

from avl.errors import ConfigError
from avl.web._auth import PERMISSIONS, Authenticator, Identity

__all__ = ["DEFAULT_PAGE_CSP", "LOOPBACK_HOSTS", "WebSettings", "normalize_host_pattern"]

#: Host names always served (with any port): a browser only sends these for a page
#: it loaded from this machine, so DNS rebinding cannot produce them.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")

#: The console page's Content-Security-Policy: its own files only, no inline script
#: or style, no framing, no plugins, forms and fetches to itself only.
DEFAULT_PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


def _new_stream_id() -> str:
    return uuid.uuid4().hex[:16]


def _local_identity() -> Identity:
    return Identity(user="local", role="default", permissions=PERMISSIONS)


def _positive(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(f"{attribute.name} must be positive, got {value!r}")


def normalize_host_pattern(pattern: str) -> str:
    """One ``allowed_hosts`` entry, checked and lower-cased.

    Accepted: a host name or IP address (``api.example.com``, ``10.0.0.5``,
    ``[2001:db8::1]``), optionally with a port (``api.example.com:8443``: only that
    port), ``*.example.com`` (any subdomain, not ``example.com`` itself), a network
    (``10.0.0.0/8``: any IP address in it, as a Kubernetes probe or a scraper
    sends; an address cannot come from DNS rebinding, which needs a name) and ``*``
    (any host: turns the DNS-rebinding protection off). A wildcard or a network
    takes no port.

    Args:
        pattern: the entry.

    Returns:
        The normalized entry.

    Raises:
        avl.errors.ConfigError: an empty entry, a ``*`` elsewhere than at the start,
            a scheme or a path.

    Example:
        >>> normalize_host_pattern("API.Example.com:8443")
        'api.example.com:8443'
    """
    if not isinstance(pattern, str) or not pattern.strip():
        raise ConfigError(f"allowed_hosts: expected a host name, got {pattern!r}")
    value = pattern.strip().lower().rstrip(".")
    if value == "*":
        return value
    if "/" in value and "://" not in value:
        try:
            return str(ipaddress.ip_network(value, strict=False))
        except ValueError:
            pass
    if "/" in value or "@" in value or " " in value:
        raise ConfigError(
            f"allowed_hosts: {pattern!r} is not a host name (no scheme, path or user)"
        )
    if "*" in value and (
        not value.startswith("*.") or "*" in value[1:] or ":" in value or len(value) < 3
    ):
        raise ConfigError(
            f"allowed_hosts: wildcards must look like '*.example.com' (no port), got {pattern!r}"
        )
    if value.count(":") > 1 and not value.startswith("["):  # a bare IPv6 address
        value = f"[{value}]"
    return value


def _hosts(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, (list, tuple, set, frozenset)):
        raise ConfigError(f"allowed_hosts: expected a list of host names, got {value!r}")
    return tuple(normalize_host_pattern(v) for v in value)


def _origins(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, (list, tuple, set, frozenset)):
        raise ConfigError(f"cors_origins: expected a list of origins, got {value!r}")
    out = []
    for origin in value:
        if not isinstance(origin, str) or "://" not in origin or origin.rstrip("/").count("/") > 2:
            raise ConfigError(
                f"cors_origins: expected origins like 'https://app.example', got {origin!r}"
            )
        out.append(origin.strip().rstrip("/").lower())
    return tuple(out)


@attrs.frozen(kw_only=True)
class WebSettings:
    """How the ASGI app behaves.

    Attributes:
        authenticator: who callers are; ``None`` serves only loopback callers, as
            ``local_identity``.
        local_identity: the identity of loopback callers when no authenticator is
            configured (default: user ``local``, role ``default``, every permission).
        allowed_hosts: host names (or networks) served besides ``localhost``,
            ``127.0.0.1`` and ``[::1]`` (which are always served, with any port); see
            :func:`normalize_host_pattern`. A request for any other ``Host`` gets 421
            (a missing or malformed one 400) before routing: this is what stops DNS
            rebinding. Add the public names a deployment is reached by.
        cors_origins: origins allowed by CORS (and by the cross-site guard); empty
            (default) disables CORS.
        max_body_bytes: larger request bodies get 413.
        heartbeat_s: idle seconds between SSE heartbeat comments.
        resume_events: events kept per stream for ``Last-Event-ID`` resumes.
        resume_streams: streams kept for resumes (oldest dropped first).
        max_streams: pipeline runs (SSE streams and JSON asks) at once in this
            process; more get 429 with ``Retry-After``.
        max_streams_per_user: pipeline runs at once per user; more get 429.
        pipeline_threads: threads running the Assistant's blocking steps, apart from
            the threads that serve other requests (so streams cannot starve them).
        stream_retry_after_s: the ``Retry-After`` of a refusal by the stream caps.
        page_csp: the console page's ``Content-Security-Policy``.
        check_cache_size: verdicts of ``/v1/sql/check`` cached per (role, SQL,
            parameters); 0 disables the cache.
        rate_cost: what one API request costs on the console's limiter.
        limit_local: whether the local caller (loopback, no authenticator) is
            counted on the limiter. ``None`` (default): only when the console's
            configuration sets ``ratelimit`` explicitly (``console.config``); when
            not counted, responses still carry the limiter's headers (from a peek)
            and are never refused by the web layer.
        stream_ids: makes stream ids (inject a deterministic one in tests).
        mcp: serve the MCP tools at ``POST /mcp`` (when the ``mcp`` extra is
            installed), behind the same host, cross-site, authentication and rate
            limit checks as the API.
    """

    authenticator: Authenticator | None = None
    local_identity: Identity = attrs.field(factory=_local_identity)
    allowed_hosts: tuple[str, ...] = attrs.field(default=(), converter=_hosts)
    cors_origins: tuple[str, ...] = attrs.field(default=(), converter=_origins)
    max_body_bytes: int = attrs.field(default=2_097_152, validator=_positive)
    heartbeat_s: float = attrs.field(default=15.0, validator=_positive)
    resume_events: int = attrs.field(default=512, validator=_positive)
    resume_streams: int = attrs.field(default=256, validator=_positive)
    max_streams: int = attrs.field(default=64, validator=_positive)
    max_streams_per_user: int = attrs.field(default=4, validator=_positive)
    pipeline_threads: int = attrs.field(default=16, validator=_positive)
    stream_retry_after_s: float = attrs.field(default=1.0, validator=_positive)
    page_csp: str = DEFAULT_PAGE_CSP
    check_cache_size: int = 4096
    rate_cost: int = 1
    limit_local: bool | None = None
    stream_ids: Callable[[], str] = attrs.field(default=_new_stream_id, eq=False)
    mcp: bool = True
