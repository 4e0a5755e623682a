"""The storage conformance suite over memory and Redis (see conformance.py)."""

from __future__ import annotations

from tests.ratelimit.conformance import StorageConformance


class TestStorages(StorageConformance):
    pass
