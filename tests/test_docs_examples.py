"""Every Python block of the quickstart and the tutorials runs as pasted.

Each page's ``.. code-block:: python`` blocks are joined in order and run in a fresh
interpreter in an empty directory, as a reader pasting them would; the output is
checked where the page says what it prints.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
_BLOCK = re.compile(r"^\.\. code-block:: python\n\n((?:(?:    .*)?\n)+)", re.M)

#: what each page's run must print (substrings, in order)
EXPECT = {
    "quickstart.rst": [
        "True SELECT * FROM orders LIMIT 100",
        "multiple_statements",
        "SELECT COUNT(*) FROM orders LIMIT 1000",
        "((40,),)",
        "Barbara Liskov",
    ],
    "tutorials/fastapi.rst": ["'rows': [[40]]", "False", "ok"],
    "tutorials/multitenant.rst": [
        "3 SELECT COUNT(*) FROM (SELECT * FROM orders WHERE customer_id = 3 LIMIT -1 OFFSET 0)",
        "((4,),)",
        "7 SELECT COUNT(*) FROM (SELECT * FROM orders WHERE customer_id = 7 LIMIT -1 OFFSET 0)",
        "WHERE customer_id = 3",
        "table_not_allowed",
        "refused:",
    ],
    "tutorials/notebook.rst": [
        "status",
        "bar",
        "True",
        "Verdict(rejected, select, 2 violations)",
        "multiple_statements at 1:23",
        "Page(1 entry, next_cursor=None)",
        "VerifyReport(ok, 1 checked",
        "Decision(allowed, 1 of 2 left",
        "stages (percentiles over the last 300 s)",
    ],
}


def blocks(page: str) -> str:
    text = (DOCS / page).read_text(encoding="utf-8")
    return "\n".join(textwrap.dedent(m.group(1)) for m in _BLOCK.finditer(text))


#: the quickstart and every tutorial with Python code (shell-only pages have none)
PAGES = [
    p
    for p in [
        "quickstart.rst",
        *sorted(f"tutorials/{f.name}" for f in (DOCS / "tutorials").glob("*.rst")),
    ]
    if blocks(p).strip()
]


def test_every_checked_page_has_code() -> None:
    assert set(EXPECT) <= set(PAGES)


@pytest.mark.parametrize("page", PAGES)
def test_page_runs_as_pasted(page: str, tmp_path: Path) -> None:
    code = blocks(page)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    pos = 0
    for want in EXPECT.get(page, []):
        found = proc.stdout.find(want, pos)
        assert found >= 0, f"{want!r} not printed (after position {pos}):\n{proc.stdout}"
        pos = found + len(want)
