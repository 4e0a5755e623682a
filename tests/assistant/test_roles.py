"""Unknown roles fail closed on every entry point: the Assistant (mapping, PolicySet),
the Console (mapping, TOML, environment), the CLI and the web adapter over HTTP."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from avl.assistant import Assistant
from avl.cli import main
from avl.console import Console
from avl.errors import PermissionDeniedError, UnknownRoleError
from avl.safety import Policy, PolicySet
from avl.testing import FakeChatModel
from tests.conftest import need_module

ROLES_TOML = """
history = ""
[ratelimit]
rates = ""
[roles.analyst]
denied_columns = ["staff.salary"]
"""


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


def test_unknown_role_error_is_a_permission_error() -> None:
    exc = UnknownRoleError("analsyt", ["analyst", "default"])
    assert isinstance(exc, PermissionDeniedError)
    assert isinstance(exc, PermissionError)
    assert (exc.role, exc.roles) == ("analsyt", ("analyst", "default"))
    assert str(exc) == (
        "no policy is configured for role 'analsyt' (configured roles: analyst, default)"
    )


@pytest.mark.parametrize(
    "policy",
    [
        {"analyst": Policy(denied_columns=["staff.salary"]), "default": Policy()},
        PolicySet({"analyst": Policy(denied_columns=["staff.salary"]), "default": Policy()}),
    ],
    ids=["mapping", "policyset"],
)
def test_assistant_refuses_an_unknown_role_before_the_model(db: str, policy: Any) -> None:
    model = FakeChatModel(default="SELECT name, salary FROM staff")
    a = Assistant(db=db, model=model, policy=policy)
    a.train_from_database()
    for call in (
        lambda: a.ask("salaries?", role="analsyt"),
        lambda: a.guard_for("admin"),
        lambda: a.policy_for("admin"),
        lambda: a.view("admin"),
        lambda: a.explain("SELECT name FROM staff", role="admin"),
        lambda: a.retrieval_tables("salaries?", role="admin"),
    ):
        with pytest.raises(UnknownRoleError):
            call()
    events = list(a.stream("salaries?", role="Analyst"))  # a stream reports it as an event
    assert [e.kind.value for e in events] == ["error", "done"]
    assert events[0].data["type"] == "UnknownRoleError"
    assert model.calls == []
    # the configured ones work; "default" only because it is configured
    assert a.ask("who?", role="default").rows == (("Ann", 10), ("Bob", 20))
    assert a.ask("who?").rows == (("Ann", 10), ("Bob", 20))
    assert a.ask("who?", role="analyst").verdict.allowed is False  # type: ignore[union-attr]


def test_a_request_without_a_role_needs_a_default_role(db: str) -> None:
    model = FakeChatModel(default="SELECT name FROM staff")
    a = Assistant(db=db, model=model, policy={"analyst": Policy()})
    with pytest.raises(UnknownRoleError, match="role None"):
        a.ask("who?")
    assert a.ask("who?", role="analyst").rows == (("Ann",), ("Bob",))


def test_one_policy_for_everyone_needs_no_roles(db: str) -> None:
    a = Assistant(db=db, model=FakeChatModel(default="SELECT name FROM staff"))
    assert a.ask("who?", role="whoever").rows == (("Ann",), ("Bob",))


def _console_calls(console: Console) -> None:
    for call in (
        lambda: console.policy_for("analsyt"),
        lambda: console.guard_for("analsyt"),
        lambda: console.assistant.ask("salaries?", role="analsyt"),
        lambda: console.assistant.ask("salaries?"),  # roles but no default: refused too
    ):
        with pytest.raises(UnknownRoleError):
            call()


def test_console_mapping_toml_and_environment(db: str, tmp_path: Path) -> None:
    model = FakeChatModel(default="SELECT name, salary FROM staff")
    c1 = Console.from_config(
        {"db": db, "history": "", "model": model, "roles": {"analyst": {"max_rows": 5}}}
    )
    _console_calls(c1)
    assert sorted(c1.policies) == ["analyst"]
    assert c1.policy_for("analyst").max_rows == 5
    c1.close()
    toml = tmp_path / "avl.toml"
    toml.write_text(f'db = "{db}"\n' + ROLES_TOML)
    c2 = Console.from_toml(toml)
    _console_calls(c2)
    c2.close()
    c3 = Console.from_env({"AVL_CONFIG": str(toml), "AVL_MODEL": "offline://"})
    _console_calls(c3)
    c3.close()
    assert model.calls == []
    # with [policy], "default" is configured: requests without a role use it
    c4 = Console(db=db, history="", policy={"max_rows": 1}, roles={"analyst": {}})
    assert sorted(c4.policies) == ["analyst", "default"]
    assert c4.guard_for(None).policy.max_rows == 1  # type: ignore[attr-defined]
    with pytest.raises(UnknownRoleError):
        c4.guard_for("nobody")
    c4.close()
    # no roles at all: one policy for everyone
    c5 = Console(db=db, history="")
    assert c5.guard_for("anyone") is c5.guard_for(None)
    c5.close()


def test_cli_ask_with_an_unknown_role(db: str, tmp_path: Path) -> None:
    toml = tmp_path / "avl.toml"
    toml.write_text(f'db = "{db}"\n' + ROLES_TOML)
    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["ask", "salaries?", "--config", str(toml), "--role", "analsyt", "--training", "none"],
        out=out,
        err=err,
    )
    assert code == 2
    assert "no policy is configured for role 'analsyt'" in err.getvalue()
    assert out.getvalue() == ""
    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["ask", "who works here?", "--config", str(toml), "--role", "analyst"],
        out=out,
        err=err,
    )
    assert code == 0, err.getvalue()


@pytest.mark.anyio
async def test_web_identity_with_an_unconfigured_role_gets_403(db: str) -> None:
    need_module("starlette")
    from avl.web import ApiKeyAuthenticator, Identity, create_app

    model = FakeChatModel(default="SELECT name, salary FROM staff")
    console = Console(db=db, history="", model=model, roles={"analyst": {}})
    auth = ApiKeyAuthenticator.from_keys(
        {"k-mallory-0123456789": Identity(user="mallory", role="analsyt")}
    )
    app = create_app(console, authenticator=auth)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 4321))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
            key = {"x-api-key": "k-mallory-0123456789"}
            asked = await c.post(
                "/v1/ask",
                json={"question": "salaries?"},
                headers={**key, "accept": "application/json"},
            )
            checked = await c.post("/v1/sql/check", json={"sql": "SELECT 1"}, headers=key)
        assert asked.status_code == 403, asked.text
        assert checked.status_code == 403, checked.text
        assert "analsyt" in json.dumps(asked.json())
        assert model.calls == []
    finally:
        console.close()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
