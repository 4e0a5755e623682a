"""Who is calling: identities, API keys, a JWT (HS256) example, loopback detection.

Pure: no web framework, no I/O. An :class:`Authenticator` gets the request headers
(lower-case names) and the client host and answers an :class:`Identity`, ``None``
("not mine, try the next one / anonymous"), or raises
:class:`~avl.errors.AuthenticationError` (credentials present but wrong).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import attrs

from avl._clock import Clock, SystemClock
from avl.errors import AuthenticationError, ConfigError
from avl.typing import Authenticator

__all__ = [
    "ApiKeyAuthenticator",
    "Authenticator",
    "ChainAuthenticator",
    "Identity",
    "JWTAuthenticator",
    "PERMISSIONS",
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


def _bearer(headers: Mapping[str, str]) -> str | None:
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

        The file holds a list ``keys`` of tables with ``sha256`` (the hash from
        :func:`hash_api_key`), ``user`` and optionally ``role``, ``permissions`` and
        ``context``::

            [[keys]]
            sha256 = "6f1e..."
            user = "ann"
            role = "analyst"
            context = { tenant_id = 7 }

        Args:
            path: a ``.json`` or ``.toml`` file.

        Returns:
            The authenticator.

        Raises:
            avl.errors.ConfigError: the file is missing, unreadable or malformed.
        """
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read API keys file {str(p)!r}: {exc}") from exc
        try:
            if p.suffix.lower() == ".json":
                data = json.loads(text)
            else:
                try:
                    tomllib = importlib.import_module("tomllib")  # Python 3.11+
                except ImportError:  # Python 3.10: tomli, a dependency there
                    tomllib = importlib.import_module("tomli")
                data = tomllib.loads(text)
        except ImportError as exc:
            raise ConfigError(
                "TOML key files need Python 3.11+ or 'tomli' installed; or use a .json file"
            ) from exc
        except ValueError as exc:  # JSONDecodeError and TOMLDecodeError are ValueErrors
            raise ConfigError(f"{str(p)!r} is not valid {p.suffix or 'TOML'}: {exc}") from exc
        rows = data.get("keys") if isinstance(data, dict) else None
        if not isinstance(rows, list):
            raise ConfigError(f"{str(p)!r}: expected a list 'keys' of tables")
        hashed: dict[str, Identity] = {}
        for i, row in enumerate(rows):
            if not isinstance(row, dict) or not isinstance(row.get("sha256"), str):
                raise ConfigError(f"{str(p)!r}: keys[{i}] needs a 'sha256' string")
            unknown = set(row) - {"sha256", "user", "role", "permissions", "context"}
            if unknown:
                raise ConfigError(f"{str(p)!r}: keys[{i}] has unknown field(s) {sorted(unknown)}")
            try:
                hashed[row["sha256"]] = Identity(
                    user=row.get("user", ""),
                    role=row.get("role", "default"),
                    context=row.get("context", {}),
                    permissions=frozenset(row.get("permissions", ())),
                )
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"{str(p)!r}: keys[{i}]: {exc}") from exc
        return cls(hashed)

    def authenticate(self, headers: Mapping[str, str], client: str | None) -> Identity | None:
        """See :meth:`Authenticator.authenticate`.

        Raises:
            avl.errors.AuthenticationError: a key was sent but matches none.
        """
        key = headers.get("x-api-key")
        if key is None:
            key = _bearer(headers)
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


def _b64decode(part: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (ValueError, TypeError) as exc:
        raise AuthenticationError("malformed token") from exc


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class JWTAuthenticator:
    """Bearer JWTs signed with HS256 (an example of a pluggable authenticator).

    Verifies the header (``alg`` must be ``HS256``: ``none`` and other algorithms are
    refused), the signature (constant-time), ``exp`` and ``nbf`` (with ``leeway_s``),
    and ``iss``/``aud`` when configured. Claims map to the identity: ``sub`` is the
    user, ``role`` the role, ``ctx`` (an object) the row-filter context and
    ``perms`` (a list) the permissions.

    Args:
        secret: the shared HMAC secret (at least 32 bytes).
        issuer: required ``iss``, if set.
        audience: required ``aud`` (string or list containing it), if set.
        leeway_s: clock skew allowed on ``exp``/``nbf``.
        clock: time source (inject :class:`avl.testing.FakeClock` in tests).

    Raises:
        avl.errors.ConfigError: the secret is too short.

    Example:
        >>> jwt = JWTAuthenticator(b"x" * 32)
        >>> token = jwt.issue({"sub": "ann", "role": "analyst"})
        >>> jwt.authenticate({"authorization": "Bearer " + token}, None).role
        'analyst'
    """

    def __init__(
        self,
        secret: bytes,
        *,
        issuer: str | None = None,
        audience: str | None = None,
        leeway_s: float = 30.0,
        clock: Clock | None = None,
    ) -> None:
        if len(secret) < 32:
            raise ConfigError("the JWT secret must be at least 32 bytes")
        self._secret = bytes(secret)
        self._issuer = issuer
        self._audience = audience
        self._leeway_s = float(leeway_s)
        self._clock = clock or SystemClock()

    def _sign(self, signing_input: bytes) -> bytes:
        return hmac.new(self._secret, signing_input, hashlib.sha256).digest()

    def issue(self, claims: Mapping[str, object]) -> str:
        """Sign claims into a token (for tests and for a login endpoint of yours).

        Args:
            claims: the payload (JSON-serialisable).

        Returns:
            The compact JWT.
        """
        header = _b64encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        payload = _b64encode(json.dumps(dict(claims), separators=(",", ":")).encode())
        signing_input = f"{header}.{payload}".encode("ascii")
        return f"{header}.{payload}.{_b64encode(self._sign(signing_input))}"

    def authenticate(self, headers: Mapping[str, str], client: str | None) -> Identity | None:
        """See :meth:`Authenticator.authenticate`.

        Raises:
            avl.errors.AuthenticationError: bad structure, algorithm, signature or
                claims, or an expired token.
        """
        token = _bearer(headers)
        if token is None or token.count(".") != 2:
            return None
        header_b64, payload_b64, sig_b64 = token.split(".")
        try:
            header = json.loads(_b64decode(header_b64))
            payload = json.loads(_b64decode(payload_b64))
        except (ValueError, UnicodeDecodeError) as exc:
            raise AuthenticationError("malformed token") from exc
        if not isinstance(header, dict) or header.get("alg") != "HS256":
            raise AuthenticationError("unsupported token algorithm (HS256 only)")
        expected = self._sign(f"{header_b64}.{payload_b64}".encode("ascii"))
        if not hmac.compare_digest(expected, _b64decode(sig_b64)):
            raise AuthenticationError("bad token signature")
        if not isinstance(payload, dict):
            raise AuthenticationError("malformed token claims")
        now = self._clock.now()
        exp = payload.get("exp")
        if exp is not None and (not isinstance(exp, (int, float)) or now > exp + self._leeway_s):
            raise AuthenticationError("token expired")
        nbf = payload.get("nbf")
        if nbf is not None and (not isinstance(nbf, (int, float)) or now < nbf - self._leeway_s):
            raise AuthenticationError("token not yet valid")
        if self._issuer is not None and payload.get("iss") != self._issuer:
            raise AuthenticationError("wrong token issuer")
        if self._audience is not None:
            aud = payload.get("aud")
            auds = aud if isinstance(aud, list) else [aud]
            if self._audience not in auds:
                raise AuthenticationError("wrong token audience")
        sub = payload.get("sub")
        if not isinstance(sub, str) or not sub:
            raise AuthenticationError("token has no subject")
        role = payload.get("role", "default")
        ctx = payload.get("ctx", {})
        perms = payload.get("perms", [])
        if not isinstance(role, str) or not isinstance(ctx, dict) or not isinstance(perms, list):
            raise AuthenticationError("malformed token claims")
        try:
            return Identity(user=sub, role=role, context=ctx, permissions=frozenset(perms))
        except ConfigError as exc:
            raise AuthenticationError(f"malformed token claims: {exc}") from exc


class ChainAuthenticator:
    """Try several authenticators in order; the first identity wins.

    Args:
        authenticators: the authenticators to try.

    Example:
        >>> chain = ChainAuthenticator([JWTAuthenticator(b"x" * 32)])
        >>> chain.authenticate({}, None) is None
        True
    """

    def __init__(self, authenticators: Iterable[Authenticator]) -> None:
        self._authenticators = tuple(authenticators)

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
