"""The Console: defaults, config mapping, TOML, environment, roles."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from avl.console import Console
from avl.errors import ConfigError
from avl.history import History
from avl.metrics import Metrics
from avl.ratelimit import RateLimiter
from avl.safety import Policy, SafeQuery


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = tmp_path / "x.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE staff (id INTEGER PRIMARY KEY, name TEXT, salary INTEGER);"
        "INSERT INTO staff VALUES (1, 'Ann', 10), (2, 'Bob', 20);"
    )
    conn.commit()
    conn.close()
    return f"sqlite:///{path}"


def test_defaults_use_the_demo_database() -> None:
    with Console() as console:
        assert console.assistant.ask("How many customers are there?").rows == ((12,),)
        assert isinstance(console.history, History)
        assert isinstance(console.metrics, Metrics)
        assert isinstance(console.limiter, RateLimiter)
        assert console.token_limiter is None
        assert isinstance(console.guard_for("anyone"), SafeQuery)
        assert console.policy_for(None).max_rows == 1000
        assert console.assistant.training_data("sql")[0].added_by == "demo"
        tmp = console._tmpdir
        assert tmp is not None
        assert Path(tmp).exists()
    assert not Path(tmp).exists()


def test_an_unclosed_console_leaves_no_demo_database_behind(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = "from avl.console import Console; c = Console(); print(c._tmpdir)"
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    made = Path(done.stdout.strip())
    assert made.parent == tmp_path
    assert not made.exists()
    assert list(tmp_path.iterdir()) == []


def test_from_config_with_roles(db: str) -> None:
    console = Console.from_config(
        {
            "db": db,
            "history": "",
            "metrics": False,
            "ratelimit": {"rates": "5/second", "storage": "memory://"},
            "policy": {"max_rows": 50},
            "roles": {"analyst": {"denied_columns": ["staff.salary"]}},
        }
    )
    assert console.history is None
    assert console.metrics is None
    assert console.policy_for("analyst").max_rows == 50
    assert isinstance(console.policy_for("analyst"), Policy)
    assert console.guard_for("analyst").check("SELECT salary FROM staff").allowed is False
    assert (
        console.guard_for(None).check("SELECT salary FROM staff").sql
        == "SELECT salary FROM staff LIMIT 50"
    )
    # the analyst's model never sees the salary column, and no salary comes back
    answer = console.assistant.ask("What is the average salary?", role="analyst")
    assert "salary" not in answer.sql.lower()
    assert not {10, 20, 15.0} & {v for row in answer.rows for v in row}
    assert console.assistant.ask("What is the average salary?").rows == ((15.0,),)
    console.close()


def test_from_toml_and_env(db: str, tmp_path: Path) -> None:
    toml = tmp_path / "avl.toml"
    toml.write_text(
        f'db = "{db}"\nhistory = "memory://"\n[assistant]\nmax_rows = 7\n[ratelimit]\nrates = ""\n'
    )
    c1 = Console.from_toml(toml)
    assert c1.limiter is None
    assert c1.assistant.max_rows == 7
    c1.close()
    c2 = Console.from_env(
        {"AVL_CONFIG": str(toml), "AVL_MAX_ROWS": "3", "AVL_TOKEN_BUDGET": "1000/day"}
    )
    assert c2.assistant.max_rows == 3
    assert isinstance(c2.token_limiter, RateLimiter)
    c2.close()


def test_bad_config(db: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown console config key"):
        Console(db=db, dbb="x")
    with pytest.raises(ConfigError, match="not valid TOML"):
        bad = tmp_path / "bad.toml"
        bad.write_text("db = ")
        Console.from_toml(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        Console.from_toml(tmp_path / "none.toml")
    with pytest.raises(ConfigError, match="AVL_MAX_ROWS"):
        Console.from_env({"AVL_DB": db, "AVL_MAX_ROWS": "many"})
    with pytest.raises(ConfigError, match="policy"):
        Console(db=db, policy={"no_such_option": 1})
