"""The offline generator's example runs end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_offline_example() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "offline_generator.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=ROOT,
    )
    lines = done.stdout.splitlines()
    assert "  sql: SELECT city FROM customers GROUP BY city ORDER BY COUNT(*) DESC LIMIT 1" in lines
    assert (
        "  sql: SELECT name FROM products WHERE NOT id IN "
        "(SELECT product_id FROM order_items) LIMIT 1000"
    ) in lines
    assert (
        "adapted: SELECT name FROM customers WHERE signup_year = 2021 AND city = 'Paris' LIMIT 1000"
    ) in lines
    assert lines.count("  abstained: True") == 3
    assert "mysql: SELECT `group`, COUNT(*) FROM `user` GROUP BY `group`" in lines
