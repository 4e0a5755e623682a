"""``avl init``: the wizard and the non-interactive flags write a config a Console reads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from avl.assistant import create_demo_database
from avl.cli._init import to_toml
from avl.console import Console

ROOT = Path(__file__).resolve().parents[2]


def run(
    tmp_path: Path, *argv: str, stdin: str = "", env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "avl.cli", "init", *argv],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1", **(env or {})},
        check=False,
    )
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    return create_demo_database(tmp_path / "shop.db")


def test_non_interactive_writes_a_config_the_console_builds_from(
    tmp_path: Path, shop: Path
) -> None:
    code, out, err = run(
        tmp_path,
        "--non-interactive",
        "--db",
        f"sqlite:///{shop}",
        "--history",
        "none",
        "--rates",
        "5/second",
        "--deny-column",
        "analyst:customers.email",
        "--row-filter",
        "analyst:orders=customer_id = :cid",
    )
    assert code == 0, err
    assert "wrote avl.toml" in out
    cfg = tomllib.loads((tmp_path / "avl.toml").read_text())
    assert cfg == {
        "db": f"sqlite:///{shop}",
        "model": "offline://",
        "history": "",
        "ratelimit": {"rates": "5/second", "storage": "memory://"},
        "roles": {
            "analyst": {
                "denied_columns": ["customers.email"],
                "row_filters": {"orders": "customer_id = :cid"},
            }
        },
    }
    console = Console.from_toml(tmp_path / "avl.toml")
    try:
        verdict = console.guard_for("analyst").check("SELECT email FROM customers")
        assert not verdict.allowed
        assert "column_denied" in {str(v.code.value) for v in verdict.violations} or any(
            "email" in v.message for v in verdict.violations
        )
    finally:
        console.close()


def test_refuses_to_overwrite_and_reports_a_bad_database(tmp_path: Path, shop: Path) -> None:
    (tmp_path / "avl.toml").write_text("db = 'x'\n")
    code, _, err = run(tmp_path, "--non-interactive", "--db", f"sqlite:///{shop}")
    assert code == 2
    assert "avl.toml exists (use --force" in err
    code, _, err = run(
        tmp_path, "--non-interactive", "--force", "--db", f"sqlite:///{tmp_path}/missing.db"
    )
    assert code == 2
    assert "cannot use sqlite:///" in err
    assert (tmp_path / "avl.toml").read_text() == "db = 'x'\n"


def test_wizard_retries_a_bad_url_and_never_writes_a_key(tmp_path: Path, shop: Path) -> None:
    answers = "\n".join(
        [
            f"sqlite:///{tmp_path}/nope.db",  # refused, asked again
            f"sqlite:///{shop}",
            "openai://?model=gpt-4o",
            "",  # history: default
            "none",  # no rate limit
            "y",  # add a role
            "support",
            "customers.email, customers.city",
            "y",
            "orders",
            "customer_id = :cid",
            "n",
            "n",
        ]
    )
    code, out, err = run(tmp_path, stdin=answers + "\n", env={"OPENAI_API_KEY": "sk-secret-123"})
    assert code == 0, err
    assert "cannot use sqlite:///" in out
    assert "connected: 4 table(s)" in out
    assert "OPENAI_API_KEY is set" in out
    text = (tmp_path / "avl.toml").read_text()
    assert "sk-secret-123" not in text
    cfg = tomllib.loads(text)
    assert cfg["model"] == "openai://?model=gpt-4o"
    assert cfg["history"] == "sqlite:///avl_history.db"
    assert cfg["ratelimit"] == {"rates": ""}
    assert cfg["roles"] == {
        "support": {
            "denied_columns": ["customers.email", "customers.city"],
            "row_filters": {"orders": "customer_id = :cid"},
        }
    }


def test_to_toml_round_trips_awkward_strings() -> None:
    config = {
        "db": 'sqlite:///a "b"\\c.db',
        "roles": {"we ird": {"row_filters": {"order items": "note = 'x\ny'"}}},
        "flag": True,
    }
    assert tomllib.loads(to_toml(config, header="h")) == config
