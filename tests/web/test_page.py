"""The console page, feature by feature, in headless Chromium (Debian's package, driven
by Playwright) under the page's real CSP.

The server is the real web app over a real SQLite file with a scripted assistant (the
conftest's double) whose answers carry the chart the real ``Answer.chart()`` suggests
for their rows; one test asks the real demo :class:`~avl.console.Console`.
"""

from __future__ import annotations

import csv
import io
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest

from avl.assistant import Answer
from avl.console import Console
from avl.web import ApiKeyAuthenticator, Identity, create_app

from .conftest import Ans, Ev, LiveServer, ScriptedAssistant, TinyConsole, expect

pytestmark = pytest.mark.browser


XSS = "<img src=x onerror=alert(1)>"
ABSTAIN = "will it rain tomorrow?"

SCRIPT = {
    "revenue by city": "SELECT city, revenue FROM cities ORDER BY city",
    "revenue by city, biggest first": "SELECT city, revenue FROM cities ORDER BY revenue DESC",
    "total by month": "SELECT month, total FROM sales ORDER BY month",
    "units against total": "SELECT units, total FROM sales",
    "every city": "SELECT * FROM cities ORDER BY city",
    "how many cities": "SELECT COUNT(*) AS n FROM cities",
    XSS: 'SELECT label AS "<b onmouseover=alert(3)>label</b>", n FROM html ORDER BY n',
}


def shown(question: str) -> str:
    """The SQL the page shows for a scripted question (after SafeQuery's row cap)."""
    return SCRIPT[question] + " LIMIT 100"


#: Marks forced onto the suggested spec (the rest keep what Answer.chart() says).
MARKS = {"units against total": {"type": "point", "tooltip": True}}


@attrs.frozen(kw_only=True)
class ChartAns(Ans):
    vega: Any = None
    session: str | None = None
    summary: str | None = None
    outcome: str = "ok"
    reason: str = ""

    def chart(self) -> Any:
        return self.vega


class ChartingAssistant(ScriptedAssistant):
    """The conftest's scripted assistant; its answers suggest a chart like avl's do,
    and it keeps follow-up sessions as avl's does (``"new"`` opens one)."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.sessions_seen: list[tuple[str, str | None]] = []

    def stream(self, question: str, **kw: Any) -> Iterator[Ev]:  # type: ignore[override]
        session = kw.pop("session", None)
        self.sessions_seen.append((question, session))
        if session == "new":
            session = f"thread-{len(self.sessions_seen)}"
        if question == ABSTAIN:  # the writer declines, as avl's does
            yield Ev(kind="retrieved", data={"items": []})
            answer = ChartAns(
                question=question,
                outcome="abstained",
                reason="the weather is not in this database",
                summary="This database cannot answer the question.",
                session=session,
            )
            yield Ev(kind="answer", data={}, answer=answer)
            yield Ev(kind="done", data={"outcome": "abstained"})
            return
        for ev in super().stream(question, **kw):
            if ev.answer is not None:
                a = ev.answer
                spec = Answer(question=a.question, columns=a.columns, rows=a.rows).chart()
                if spec is not None and question in MARKS:
                    spec = {**spec, "mark": MARKS[question]}
                    spec["encoding"] = {
                        **spec["encoding"],
                        "x": {**spec["encoding"]["x"], "type": "quantitative"},
                    }
                fields = {f.name: getattr(a, f.name) for f in attrs.fields(Ans)}
                answer = ChartAns(**fields, vega=spec, session=session)
                ev = Ev(kind="answer", data={}, answer=answer)
            yield ev


NOTE = (
    "A long note about this city that holds many ordinary words, so that it has to "
    "wrap between words in a narrow table cell and never inside one of them."
)


def _make_db(path: Path) -> Path:
    con = sqlite3.connect(path)
    con.executescript(
        """
        CREATE TABLE cities (city TEXT, country TEXT, revenue REAL, population INTEGER,
                             area_km2 REAL, founded INTEGER, note TEXT);
        CREATE TABLE sales (month TEXT, total REAL, units INTEGER);
        CREATE TABLE html (label TEXT, n INTEGER);
        """
    )
    con.executemany(
        "INSERT INTO cities VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            ("London", "United Kingdom", 343.5, 8_982_000, 1572.0, 47, NOTE),
            ("Paris", "France", 1200.25, 2_161_000, 105.4, -250, NOTE),
            ("Lisbon", "Portugal", 87.0, 545_000, 100.05, -1200, NOTE),
            ("Zürich", "Switzerland", 640.75, 421_000, 87.88, 1218, NOTE),
            ("Antananarivo", "Madagascar", 12.5, 1_275_000, 88.0, 1610, NOTE),
        ],
    )
    con.executemany(
        "INSERT INTO sales VALUES (?, ?, ?)",
        [
            ("2026-01", 120.0, 12),
            ("2026-02", 95.5, 9),
            ("2026-03", 180.25, 20),
            ("2026-04", 150.0, 14),
            ("2026-05", 210.0, 25),
        ],
    )
    con.executemany(
        "INSERT INTO html VALUES (?, ?)",
        [(XSS.replace("1", "2"), 3), ("<script>alert(4)</script>", 5), ("a&b", 7)],
    )
    con.commit()
    con.close()
    return path


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TinyConsole]:
    path = _make_db(tmp_path_factory.mktemp("page") / "page.db")
    console = TinyConsole(path)
    console.assistant = ChartingAssistant(path, console, SCRIPT)
    yield console
    console.close()


@pytest.fixture(scope="module")
def url(shop: TinyConsole) -> Iterator[str]:
    with LiveServer(create_app(shop)) as server:
        yield server.url + "/"


class Watch:
    """What a page did wrong: script errors, CSP refusals, dialogs, failed requests."""

    def __init__(self, page: Any) -> None:
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.failed: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on(
            "console",
            lambda m: (
                self.errors.append(f"{m.type}: {m.text}")
                if m.type in ("error", "warning")
                else None
            ),
        )
        page.on("dialog", self._dialog)
        page.on(
            "response",
            lambda r: self.failed.append(f"{r.status} {r.url}") if r.status >= 400 else None,
        )

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def clean(self) -> bool:
        return not (self.errors or self.dialogs or self.failed)


@pytest.fixture
def page(browser: Any, url: str) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    p = context.new_page()
    p.watch = Watch(p)
    p.goto(url)
    p.locator("#who", has_text="signed in as local").wait_for(timeout=15_000)
    yield p
    context.close()


def ask(page: Any, question: str) -> Any:
    """Type a question, press Enter, wait for its turn to finish; the turn's locator."""
    n = page.locator("#thread > li").count()
    page.fill("#question", question)
    page.press("#question", "Enter")
    turn = page.locator("#thread > li").nth(n)
    turn.locator(".turn-meta:not(.pending)").wait_for(timeout=30_000)
    return turn


def run_sql(page: Any, sql: str) -> Any:
    n = page.locator("#thread > li").count()
    if not page.locator("#sql").is_visible():
        page.click("#sql-panel summary")
    page.fill("#sql", sql)
    page.click("#run-button")
    turn = page.locator("#thread > li").nth(n)
    turn.locator(".turn-meta:not(.pending)").wait_for(timeout=30_000)
    return turn


def rows_of(turn: Any) -> list[list[str]]:
    return [
        [td.inner_text() for td in tr.locator("td").all()]
        for tr in turn.locator("table.rows tbody tr").all()
    ]


# -- asking -------------------------------------------------------------------------------


def test_enter_asks_and_shift_enter_inserts_a_newline(page: Any) -> None:
    box = page.locator("#question")
    box.click()
    page.keyboard.type("how many")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("cities")
    assert box.input_value() == "how many\ncities"
    assert page.locator("#thread > li").count() == 0  # Shift+Enter did not ask
    box.fill("how many cities")
    page.keyboard.press("Enter")
    turn = page.locator("#thread > li").first
    turn.locator(".turn-meta:not(.pending)").wait_for(timeout=30_000)
    assert box.input_value() == ""  # asked, and the box is ready for the next one
    assert turn.locator(".question").inner_text() == "how many cities"
    assert rows_of(turn) == [["5"]]
    assert page.watch.clean(), page.watch.__dict__


def test_the_thread_grows_and_each_turn_keeps_its_answer(page: Any) -> None:
    first = ask(page, "how many cities")
    second = ask(page, "revenue by city")
    third = ask(page, "total by month")
    assert page.locator("#thread > li").count() == 3
    assert [t.locator(".question").inner_text() for t in (first, second, third)] == [
        "how many cities",
        "revenue by city",
        "total by month",
    ]
    # Every turn shows its question, SQL, verdict and rows; the earlier ones are intact.
    assert first.locator(".sql-code").inner_text() == shown("how many cities")
    assert first.locator(".badge.verdict").inner_text() == "Allowed"
    assert rows_of(first) == [["5"]]
    assert second.locator(".sql-code").inner_text() == shown("revenue by city")
    assert len(rows_of(second)) == 5
    assert third.locator("th").all_inner_texts() == ["month", "total"]
    assert first.locator(".chart svg").count() == 0  # one number: no chart
    assert page.locator("#empty").is_hidden()
    # A new thread starts empty.
    page.click("#new-thread")
    assert page.locator("#thread > li").count() == 0
    assert page.locator("#empty").is_visible()
    assert page.watch.clean(), page.watch.__dict__


def test_a_refused_query_shows_the_verdict_and_its_violations(page: Any) -> None:
    turn = run_sql(page, "DELETE FROM cities")
    assert turn.locator(".badge.verdict").inner_text() == "Refused"
    assert turn.locator(".violations li code").first.inner_text() == "statement_kind"
    assert turn.locator("table.rows").count() == 0
    assert turn.locator(".turn-actions").is_hidden()  # nothing to export
    # Check (no run) shows its verdict in the SQL panel.
    page.fill("#sql", "SELECT city FROM cities")
    page.click("#check-button")
    page.locator("#verdict.allowed").wait_for(timeout=15_000)
    assert page.locator("#violations li").count() == 0


def test_a_thread_asks_follow_ups_in_one_session(page: Any, shop: TinyConsole) -> None:
    assistant = shop.assistant
    assert isinstance(assistant, ChartingAssistant)
    sent: list[Any] = []
    page.on(
        "request",
        lambda r: sent.append(r.post_data_json) if r.url.endswith("/v1/ask") else None,
    )
    ask(page, "revenue by city")
    ask(page, "revenue by city, biggest first")
    page.click("#new-thread")
    ask(page, "how many cities")
    # The first question of a thread opens a session; the next one sends its id back.
    first_id = sent[1].get("session")
    assert first_id is not None
    assert first_id.startswith("thread-")  # the id the first answer carried
    assert [b.get("session") for b in sent] == ["new", first_id, "new"]
    assert assistant.sessions_seen[-3:] == [
        ("revenue by city", "new"),
        ("revenue by city, biggest first", first_id),
        ("how many cities", "new"),
    ]
    assert page.watch.clean(), page.watch.__dict__


def test_a_server_without_sessions_gets_plain_questions(page: Any) -> None:
    """A server from before follow-up sessions refuses the field (422 naming it): the
    page asks again without it, and leaves it out from then on."""
    seen: list[Any] = []

    def older_server(route: Any) -> None:
        body = route.request.post_data_json
        seen.append(body)
        if "session" in body:
            route.fulfill(
                status=422,
                content_type="application/problem+json",
                body='{"type":"about:blank","title":"Invalid input","status":422,'
                '"detail":"body: unknown field(s) [\'session\']"}',
            )
        else:
            route.continue_()

    page.route("**/v1/ask", older_server)
    first = ask(page, "how many cities")
    second = ask(page, "revenue by city")
    assert rows_of(first) == [["5"]]
    assert len(rows_of(second)) == 5
    assert seen == [
        {"question": "how many cities", "session": "new"},
        {"question": "how many cities"},
        {"question": "revenue by city"},
    ]


def test_an_abstained_answer_says_why_once(page: Any) -> None:
    turn = ask(page, ABSTAIN)
    assert turn.locator(".turn-meta").inner_text() == "Cannot answer from this database"
    assert turn.locator(".summary").inner_text() == "This database cannot answer the question."
    assert turn.locator(".sql-block").is_hidden()
    assert turn.locator("table.rows").count() == 0
    assert turn.locator(".chart svg").count() == 0
    assert page.watch.clean(), page.watch.__dict__


# -- copy SQL ------------------------------------------------------------------------------


def test_copy_sql_with_the_clipboard_api(browser: Any, url: str) -> None:
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.goto(url)
    turn = ask(page, "revenue by city")
    turn.locator(".copy-sql").click()
    expect(turn.locator(".copy-sql")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == shown("revenue by city")
    context.close()


def test_copy_sql_falls_back_without_the_clipboard_api(browser: Any, url: str) -> None:
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    # A browser without the async clipboard (an old one, or an insecure context).
    page.add_init_script("Object.defineProperty(navigator, 'clipboard', {value: undefined})")
    page.goto(url)
    turn = ask(page, "total by month")
    turn.locator(".copy-sql").click()
    expect(turn.locator(".copy-sql")).to_have_text("Copied")
    assert page.locator(".clip-helper").count() == 0  # the helper is gone
    reader = context.new_page()
    reader.goto(url)
    assert reader.evaluate("navigator.clipboard.readText()") == shown("total by month")
    context.close()


# -- CSV -----------------------------------------------------------------------------------


def test_csv_download_quotes_and_guards_formulas(page: Any) -> None:
    sql = (
        "SELECT 'a,b' AS \"x,y\", 'say \"hi\"' AS quote, 'line1\nline2' AS lines, "
        "'=1+2' AS eq, '+cmd' AS plus, '-2+3' AS minus, '@SUM(A1)' AS at, "
        "-7 AS neg, 343.5 AS num, NULL AS empty, '=\"x,y\"' AS both"
    )
    turn = run_sql(page, sql)
    with page.expect_download() as info:
        turn.locator(".csv").click()
    download = info.value
    assert download.suggested_filename.endswith(".csv")
    raw = Path(download.path()).read_bytes()
    assert raw.startswith("\ufeff".encode())  # spreadsheets read it as UTF-8
    text = raw.decode("utf-8")[1:]
    assert text == (
        '"x,y",quote,lines,eq,plus,minus,at,neg,num,empty,both\r\n'
        '"a,b","say ""hi""","line1\nline2",\'=1+2,\'+cmd,\'-2+3,\'@SUM(A1),-7,343.5,,'
        '"\'=""x,y"""\r\n'
    )
    parsed = list(csv.reader(io.StringIO(text, newline="")))
    assert parsed[1][:3] == ["a,b", 'say "hi"', "line1\nline2"]
    assert page.watch.clean(), page.watch.__dict__


# -- charts --------------------------------------------------------------------------------


def test_a_bar_chart_has_one_bar_per_row(page: Any) -> None:
    turn = ask(page, "revenue by city")
    chart = turn.locator(".chart svg")
    assert chart.count() == 1
    bars = chart.locator("rect.bar")
    assert bars.count() == 5
    # Bars follow the values: London 343.5 is taller than Lisbon 87.
    heights = {
        b.locator("title").text_content().split(":")[0]: float(b.get_attribute("height"))
        for b in bars.all()
    }
    assert heights["London"] > heights["Lisbon"] > heights["Antananarivo"]
    assert heights["Paris"] == max(heights.values())
    labels = chart.locator("text.tick").all_text_contents()
    assert {"London", "Paris", "Lisbon", "Zürich"} <= set(labels)
    assert chart.get_attribute("role") == "img"


def test_a_line_chart_and_a_scatter_plot(page: Any) -> None:
    line = ask(page, "total by month").locator(".chart svg")
    assert line.locator("polyline.line").count() == 1
    points = line.locator("polyline.line").get_attribute("points").split()
    assert len(points) == 5
    assert line.locator("circle.dot").count() == 5
    xs = [float(p.split(",")[0]) for p in points]
    assert xs == sorted(xs)  # months in order
    scatter = ask(page, "units against total").locator(".chart svg")
    assert scatter.locator("polyline").count() == 0
    assert scatter.locator("circle.dot").count() == 5
    assert scatter.locator("rect.bar").count() == 0


def test_the_demo_console_answers_with_a_chart(browser: Any) -> None:
    console = Console(ratelimit={"rates": "1000/second"})
    try:
        with LiveServer(create_app(console)) as server:
            page = browser.new_page()
            page.goto(server.url + "/")
            turn = ask(page, "How many customers are there in each country?")
            n = len(rows_of(turn))
            assert n > 1
            assert turn.locator(".chart svg rect.bar").count() == n
            # The answer's one-sentence summary is shown with it.
            assert turn.locator(".summary").is_visible()
            assert turn.locator(".summary").inner_text().strip()
            page.close()
    finally:
        console.close()


# -- sign-out, favicon ---------------------------------------------------------------------


def test_sign_out_forgets_the_key(browser: Any, shop: TinyConsole) -> None:
    key = "page-signout-0123456789abcdef"
    auth = ApiKeyAuthenticator.from_keys({key: Identity(user="ann")})
    with LiveServer(create_app(shop, authenticator=auth)) as server:
        page = browser.new_page()
        page.goto(server.url + "/")
        page.locator("#key-form").wait_for(timeout=15_000)
        assert page.locator("#sign-out").is_hidden()
        page.fill("#api-key", key)
        page.press("#api-key", "Enter")
        page.locator("#who", has_text="signed in as ann").wait_for(timeout=15_000)
        assert page.locator("#signin").is_hidden()
        ask(page, "how many cities")
        page.locator("#history li").first.wait_for(timeout=15_000)
        page.click("#sign-out")
        # Back to the sign-in state: key gone from the tab, nothing of ann's left shown.
        assert page.locator("#key-form").is_visible()
        assert page.locator("#sign-out").is_hidden()
        assert page.inner_text("#who") == ""
        assert page.locator("#thread > li").count() == 0
        assert page.locator("#history li").count() == 0
        assert page.evaluate("sessionStorage.getItem('avl.credentials')") is None
        assert page.evaluate("sessionStorage.length") == 0
        # A reload does not sign anyone back in.
        page.reload()
        page.locator("#key-form").wait_for(timeout=15_000)
        assert page.inner_text("#who") == ""
        page.close()


def test_the_favicon_is_served(page: Any, url: str) -> None:
    icon = page.locator("link[rel=icon]").get_attribute("href")
    for path in (icon, "favicon.ico"):
        r = httpx.get(url + path)
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith("image/svg+xml")
        assert r.text.lstrip().startswith("<svg")
        assert "<script" not in r.text
        assert r.headers["x-content-type-options"] == "nosniff"
    assert page.watch.clean(), page.watch.__dict__  # the page loaded without a 404


# -- the table -----------------------------------------------------------------------------


def _cell_layout(page: Any, turn: Any) -> list[dict[str, Any]]:
    return [  # type: ignore[no-any-return]
        td.evaluate(
            """td => {
                const range = document.createRange();
                range.selectNodeContents(td);
                const style = getComputedStyle(td);
                return {text: td.textContent, align: style.textAlign, cls: td.className,
                        lines: new Set([...range.getClientRects()].map(r => Math.round(r.top))).size,
                        scroll: td.scrollWidth, client: td.clientWidth};
            }"""
        )
        for td in turn.locator("table.rows td").all()
    ]


def test_numbers_are_right_aligned_and_text_is_not(page: Any) -> None:
    turn = ask(page, "every city")
    heads = turn.locator("th").all()
    aligns = {h.inner_text(): h.evaluate("h => getComputedStyle(h).textAlign") for h in heads}
    assert aligns == {
        "city": "left",
        "country": "left",
        "revenue": "right",
        "population": "right",
        "area_km2": "right",
        "founded": "right",  # negative years included
        "note": "left",
    }
    cells = _cell_layout(page, turn)
    by_text = {c["text"]: c for c in cells}
    assert by_text["343.5"]["align"] == "right"
    assert by_text["8982000"]["align"] == "right"
    assert by_text["-250"]["align"] == "right"
    assert by_text["London"]["align"] == "left"


@pytest.mark.parametrize("width", [1280, 375])
def test_no_word_or_number_breaks_inside_a_cell(browser: Any, url: str, width: int) -> None:
    context = browser.new_context(viewport={"width": width, "height": 800})
    page = context.new_page()
    page.goto(url)
    turn = ask(page, "every city")
    cells = _cell_layout(page, turn)
    assert len(cells) == 5 * 7
    for cell in cells:
        assert cell["scroll"] <= cell["client"], cell  # nothing spills out of its cell
        if " " not in cell["text"]:
            assert cell["lines"] == 1, cell  # `Londo|n`, `343.|5`
    # The long notes wrap, between words.
    notes = [c for c in cells if c["text"] == NOTE]
    assert notes
    assert all(c["lines"] > 1 for c in notes)
    context.close()


def test_the_phone_width_never_scrolls_the_page_sideways(browser: Any, url: str) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 812}, is_mobile=True)
    page = context.new_page()
    watch = Watch(page)
    page.goto(url)
    ask(page, "revenue by city")
    turn = ask(page, "every city")
    run_sql(page, "SELECT '" + "0" * 3000 + "' AS wide, 'x' AS y")
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 375
    # The wide table scrolls inside its own box.
    scroller = turn.locator(".table-scroll")
    assert scroller.evaluate("s => s.scrollWidth > s.clientWidth")
    box = scroller.bounding_box()
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= 375
    chart = page.locator(".chart svg").first.bounding_box()
    assert chart["x"] >= 0
    assert chart["x"] + chart["width"] <= 375
    assert watch.clean(), watch.__dict__
    context.close()


# -- XSS -----------------------------------------------------------------------------------


def test_html_from_the_server_is_shown_as_text(page: Any) -> None:
    turn = ask(page, XSS)
    assert turn.locator(".question").inner_text() == XSS
    assert turn.locator("th").first.inner_text() == "<b onmouseover=alert(3)>label</b>"
    cells = [r[0] for r in rows_of(turn)]
    assert cells == [XSS.replace("1", "2"), "<script>alert(4)</script>", "a&b"]
    # The chart's labels and titles are text too.
    texts = turn.locator(".chart svg text").all_text_contents()
    assert any("<img" in t or "<scr" in t for t in texts)
    run_sql(page, f"SELECT '{XSS}' AS \"{XSS}\"")
    page.locator("#history .q", has_text="<img").first.wait_for(timeout=15_000)
    # No markup from the server became an element; nothing ran.
    assert page.locator("#thread img, #thread script, #thread b, #history img").count() == 0
    assert page.locator("main img").count() == 0
    page.locator("#thread > li").last.locator("td").first.hover()
    assert page.watch.dialogs == []
    assert page.watch.clean(), page.watch.__dict__


# -- screenshots ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "viewport", "scheme"),
    [
        ("page-desktop", {"width": 1280, "height": 800}, "light"),
        ("page-phone", {"width": 375, "height": 812}, "light"),
        ("page-desktop-dark", {"width": 1280, "height": 800}, "dark"),
        ("page-phone-dark", {"width": 375, "height": 812}, "dark"),
    ],
)
def test_screenshots(
    browser: Any,
    demo_url: str,
    tmp_path: Path,
    name: str,
    viewport: dict[str, int],
    scheme: str,
) -> None:
    """A thread with a chart (the demo console), saved to ``AVL_SCREENSHOT_DIR`` (to
    look at) or a temporary directory."""
    out = Path(os.environ.get("AVL_SCREENSHOT_DIR") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport=viewport, color_scheme=scheme)
    page = context.new_page()
    watch = Watch(page)
    page.goto(demo_url)
    ask(page, "How many customers are there?")
    turn = ask(page, "How many customers are there in each country?")
    rows = rows_of(turn)
    assert len(rows) > 1, turn.inner_text()
    assert turn.locator(".chart svg rect.bar").count() == len(rows)
    turn.locator(".question").scroll_into_view_if_needed()
    page.evaluate("window.scrollBy(0, -70)")
    page.screenshot(path=str(out / f"{name}.png"))
    assert watch.clean(), watch.__dict__
    context.close()
