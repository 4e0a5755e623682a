"""Prints the fuzz suite's figures (calls, avl errors, non-avl exceptions, hangs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.fuzz._harness import Stats


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not Stats.calls:
        return
    terminalreporter.write_sep("-", "avl fuzz")
    terminalreporter.write_line(
        f"{Stats.calls} calls: {Stats.returned} returned, {Stats.avl_errors} avl errors, "
        f"{Stats.non_avl} non-avl exceptions, {Stats.hangs} hangs"
    )
    for target, n in sorted(Stats.per_target.items()):
        terminalreporter.write_line(f"  {target}: {n}")


@pytest.fixture(autouse=True)
def _scratch_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Garbage that happens to be a valid relative path (``"a"``, ``["x"]`` as anchor
    sinks) writes into a scratch directory, never into the working tree."""
    monkeypatch.chdir(tmp_path)
