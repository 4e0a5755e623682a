"""Retention: pruning keeps the rest of the chain provable; the ``[history]`` config table."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from avl.errors import ConfigError
from avl.history import Entry, History, ProblemKind, read_anchors
from avl.testing import FakeClock
from tests.history.conftest import Target, make_target


def test_prune_seals_a_checkpoint_and_the_rest_verifies(
    target: Target, make_history: Callable[..., History], clock: FakeClock
) -> None:
    h = make_history(hmac_key="k")
    for i in range(10):
        h.record(Entry(question=f"q{i}"))
        clock.advance(10)
    assert h.prune(older_than=dt.timedelta(seconds=45)) == 6
    report = h.verify()
    assert (report.ok, report.checked, report.head_seq) == (True, 4, 10)
    assert [e.seq for e in h.iter_entries()] == [7, 8, 9, 10]
    # pruning again moves the checkpoint forward, still verifiable
    assert h.prune(older_than=15) == 3
    assert h.verify().checked == 1
    if target.kind != "memory":
        # the checkpoint row is signed: editing it shows
        target.sql("UPDATE {p}_meta SET seq = seq - 1 WHERE name = 'checkpoint'")
        assert h.verify().problem is ProblemKind.ALTERED


def test_prune_refuses_bad_ages(make_history: Callable[..., History]) -> None:
    from avl.errors import InvalidInputError

    h = make_history()
    for bad in (-1, float("nan"), float("inf"), "1d", None, True, 10**400):
        with pytest.raises(InvalidInputError, match="older_than"):
            h.prune(older_than=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_retain_prunes_on_open_and_while_recording(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> None:
    with make_target(kind, request, tmp_path) as target:
        _retain(target, clock)


def _retain(target: Target, clock: FakeClock) -> None:
    with History(target.url, clock=clock) as first:
        for i in range(5):
            first.record(Entry(question=f"old{i}"))  # at t0, t0+100, ... t0+400
            clock.advance(100)
    # opened at t0+500 with a 250 s retention: old0..old2 go on open
    with History(target.url, clock=clock, retain=250) as h:
        assert [e.question for e in h.iter_entries()] == ["old3", "old4"]
        h.record(Entry(question="new"))
        clock.advance(20)  # within the pruning interval (retain / 10 = 25 s): no prune
        h.record(Entry(question="newer"))
        clock.advance(110)  # t0+630: old3 (t0+300) is now older than 250 s
        h.record(Entry(question="newest"))
        assert [e.question for e in h.iter_entries()] == ["old4", "new", "newer", "newest"]
        assert h.verify().ok


def test_a_failing_prune_does_not_fail_the_write(
    make_history: Callable[..., History], clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    h = make_history(retain=100)

    def broken(before_time: float, sealer: object) -> int:
        raise ConnectionError("database went away")

    h.backend.prune = broken  # type: ignore[method-assign]
    clock.advance(1000)
    with caplog.at_level(logging.ERROR, logger="avl.history"):
        stored = h.record(Entry(question="q"))
    assert stored.seq == 1
    assert "pruning failed" in caplog.text


def test_from_config(tmp_path: Path) -> None:
    clock = FakeClock(start=1_000_000.0)
    h = History.from_config(
        {
            "url": f"sqlite:///{tmp_path / 'h.db'}",
            "hmac_key_env": "HK",
            "retain_days": 90,
            "anchor_file": str(tmp_path / "anchors.jsonl"),
            "anchor_every": 2,
        },
        environ={"HK": "secret"},
        clock=clock,
    )
    h.record_many([Entry(question="a"), Entry(question="b")])
    (anchor,) = read_anchors(tmp_path / "anchors.jsonl")
    assert (anchor.seq, anchor.mac is not None) == (2, True)
    clock.advance(91 * 86_400)
    h.record(Entry(question="c"))  # retention runs: a and b are older than 90 days
    assert [e.question for e in h.iter_entries()] == ["c"]
    assert h.verify(anchor=anchor).ok  # keyed: the signed checkpoint vouches for 1..2
    h.close()
    assert History.from_config("memory://").verify().ok


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({"urll": "memory://"}, "unknown key"),
        ({"url": 5}, "url"),
        ({"retain_days": 0}, "retain_days"),
        ({"retain_days": "90"}, "retain_days"),
        ({"hmac_key_env": "NOPE_NOT_SET"}, "not set"),
        ({"anchor_every": 5}, "anchor_to"),
        ({"anchor_file": 3}, "anchor_file"),
        (42, "URL or a table"),
    ],
)
def test_from_config_errors(spec: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        History.from_config(spec, environ={})  # type: ignore[arg-type]


def test_console_history_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``[history]`` in the Console config: retention and periodic anchors."""
    from avl.console import Console

    monkeypatch.setenv("AVL_TEST_HISTORY_KEY", "console-secret")
    anchors = tmp_path / "anchors.jsonl"
    console = Console.from_config(
        {
            "history": {
                "url": f"sqlite:///{tmp_path / 'h.db'}",
                "hmac_key_env": "AVL_TEST_HISTORY_KEY",
                "retain_days": 90,
                "anchor_file": str(anchors),
                "anchor_every": 1,
            },
            "train_from_database": False,
        }
    )
    try:
        console.assistant.ask("How many customers are there?")
        # one anchor per entry: the pending entry, then the one completing it
        pending, anchor = read_anchors(anchors)
        assert pending.seq < anchor.seq
        assert anchor.mac is not None
        assert console.history.verify(anchor=anchor).ok
        assert console.history._retain_s == 90 * 86_400.0
    finally:
        console.close()
    with pytest.raises(ConfigError, match="unknown key"):
        Console.from_config({"history": {"retain": 90}})
