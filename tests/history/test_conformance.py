"""Run the conformance suite against memory, SQLite and PostgreSQL."""

from __future__ import annotations

from tests.history.conformance import HistoryConformance


class TestHistoryBackends(HistoryConformance):
    pass
