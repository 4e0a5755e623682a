"""Python 3.10 as declared: TOML through tomli where tomllib is missing, and the
compiled sqlglotc only where PyPI has a wheel for it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]

# Measured for sqlglotc 30.30.0 with
#   pip download --no-deps --only-binary=:all: --platform P --python-version V sqlglotc==30.30.0
# (macOS wheels are universal2, built for 10.9/10.13/10.15 and later).
WHEELS = {
    ("linux", "x86_64", "3.10"): False,
    ("linux", "x86_64", "3.11"): True,
    ("linux", "x86_64", "3.12"): True,
    ("linux", "x86_64", "3.13"): True,
    ("linux", "x86_64", "3.14"): True,
    ("linux", "aarch64", "3.10"): False,
    ("linux", "aarch64", "3.12"): True,
    ("linux", "i686", "3.12"): False,
    ("darwin", "arm64", "3.10"): False,
    ("darwin", "arm64", "3.12"): True,
    ("darwin", "x86_64", "3.11"): True,
    ("darwin", "x86_64", "3.13"): True,
    ("win32", "AMD64", "3.10"): False,
    ("win32", "AMD64", "3.12"): True,
    ("win32", "x86", "3.12"): False,
}


def _dependencies() -> list[Requirement]:
    try:
        import tomllib
    except ImportError:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return [Requirement(r) for r in data["project"]["dependencies"]]


@pytest.mark.parametrize(("platform", "machine", "python"), sorted(WHEELS))
def test_sqlglotc_is_asked_for_only_where_a_wheel_exists(
    platform: str, machine: str, python: str
) -> None:
    (req,) = [r for r in _dependencies() if r.name == "sqlglotc"]
    assert req.marker is not None
    env = {
        "python_version": python,
        "platform_python_implementation": "CPython",
        "sys_platform": platform,
        "platform_machine": machine,
    }
    assert req.marker.evaluate(env) is WHEELS[(platform, machine, python)]
    assert req.marker.evaluate({**env, "platform_python_implementation": "PyPy"}) is False


def test_sqlglot_itself_has_no_compiled_extra_and_tomli_is_there_for_310() -> None:
    deps = {r.name: r for r in _dependencies()}
    assert deps["sqlglot"].extras == set()
    tomli = deps["tomli"]
    assert tomli.marker is not None
    assert tomli.marker.evaluate({"python_version": "3.10"}) is True
    assert tomli.marker.evaluate({"python_version": "3.11"}) is False


@pytest.fixture
def no_tomllib(monkeypatch: pytest.MonkeyPatch) -> None:
    """Python 3.10: ``import tomllib`` fails (tomli is installed, as the marker asks)."""
    import tomli  # noqa: F401  (in the test extra: the 3.10 path runs on every Python)

    monkeypatch.setitem(sys.modules, "tomllib", None)


def test_console_toml_config_without_tomllib(no_tomllib: None, tmp_path: Path) -> None:
    from avl.console import _read_toml

    cfg = tmp_path / "avl.toml"
    cfg.write_text('db = "sqlite:///shop.db"\n[assistant]\nmax_rows = 7\n')
    assert _read_toml(cfg) == {"db": "sqlite:///shop.db", "assistant": {"max_rows": 7}}


def test_api_key_toml_file_without_tomllib(no_tomllib: None, tmp_path: Path) -> None:
    from avl.web import ApiKeyAuthenticator, hash_api_key

    keys = tmp_path / "keys.toml"
    keys.write_text(
        f'[[keys]]\nsha256 = "{hash_api_key("k-0123456789abcdef")}"\nuser = "ann"\nrole = "analyst"\n'
    )
    auth = ApiKeyAuthenticator.from_file(keys)
    who = auth.authenticate({"authorization": "Bearer k-0123456789abcdef"}, None)
    assert who is not None
    assert (who.user, who.role) == ("ann", "analyst")
