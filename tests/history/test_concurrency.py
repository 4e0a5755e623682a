"""Several processes and threads writing at once keep one valid chain; crashes lose nothing."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from avl.history import Entry, History
from tests.history._writer import write_many
from tests.history.conftest import ROOT_DIR, Target, make_target


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    with make_target(request.param, request, tmp_path) as t:
        yield t


def test_four_processes_one_chain(target: Target) -> None:
    url = target.url
    batch = 1  # one record() call, one transaction, per entry
    if target.kind == "postgresql":
        # The chain's consistency is under test, not the shared server's commit latency:
        # no fsync wait, and small batches (still interleaved: 250 transactions each).
        url += "&options=-c%20synchronous_commit%3Doff"
        batch = 4
    History(url).close()  # create the schema once
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        results = pool.starmap(write_many, [(url, w, 1000, batch) for w in range(4)])
    assert results == [1000] * 4
    with History(target.url) as h:
        report = h.verify()
        assert (report.ok, report.checked, report.head_seq) == (True, 4000, 4000)
        stats = h.stats()
        assert {u: g.count for u, g in stats.by_user.items()} == {f"w{w}": 1000 for w in range(4)}
        # Writers interleaved: the chain is not four consecutive runs.
        users = [e.user for e in h.iter_entries()]
        switches = sum(1 for a, b in itertools.pairwise(users) if a != b)
        assert switches > 3


def test_threads_share_one_history(target: Target) -> None:
    with History(target.url) as h:
        errors: list[BaseException] = []

        def work(t: int) -> None:
            try:
                for i in range(50):
                    h.record(Entry(user=f"t{t}", question=f"thread {t} {i}"))
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        report = h.verify()
        assert (report.ok, report.checked) == (True, 200)
        assert len(h.search(text="thread", limit=500)) == 200


def test_sigkill_loses_no_acknowledged_write(target: Target) -> None:
    History(target.url).close()
    rng = random.Random(20261125)
    acknowledged: list[str] = []
    env = {**os.environ, "PYTHONPATH": str(ROOT_DIR)}
    for _ in range(3):
        stop_after = rng.randint(5, 120)
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.history._writer", target.url],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT_DIR,
            env=env,
        )
        assert child.stdout is not None
        for _ in range(stop_after):
            line = child.stdout.readline()
            assert line, "writer exited early"
            acknowledged.append(line.strip())
        child.send_signal(signal.SIGKILL)
        # Ids printed after the kill signal was sent but before it landed also count.
        rest = child.stdout.read()
        acknowledged.extend(x for x in rest.split("\n") if len(x) == 32)
        child.wait()
        assert child.returncode == -signal.SIGKILL
        with History(target.url) as h:
            report = h.verify()
            assert report.ok is True, report.message
            assert report.checked >= len(acknowledged)
            for id_ in acknowledged:
                assert h.get(id_).id == id_
