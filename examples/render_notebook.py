"""Run examples/notebook.ipynb, export it to HTML and, optionally, screenshot the page.

Needs ``pip install nbclient nbconvert ipykernel`` (and ``playwright`` with a
Chromium for ``--screenshot``). The notebook runs in a temporary directory (it
creates ``shop.db`` there), so the example in the repository stays without outputs.

    python examples/render_notebook.py --out /tmp/nb            # notebook.ipynb + .html
    python examples/render_notebook.py --out /tmp/nb --screenshot /tmp/nb/notebook.png

nbconvert's HTML does not run Vega, so the charts there are the SVG avl draws; a
JupyterLab or VS Code session draws the same charts with Vega.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def execute(source: Path, timeout: int = 180) -> object:
    """The notebook at ``source``, run top to bottom in a fresh kernel in a temp dir."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(source, as_version=4)
    with tempfile.TemporaryDirectory() as work:
        NotebookClient(
            nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": work}}
        ).execute()
    return nb


def to_html(nb: object) -> str:
    """The executed notebook as nbconvert's standalone HTML page."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nb)
    return str(body)


def screenshot(page_html: Path, png: Path, width: int = 1100) -> None:
    """A full-page PNG of ``page_html`` in headless Chromium."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium) if chromium else p.chromium.launch()
        page = browser.new_page(viewport={"width": width, "height": 900})
        page.goto(page_html.as_uri())
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(png), full_page=True)
        browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebook", type=Path, default=HERE / "notebook.ipynb")
    parser.add_argument("--out", type=Path, required=True, help="directory for the outputs")
    parser.add_argument("--screenshot", type=Path, help="write a full-page PNG here")
    args = parser.parse_args(argv)
    import nbformat

    args.out.mkdir(parents=True, exist_ok=True)
    nb = execute(args.notebook)
    executed = args.out / "notebook.ipynb"
    nbformat.write(nb, executed)  # type: ignore[arg-type]
    page = args.out / "notebook.html"
    page.write_text(to_html(nb), encoding="utf-8")
    print(f"wrote {executed} and {page}")
    if args.screenshot:
        screenshot(page, args.screenshot)
        print(f"wrote {args.screenshot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
