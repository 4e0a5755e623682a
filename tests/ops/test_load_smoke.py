"""A very short smoke run of the load test (benches/load): every endpoint answers,
without errors, under locust, beside the bare Starlette peer. Timings are never asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def test_smoke_scenario_runs_every_endpoint(tmp_path: Path) -> None:
    import importlib.util

    # never import locust here: it monkey-patches the standard library (gevent)
    if importlib.util.find_spec("locust") is None:
        pytest.skip("locust is not installed (pip install 'avl[load]')")
    out = tmp_path / "results.json"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benches" / "load" / "run.py"),
            "--scenario",
            "smoke",
            "--duration",
            "2",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = json.loads(out.read_text())["results"]["smoke"]
    names = [r["name"] for r in rows]
    assert names == [
        "avl GET /healthz",
        "bare Starlette GET /healthz",
        "avl POST /v1/sql/check (cached)",
        "bare Starlette POST /echo (JSON)",
        "avl POST /v1/sql/check (uncached)",
        "avl POST /v1/ask (offline)",
    ]
    for r in rows:
        assert r["requests"] > 0, r
        assert r["errors"] == 0.0, r
    assert "avl POST /v1/ask (offline)" in result.stdout  # the table was printed
