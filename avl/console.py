"""The Console: one object that wires the Assistant and the primitives from a config.

Build it from keyword overrides, a mapping, a TOML file or environment variables.
Everything has an embedded default, so ``Console()`` works with no configuration:
the sample SQLite database (created in a temporary directory), the offline model,
the hashing embedder (when available) with an in-memory vector store, a read-only
SafeQuery policy, an in-memory History and an in-memory rate limiter.

Config keys (all optional)::

    db = "sqlite:///shop.db"          # or postgresql://..., mysql://..., duckdb:///...
                                      # or a [db] table: url, pool_size, schemas,
                                      # max_result_bytes... (avl.assistant.Database.from_config)
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

    [budgets]                         # cost budgets in USD (avl.costs.Budgets.from_config)
    period = "month"
    user = { "*" = 5.0 }

    [assistant]                       # Assistant keyword arguments
    max_rows = 1000
    max_attempts = 3
    timeout_s = 10.0
    context_tokens = 2000
    cache_threshold = 0.95

    training = "memory://"            # or sqlite:///training.db, postgresql://... (shared)

    [policy]                          # the "default" policy's Policy keyword arguments
    max_rows = 500

    [roles.analyst]                   # per-role Policy keyword arguments
    denied_columns = ["customers.email"]

Roles fail closed: with ``[roles.*]`` configured, a role that is not one of them is
refused (:class:`~avl.errors.UnknownRoleError`), and a request without a role uses
the ``"default"`` policy only when ``[policy]`` or ``[roles.default]`` configures
it. With no roles at all, the default policy applies to everyone.

Environment variables (``Console.from_env``): ``AVL_CONFIG`` (a TOML file read
first), ``AVL_DB``, ``AVL_MODEL``, ``AVL_HISTORY``, ``AVL_TRAINING``,
``AVL_RATELIMIT``, ``AVL_RATELIMIT_STORAGE``, ``AVL_TOKEN_BUDGET``, ``AVL_MAX_ROWS``.

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
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from avl.errors import ConfigError, UnknownRoleError

if TYPE_CHECKING:
    from avl.assistant import Assistant
    from avl.history import History
    from avl.metrics import Metrics
    from avl.safety import Policy
    from avl.typing import Guard, Limiter

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
        "training",
        "budgets",
    }
)


def _check_keys(section: str, given: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """Refuse keys of a config table that are not among ``allowed``: one line naming
    the table, the unknown key(s) and the allowed ones (a typo is never ignored)."""
    known = set(allowed)
    unknown = sorted(str(k) for k in given if k not in known)
    if unknown:
        keys = ", ".join(repr(k) for k in unknown)
        raise ConfigError(
            f"config [{section}]: unknown key{'s' if len(unknown) > 1 else ''} {keys} "
            f"(allowed: {', '.join(sorted(known))})"
        )


#: the Assistant keywords the Console sets itself (so not in ``[assistant]``)
_CONSOLE_SETS = frozenset(
    {
        "db",
        "model",
        "embedder",
        "store",
        "training",
        "policy",
        "history",
        "metrics",
        "limiter",
        "token_limiter",
        "budgets",
        "name",
    }
)


def _assistant_keys() -> list[str]:
    import inspect

    from avl.assistant import Assistant

    params = inspect.signature(Assistant.__init__).parameters.values()
    return [p.name for p in params if p.kind is p.KEYWORD_ONLY and p.name not in _CONSOLE_SETS]


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
        policies: role -> :class:`~avl.safety.Policy` (``"default"`` only when it
            applies: configured, or no roles configured at all).
        limiter: the request :class:`~avl.ratelimit.RateLimiter`, or ``None``.
        token_limiter: the token-budget limiter, or ``None``.
        history: the :class:`~avl.history.History`, or ``None``.
        metrics: the :class:`~avl.metrics.Metrics`, or ``None``.
        budgets: the cost :class:`~avl.costs.Budgets` (``[budgets]``), or ``None``.
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

        db = overrides.get("db")
        if db is None or db == "":
            from avl.assistant import DEMO_PAIRS, create_demo_database

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
            self.history: History | None = history
            # ---- metrics
            metrics = overrides.get("metrics", True)
            if metrics is True:
                from avl.metrics import Metrics

                metrics = Metrics()
            elif metrics is False or metrics is None:
                metrics = None
            self.metrics: Metrics | None = metrics
            # ---- rate limits
            self.limiter: Limiter | None = (
                limiter_obj
                if limiter_obj is not None
                else self._limiter(
                    overrides.get("ratelimit", {"rates": "10/second; 1000/day"}), "ratelimit"
                )
            )
            self.token_limiter: Limiter | None = self._limiter(
                overrides.get("token_budget"), "token_budget"
            )
            # ---- cost budgets
            self.budgets: Any = None
            if overrides.get("budgets"):
                from avl.costs import Budgets

                spec = overrides["budgets"]
                self.budgets = (
                    spec
                    if isinstance(spec, Budgets)
                    else Budgets.from_config(spec, metrics=self.metrics)
                )
            # ---- assistant (policies need its dialect and schema)
            akw = dict(overrides.get("assistant") or {})
            if not isinstance(akw, Mapping):
                raise ConfigError("assistant: expected a table of Assistant keyword arguments")
            _check_keys("assistant", akw, _assistant_keys())
            if isinstance(db, Mapping):
                from avl.assistant import Database

                db = Database.from_config(db, timeout_s=float(akw.get("timeout_s", 10.0)))
            self.assistant: Assistant = Assistant(
                db,
                model=overrides.get("model", "offline://"),
                embedder=overrides.get("embedder", "default"),
                store=overrides.get("store"),
                training=overrides.get("training"),
                history=self.history,
                metrics=self.metrics,
                limiter=self.limiter,
                token_limiter=self.token_limiter,
                budgets=self.budgets,
                name=overrides.get("name"),
                **akw,
            )
            pool_stats = getattr(self.assistant.db, "pool_stats", None)
            if self.metrics is not None and callable(pool_stats):
                self.metrics.gauge_callback(
                    "db_pool_connections",
                    pool_stats,
                    label="state",
                    help="Connections to the database asked: the pool's size and in use.",
                )
            if overrides.get("train_from_database", True):
                self.assistant.train_from_database()
            for q, s in demo_pairs:
                self.assistant.train(question=q, sql=s, added_by="demo")
            self.policies: dict[str, Policy] = self._policies(
                self.assistant.default_policy(), overrides.get("policy"), overrides.get("roles")
            )
            # no roles: one policy for everyone; roles: each named one, nothing else
            self._roles_configured = bool(overrides.get("roles"))
            self.assistant.policy = (
                dict(self.policies) if self._roles_configured else self.policies["default"]
            )
        except BaseException:
            self._cleanup()
            raise

    @staticmethod
    def _policies(base: Policy, pkw: object, roles: object) -> dict[str, Policy]:
        import attrs

        from avl.safety import Policy

        pkw = pkw or {}
        roles = roles or {}
        if not isinstance(pkw, Mapping):
            raise ConfigError("policy: expected a table of Policy keyword arguments")
        if not isinstance(roles, Mapping):
            raise ConfigError("roles: expected tables of Policy keyword arguments, one per role")
        policy_keys = [f.name for f in attrs.fields(Policy)]
        _check_keys("policy", pkw, policy_keys)
        try:
            default = attrs.evolve(base, **pkw) if pkw else base
            policies: dict[str, Policy] = {}
            if pkw or not roles:
                policies["default"] = default
            for role, rkw in roles.items():
                if not isinstance(role, str) or not role:
                    raise ConfigError(
                        f"roles: a role name must be a non-empty string, got {role!r}"
                    )
                if isinstance(rkw, Policy):
                    policies[role] = rkw
                elif isinstance(rkw, Mapping):
                    _check_keys(f"roles.{role}", rkw, policy_keys)
                    policies[role] = attrs.evolve(default, **rkw)
                else:
                    raise ConfigError(f"roles.{role}: expected a table of Policy keyword arguments")
        except TypeError as exc:
            raise ConfigError(f"bad policy option: {exc}") from exc
        return policies

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
        _check_keys(key, spec, ("rates", "storage"))
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
        for var, key in (
            ("AVL_DB", "db"),
            ("AVL_MODEL", "model"),
            ("AVL_HISTORY", "history"),
            ("AVL_TRAINING", "training"),
        ):
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
    def policy_for(self, role: str | None) -> Policy:
        """The :class:`~avl.safety.Policy` of ``role``.

        Args:
            role: the role name (``None``: a request without a role).

        Returns:
            The policy.

        Raises:
            UnknownRoleError: no policy is configured for ``role`` (with roles
                configured, only those roles, and ``"default"`` when configured).
        """
        name = self._role(role)
        return self.policies[name]

    def guard_for(self, role: str | None) -> Guard:
        """The :class:`~avl.safety.SafeQuery` of ``role`` (the Assistant's, cached).

        Args:
            role: the role name (``None``: a request without a role).

        Returns:
            The guard.

        Raises:
            UnknownRoleError: no policy is configured for ``role``.
        """
        self._role(role)
        return self.assistant.guard_for(role)

    def _role(self, role: str | None) -> str:
        if not self._roles_configured:
            return "default"  # no roles configured: one policy for everyone
        name = "default" if role is None else role
        if name not in self.policies:
            raise UnknownRoleError(role, sorted(self.policies))
        return name

    def close(self) -> None:
        """Close the database, the history and remove the temporary demo database."""
        self.assistant.close()
        close = getattr(self.history, "close", None)
        if close is not None:
            close()
        if self.budgets is not None:
            self.budgets.close()
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
