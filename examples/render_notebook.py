"""Run examples/notebook.ipynb, export it to HTML and, optionally, screenshot the page.

Needs ``pip install nbclient nbconvert ipykernel`` (and ``playwright`` with a
Chromium for ``--screenshot``). The notebook runs in a temporary directory (it
creates ``shop.db`` there), so the example in the repository stays without outputs.

    python examples/render_notebook.py --out /tmp/nb            # notebook.ipynb + .html
    python examples/render_notebook.py --out /tmp/nb --screenshot /tmp/nb/notebook.png

nbconvert's HTML does not run Vega, so the charts there are the SVG avl draws; a
JupyterLab or VS Code session draws the same charts with Vega. To see those, give
``--vega`` a ``node_modules`` folder holding ``vega@5``, ``vega-lite@5`` and
``vega-embed@6`` (``npm install vega@5 vega-lite@5 vega-embed@6``, the versions
JupyterLab 4 renders with): the Vega-Lite outputs are drawn by Vega in Chromium
into ``vega.html`` and ``vega.png``.
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


_VEGA_PAGE = """<!doctype html><html><head><meta charset="utf-8">
<script src="{mods}/vega/build/vega.min.js"></script>
<script src="{mods}/vega-lite/build/vega-lite.min.js"></script>
<script src="{mods}/vega-embed/build/vega-embed.min.js"></script></head>
<body style="font-family:sans-serif">{divs}<script>
const specs = {specs};
window.drawn = Promise.all(specs.map((s, i) => vegaEmbed("#c" + i, s, {{actions: false}})));
</script></body></html>"""


def vega_page(nb: object, node_modules: Path, out: Path) -> Path:
    """An HTML page drawing every Vega-Lite output of ``nb`` with Vega."""
    import json

    specs = [
        output["data"]["application/vnd.vegalite.v5+json"]
        for cell in nb.cells  # type: ignore[attr-defined]
        if cell.cell_type == "code"
        for output in cell.outputs
        if "application/vnd.vegalite.v5+json" in output.get("data", {})
    ]
    divs = "".join(f'<div id="c{i}" style="margin:16px"></div>' for i in range(len(specs)))
    page = out / "vega.html"
    page.write_text(
        _VEGA_PAGE.format(
            mods=node_modules.resolve().as_uri(),
            divs=divs,
            specs=json.dumps(specs).replace("</", "<\\/"),
        ),
        encoding="utf-8",
    )
    return page


def screenshot_vega(page_html: Path, png: Path) -> int:
    """Draw the Vega page in headless Chromium; the number of charts Vega drew."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium) if chromium else p.chromium.launch()
        page = browser.new_page(viewport={"width": 1000, "height": 800})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(page_html.as_uri())
        page.evaluate("window.drawn.then(() => true)")
        drawn = int(
            page.evaluate("document.querySelectorAll('.vega-embed svg, .vega-embed canvas').length")
        )
        page.screenshot(path=str(png), full_page=True)
        browser.close()
    if errors:
        raise RuntimeError("; ".join(errors))
    return drawn


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebook", type=Path, default=HERE / "notebook.ipynb")
    parser.add_argument("--out", type=Path, required=True, help="directory for the outputs")
    parser.add_argument("--screenshot", type=Path, help="write a full-page PNG here")
    parser.add_argument(
        "--vega", type=Path, help="a node_modules folder with vega, vega-lite, vega-embed"
    )
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
    if args.vega:
        page = vega_page(nb, args.vega, args.out)
        drawn = screenshot_vega(page, args.out / "vega.png")
        print(f"Vega drew {drawn} chart(s): {page} and {args.out / 'vega.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
