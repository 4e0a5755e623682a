"""Who is calling: identities, API keys, chains of authenticators, loopback detection.

No web framework. An :class:`Authenticator` gets the request headers
(lower-case names) and the client host and answers an :class:`Identity`, ``None``
("not mine, try the next one / anonymous"), or raises
:class:`~avl.errors.AuthenticationError` (credentials present but wrong).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from collections.abc import Iterable, Mapping
from typing import Protocol, runtime_checkable

import attrs

from avl.errors import AuthenticationError, ConfigError
from avl.typing import Authenticator

log = logging.getLogger("avl.web")

__all__ = [
    "ApiKeyAuthenticator",
    "AsyncAuthenticator",
    "Authenticator",
    "ChainAuthenticator",
    "Identity",
    "PERMISSIONS",
    "bearer_token",
    "hash_api_key",
    "is_loopback",
]

#: The permissions an identity can hold.
#:
#: - ``"train"``: ``POST /v1/train``.
#: - ``"history:all"``: read every user's history (otherwise only one's own).
#: - ``"sql:any-role"``: check or run SQL under another role's policy.
PERMISSIONS = frozenset({"train", "history:all", "sql:any-role"})

_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost", "testclient"})


def is_loopback(host: str | None) -> bool:
    """Whether a client host is this machine.

    ``None`` (no client address, e.g. a Unix socket or an in-process call),
    ``127.0.0.0/8``, ``::1``, ``localhost`` and ``"testclient"`` (the address
    Starlette's in-process ``TestClient`` reports) count as loopback.

    Args:
        host: the client host from the ASGI scope.

    Returns:
        ``True`` for a loopback caller.

    Example:
        >>> is_loopback("127.0.0.1"), is_loopback("10.0.0.1")
        (True, False)
    """
    if host is None:
        return True
    host = host.strip("[]").lower()
    if host in _LOOPBACK or host.startswith("127."):
        return True
    return host.startswith("::ffff:127.")


def _perms(value: Iterable[str]) -> frozenset[str]:
    perms = frozenset(value)
    unknown = perms - PERMISSIONS
    if unknown:
        raise ConfigError(
            f"unknown permission(s) {sorted(unknown)}; expected some of {sorted(PERMISSIONS)}"
        )
    return perms


def _context(value: Mapping[str, object]) -> Mapping[str, object]:
    return dict(value)


@attrs.frozen(kw_only=True)
class Identity:
    """An authenticated caller.

    Attributes:
        user: the user name (history is kept and filtered by it).
        role: the role; it picks the SafeQuery policy.
        context: row-filter parameters bound into the policy's row filters
            (e.g. ``{"tenant_id": 7}``); they override any parameters a client
            sends.
        permissions: what else the caller may do (see :data:`PERMISSIONS`).
    """

    user: str = attrs.field(validator=attrs.validators.min_len(1))
    role: str = "default"
    context: Mapping[str, object] = attrs.field(factory=dict, converter=_context, hash=False)
    permissions: frozenset[str] = attrs.field(default=frozenset(), converter=_perms)

    def can(self, permission: str) -> bool:
        """Whether this identity holds ``permission``.

        Args:
            permission: one of :data:`PERMISSIONS`.

        Returns:
            ``True`` if held.
        """
        return permission in self.permissions


@runtime_checkable
class AsyncAuthenticator(Protocol):
    """An authenticator that may need I/O (a JWKS fetch) and so also offers a
    coroutine; the web app awaits it instead of calling ``authenticate``."""

    def authenticate(self, headers: Mapping[str, str], client: str | None) -> Identity | None:
        """See :meth:`Authenticator.authenticate`."""
        ...

    async def authenticate_async(
        self, headers: Mapping[str, str], client: str | None
    ) -> Identity | None:
        """See :meth:`Authenticator.authenticate`."""
        ...


def hash_api_key(key: str) -> str:
    """The stored form of an API key: hex SHA-256.

    API keys are long random strings, so a fast hash is enough (no dictionary to
    attack); the plain key is never stored.

    Args:
        key: the plain key.

    Returns:
        64 hex characters.

    Raises:
        avl.errors.ConfigError: the key is shorter than 16 characters.

    Example:
        >>> hash_api_key("k" * 32)[:12]
        '0bc7a1d3e6a1'
    """
    if len(key) < 16:
        raise ConfigError("API keys must be at least 16 characters long")
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if any.

    Args:
        headers: request headers, names in lower case.

    Returns:
        The token, or ``None``.

    Example:
        >>> bearer_token({"authorization": "Bearer abc"})
        'abc'
    """
    value = headers.get("authorization")
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class ApiKeyAuthenticator:
    """API keys, stored hashed and compared in constant time.

    A key is read from ``X-API-Key`` or ``Authorization: Bearer <key>``. Its SHA-256
    is compared with every stored hash with :func:`hmac.compare_digest` (so neither
    which key matched nor how much of it matched leaks through timing).

    Args:
        hashed: ``{sha256_hex: Identity}`` (see :func:`hash_api_key`).

    Raises:
        avl.errors.ConfigError: a stored hash is not 64 hex characters.

    Example:
        >>> auth = ApiKeyAuthenticator.from_keys({"s3cret-key-0123456789": Identity(user="ann")})
        >>> auth.authenticate({"x-api-key": "s3cret-key-0123456789"}, None).user
        'ann'
    """

    def __init__(self, hashed: Mapping[str, Identity]) -> None:
        entries: list[tuple[bytes, Identity]] = []
        for digest, identity in hashed.items():
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest.lower()):
                raise ConfigError(f"API key hashes must be 64 hex characters, got {digest[:8]!r}…")
            if not isinstance(identity, Identity):
                raise ConfigError("API keys must map to avl.web.Identity values")
            entries.append((bytes.fromhex(digest), identity))
        self._entries = tuple(entries)

    @classmethod
    def from_keys(cls, keys: Mapping[str, Identity]) -> ApiKeyAuthenticator:
        """Build from plain keys (hashed here; the plain keys are not kept).

        Args:
            keys: ``{plain_key: Identity}``.

        Returns:
            The authenticator.

        Raises:
            avl.errors.ConfigError: a key is shorter than 16 characters.
        """
        return cls({hash_api_key(k): v for k, v in keys.items()})

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> ApiKeyAuthenticator:
        """Load hashed keys from a JSON or TOML file.

        The file is what :class:`avl.web.KeyFile` (and ``avl keys``) writes: a list
        ``keys`` of tables with ``sha256`` (the hash from :func:`hash_api_key`),
        ``user`` and optionally ``id``, ``role``, ``permissions``, ``context`` and
        ``created``::

            [[keys]]
            id = "k1a2b3c4"
            sha256 = "6f1e..."
            user = "ann"
            role = "analyst"
            context = { tenant_id = 7 }

        The keys are read once; :class:`avl.web.KeyFileAuthenticator` follows changes.

        Args:
            path: a ``.json`` or ``.toml`` file.

        Returns:
            The authenticator.

        Raises:
            avl.errors.ConfigError: the file is missing, unreadable or malformed.
        """
        from avl.web._keys import KeyFile

        return cls(KeyFile(path).identities())

    def authenticate(self, headers: Mapping[str, str], client: str | None) -> Identity | None:
        """See :meth:`Authenticator.authenticate`.

        Raises:
            avl.errors.AuthenticationError: a key was sent but matches none.
        """
        key = headers.get("x-api-key")
        if key is None:
            key = bearer_token(headers)
            if key is None or key.count(".") == 2:  # a JWT: not ours
                return None
        digest = hashlib.sha256(key.encode("utf-8")).digest()
        found: Identity | None = None
        for stored, identity in self._entries:
            if hmac.compare_digest(stored, digest) and found is None:
                found = identity
        if found is None:
            raise AuthenticationError("invalid API key")
        return found


class ChainAuthenticator:
    """Try several authenticators in order; the first identity wins.

    Args:
        authenticators: the authenticators to try.

    Example:
        >>> chain = ChainAuthenticator([ApiKeyAuthenticator({})])
        >>> chain.authenticate({}, None) is None
        True
    """

    def __init__(self, authenticators: Iterable[Authenticator]) -> None:
        self._authenticators = tuple(authenticators)

    async def authenticate_async(
        self, headers: Mapping[str, str], client: str | None
    ) -> Identity | None:
        """:meth:`authenticate` for the event loop (awaits members that may do I/O).

        Raises:
            avl.errors.AuthenticationError: an authenticator refused the credentials.
        """
        for authenticator in self._authenticators:
            if isinstance(authenticator, AsyncAuthenticator):
                identity = await authenticator.authenticate_async(headers, client)
            else:
                identity = authenticator.authenticate(headers, client)
            if identity is not None:
                return identity
        return None

    def authenticate(self, headers: Mapping[str, str], client: str | None) -> Identity | None:
        """See :meth:`Authenticator.authenticate`.

        Raises:
            avl.errors.AuthenticationError: an authenticator refused the credentials.
        """
        for authenticator in self._authenticators:
            identity = authenticator.authenticate(headers, client)
            if identity is not None:
                return identity
        return None
