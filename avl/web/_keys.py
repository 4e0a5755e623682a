"""API keys people can manage: the key file (``avl keys``) and an authenticator
that follows it.

A key file is JSON (or TOML) holding a list ``keys``; each entry stores the key's
SHA-256, never the key itself, with an id to list and revoke it by::

    {"keys": [{"id": "k3f9a0c1d", "sha256": "6f1e...", "user": "ann",
               "role": "analyst", "permissions": [], "context": {"tenant_id": 7},
               "created": 1767225600}]}

The file is rewritten atomically (a temporary file renamed over it, mode 0600), so
a server reading it never sees half a file. :class:`KeyFileAuthenticator` notices a
change within ``check_every_s`` and serves the new keys: a revoked key stops
working without a restart.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import secrets
import tempfile
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from avl._clock import Clock, SystemClock
from avl.errors import ConfigError, NotFoundError
from avl.web._auth import ApiKeyAuthenticator, Identity, hash_api_key

__all__ = ["KeyFile", "KeyFileAuthenticator", "KeyRecord"]

log = logging.getLogger("avl.web")

_FIELDS = frozenset({"id", "sha256", "user", "role", "permissions", "context", "created"})


@attrs.frozen(kw_only=True)
class KeyRecord:
    """One stored API key (its hash, not the key).

    Attributes:
        id: the key's id (to list and revoke it by); ``None`` for entries written
            by hand without one.
        sha256: the key's SHA-256 (:func:`avl.web.hash_api_key`).
        identity: who the key authenticates as.
        created: when it was created (Unix time), if known.
    """

    id: str | None
    sha256: str
    identity: Identity
    created: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The entry as written to the file."""
        out: dict[str, Any] = {}
        if self.id is not None:
            out["id"] = self.id
        out["sha256"] = self.sha256
        out["user"] = self.identity.user
        out["role"] = self.identity.role
        out["permissions"] = sorted(self.identity.permissions)
        out["context"] = dict(self.identity.context)
        if self.created is not None:
            out["created"] = self.created
        return out


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string uses the same escapes
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return (
            "{ "
            + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items())
            + " }"
        )
    raise ConfigError(f"cannot write {value!r} to a TOML key file")


class KeyFile:
    """A JSON or TOML file of hashed API keys.

    Args:
        path: the file (``.json``, or ``.toml``); it need not exist yet.
        clock: the time source for ``created``.

    Example:
        >>> kf = KeyFile(tmp / "keys.json")                         # doctest: +SKIP
        >>> record, key = kf.create(user="ann", role="analyst")     # doctest: +SKIP
        >>> [r.id for r in kf.records()] == [record.id]             # doctest: +SKIP
        True
    """

    def __init__(self, path: str | os.PathLike[str], *, clock: Clock | None = None) -> None:
        self.path = Path(path)
        self._clock = clock or SystemClock()

    @property
    def is_toml(self) -> bool:
        """Whether the file is TOML (else JSON)."""
        return self.path.suffix.lower() == ".toml"

    def _load(self, missing_ok: bool) -> list[dict[str, Any]]:
        p = self.path
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            if missing_ok:
                return []
            raise ConfigError(f"cannot read API keys file {str(p)!r}: it does not exist") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read API keys file {str(p)!r}: {exc}") from exc
        try:
            if self.is_toml:
                try:
                    tomllib = importlib.import_module("tomllib")  # Python 3.11+
                except ImportError:  # Python 3.10: tomli, a dependency there
                    tomllib = importlib.import_module("tomli")
                data = tomllib.loads(text)
            else:
                data = json.loads(text)
        except ImportError as exc:
            raise ConfigError(
                "TOML key files need Python 3.11+ or 'tomli' installed; or use a .json file"
            ) from exc
        except (ValueError, RecursionError) as exc:
            raise ConfigError(
                f"{str(p)!r} is not valid {'TOML' if self.is_toml else 'JSON'}: {exc}"
            ) from exc
        rows = data.get("keys") if isinstance(data, dict) else None
        if not isinstance(rows, list):
            raise ConfigError(f"{str(p)!r}: expected a list 'keys' of tables")
        return rows

    def records(self, *, missing_ok: bool = True) -> list[KeyRecord]:
        """Every stored key, in file order.

        Args:
            missing_ok: an absent file has no keys (else it is an error).

        Raises:
            avl.errors.ConfigError: the file is unreadable or malformed (or absent,
                with ``missing_ok=False``).
        """
        out: list[KeyRecord] = []
        p = self.path
        for i, row in enumerate(self._load(missing_ok)):
            if not isinstance(row, dict) or not isinstance(row.get("sha256"), str):
                raise ConfigError(f"{str(p)!r}: keys[{i}] needs a 'sha256' string")
            unknown = set(row) - _FIELDS
            if unknown:
                raise ConfigError(f"{str(p)!r}: keys[{i}] has unknown field(s) {sorted(unknown)}")
            digest = row["sha256"].lower()
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise ConfigError(f"{str(p)!r}: keys[{i}]: sha256 must be 64 hex characters")
            created = row.get("created")
            if created is not None and (
                isinstance(created, bool) or not isinstance(created, (int, float))
            ):
                raise ConfigError(f"{str(p)!r}: keys[{i}]: created must be a number")
            key_id = row.get("id")
            if key_id is not None and not isinstance(key_id, str):
                raise ConfigError(f"{str(p)!r}: keys[{i}]: id must be a string")
            try:
                identity = Identity(
                    user=row.get("user", ""),
                    role=row.get("role", "default"),
                    context=row.get("context", {}),
                    permissions=frozenset(row.get("permissions", ())),
                )
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"{str(p)!r}: keys[{i}]: {exc}") from exc
            out.append(KeyRecord(id=key_id, sha256=digest, identity=identity, created=created))
        return out

    def identities(self) -> dict[str, Identity]:
        """``{sha256: Identity}`` for :class:`avl.web.ApiKeyAuthenticator`.

        Raises:
            avl.errors.ConfigError: the file is absent, unreadable or malformed.
        """
        return {r.sha256: r.identity for r in self.records(missing_ok=False)}

    def _write(self, records: Iterable[KeyRecord]) -> None:
        rows = [r.to_dict() for r in records]
        if self.is_toml:
            parts = []
            for row in rows:
                parts.append(
                    "[[keys]]\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in row.items())
                )
            text = "\n".join(parts) if parts else "keys = []\n"
        else:
            text = json.dumps({"keys": rows}, indent=2, ensure_ascii=False) + "\n"
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".avl-keys-", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def create(
        self,
        *,
        user: str,
        role: str = "default",
        permissions: Iterable[str] = (),
        context: Mapping[str, object] | None = None,
    ) -> tuple[KeyRecord, str]:
        """Make a new key, store its hash, and return it (shown once, never stored).

        Args:
            user: who the key authenticates as.
            role: the role (it picks the SafeQuery policy).
            permissions: some of :data:`avl.web.PERMISSIONS`.
            context: row-filter values (scalars).

        Returns:
            ``(record, key)``: the stored record and the plain key.

        Raises:
            avl.errors.ConfigError: an empty user, an unknown permission, a context
                value that is not a scalar, or a malformed file.
        """
        for k, v in (context or {}).items():
            if not isinstance(k, str) or not isinstance(v, (str, int, float, bool)):
                raise ConfigError(f"context values must be strings, numbers or booleans: {k}={v!r}")
        try:
            identity = Identity(
                user=user,
                role=role,
                permissions=frozenset(permissions),
                context=dict(context or {}),
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"bad key: {exc}") from exc
        records = self.records()
        taken = {r.id for r in records}
        key_id = "k" + secrets.token_hex(4)
        while key_id in taken:
            key_id = "k" + secrets.token_hex(4)
        key = "avl_" + secrets.token_urlsafe(32)
        record = KeyRecord(
            id=key_id, sha256=hash_api_key(key), identity=identity, created=round(self._clock.now())
        )
        self._write([*records, record])
        return record, key

    def revoke(self, key_id: str) -> KeyRecord:
        """Remove the key with this id.

        Args:
            key_id: the id :meth:`create` gave (``avl keys list`` shows it).

        Returns:
            The removed record.

        Raises:
            avl.errors.NotFoundError: no key has this id.
            avl.errors.ConfigError: the file is unreadable or malformed.
        """
        records = self.records()
        kept = [r for r in records if r.id != key_id]
        if len(kept) == len(records):
            raise NotFoundError(f"no API key with id {key_id!r} in {str(self.path)!r}")
        self._write(kept)
        return next(r for r in records if r.id == key_id)


class KeyFileAuthenticator:
    """API keys from a :class:`KeyFile`, reloaded when the file changes.

    At most once per ``check_every_s`` the file's modification time and size are
    compared with the last load; on a change it is read again. A file that fails
    to load (a hand edit gone wrong) keeps the previous keys and logs a warning.

    Args:
        path: the key file.
        check_every_s: how often to look for a change.
        clock: the time source.

    Raises:
        avl.errors.ConfigError: the file cannot be loaded at start.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        check_every_s: float = 1.0,
        clock: Clock | None = None,
    ) -> None:
        self._file = KeyFile(path)
        self._clock = clock or SystemClock()
        self.check_every_s = float(check_every_s)
        self._lock = threading.Lock()
        self._stamp = self._stat()
        self._inner = ApiKeyAuthenticator(self._file.identities())
        self._checked = self._clock.monotonic()

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = self._file.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def _maybe_reload(self) -> None:
        now = self._clock.monotonic()
        if now - self._checked < self.check_every_s:
            return
        with self._lock:
            if now - self._checked < self.check_every_s:
                return
            self._checked = now
            stamp = self._stat()
            if stamp == self._stamp:
                return
            try:
                inner = ApiKeyAuthenticator(self._file.identities())
            except ConfigError as exc:
                log.warning("keeping the previous API keys: %s", exc)
                return
            self._inner, self._stamp = inner, stamp

    def authenticate(self, headers: Mapping[str, str], client: str | None) -> Identity | None:
        """See :meth:`avl.web.Authenticator.authenticate`.

        Raises:
            avl.errors.AuthenticationError: a key was sent but matches none.
        """
        self._maybe_reload()
        return self._inner.authenticate(headers, client)
