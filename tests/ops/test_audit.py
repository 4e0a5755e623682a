"""Audit reports: entries, outcomes, rejections by code, users, chain verification."""

from __future__ import annotations

import datetime as dt
import io
import json
import sqlite3
from pathlib import Path

import pytest

from avl.audit import audit_report, render_html
from avl.cli import main
from avl.errors import InvalidInputError
from avl.history import Entry, History
from avl.testing import FakeClock

NOW = dt.datetime(2025, 12, 11, 12, tzinfo=dt.timezone.utc).timestamp()
DAY = 86_400.0


def _fill(h: History) -> None:
    h.record_many(
        [
            Entry(time=NOW - 3 * DAY, user="ann", outcome="ok", allowed=True, cost_usd=0.5),
            Entry(
                time=NOW - 2 * DAY,
                user="ann",
                outcome="rejected",
                allowed=False,
                violations=("DML", "NO_LIMIT"),
                question="delete all the orders",
                sql="DELETE FROM orders WHERE email = 'x@y.z'",
            ),
            Entry(
                time=NOW - 2 * DAY,
                user="<script>alert(1)</script>",
                outcome="rejected",
                allowed=False,
                violations=("DML",),
            ),
            Entry(time=NOW - DAY, user="bob", outcome="db_error", allowed=True),
            Entry(time=NOW - DAY, user="bob", outcome="rate_limited"),
            Entry(time=NOW - 40 * DAY, user="old", outcome="rejected", violations=("X",)),
        ]
    )


def test_report_counts() -> None:
    h = History("memory://")
    _fill(h)
    r = audit_report(h, since="30d", clock=FakeClock(start=NOW))
    assert r.entries == 5
    assert r.outcomes == {"rejected": 2, "db_error": 1, "ok": 1, "rate_limited": 1}
    assert r.rejections == {"DML": 2, "NO_LIMIT": 1}
    assert [(u.user, u.entries, u.rejected, u.errors, u.rate_limited) for u in r.users] == [
        ("ann", 2, 1, 0, 0),
        ("bob", 2, 0, 1, 1),
        ("<script>alert(1)</script>", 1, 1, 0, 0),
    ]
    assert r.users[0].cost_usd == 0.5
    assert [x.codes for x in r.rejected] == [("DML",), ("DML", "NO_LIMIT")]  # latest first
    assert r.rejected[1].question == ""  # no details by default
    assert r.verification.ok is True
    assert r.verification.checked == 6  # the whole chain, not only the period
    assert r.verification.head_seq == 6
    assert r.ok is True
    detailed = audit_report(
        h, since="30d", details=True, max_rejected=1, clock=FakeClock(start=NOW)
    )
    assert [x.user for x in detailed.rejected] == ["<script>alert(1)</script>"]


def test_html_is_escaped_and_self_contained() -> None:
    h = History("memory://")
    _fill(h)
    page = render_html(audit_report(h, since="30d", details=True, clock=FakeClock(start=NOW)))
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "DELETE FROM orders WHERE email = &#x27;x@y.z&#x27;" in page
    assert "default-src 'none'" in page
    assert "<h2>Rejections by code</h2>" in page


def test_json_round_trips() -> None:
    h = History("memory://")
    _fill(h)
    data = audit_report(h, since="30d", clock=FakeClock(start=NOW)).to_dict()
    again = json.loads(json.dumps(data))
    assert again["ok"] is True
    assert again["format"] == "avl.audit.report/1"
    assert again["rejections"] == {"DML": 2, "NO_LIMIT": 1}


def test_bad_bounds() -> None:
    h = History("memory://")
    with pytest.raises(InvalidInputError):
        audit_report(h, since="soon")
    with pytest.raises(InvalidInputError, match="until"):
        audit_report(h, since="2025-12-10", until="2025-12-01")
    with pytest.raises(InvalidInputError, match="max_rejected"):
        audit_report(h, max_rejected=-1)


def _tampered(tmp_path: Path) -> str:
    db = tmp_path / "h.db"
    h = History(f"sqlite:///{db}")
    _fill(h)
    h.close()
    con = sqlite3.connect(db)
    con.execute("UPDATE avl_history_entries SET outcome = 'ok' WHERE seq = 2")
    con.commit()
    con.close()
    return f"sqlite:///{db}"


def test_tampering_fails_the_report(tmp_path: Path) -> None:
    h = History(_tampered(tmp_path))
    try:
        r = audit_report(h, since="3650d")
    finally:
        h.close()
    assert r.ok is False
    assert r.verification.problem == "altered"
    assert r.verification.seq == 2
    assert "FAILED" in render_html(r)


def test_cli_exit_codes_and_formats(tmp_path: Path) -> None:
    db = tmp_path / "ok.db"
    h = History(f"sqlite:///{db}")
    _fill(h)
    h.close()
    url = f"sqlite:///{db}"
    out = io.StringIO()
    assert main(["audit", "report", "--history", url, "--since", "3650d"], out=out) == 0
    text = out.getvalue()
    assert "entries: 6" in text
    assert "chain: verified, 6 checked" in text
    out = io.StringIO()
    assert main(["audit", "report", "--history", url, "--since", "3650d", "--json"], out=out) == 0
    assert json.loads(out.getvalue())["rejections"] == {"DML": 2, "NO_LIMIT": 1, "X": 1}
    out = io.StringIO()
    assert main(["audit", "report", "--history", url, "--html"], out=out) == 0
    assert out.getvalue().startswith("<!doctype html>")
    (tmp_path / "t").mkdir()
    bad = _tampered(tmp_path / "t")
    out = io.StringIO()
    assert main(["audit", "report", "--history", bad, "--since", "3650d"], out=out) == 1
    assert "chain: FAILED (altered at seq 2" in out.getvalue()


def test_cli_keyed_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "k.db"
    h = History(f"sqlite:///{db}", hmac_key=b"k" * 32)
    _fill(h)
    h.close()
    monkeypatch.setenv("AVL_TEST_HMAC", "k" * 32)
    args = ["audit", "report", "--history", f"sqlite:///{db}", "--since", "3650d"]
    out = io.StringIO()
    assert main([*args, "--hmac-key-env", "AVL_TEST_HMAC"], out=out) == 0
    # without the key the chain does not verify
    assert main(args, out=io.StringIO()) == 1
    err = io.StringIO()
    assert main([*args, "--hmac-key-env", "AVL_NOPE_UNSET"], out=io.StringIO(), err=err) == 2
    assert "AVL_NOPE_UNSET" in err.getvalue()


def test_anchors_catch_a_restored_backup(tmp_path: Path) -> None:
    import shutil

    from avl.history import FileAnchorSink, read_anchors

    db = tmp_path / "h.db"
    anchors = tmp_path / "anchors.jsonl"
    h = History(f"sqlite:///{db}")
    _fill(h)  # 6 entries
    h.anchor(to=FileAnchorSink(anchors))
    h.close()
    shutil.copy(db, tmp_path / "backup.db")
    h = History(f"sqlite:///{db}")
    h.record(Entry(user="eve", question="the entry someone wants gone"))
    h.anchor(to=FileAnchorSink(anchors))
    h.close()
    url = f"sqlite:///{db}"
    args = ["audit", "report", "--history", url, "--since", "3650d", "--anchors", str(anchors)]
    out = io.StringIO()
    assert main([*args, "--json"], out=out) == 0
    data = json.loads(out.getvalue())
    assert [(a["seq"], a["verified"]) for a in data["anchors"]] == [(6, None), (7, True)]
    # the operator restores yesterday's backup: the chain itself is intact...
    shutil.copy(tmp_path / "backup.db", db)
    h = History(url)
    try:
        report = audit_report(h, since="3650d", anchors=read_anchors(anchors))
    finally:
        h.close()
    assert report.verification.ok is True
    # ...but it no longer reaches the latest anchor
    assert report.ok is False
    assert report.anchors[-1].verified is False
    assert report.anchors[-1].message
    out = io.StringIO()
    assert main(args, out=out) == 1
    assert "latest anchor: seq 7" in out.getvalue()
    assert "FAILED" in out.getvalue()
    page = render_html(report)
    assert "NOT OK" in page


def test_missing_anchor_file_is_a_clear_error(tmp_path: Path) -> None:
    err = io.StringIO()
    code = main(
        ["audit", "report", "--history", "memory://", "--anchors", str(tmp_path / "none")],
        out=io.StringIO(),
        err=err,
    )
    assert code == 2
    assert "no anchor file" in err.getvalue()
