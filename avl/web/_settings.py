"""Settings of the web adapter (a frozen value; no framework imports)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import attrs

from avl.web._auth import PERMISSIONS, Authenticator, Identity

__all__ = ["WebSettings"]


def _new_stream_id() -> str:
    return uuid.uuid4().hex[:16]


def _local_identity() -> Identity:
    return Identity(user="local", role="default", permissions=PERMISSIONS)


def _positive(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value <= 0:
        from avl.errors import ConfigError

        raise ConfigError(f"{attribute.name} must be positive, got {value!r}")


@attrs.frozen(kw_only=True)
class WebSettings:
    """How the ASGI app behaves.

    Attributes:
        authenticator: who callers are; ``None`` serves only loopback callers, as
            ``local_identity``.
        local_identity: the identity of loopback callers when no authenticator is
            configured (default: user ``local``, role ``default``, every permission).
        cors_origins: origins allowed by CORS; empty (default) disables CORS.
        max_body_bytes: larger request bodies get 413.
        heartbeat_s: idle seconds between SSE heartbeat comments.
        resume_events: events kept per stream for ``Last-Event-ID`` resumes.
        resume_streams: streams kept for resumes (oldest dropped first).
        check_cache_size: verdicts of ``/v1/sql/check`` cached per (role, SQL,
            parameters); 0 disables the cache.
        rate_cost: what one API request costs on the console's limiter.
        limit_local: whether the local caller (loopback, no authenticator) is
            counted on the limiter. ``None`` (default): only when the console's
            configuration sets ``ratelimit`` explicitly (``console.config``); when
            not counted, responses still carry the limiter's headers (from a peek)
            and are never refused by the web layer.
        stream_ids: makes stream ids (inject a deterministic one in tests).
    """

    authenticator: Authenticator | None = None
    local_identity: Identity = attrs.field(factory=_local_identity)
    cors_origins: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    max_body_bytes: int = attrs.field(default=2_097_152, validator=_positive)
    heartbeat_s: float = attrs.field(default=15.0, validator=_positive)
    resume_events: int = attrs.field(default=512, validator=_positive)
    resume_streams: int = attrs.field(default=256, validator=_positive)
    check_cache_size: int = 4096
    rate_cost: int = 1
    limit_local: bool | None = None
    stream_ids: Callable[[], str] = attrs.field(default=_new_stream_id, eq=False)
