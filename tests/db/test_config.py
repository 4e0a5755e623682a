"""The database's settings from a config table (the Console's ``[db]``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from avl.assistant import Database
from avl.assistant._demo import create_demo_database
from avl.console import Console
from avl.errors import ConfigError


def test_console_db_table_sets_the_pool_and_timeout(tmp_path: Path) -> None:
    path = create_demo_database(tmp_path / "shop.db")
    toml = tmp_path / "avl.toml"
    toml.write_text(
        f'[db]\nurl = "sqlite:///{path}"\npool_size = 6\nmax_result_bytes = 100000\n'
        "[assistant]\ntimeout_s = 3.5\n"
    )
    console = Console.from_toml(toml)
    db = console.assistant.db
    assert (db.pool_size, db.timeout_s, db.max_result_bytes) == (6, 3.5, 100_000)
    assert console.assistant.ask("How many customers are there?").rows == ((12,),)
    console.close()


@pytest.mark.parametrize(
    ("table", "match"),
    [
        ({"pool_size": 3}, "needs url"),
        ({"url": "sqlite:///x.db", "poolsize": 2}, "unknown key.*poolsize"),
        ({"url": "sqlite:///x.db", "pool_size": 0}, "pool_size must be a positive integer"),
        ({"url": "sqlite:///x.db", "memory_mb": -5}, "memory_mb must be a positive number"),
        ({"url": "sqlit:///x.db"}, "did you mean 'sqlite'"),
    ],
)
def test_bad_db_tables_are_config_errors(table: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Database.from_config(table)
