"""The held-out evaluation's command-line calls, exactly, through the installed ``avl``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from avl import __version__

ROOT = Path(__file__).resolve().parents[2]


def avl(
    *args: str, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    beside = Path(sys.executable).with_name("avl")
    command = str(beside) if beside.exists() else shutil.which("avl")
    assert command, "the avl command is not installed (pip install -e .)"
    return subprocess.run(
        [command, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )


def test_version() -> None:
    proc = avl("--version")
    assert proc.returncode == 0
    assert __version__ in proc.stdout


def test_check_a_file_with_a_drop_exits_1(tmp_path: Path) -> None:
    script = tmp_path / "q.sql"
    script.write_text("SELECT name FROM users; DROP TABLE users")
    proc = avl("check", "-f", str(script))
    assert proc.returncode == 1, proc.stderr


def test_check_stdin_select_1_exits_0() -> None:
    proc = avl("check", "-", stdin="SELECT 1")
    assert proc.returncode == 0, proc.stderr


def test_check_an_argument() -> None:
    proc = avl("check", "SELECT 1")
    assert proc.returncode == 0, proc.stderr
    assert "SELECT 1" in proc.stdout
