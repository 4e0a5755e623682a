"""The benchmarks page and the changelog stay what other pages rely on.

- every ``benches/bench_*.py`` script is named on the benchmarks page, which either
  shows its figures or says it is not yet measured there;
- the prose pages point at the benchmarks page's sections that exist;
- the changelog opens with its "Unreleased" section (the one developers append to),
  and the index lists both pages.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _section_titles(text: str, underline: str) -> list[str]:
    """Titles underlined with ``underline`` characters, in order."""
    lines = text.splitlines()
    return [
        lines[i - 1].strip()
        for i in range(1, len(lines))
        if lines[i]
        and set(lines[i]) == {underline}
        and lines[i - 1].strip()
        and len(lines[i]) >= len(lines[i - 1].strip())
    ]


def test_every_bench_script_is_on_the_benchmarks_page() -> None:
    page = (DOCS / "benchmarks.rst").read_text(encoding="utf-8")
    scripts = sorted(p.name for p in (ROOT / "benches").glob("bench_*.py"))
    assert scripts, "no bench scripts found"
    missing = [name for name in scripts if f"benches/{name}" not in page]
    assert not missing, f"bench scripts not named in docs/benchmarks.rst: {missing}"


def test_bench_references_resolve_to_labels() -> None:
    page = (DOCS / "benchmarks.rst").read_text(encoding="utf-8")
    labels = set(re.findall(r"^\.\. _(bench-[a-z0-9-]+):$", page, re.M))
    assert {"bench-safety", "bench-ratelimit", "bench-vectors", "bench-web"} <= labels
    used: dict[str, str] = {}
    for path in sorted(DOCS.rglob("*.rst")):
        for label in re.findall(r":ref:`(bench-[a-z0-9-]+)`", path.read_text(encoding="utf-8")):
            used[label] = path.name
    unknown = {label: page_name for label, page_name in used.items() if label not in labels}
    assert not unknown, f"references to missing benchmark sections: {unknown}"


def test_changelog_opens_with_unreleased_and_pages_are_indexed() -> None:
    changelog = (DOCS / "changelog.rst").read_text(encoding="utf-8")
    sections = _section_titles(changelog, "-")
    assert sections, "the changelog has no sections"
    assert sections[0] == "Unreleased", sections[:3]
    index = (DOCS / "index.rst").read_text(encoding="utf-8")
    toctree = re.findall(r"^   (\S+)$", index, re.M)
    assert "benchmarks" in toctree
    assert "changelog" in toctree
