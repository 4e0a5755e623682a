"""The vector examples run as a user would run them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(name: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.slow  # loads the local model in a fresh process
def test_vectors_hnsw_example() -> None:
    out = _run("vectors_hnsw.py")
    assert "graph on reopen: saved" in out
    lines = out.splitlines()
    first = lines[lines.index("question: number of singers older than 30") + 1]
    assert "singers" in first
