"""``--json`` prints the HTTP API's response bodies: ``avl ask`` the ``/v1/ask`` body,
``avl check`` the ``/v1/sql/check`` body, ``avl history`` the ``/v1/history`` body.

Each is validated against the schema components of the web app's OpenAPI document,
and compared with what the app itself answers for the same question or SQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema  # the test extra (check-jsonschema)
import pytest

from avl.assistant import create_demo_database
from avl.web import openapi_spec

from .conftest import run


def validate(body: Any, component: str) -> None:
    """Validate ``body`` against ``#/components/schemas/<component>`` (OpenAPI 3.1
    schemas are JSON Schema 2020-12)."""
    spec = openapi_spec()
    schema = {"$ref": f"#/components/schemas/{component}", "components": spec["components"]}
    jsonschema.Draft202012Validator(schema).validate(body)


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    return create_demo_database(tmp_path / "shop.db")


def http(console: Any, method: str, path: str, **kw: Any) -> Any:
    from starlette.testclient import TestClient

    from avl.web import create_app

    with TestClient(create_app(console), base_url="http://localhost") as tc:
        r = tc.request(method, path, **kw)
        assert r.status_code == 200, r.text
        return r.json()


def test_ask_json_is_the_v1_ask_body(demo: Path, tmp_path: Path) -> None:
    from avl.console import Console

    question = "How many customers are there in each country?"
    code, out, err = run(
        "ask",
        question,
        "--db",
        f"sqlite:///{demo}",
        "--training",
        str(tmp_path / "t.jsonl"),
        "--json",
    )
    assert code == 0, err
    body = json.loads(out)
    validate(body, "AnswerOut")
    assert body["verdict"]["role"] == "default"
    with Console(db=f"sqlite:///{demo}") as console:
        web = http(console, "POST", "/v1/ask", json={"question": question})
    validate(web, "AnswerOut")
    assert set(body) == set(web)
    assert set(body["details"]) == set(web["details"])
    for key in ("question", "sql", "verdict", "columns", "rows", "summary", "chart"):
        assert body[key] == web[key], key


def test_check_json_is_the_v1_sql_check_body() -> None:
    from avl.console import Console

    for sql, code_expected in (("SELECT 1", 0), ("DELETE FROM customers WHERE 1 = 1", 1)):
        code, out, err = run("check", "--json", sql)
        assert code == code_expected, err
        body = json.loads(out)
        validate(body, "VerdictOut")
        with Console() as console:
            web = http(console, "POST", "/v1/sql/check", json={"sql": sql})
        validate(web, "VerdictOut")
        assert set(body) == set(web)
        assert (body["allowed"], body["kind"], body["role"]) == (
            web["allowed"],
            web["kind"],
            web["role"],
        )
        assert [v["code"] for v in body["violations"]] == [v["code"] for v in web["violations"]]
    # a script: one body per statement, each valid
    code, out, _ = run("check", "--json", "-f", str(_script()))
    assert code == 1
    bodies = [json.loads(line) for line in out.splitlines()]
    assert len(bodies) == 2
    for b in bodies:
        validate(b, "VerdictOut")


def _script() -> Path:
    import tempfile

    path = Path(tempfile.mkdtemp()) / "q.sql"
    path.write_text("SELECT name FROM users;\nDROP TABLE users\n")
    return path


def test_history_json_is_the_v1_history_body(demo: Path, tmp_path: Path) -> None:
    from avl.console import Console

    hist = f"sqlite:///{tmp_path / 'history.db'}"
    code, _, err = run(
        "ask",
        "How many customers are there?",
        "--db",
        f"sqlite:///{demo}",
        "--history",
        hist,
        "--training",
        str(tmp_path / "t.jsonl"),
    )
    assert code == 0, err
    code, out, err = run("history", "--history", hist, "--json")
    assert code == 0, err
    body = json.loads(out)
    validate(body, "HistoryPage")
    assert [e["question"] for e in body["items"] if e["outcome"] == "ok"] == [
        "How many customers are there?"
    ]
    with Console(db=f"sqlite:///{demo}", history=hist) as console:
        web = http(console, "GET", "/v1/history", params={"user": "cli"})
    validate(web, "HistoryPage")
    assert web["items"] == body["items"]
