"""Config errors name the key and the allowed keys; every command that reads a
database, a History or a policy takes ``--config``; every command's help has examples."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from avl.cli import build_parser

from .conftest import run


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "avl.toml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("table", "key", "allowed"),
    [
        ("[policy]", "foo", "denied_columns"),
        ("[roles.analyst]", "denied_colums", "denied_columns"),
        ("[assistant]", "max_row", "max_rows"),
        ("[ratelimit]", "rate", "rates"),
    ],
)
def test_an_unknown_config_key_is_one_line_naming_it_and_the_allowed_keys(
    tmp_path: Path, shop: Path, table: str, key: str, allowed: str
) -> None:
    config = write(tmp_path, f'db = "sqlite:///{shop}"\n{table}\n{key} = 1\n')
    for argv in (
        ("ask", "how many customers?", "--config", config),
        ("check", "--config", config, "SELECT 1"),
        ("shell", "--config", config),
    ):
        code, out, err = run(*argv)
        assert code == 2, (argv, err)
        assert out == ""
        assert err.count("\n") == 1, err  # one line, no traceback
        section = table.strip("[]")
        assert f"config [{section}]: unknown key '{key}'" in err
        assert "(allowed: " in err
        assert allowed in err.split("(allowed: ")[1]


def test_check_under_a_role_of_a_config(tmp_path: Path, shop: Path) -> None:
    config = write(
        tmp_path,
        f'db = "sqlite:///{shop}"\n[roles.admin]\n[roles.analyst]\n'
        'denied_columns = ["customers.email"]\n',
    )
    code, out, _ = run(
        "check", "--config", config, "--role", "analyst", "SELECT email FROM customers"
    )
    assert code == 1
    assert "column_denied" in out
    code, out, _ = run(
        "check", "--config", config, "--role", "admin", "SELECT email FROM customers"
    )
    assert code == 0, out
    # the options narrow the config's policy, never widen it
    code, out, _ = run(
        "check",
        "--config",
        config,
        "--role",
        "admin",
        "--deny-column",
        "customers.city",
        "--max-rows",
        "5",
        "SELECT city FROM customers",
    )
    assert code == 1
    code, out, _ = run(
        "check",
        "--config",
        config,
        "--role",
        "admin",
        "--max-rows",
        "5",
        "SELECT name FROM customers",
    )
    assert (code, out.splitlines()[-1]) == (0, "SELECT name FROM customers LIMIT 5")
    # an unknown role fails closed; --role without a config is a usage error
    code, _, err = run("check", "--config", config, "--role", "nobody", "SELECT 1")
    assert code == 2
    assert "no policy is configured for role 'nobody'" in err
    code, _, err = run("check", "--role", "analyst", "SELECT 1")
    assert code == 2
    assert "--config" in err


def test_eval_and_history_read_the_config(tmp_path: Path, shop: Path) -> None:
    hist = tmp_path / "history.db"
    config = write(tmp_path, f'db = "sqlite:///{shop}"\nhistory = "sqlite:///{hist}"\n')
    code, _, err = run(
        "ask",
        "How many customers are there?",
        "--config",
        config,
        "--training",
        str(tmp_path / "t.jsonl"),
    )
    assert code == 0, err
    code, out, err = run("history", "--config", config, "--json")
    assert code == 0, err
    items = json.loads(out)["items"]
    assert "How many customers are there?" in {e["question"] for e in items}
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        json.dumps(
            {"question": "How many customers are there?", "sql": "SELECT COUNT(*) FROM customers"}
        )
        + "\n"
    )
    code, out, err = run("eval", str(questions), "--config", config, "--no-loo", "--json")
    assert code == 0, err
    assert json.loads(out)["questions"] == 1


def _parsers() -> Iterator[tuple[str, argparse.ArgumentParser]]:
    def walk(
        p: argparse.ArgumentParser, path: str
    ) -> Iterator[tuple[str, argparse.ArgumentParser]]:
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for name, sub in a.choices.items():
                    yield f"{path} {name}".strip(), sub
                    yield from walk(sub, f"{path} {name}")

    yield from walk(build_parser(), "")


def test_every_command_has_examples_and_every_option_help() -> None:
    seen = 0
    for name, p in _parsers():
        seen += 1
        assert p.epilog, name
        assert "examples:" in p.epilog, name
        assert f"avl {name.split()[0]}" in p.epilog, name
        for a in p._actions:
            if isinstance(a, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            assert a.help, f"{name}: {a.option_strings or a.dest} has no help"
        assert "examples:" in p.format_help()
    assert seen >= 20


def test_every_command_reading_a_database_history_or_policy_takes_config() -> None:
    readers = {"--db", "--history", "--role", "--allow-table", "--deny-column"}
    for name, p in _parsers():
        options = {s for a in p._actions for s in a.option_strings}
        # demo writes its sample database; init writes a config; keys create names a role
        if options & readers and name not in {"demo", "init", "keys create"}:
            assert "--config" in options, name
