"""The Console: one object that wires the Assistant and the primitives from a config.

Build it from keyword overrides, a mapping, a TOML file or environment variables.
Everything has an embedded default, so ``Console()`` works with no configuration:
the sample SQLite database (created in a temporary directory), the offline model,
the hashing embedder (when available) with an in-memory vector store, a read-only
SafeQuery policy, an in-memory History and an in-memory rate limiter.

Config keys (all optional)::

    db = "sqlite:///shop.db"          # or postgresql://..., mysql://...
    model = "offline://"
    history = "memory://"             # or sqlite:///history.db, postgresql://..., "" for none
                                      # or a [history] table: url, hmac_key_env, retain_days,
                                      # anchor_file, anchor_every, anchor_every_s
                                      # (see avl.history.History.from_config)
    train_from_database = true
    metrics = true

    [ratelimit]                       # requests per user; omit or rates = "" for none
    rates = "10/second; 1000/day"
    storage = "memory://"             # or redis://...

    [token_budget]                    # prompt tokens per user
    rates = "200000/day"

    [assistant]                       # Assistant keyword arguments
    max_rows = 1000
    max_attempts = 3
    timeout_s = 10.0
    context_tokens = 2000
    cache_threshold = 0.95

    [policy]                          # Policy keyword arguments for everyone
    max_rows = 500

    [roles.analyst]                   # per-role Policy keyword arguments
    denied_columns = ["customers.email"]

Environment variables (``Console.from_env``): ``AVL_CONFIG`` (a TOML file read
first), ``AVL_DB``, ``AVL_MODEL``, ``AVL_HISTORY``, ``AVL_RATELIMIT``,
``AVL_RATELIMIT_STORAGE``, ``AVL_TOKEN_BUDGET``, ``AVL_MAX_ROWS``.

Example:
    >>> from avl.console import Console
    >>> console = Console()  # doctest: +SKIP
    >>> console.assistant.ask("How many customers are there?").rows  # doctest: +SKIP
    ((12,),)
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from avl.errors import ConfigError

__all__ = ["Console"]

_TOP_KEYS = frozenset(
    {
        "db",
        "model",
        "embedder",
        "history",
        "ratelimit",
        "token_budget",
        "policy",
        "roles",
        "assistant",
        "metrics",
        "train_from_database",
        "name",
        "store",
    }
)


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


class Console:
    """The wired primitives: Assistant, policies, limiter, history, metrics.

    Args:
        **overrides: config keys (see the module docs); objects are accepted too
            (``db=`` a DB-API connection, ``model=`` a ChatModel, ``history=`` a
            History, ``limiter=`` a RateLimiter, ``metrics=`` a Metrics).

    Raises:
        ConfigError: an unknown key or a bad value.

    Attributes:
        assistant: the :class:`~avl.assistant.Assistant`.
        policies: role -> :class:`~avl.safety.Policy` (``"default"`` always present).
        limiter: the request :class:`~avl.ratelimit.RateLimiter`, or ``None``.
        token_limiter: the token-budget limiter, or ``None``.
        history: the :class:`~avl.history.History`, or ``None``.
        metrics: the :class:`~avl.metrics.Metrics`, or ``None``.
        config: the effective configuration mapping.
    """

    def __init__(self, **overrides: Any) -> None:
        limiter_obj = overrides.pop("limiter", None)
        unknown = set(overrides) - _TOP_KEYS
        if unknown:
            raise ConfigError(
                f"unknown console config key(s): {', '.join(sorted(unknown))} "
                f"(known: {', '.join(sorted(_TOP_KEYS))})"
            )
        self.config: dict[str, Any] = dict(overrides)
        self._tmpdir: str | None = None
        from avl.assistant import Assistant
        from avl.safety import Policy

        db = overrides.get("db")
        if db is None or db == "":
            from avl.assistant._demo import DEMO_PAIRS, create_demo_database

            self._tmpdir = tempfile.mkdtemp(prefix="avl-demo-")
            # removed on close(), or when the Console is collected or the process exits
            self._finalizer = weakref.finalize(self, shutil.rmtree, self._tmpdir, True)
            path = create_demo_database(Path(self._tmpdir) / "demo.db")
            db = f"sqlite:///{path}"
            demo_pairs: tuple[tuple[str, str], ...] = DEMO_PAIRS
        else:
            demo_pairs = ()
        try:
            # ---- history
            history = overrides.get("history", "memory://")
            if isinstance(history, (str, Mapping)):
                if history:
                    from avl.history import History

                    history = History.from_config(history)
                else:
                    history = None
            self.history: Any = history
            # ---- metrics
            metrics = overrides.get("metrics", True)
            if metrics is True:
                from avl.metrics import Metrics

                metrics = Metrics()
            elif metrics is False or metrics is None:
                metrics = None
            self.metrics: Any = metrics
            # ---- rate limits
            self.limiter: Any = (
                limiter_obj
                if limiter_obj is not None
                else self._limiter(
                    overrides.get("ratelimit", {"rates": "10/second; 1000/day"}), "ratelimit"
                )
            )
            self.token_limiter: Any = self._limiter(overrides.get("token_budget"), "token_budget")
            # ---- assistant (policies need its dialect and schema)
            akw = dict(overrides.get("assistant") or {})
            if not isinstance(akw, Mapping):
                raise ConfigError("assistant: expected a table of Assistant keyword arguments")
            self.assistant: Any = Assistant(
                db,
                model=overrides.get("model", "offline://"),
                embedder=overrides.get("embedder", "default"),
                store=overrides.get("store"),
                history=self.history,
                metrics=self.metrics,
                limiter=self.limiter,
                token_limiter=self.token_limiter,
                name=overrides.get("name"),
                **akw,
            )
            if overrides.get("train_from_database", True):
                self.assistant.train_from_database()
            for q, s in demo_pairs:
                self.assistant.train(question=q, sql=s, added_by="demo")
            base = self.assistant._default_policy()
            pkw = overrides.get("policy") or {}
            if not isinstance(pkw, Mapping):
                raise ConfigError("policy: expected a table of Policy keyword arguments")
            import attrs

            try:
                default = attrs.evolve(base, **pkw) if pkw else base
                policies: dict[str, Any] = {"default": default}
                for role, rkw in (overrides.get("roles") or {}).items():
                    if isinstance(rkw, Policy):
                        policies[str(role)] = rkw
                    elif isinstance(rkw, Mapping):
                        policies[str(role)] = attrs.evolve(default, **rkw)
                    else:
                        raise ConfigError(
                            f"roles.{role}: expected a table of Policy keyword arguments"
                        )
            except TypeError as exc:
                raise ConfigError(f"bad policy option: {exc}") from exc
            self.policies: dict[str, Any] = policies
            self.assistant._policy = policies
            self.assistant._guards.clear()
        except BaseException:
            self._cleanup()
            raise

    @staticmethod
    def _limiter(spec: Any, key: str) -> Any:
        if spec is None or spec == "" or spec is False:
            return None
        if isinstance(spec, str):
            spec = {"rates": spec}
        if not isinstance(spec, Mapping):
            if hasattr(spec, "hit"):
                return spec
            raise ConfigError(f"{key}: expected a table with rates= and storage=")
        rates = spec.get("rates")
        if not rates:
            return None
        from avl.ratelimit import RateLimiter

        return RateLimiter(rates, storage=spec.get("storage", "memory://"))

    # ----------------------------------------------------------- constructors
    @classmethod
    def from_config(cls, mapping: Mapping[str, Any]) -> Console:
        """Build from a mapping of config keys.

        Raises:
            ConfigError: not a mapping, an unknown key or a bad value.
        """
        if not isinstance(mapping, Mapping):
            raise ConfigError(f"expected a mapping of config keys, got {type(mapping).__name__}")
        return cls(**dict(mapping))

    @classmethod
    def from_toml(cls, path: str | Path) -> Console:
        """Build from a TOML file.

        Raises:
            ConfigError: the file is missing or not valid TOML, or a bad value.
        """
        return cls(**_read_toml(path))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Console:
        """Build from environment variables (see the module docs).

        Args:
            environ: the variables (default ``os.environ``).

        Raises:
            ConfigError: a bad value.
        """
        env = dict(os.environ if environ is None else environ)
        cfg: dict[str, Any] = {}
        if env.get("AVL_CONFIG"):
            cfg = _read_toml(env["AVL_CONFIG"])
        over: dict[str, Any] = {}
        for var, key in (("AVL_DB", "db"), ("AVL_MODEL", "model"), ("AVL_HISTORY", "history")):
            if var in env:
                over[key] = env[var]
        if "AVL_RATELIMIT" in env:
            over["ratelimit"] = {"rates": env["AVL_RATELIMIT"]}
        if "AVL_RATELIMIT_STORAGE" in env:
            over.setdefault(
                "ratelimit", dict(cfg.get("ratelimit") or {"rates": "10/second; 1000/day"})
            )
            over["ratelimit"]["storage"] = env["AVL_RATELIMIT_STORAGE"]
        if "AVL_TOKEN_BUDGET" in env:
            over["token_budget"] = {"rates": env["AVL_TOKEN_BUDGET"]}
        if "AVL_MAX_ROWS" in env:
            try:
                over["assistant"] = {"max_rows": int(env["AVL_MAX_ROWS"])}
            except ValueError as exc:
                raise ConfigError(
                    f"AVL_MAX_ROWS must be an integer, got {env['AVL_MAX_ROWS']!r}"
                ) from exc
        return cls(**_merge(cfg, over))

    # ------------------------------------------------------------------ API
    def policy_for(self, role: str | None) -> Any:
        """The :class:`~avl.safety.Policy` of ``role`` (``"default"`` for unknown roles).

        Args:
            role: the role name (``None``: the default policy).

        Returns:
            The policy.
        """
        if role is None or role not in self.policies:
            return self.policies["default"]
        return self.policies[role]

    def guard_for(self, role: str | None) -> Any:
        """The :class:`~avl.safety.SafeQuery` of ``role``.

        Args:
            role: the role name.

        Returns:
            The guard (cached per role).
        """
        name = role if role is not None and role in self.policies else "default"
        return self.assistant.guard_for(name)

    def close(self) -> None:
        """Close the database, the history and remove the temporary demo database."""
        self.assistant.close()
        close = getattr(self.history, "close", None)
        if close is not None:
            close()
        self._cleanup()

    def _cleanup(self) -> None:
        if self._tmpdir is not None:
            self._finalizer()
            self._tmpdir = None

    def __enter__(self) -> Console:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Console(assistant={self.assistant!r}, roles={sorted(self.policies)})"


def _read_toml(path: str | Path) -> dict[str, Any]:
    import importlib

    try:
        tomllib: Any = importlib.import_module("tomllib")  # Python 3.11+
    except ImportError:  # pragma: no cover - Python 3.10
        try:
            tomllib = importlib.import_module("tomli")
        except ImportError as exc:
            raise ConfigError("reading TOML on Python 3.10 needs 'tomli' installed") from exc
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(p)!r}: {exc}") from exc
    try:
        data: dict[str, Any] = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{str(p)!r} is not valid TOML: {exc}") from exc
    return data
