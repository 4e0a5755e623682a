"""Helpers for the chat-model tests: fixture files, a fake clock and recorded sleeps."""

from __future__ import annotations

import json
import random
from pathlib import Path

import httpx
import pytest

from avl.testing import FakeClock, Recording, load_recording

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "llm"


def recording(provider: str, name: str, path: str, **kwargs: object) -> Recording:
    """Load ``tests/fixtures/llm/<provider>/<name>.http`` expecting ``POST path``."""
    return load_recording(FIXTURES / provider / f"{name}.http", path=path, **kwargs)  # type: ignore[arg-type]


def body_of(request: httpx.Request) -> object:
    """The JSON body a request sent."""
    return json.loads(request.content)


class Sleeper:
    """Records the waits and moves the fake clock instead of sleeping."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(seconds)

    async def async_sleep(self, seconds: float) -> None:
        self(seconds)


class ZeroRandom(random.Random):
    """Jitter draws of 0: the full computed backoff."""

    def random(self) -> float:
        return 0.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1_764_058_000.0)


@pytest.fixture
def sleeper(clock: FakeClock) -> Sleeper:
    return Sleeper(clock)
