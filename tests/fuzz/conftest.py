"""Prints the fuzz suite's figures (calls, avl errors, non-avl exceptions, hangs)."""

from __future__ import annotations

from typing import Any

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
