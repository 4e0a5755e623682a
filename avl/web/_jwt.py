"""Bearer JWTs from identity providers (PyJWT, in the ``jwt`` extra).

- :class:`JWTAuthenticator` verifies RS256, ES256 and EdDSA tokens with keys from
  a JWKS endpoint (fetched with httpx, cached, refreshed on an unknown ``kid``,
  bounded), HS256 tokens with a shared secret, the issuer, the audience and the
  times (``exp``, ``nbf``, ``iat`` with a clock-skew allowance, on an injected
  clock), then maps the claims to an :class:`~avl.web.Identity` with a
  :class:`ClaimMapping`.
- Symmetric and asymmetric algorithms never share a key: HS256 only with the
  secret, the asymmetric ones only with JWKS keys of the matching type, ``none``
  never (RFC 8725).
- Nothing from PyJWT or httpx escapes: a bad token is
  :class:`~avl.errors.AuthenticationError` (401), an unreachable JWKS endpoint with
  no usable cached key :class:`~avl.errors.BackendUnavailableError` (503).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from avl._clock import Clock, SystemClock
from avl._optional import require
from avl.errors import AuthenticationError, BackendUnavailableError, ConfigError
from avl.web._auth import PERMISSIONS, Identity, bearer_token

if TYPE_CHECKING:
    import httpx

__all__ = ["ASYMMETRIC_ALGORITHMS", "ClaimMapping", "JWKSCache", "JWTAuthenticator"]

log = logging.getLogger("avl.web")

#: The asymmetric algorithms a JWKS key may verify, by key type (``kty``/``crv``).
ASYMMETRIC_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"})
_SYMMETRIC = frozenset({"HS256", "HS384", "HS512"})
_MAX_TOKEN_CHARS = 16_384
_SCALARS = (str, int, float, bool)


def _claim(claims: Mapping[str, Any], path: str) -> Any:
    """A claim by name; a dotted name walks nested objects when no claim has it whole."""
    if path in claims:
        return claims[path]
    if "." not in path:
        return None
    node: Any = claims
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _strings(value: Any, what: str) -> list[str]:
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise AuthenticationError(f"malformed token claims: {what} must be a list of strings")


def _permission_map(
    value: Mapping[str, str | Sequence[str]] | None,
) -> dict[str, tuple[str, ...]] | None:
    if value is None:
        return None
    fixed: dict[str, tuple[str, ...]] = {}
    for name, perms in value.items():
        values = (perms,) if isinstance(perms, str) else tuple(perms)
        unknown = set(values) - PERMISSIONS
        if unknown:
            raise ConfigError(f"permission_map[{name!r}]: unknown permission(s) {sorted(unknown)}")
        fixed[name] = values
    return fixed


@attrs.frozen(kw_only=True)
class ClaimMapping:
    """How a verified token's claims become an :class:`~avl.web.Identity`.

    Claim names may be dotted paths into nested objects (``realm_access.roles``);
    a claim whose whole name contains dots (``https://example.com/tenant``) is
    found first.

    Attributes:
        user: the claim naming the user (a non-empty string).
        role: the claim naming the role: a string, or a list of strings. ``None``:
            every token gets ``default_role``.
        roles: the provider's role or group names -> avl roles. When set, only
            these names count: the first (in this mapping's order) the token holds
            wins, and a token holding none of them gets 401. When not set, the
            claim is the avl role itself (a list must then hold exactly one).
        default_role: the role of a token without the role claim.
        permissions: the claim holding permissions: a list of strings or a
            space-separated string (as OAuth ``scope``). ``None``: no permissions.
        permission_map: the provider's values -> avl permissions; when set, values
            not in it are ignored (``openid``, ``email``...). When not set, every
            value must be an avl permission (see :data:`~avl.web.PERMISSIONS`).
        context: a claim holding an object of row-filter values (scalars).
        context_claims: avl context key -> claim (``{"tenant_id": "org_id"}``); a
            token lacking one of them gets 401.

    Raises:
        avl.errors.ConfigError: a mapped permission is not an avl permission.

    Example:
        >>> m = ClaimMapping(role="groups", roles={"db-admins": "admin", "staff": "analyst"})
        >>> m.identity({"sub": "ann", "groups": ["staff", "db-admins"]}).role
        'admin'
    """

    user: str = "sub"
    role: str | None = "role"
    roles: Mapping[str, str] | None = attrs.field(
        default=None, converter=attrs.converters.optional(dict)
    )
    default_role: str = "default"
    permissions: str | None = "perms"
    permission_map: Mapping[str, tuple[str, ...]] | None = attrs.field(
        default=None, converter=_permission_map
    )
    context: str | None = "ctx"
    context_claims: Mapping[str, str] = attrs.field(factory=dict, converter=dict)

    def identity(self, claims: Mapping[str, Any]) -> Identity:
        """The identity for verified claims.

        Args:
            claims: the token's payload.

        Returns:
            The identity.

        Raises:
            avl.errors.AuthenticationError: a claim is missing or has the wrong shape.
        """
        user = _claim(claims, self.user)
        if not isinstance(user, str) or not user or len(user) > 256:
            raise AuthenticationError(f"token has no usable subject ({self.user!r} claim)")
        role = self._role(claims)
        perms: set[str] = set()
        if self.permissions is not None:
            raw = _claim(claims, self.permissions)
            if raw is not None:
                values = _strings(raw, repr(self.permissions))
                if self.permission_map is not None:
                    for v in values:
                        perms.update(self.permission_map.get(v, ()))
                else:
                    unknown = set(values) - PERMISSIONS
                    if unknown:
                        raise AuthenticationError(
                            f"malformed token claims: unknown permission(s) {sorted(unknown)[:5]}"
                        )
                    perms.update(values)
        context: dict[str, object] = {}
        if self.context is not None:
            raw = _claim(claims, self.context)
            if raw is not None:
                if not isinstance(raw, Mapping) or not all(
                    isinstance(k, str) and isinstance(v, _SCALARS) for k, v in raw.items()
                ):
                    raise AuthenticationError(
                        f"malformed token claims: {self.context!r} must be an object of "
                        "strings, numbers or booleans"
                    )
                context.update(raw)
        for key, path in self.context_claims.items():
            value = _claim(claims, path)
            if not isinstance(value, _SCALARS):
                raise AuthenticationError(f"token lacks a usable {path!r} claim")
            context[key] = value
        return Identity(user=user, role=role, context=context, permissions=frozenset(perms))

    def _role(self, claims: Mapping[str, Any]) -> str:
        if self.role is None:
            return self.default_role
        raw = _claim(claims, self.role)
        if raw is None:
            return self.default_role
        if isinstance(raw, str):
            held = [raw]
        elif isinstance(raw, list) and all(isinstance(v, str) for v in raw):
            held = list(raw)
        else:
            raise AuthenticationError(
                f"malformed token claims: {self.role!r} must be a string or a list of strings"
            )
        if self.roles is not None:
            for name, role in self.roles.items():
                if name in held:
                    return role
            raise AuthenticationError("the token holds no role this server maps")
        if len(held) != 1 or not held[0] or len(held[0]) > 128:
            raise AuthenticationError(
                f"malformed token claims: {self.role!r} must name exactly one role"
            )
        return held[0]


def _key_algorithm(jwk: Mapping[str, Any]) -> str | None:
    """The algorithm a JWKS entry verifies (its ``alg``, else from its type)."""
    kty, crv, alg = jwk.get("kty"), jwk.get("crv"), jwk.get("alg")
    by_type = {
        "RSA": {"RS256", "RS384", "RS512", "PS256"},
        "EC": {"ES256", "ES384"},
        "OKP": {"EdDSA"},
    }
    allowed = by_type.get(kty) if isinstance(kty, str) else None
    if allowed is None:
        return None  # "oct" (a shared secret) and unknown types are never taken from a JWKS
    if isinstance(alg, str):
        return alg if alg in allowed else None
    if kty == "RSA":
        return "RS256"
    if kty == "EC":
        return {"P-256": "ES256", "P-384": "ES384"}.get(crv) if isinstance(crv, str) else None
    return "EdDSA" if crv == "Ed25519" else None


class JWKSCache:
    """The signing keys of an identity provider, from its JWKS URL.

    Keys are fetched on first use and kept for ``ttl_s``; a token naming an
    unknown ``kid`` triggers a refresh, but never more than one fetch per
    ``min_interval_s`` (so tokens with made-up key ids cannot make avl hammer the
    provider). The document is bounded (``max_bytes``, ``max_keys``) and fetched
    with a timeout. When a refresh fails, the keys already held keep working.

    Args:
        url: the JWKS URL (``https://idp.example/.well-known/jwks.json``).
        http: the httpx client to fetch with (default: a new one with ``timeout_s``).
        ttl_s: how long fetched keys are trusted without a refresh.
        min_interval_s: the least time between two fetches.
        max_keys: usable keys kept from one document.
        max_bytes: the largest document accepted.
        timeout_s: the fetch timeout (when no client is given).
        clock: the time source.

    Raises:
        avl.errors.ConfigError: the URL is not http(s).
    """

    def __init__(
        self,
        url: str,
        *,
        http: httpx.Client | None = None,
        ttl_s: float = 300.0,
        min_interval_s: float = 30.0,
        max_keys: int = 32,
        max_bytes: int = 262_144,
        timeout_s: float = 5.0,
        clock: Clock | None = None,
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise ConfigError(f"jwks_url must be an http(s) URL, got {url!r}")
        import httpx

        self.url = url
        self._http = http if http is not None else httpx.Client(timeout=timeout_s)
        self.ttl_s = float(ttl_s)
        self.min_interval_s = float(min_interval_s)
        self.max_keys = int(max_keys)
        self.max_bytes = int(max_bytes)
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._keys: dict[str, Any] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self.fetches = 0

    def _fresh(self, now: float) -> bool:
        return self._fetched_at is not None and now - self._fetched_at < self.ttl_s

    def needs_fetch(self, kid: str | None) -> bool:
        """Whether :meth:`key` would fetch now (for callers that fetch off the event loop)."""
        now = self._clock.monotonic()
        if kid is not None and kid in self._keys and self._fresh(now):
            return False
        if kid is None and self._keys and self._fresh(now):
            return False
        return self._attempted_at is None or now - self._attempted_at >= self.min_interval_s

    def key(self, kid: str | None) -> tuple[Any, str]:
        """The verification key and its algorithm for a token's ``kid``.

        Args:
            kid: the token header's ``kid`` (``None``: only when the provider has
                exactly one key).

        Returns:
            ``(PyJWK, algorithm)``.

        Raises:
            avl.errors.AuthenticationError: no key with that id.
            avl.errors.BackendUnavailableError: the provider could not be reached
                and no key is held.
        """
        with self._lock:
            if self.needs_fetch(kid):
                self._refresh()
            if kid is None:
                if len(self._keys) != 1:
                    raise AuthenticationError(
                        "the token names no key (kid) and the provider has several"
                    )
                return next(iter(self._keys.values()))  # type: ignore[no-any-return]
            found = self._keys.get(kid)
            if found is None:
                raise AuthenticationError(f"unknown signing key {kid[:64]!r}")
            return found  # type: ignore[no-any-return]

    def _refresh(self) -> None:
        import httpx
        from jwt import PyJWK
        from jwt.exceptions import PyJWTError

        self._attempted_at = self._clock.monotonic()
        self.fetches += 1
        try:
            with self._http.stream("GET", self.url, headers={"accept": "application/json"}) as r:
                if r.status_code != 200:
                    raise BackendUnavailableError(f"the JWKS endpoint answered {r.status_code}")
                chunks: list[bytes] = []
                size = 0
                for chunk in r.iter_bytes():
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise BackendUnavailableError(
                            f"the JWKS document is over {self.max_bytes} bytes"
                        )
                    chunks.append(chunk)
            document = json.loads(b"".join(chunks))
        except httpx.HTTPError as exc:
            if self._keys:
                log.warning(
                    "JWKS refresh from %s failed (keeping %d keys): %s",
                    self.url,
                    len(self._keys),
                    exc,
                )
                return
            raise BackendUnavailableError(f"cannot fetch the JWKS from {self.url}: {exc}") from exc
        except (ValueError, RecursionError) as exc:
            if self._keys:
                log.warning("JWKS from %s is not valid JSON (keeping the old keys)", self.url)
                return
            raise BackendUnavailableError(f"the JWKS from {self.url} is not valid JSON") from exc
        except BackendUnavailableError:
            if self._keys:
                log.warning("JWKS refresh from %s failed (keeping the old keys)", self.url)
                return
            raise
        entries = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            if self._keys:
                return
            raise BackendUnavailableError(f"the JWKS from {self.url} has no 'keys' list")
        keys: dict[str, Any] = {}
        for jwk in entries:
            if len(keys) >= self.max_keys:
                break
            if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
                continue
            ops = jwk.get("key_ops")
            if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
                continue
            alg = _key_algorithm(jwk)
            if alg is None:
                continue
            kid = jwk.get("kid")
            try:
                key = PyJWK.from_dict(jwk, algorithm=alg)
            except (PyJWTError, ValueError, TypeError, KeyError):
                log.warning("skipping an unusable key in the JWKS from %s", self.url)
                continue
            keys[kid if isinstance(kid, str) else f"#{len(keys)}"] = (key, alg)
        self._keys = keys
        self._fetched_at = self._clock.monotonic()


def _b64json(part: str) -> Any:
    import base64

    raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    return json.loads(raw)


class JWTAuthenticator:
    """Bearer JWTs: from an identity provider (JWKS) and/or signed with a secret.

    Verification, in order: the token's size and structure; its ``alg`` is one of
    ``algorithms`` (``none`` never is); the key: the shared ``secret`` for HS256,
    the JWKS key named by ``kid`` -- of a type matching ``alg`` -- for RS256, ES256
    and EdDSA; the signature; ``iss`` and ``aud`` when configured; ``exp``,
    ``nbf`` and ``iat`` within ``leeway_s`` on ``clock``; then the claims become
    the identity (``claims``).

    Args:
        secret: the HS256 secret (at least 32 bytes); ``None`` for JWKS only.
        jwks_url: the provider's JWKS URL (see :class:`JWKSCache`).
        jwks: a ready :class:`JWKSCache` (instead of ``jwks_url``).
        algorithms: accepted algorithms (default: ``HS256`` with a secret, plus
            ``RS256``, ``ES256`` and ``EdDSA`` with JWKS keys).
        issuer: required ``iss``, if set.
        audience: required ``aud`` (a token's string or list must contain it), if set.
        leeway_s: clock skew allowed on ``exp``/``nbf``/``iat``.
        require_exp: refuse tokens without ``exp`` (default: tokens verified with
            JWKS keys must have one; HS256 tokens need not).
        claims: how claims map to the identity (default: ``sub``, ``role``,
            ``perms``, ``ctx``).
        http: the httpx client for JWKS fetches.
        clock: the time source (inject :class:`avl.testing.FakeClock` in tests).

    Raises:
        avl.errors.ConfigError: no key source, a short secret, an unknown or
            mismatched algorithm.
        avl.errors.MissingDependencyError: PyJWT is not installed
            (``pip install 'avl[jwt]'``).

    Example:
        >>> jwt = JWTAuthenticator(b"x" * 32)
        >>> token = jwt.issue({"sub": "ann", "role": "analyst"})
        >>> jwt.authenticate({"authorization": "Bearer " + token}, None).role
        'analyst'
    """

    def __init__(
        self,
        secret: bytes | str | None = None,
        *,
        jwks_url: str | None = None,
        jwks: JWKSCache | None = None,
        algorithms: Sequence[str] | None = None,
        issuer: str | None = None,
        audience: str | None = None,
        leeway_s: float = 30.0,
        require_exp: bool | None = None,
        claims: ClaimMapping | None = None,
        http: httpx.Client | None = None,
        clock: Clock | None = None,
    ) -> None:
        require("jwt", extra="jwt")
        self._clock = clock or SystemClock()
        if isinstance(secret, str):
            secret = secret.encode("utf-8")
        if secret is not None and len(secret) < 32:
            raise ConfigError("the JWT secret must be at least 32 bytes")
        if jwks is None and jwks_url is not None:
            jwks = JWKSCache(jwks_url, http=http, clock=self._clock)
        if secret is None and jwks is None:
            raise ConfigError("JWTAuthenticator needs a secret (HS256) or a jwks_url")
        default: set[str] = set()
        if secret is not None:
            default.add("HS256")
        if jwks is not None:
            default |= {"RS256", "ES256", "EdDSA"}
        algs = frozenset(algorithms) if algorithms is not None else frozenset(default)
        unknown = algs - _SYMMETRIC - ASYMMETRIC_ALGORITHMS
        if unknown or not algs:
            raise ConfigError(
                f"unsupported JWT algorithm(s) {sorted(unknown)}; choose from "
                f"{sorted(_SYMMETRIC | ASYMMETRIC_ALGORITHMS)}"
            )
        if algs & _SYMMETRIC and secret is None:
            raise ConfigError("HS* algorithms need a secret")
        if algs & ASYMMETRIC_ALGORITHMS and jwks is None:
            raise ConfigError("RS*/ES*/EdDSA algorithms need JWKS keys (jwks_url)")
        self._secret = secret
        self._jwks = jwks
        self._algorithms = algs
        self._issuer = issuer
        self._audience = audience
        self._leeway_s = float(leeway_s)
        self._require_exp = require_exp
        self._claims = claims if claims is not None else ClaimMapping()

    @property
    def jwks(self) -> JWKSCache | None:
        """The JWKS cache, if any."""
        return self._jwks

    def issue(self, claims: Mapping[str, object]) -> str:
        """Sign claims with the HS256 secret (for tests and for a login endpoint of yours).

        Args:
            claims: the payload (JSON-serialisable).

        Returns:
            The compact JWT.

        Raises:
            avl.errors.ConfigError: this authenticator has no secret.
        """
        import jwt

        if self._secret is None:
            raise ConfigError("issue() needs the HS256 secret")
        return jwt.encode(dict(claims), self._secret, algorithm="HS256")

    def _header(self, token: str) -> Mapping[str, Any]:
        if len(token) > _MAX_TOKEN_CHARS:
            raise AuthenticationError("token too long")
        try:
            header = _b64json(token.split(".", 1)[0])
        except (ValueError, RecursionError, UnicodeDecodeError) as exc:
            raise AuthenticationError("malformed token") from exc
        if not isinstance(header, dict):
            raise AuthenticationError("malformed token")
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._algorithms:
            raise AuthenticationError(
                f"unsupported token algorithm {str(alg)[:20]!r} "
                f"(accepted: {', '.join(sorted(self._algorithms))})"
            )
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise AuthenticationError("malformed token: kid must be a string")
        return header

    def _token(self, headers: Mapping[str, str]) -> str | None:
        token = bearer_token(headers)
        if token is None or token.count(".") != 2:
            return None
        return token

    def authenticate(self, headers: Mapping[str, str], client: str | None) -> Identity | None:
        """See :meth:`avl.web.Authenticator.authenticate` (may fetch the JWKS: blocking).

        Raises:
            avl.errors.AuthenticationError: bad structure, algorithm, key, signature
                or claims, or an expired token.
            avl.errors.BackendUnavailableError: the JWKS could not be fetched and no
                key is held.
        """
        token = self._token(headers)
        if token is None:
            return None
        header = self._header(token)
        return self._verify(token, header)

    async def authenticate_async(
        self, headers: Mapping[str, str], client: str | None
    ) -> Identity | None:
        """:meth:`authenticate` for the event loop: a JWKS fetch runs in a worker thread.

        Raises:
            avl.errors.AuthenticationError: as :meth:`authenticate`.
            avl.errors.BackendUnavailableError: as :meth:`authenticate`.
        """
        token = self._token(headers)
        if token is None:
            return None
        header = self._header(token)
        jwks = self._jwks
        if header["alg"] in ASYMMETRIC_ALGORITHMS and jwks is not None:
            kid = header.get("kid")
            if jwks.needs_fetch(kid):
                import anyio.to_thread

                key = await anyio.to_thread.run_sync(jwks.key, kid)
                return self._verify(token, header, key)
        return self._verify(token, header)

    def _verify(
        self, token: str, header: Mapping[str, Any], key: tuple[Any, str] | None = None
    ) -> Identity:
        import jwt
        from jwt.exceptions import (
            InvalidAudienceError,
            InvalidIssuerError,
            InvalidSignatureError,
            MissingRequiredClaimError,
            PyJWTError,
        )

        alg: str = header["alg"]
        verify_key: Any
        if alg in _SYMMETRIC:
            verify_key = self._secret
        else:
            assert self._jwks is not None  # checked in __init__ against the algorithms
            if key is None:
                key = self._jwks.key(header.get("kid"))
            verify_key, key_alg = key
            if key_alg != alg:
                raise AuthenticationError(
                    f"the token's algorithm {alg!r} does not match its key ({key_alg})"
                )
        try:
            payload = jwt.decode(
                token,
                key=verify_key,
                algorithms=[alg],
                issuer=self._issuer,
                audience=self._audience,
                options={
                    "verify_exp": False,  # times are checked below on the injected clock
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_sub": False,  # the claim mapping checks the user claim
                    "verify_jti": False,
                    "verify_aud": self._audience is not None,
                    "verify_iss": self._issuer is not None,
                    "require": [],
                },
            )
        except InvalidSignatureError as exc:
            raise AuthenticationError("bad token signature") from exc
        except InvalidIssuerError as exc:
            raise AuthenticationError("wrong token issuer") from exc
        except MissingRequiredClaimError as exc:
            if exc.claim == "iss":
                raise AuthenticationError("wrong token issuer") from exc
            if exc.claim == "aud":
                raise AuthenticationError("wrong token audience") from exc
            raise AuthenticationError(f"token lacks the {exc.claim!r} claim") from exc
        except InvalidAudienceError as exc:
            raise AuthenticationError("wrong token audience") from exc
        except (PyJWTError, ValueError, TypeError, RecursionError) as exc:
            raise AuthenticationError(f"invalid token: {str(exc)[:200]}") from exc
        if not isinstance(payload, dict):
            raise AuthenticationError("malformed token claims")
        self._check_times(payload, asymmetric=alg not in _SYMMETRIC)
        return self._claims.identity(payload)

    def _check_times(self, payload: Mapping[str, Any], *, asymmetric: bool) -> None:
        now = self._clock.now()
        leeway = self._leeway_s
        for name in ("exp", "nbf", "iat"):
            value = payload.get(name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float))
            ):
                raise AuthenticationError(f"malformed token claims: {name} must be a number")
        exp = payload.get("exp")
        if exp is None:
            if self._require_exp if self._require_exp is not None else asymmetric:
                raise AuthenticationError("token has no expiry (exp)")
        elif now > exp + leeway:
            raise AuthenticationError("token expired")
        nbf = payload.get("nbf")
        if nbf is not None and now < nbf - leeway:
            raise AuthenticationError("token not yet valid")
        iat = payload.get("iat")
        if iat is not None and now < iat - leeway:
            raise AuthenticationError("token issued in the future")
