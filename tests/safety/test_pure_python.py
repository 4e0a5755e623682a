"""SafeQuery works on sqlglot's pure-Python modules too (no compiled sqlglotc)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import sqlglot

SCRIPT = """
import sqlglot.parser
assert sqlglot.parser.__file__.endswith(".py"), sqlglot.parser.__file__
from avl.safety import Policy, SafeQuery
guard = SafeQuery(Policy(dialect="postgres", max_rows=5, denied_columns=["users.password_hash"]))
print(guard.check("SELECT id FROM users").sql)
print([v.code.value for v in guard.check("SELECT * FROM users WHERE a = 1 OR 1 = 1").violations])
print([v.code.value for v in guard.check("WITH d AS (DELETE FROM users RETURNING *) SELECT * FROM d").violations])
"""


def test_pure_python_sqlglot(tmp_path: Path) -> None:
    source = Path(sqlglot.__file__).parent
    shutil.copytree(
        source, tmp_path / "sqlglot", ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__")
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(root)])}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "SELECT id FROM users LIMIT 5",
        "['column_denied', 'constant_predicate']",
        "['data_modifying_cte']",
    ]
