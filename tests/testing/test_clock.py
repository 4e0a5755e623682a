from __future__ import annotations

import pytest

from avl import Clock, SystemClock
from avl.errors import InvalidInputError
from avl.testing import FakeClock, ManualClock


def test_fake_clock_advances_both_clocks() -> None:
    clock = FakeClock(start=10.0)
    clock.advance(2.5)
    assert clock.now() == 12.5
    assert clock.monotonic() == 12.5
    clock.set(20.0)
    assert clock.now() == 20.0


def test_fake_clock_refuses_going_backwards() -> None:
    clock = ManualClock(start=10.0)
    with pytest.raises(InvalidInputError, match="backwards"):
        clock.advance(-1)
    with pytest.raises(InvalidInputError):
        clock.set(5.0)
    assert clock.now() == 10.0


def test_clocks_satisfy_protocol() -> None:
    assert isinstance(FakeClock(), Clock)
    assert isinstance(SystemClock(), Clock)
    system = SystemClock()
    a = system.monotonic()
    assert system.monotonic() >= a
