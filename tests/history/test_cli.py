"""``avl history``, ``avl history anchor`` and ``avl history verify``."""

from __future__ import annotations

import io
import shutil
import sqlite3
from pathlib import Path

import pytest

from avl.cli import main
from avl.history import Entry, History, read_anchors


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_reading_never_creates_anything(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    code, _, err = run("history", "--history", f"sqlite:///{missing}")
    assert code == 2
    assert "no history database" in err
    assert not missing.exists()
    data = tmp_path / "data.db"
    sqlite3.connect(data).execute("CREATE TABLE invoices (id INTEGER)").connection.close()
    for argv in (["history"], ["history", "anchor"], ["history", "verify"]):
        code, _, err = run(*argv, "--history", f"sqlite:///{data}")
        assert code == 2
        assert "no history tables" in err
    names = [r[0] for r in sqlite3.connect(data).execute("SELECT name FROM sqlite_master")]
    assert names == ["invoices"]


def test_anchor_then_verify_catches_a_restored_backup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AVL_HISTORY_KEY", "cli-secret")
    db = tmp_path / "h.db"
    url = f"sqlite:///{db}"
    with History(url, hmac_key="cli-secret") as h:
        h.record_many(Entry(user="ann", question=f"q{i}", sql="SELECT 1") for i in range(3))
    shutil.copyfile(db, tmp_path / "backup.db")
    with History(url, hmac_key="cli-secret") as h:
        h.record_many(Entry(user="bob", question=f"r{i}", sql="SELECT 2") for i in range(3))
    anchors = tmp_path / "anchors.jsonl"
    code, out, _ = run("history", "anchor", "--history", url, "--out", str(anchors))
    assert code == 0
    (kept,) = read_anchors(anchors)
    assert out.strip() == kept.to_json()
    assert kept.seq == 6
    assert kept.mac is not None
    code, out, _ = run("history", "verify", "--history", url, "--anchor", str(anchors))
    assert (code, out) == (0, "ok: 6 entries verified up to the anchor at seq 6 (head seq 6)\n")
    code, out, _ = run("history", "--history", url, "--user", "bob", "--limit", "1")
    assert code == 0
    assert "r2" in out
    assert "r1" not in out
    shutil.copyfile(tmp_path / "backup.db", db)
    code, out, _ = run("history", "verify", "--history", url)
    assert code == 0
    code, out, _ = run("history", "verify", "--history", url, "--anchor", str(anchors))
    assert code == 1
    assert out.startswith("NOT OK (rolled_back)")


def test_key_variable_and_usage_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AVL_HISTORY_KEY", raising=False)
    url = f"sqlite:///{tmp_path / 'h.db'}"
    History(url, hmac_key="k").close()
    code, _, err = run("history", "anchor", "--history", url, "--hmac-key-env", "UNSET_VAR_X")
    assert code == 2
    assert "UNSET_VAR_X" in err
    monkeypatch.setenv("MY_KEY", "k")
    code, out, _ = run("history", "anchor", "--history", url, "--hmac-key-env", "MY_KEY")
    assert code == 0
    assert '"mac":"' in out
    code, _, err = run("history", "verify")
    assert code == 2
    assert "--history" in err
    (tmp_path / "bad.jsonl").write_text('{"format": "nope"}\n')
    code, _, err = run(
        "history", "verify", "--history", url, "--anchor", str(tmp_path / "bad.jsonl")
    )
    assert code == 2
    assert "not an anchor" in err


@pytest.mark.parametrize("command", [["audit", "report"], ["costs"]])
def test_other_history_readers_create_nothing(tmp_path: Path, command: list[str]) -> None:
    missing = tmp_path / "missing.db"
    code, _, err = run(*command, "--history", f"sqlite:///{missing}")
    assert code == 2
    assert "no history database" in err
    assert not missing.exists()
