"""The avl app served beside a Django project (examples/web_django.py), in a subprocess
(Django's settings are process-wide)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import unavailable

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "web_django.py"


def test_avl_beside_django_under_one_asgi_app() -> None:
    try:
        import django  # noqa: F401
    except ImportError:
        unavailable("django is not installed (it is in the test extra)")
    run = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        "{'app': 'my django site', 'path': '/'}",
        "{'status': 'ok'}",
        "200 True SELECT city FROM customers LIMIT 1000",
        "200 text/html; charset=utf-8 True",
        "404",
    ]
