"""The ``avl`` command line, through ``main(argv)`` and one real subprocess."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from avl.cli import main


def run(
    *argv: str, stdin: str | None = None, monkeypatch: pytest.MonkeyPatch | None = None
) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    if stdin is not None:
        assert monkeypatch is not None
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    path = tmp_path / "shop.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, city TEXT);"
        "INSERT INTO customers VALUES (1, 'Ann', 'Paris'), (2, 'Bob', 'Rome'), (3, 'Cid', 'Paris');"
    )
    conn.commit()
    conn.close()
    return path


def test_demo_in_a_subprocess(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run(
        [sys.executable, "-m", "avl.cli", "demo", "--db", str(tmp_path / "demo.db")],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert (
        "Q: How many customers are there?\nSQL: SELECT COUNT(*) FROM customers LIMIT 1000\nverdict: allowed\nCOUNT(*)\n────────\n      12\n"
        in out
    )
    assert "DELETE FROM orders\n    -> REJECTED: statement_kind" in out
    assert out.count("verdict: allowed") == 7


def test_check_allowed_rejected_and_error(monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = run("check", "SELECT id FROM t", "--max-rows", "5")
    assert (code, out) == (0, "allowed\nSELECT id FROM t LIMIT 5\n")
    code, out, _ = run("check", "DELETE FROM t")
    assert code == 1
    assert out.startswith("rejected\n  statement_kind")
    code, out, _ = run(
        "check", "--allow-table", "t", "--json", stdin="SELECT * FROM u", monkeypatch=monkeypatch
    )
    assert code == 1
    assert [v["code"] for v in json.loads(out)["violations"]] == ["table_not_allowed"]
    code, _, err = run("check", stdin="  ", monkeypatch=monkeypatch)
    assert code == 2
    assert "no SQL given" in err
    code, _, err = run("check", "SELECT 1", "--dialect", "nosuch")
    assert code == 2
    assert "nosuch" in err
    code, _, _ = run("nosuchcommand")
    assert code == 2


def test_train_then_ask(shop: Path, tmp_path: Path) -> None:
    training = tmp_path / "training.jsonl"
    url = f"sqlite:///{shop}"
    code, out, err = run(
        "train",
        "--db",
        url,
        "--training",
        str(training),
        "--question",
        "Which customers live in Paris?",
        "--sql",
        "SELECT name FROM customers WHERE city = 'Paris'",
    )
    assert code == 0, err
    assert json.loads(training.read_text())["added_by"] == "cli"
    code, out, err = run(
        "ask", "Which customers live in Rome?", "--db", url, "--training", str(training), "--json"
    )
    assert code == 0, err
    answer = json.loads(out)
    assert answer["sql"] == "SELECT name FROM customers WHERE city = 'Rome' LIMIT 1000"
    assert answer["rows"] == [["Bob"]]
    code, _, err = run(
        "train",
        "--db",
        url,
        "--training",
        str(training),
        "--question",
        "x",
        "--sql",
        "DROP TABLE customers",
    )
    assert code == 2
    assert "SafeQuery" in err
    assert len(training.read_text().splitlines()) == 1


def test_ask_records_history(shop: Path, tmp_path: Path) -> None:
    hist = f"sqlite:///{tmp_path / 'history.db'}"
    code, out, err = run(
        "ask",
        "How many customers are there?",
        "--db",
        f"sqlite:///{shop}",
        "--history",
        hist,
        "--training",
        str(tmp_path / "none.jsonl"),
    )
    assert code == 0, err
    assert (
        "SQL: SELECT COUNT(*) FROM customers LIMIT 1000\nverdict: allowed\nCOUNT(*)\n────────\n       3\n"
        in out
    )
    code, out, err = run("history", "--history", hist)
    assert code == 0, err
    header, rule, row, pending = out.splitlines()  # newest first; the pending entry came first
    assert header.split() == [
        "seq",
        "time",
        "user",
        "role",
        "outcome",
        "verdict",
        "question",
        "sql",
    ]
    assert set(rule.replace(" ", "")) == {"─"}
    assert row.split()[0] == "2"
    assert pending.split()[0] == "1"
    assert "  pending  " in pending
    assert "  cli  " in row
    assert "  ok  " in row
    assert "  allowed  How many customers are there?  SELECT COUNT(*)" in row
    code, out, err = run("history", "--history", hist, "--json")
    page = json.loads(out)  # the GET /v1/history body
    assert set(page) == {"items", "next_cursor"}
    entry = page["items"][0]
    assert (entry["seq"], entry["user"], entry["outcome"], entry["allowed"]) == (
        2,
        "cli",
        "ok",
        True,
    )
    code, out, err = run("history", "--history", hist, "--csv")
    assert out.splitlines()[0] == "seq,time,user,role,outcome,verdict,question,sql"
    assert out.splitlines()[1].endswith(
        ",cli,,ok,allowed,How many customers are there?,SELECT COUNT(*) FROM customers LIMIT 1000"
    )


def test_eval_on_a_user_file(shop: Path, tmp_path: Path) -> None:
    qs = tmp_path / "qs.jsonl"
    qs.write_text(
        "\n".join(
            json.dumps(x)
            for x in [
                {
                    "question": "How many customers are there?",
                    "sql": "SELECT count(*) FROM customers",
                },
                {
                    "question": "Which customers are from Paris?",
                    "sql": "SELECT name FROM customers WHERE city = 'Paris'",
                },
            ]
        )
    )
    code, out, err = run("eval", str(qs), "--db", f"sqlite:///{shop}")
    assert code == 0, err
    assert "questions: 2\n" in out
    assert "schema only:   100.0% (2)" in out
    assert "schema-retrieval recall: 1.000" in out


def test_bad_database_is_a_clear_error(tmp_path: Path) -> None:
    code, _, err = run("ask", "hi", "--db", f"sqlite:///{tmp_path / 'missing.db'}")
    assert code == 2
    assert "does not exist" in err
