"""Generate a Python client from the OpenAPI document and call a live server with it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from avl.console import Console
from avl.web import PERMISSIONS, ApiKeyAuthenticator, Identity, create_app, openapi_spec

from .conftest import LiveServer

KEY = "client-key-0123456789"

SCRIPT = r"""
import json, sys
from avl_client import AuthenticatedClient, Client
from avl_client.api.ops import healthz
from avl_client.api.sql import sql_check, sql_run
from avl_client.api.console import ask
from avl_client.api.history import history_search
from avl_client.api.limits import ratelimit_status
from avl_client.models import AskRequest, CheckRequest, RunRequest, Problem, VerdictOut

url, key = sys.argv[1], sys.argv[2]
out = {}
anon = Client(base_url=url)
out["healthz"] = healthz.sync(client=anon).status
denied = sql_check.sync_detailed(client=anon, body=CheckRequest(sql="SELECT 1"))
out["anon_status"] = int(denied.status_code)
out["anon_problem"] = isinstance(denied.parsed, Problem)
client = AuthenticatedClient(base_url=url, token=key)
verdict = sql_check.sync(client=client, body=CheckRequest(sql="SELECT name FROM customers"))
out["verdict_type"] = isinstance(verdict, VerdictOut)
out["allowed"] = verdict.allowed
out["sql"] = verdict.sql
refused = sql_check.sync(client=client, body=CheckRequest(sql="DELETE FROM customers"))
out["refused_codes"] = [v.code for v in refused.violations]
rows = sql_run.sync(client=client, body=RunRequest(sql="SELECT count(*) AS n FROM customers"))
out["rows"] = rows.rows
answer = ask.sync(client=client, body=AskRequest(question="How many customers are there?"))
out["answer_rows"] = answer.rows
page = history_search.sync(client=client, limit=5)
out["history_users"] = sorted({e.user for e in page.items})
status = ratelimit_status.sync(client=client)
out["rl_key"] = status.key
# Streams: the generated client returns the event-stream text; avl.sse parses it.
from avl import sse
from avl_client.api.console import ask_stream
text = ask_stream.sync(client=client, question="How many orders are there?")
events = list(sse.parse([text]))
kinds = [e.event for e in events]
out["stream_kinds"] = [k for i, k in enumerate(kinds) if i == 0 or kinds[i - 1] != k]
out["stream_rows"] = json.loads(next(e.data for e in events if e.event == "rows"))["rows"]
out["stream_ids"] = len({e.id for e in events}) == len(events)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def live() -> Iterator[str]:
    console = Console(ratelimit={"rates": "1000/second"})
    auth = ApiKeyAuthenticator.from_keys({KEY: Identity(user="gen", permissions=PERMISSIONS)})
    try:
        with LiveServer(create_app(console, authenticator=auth)) as server:
            yield server.url
    finally:
        console.close()


def test_generated_client_calls_live_server(tmp_path: Path, live: str) -> None:
    generator = shutil.which("openapi-python-client", path=str(Path(sys.executable).parent))
    assert generator is not None, "openapi-python-client is part of the test environment"
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(openapi_spec()))
    config = tmp_path / "config.yaml"
    config.write_text("post_hooks: []\npackage_name_override: avl_client\n")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    gen = subprocess.run(
        [
            generator,
            "generate",
            "--path",
            str(spec),
            "--output-path",
            str(tmp_path / "project"),
            "--meta",
            "setup",
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert gen.returncode == 0, gen.stdout + gen.stderr
    assert "Warning" not in gen.stdout, gen.stdout
    # Install the generated package (offline, with pip) into a directory of its own.
    site = tmp_path / "site"
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--no-build-isolation",
            "--target",
            str(site),
            str(tmp_path / "project"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    assert (site / "avl_client" / "__init__.py").is_file()
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, live, KEY],
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": str(site)},
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out == {
        "healthz": "ok",
        "anon_status": 401,
        "anon_problem": True,
        "verdict_type": True,
        "allowed": True,
        "sql": "SELECT name FROM customers LIMIT 1000",
        "refused_codes": ["statement_kind"],
        "rows": [[12]],
        "answer_rows": [[12]],
        "history_users": ["gen"],
        "rl_key": "web:gen",
        "stream_kinds": [
            "retrieved",
            "prompt",
            "token",
            "sql",
            "verdict",
            "rows",
            "answer",
            "done",
        ],
        "stream_rows": [[40]],
        "stream_ids": True,
    }
