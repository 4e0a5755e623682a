"""The web examples run as written (each in its own process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(name: str) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout.splitlines()


def test_identity_provider_example() -> None:
    assert _run("web_identity_provider.py") == [
        "caller: web:ann",
        "analyst may read customers.name: False",
        "a forged token: 401 malformed token",
    ]


def test_stream_example() -> None:
    lines = _run("web_stream.py")
    assert lines[-1] == "check DELETE: False ['statement_kind']"
    assert any(line.endswith("] done") for line in lines)
