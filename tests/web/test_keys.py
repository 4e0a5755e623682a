"""API keys people can manage: ``avl keys create/list/revoke`` over a key file, and a
server that follows the file (a revoked key stops working without a restart)."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from avl.cli import main
from avl.errors import AuthenticationError, ConfigError, NotFoundError
from avl.testing import FakeClock
from avl.web import (
    ApiKeyAuthenticator,
    Identity,
    KeyFile,
    KeyFileAuthenticator,
    create_app,
    hash_api_key,
)

from .conftest import TinyConsole, client

ROOT = Path(__file__).resolve().parents[2]


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_key_file_round_trip(tmp_path: Path, suffix: str) -> None:
    if suffix == ".toml" and sys.version_info < (3, 11):
        pytest.skip("reading TOML key files needs tomllib (Python 3.11+)")
    kf = KeyFile(tmp_path / f"keys{suffix}", clock=FakeClock(start=1_767_225_600))
    assert kf.records() == []
    ann, ann_key = kf.create(
        user="ann", role="analyst", context={"tenant_id": 7, "region": 'eu "x"'}
    )
    bob, bob_key = kf.create(user="bob", permissions=["train", "history:all"])
    assert ann_key.startswith("avl_")
    assert len(ann_key) > 40
    assert ann.sha256 == hash_api_key(ann_key)
    stored = (tmp_path / f"keys{suffix}").read_text()
    assert ann_key not in stored
    assert bob_key not in stored
    assert stat.S_IMODE(os.stat(tmp_path / f"keys{suffix}").st_mode) == 0o600
    assert [r.id for r in kf.records()] == [ann.id, bob.id]
    assert kf.records()[0].identity == Identity(
        user="ann", role="analyst", context={"tenant_id": 7, "region": 'eu "x"'}
    )
    assert kf.records()[0].created == 1_767_225_600
    auth = ApiKeyAuthenticator.from_file(kf.path)
    assert auth.authenticate({"x-api-key": bob_key}, None) == Identity(
        user="bob", permissions={"train", "history:all"}
    )
    assert kf.revoke(ann.id or "") == ann
    assert [r.identity.user for r in kf.records()] == ["bob"]
    with pytest.raises(NotFoundError, match="no API key with id"):
        kf.revoke(ann.id or "")
    with pytest.raises(ConfigError, match="unknown permission"):
        kf.create(user="eve", permissions=["root"])
    with pytest.raises(ConfigError, match="context values"):
        kf.create(user="eve", context={"t": [1]})
    with pytest.raises(ConfigError):
        kf.create(user="")


def test_cli_create_list_revoke(tmp_path: Path) -> None:
    path = str(tmp_path / "keys.json")
    code, out, err = run(
        "keys",
        "create",
        "--file",
        path,
        "--user",
        "ann",
        "--role",
        "analyst",
        "--context",
        "tenant_id=7",
        "--context",
        "name=acme",
    )
    assert (code, err) == (0, "")
    lines = out.splitlines()
    key = lines[1]
    key_id = lines[0].split()[2]
    assert lines[0] == f"created key {key_id} for user 'ann' (role 'analyst') in {path}"
    assert lines[2] == "Keep it now: only its hash is stored."
    code, out, _ = run(
        "keys", "create", "--file", path, "--user", "bob", "--permission", "train", "--json"
    )
    made = json.loads(out)
    assert made["user"] == "bob"
    assert made["permissions"] == ["train"]
    code, out, _ = run("keys", "list", "--file", path)
    rows = out.splitlines()
    assert rows[0].split() == ["id", "user", "role", "created", "(UTC)", "permissions"]
    assert rows[1].split()[:3] == [key_id, "ann", "analyst"]
    assert rows[2].split()[-1] == "train"
    assert key not in out
    code, out, _ = run("keys", "list", "--file", path, "--json")
    listed = [json.loads(line) for line in out.splitlines()]
    assert [r["user"] for r in listed] == ["ann", "bob"]
    assert listed[0]["context"] == {"tenant_id": 7, "name": "acme"}
    assert all("sha256" not in r for r in listed)
    assert ApiKeyAuthenticator.from_file(path).authenticate({"x-api-key": key}, None).user == "ann"
    assert (
        run("keys", "revoke", "--file", path, key_id)[1]
        == f"revoked key {key_id} (user 'ann') in {path}\n"
    )
    code, _, err = run("keys", "revoke", "--file", path, key_id)
    assert code == 2
    assert "no API key with id" in err
    code, _, err = run("keys", "create", "--file", path, "--user", "x", "--context", "novalue")
    assert (code, err) == (2, "avl keys: error: --context expects KEY=VALUE, got 'novalue'\n")
    code, _, err = run("keys", "create", "--file", path, "--user", "x", "--permission", "admin")
    assert code == 2
    assert "unknown permission" in err
    (tmp_path / "broken.json").write_text("{")
    code, _, err = run("keys", "list", "--file", str(tmp_path / "broken.json"))
    assert code == 2
    assert "is not valid JSON" in err


def test_cli_reads_the_environment_and_runs_as_a_command(tmp_path: Path) -> None:
    path = tmp_path / "env-keys.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AVL_API_KEYS_FILE": str(path)}
    made = subprocess.run(
        [sys.executable, "-m", "avl.cli", "keys", "create", "--user", "ann"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    listed = subprocess.run(
        [sys.executable, "-m", "avl.cli", "keys", "list"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert listed.returncode == 0
    assert listed.stdout.splitlines()[1].split()[1] == "ann"


@pytest.mark.anyio
async def test_a_revoked_key_stops_working_without_a_restart(
    console: TinyConsole, tmp_path: Path
) -> None:
    clock = FakeClock()
    kf = KeyFile(tmp_path / "keys.json")
    ann, ann_key = kf.create(user="ann")
    auth = KeyFileAuthenticator(kf.path, check_every_s=1.0, clock=clock)
    app = create_app(console, authenticator=auth)
    async with client(app) as c:
        before = await c.get("/v1/ratelimit", headers={"x-api-key": ann_key})
        _, bob_key = kf.create(user="bob")
        not_yet = await c.get("/v1/ratelimit", headers={"x-api-key": bob_key})
        clock.advance(1.5)
        bob = await c.get("/v1/ratelimit", headers={"x-api-key": bob_key})
        kf.revoke(ann.id or "")
        clock.advance(1.5)
        after = await c.get("/v1/ratelimit", headers={"x-api-key": ann_key})
        # A broken file keeps the last good keys.
        kf.path.write_text("{")
        clock.advance(1.5)
        still = await c.get("/v1/ratelimit", headers={"x-api-key": bob_key})
    assert before.status_code == 200
    assert not_yet.status_code == 401  # within check_every_s
    assert bob.json()["key"] == "web:bob"
    assert after.status_code == 401
    assert after.json()["detail"] == "invalid API key"
    assert still.status_code == 200


def test_key_file_authenticator_needs_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        KeyFileAuthenticator(tmp_path / "missing.json")
    (tmp_path / "empty.json").write_text('{"keys": []}')
    auth = KeyFileAuthenticator(tmp_path / "empty.json")
    with pytest.raises(AuthenticationError, match="invalid API key"):
        auth.authenticate({"x-api-key": "k" * 20}, None)
    assert auth.authenticate({}, None) is None


def test_serve_uses_the_key_file(
    console: TinyConsole, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    from avl.web import serve

    kf = KeyFile(tmp_path / "keys.json")
    kf.create(user="ann")
    monkeypatch.setenv("AVL_API_KEYS_FILE", str(kf.path))
    seen: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.append(app))
    serve(console, host="0.0.0.0", port=8127)  # a public bind is fine with keys
    assert isinstance(seen[0].handlers.settings.authenticator, KeyFileAuthenticator)
