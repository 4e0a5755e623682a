"""Notebook views: the HTML and text reprs of avl's values, the chart's mime bundle,
``Page.to_pandas()``.

The HTML is parsed with :mod:`html.parser` into a small tree, so the tests check the
structure a browser builds (marks at the violations' offsets, escaped values, cut
tables), not substrings of the markup.
"""

from __future__ import annotations

import base64
import json
import math
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from avl import _html
from avl.assistant import Answer, Assistant, Chart, create_demo_database
from avl.history import Entry, History, Page, ProblemKind, VerifyReport
from avl.metrics import Metrics
from avl.ratelimit import Decision, Rate, RateLimiter
from avl.safety import Policy, Position, SafeQuery, Verdict, Violation, ViolationCode
from avl.testing import FakeChatModel
from tests.conftest import need_module

XSS = "<script>alert(1)</script>"
VEGALITE = "application/vnd.vegalite.v5+json"


# --------------------------------------------------------------------- a tiny DOM
class Node:
    def __init__(self, tag: str, attrs: dict[str, str | None], parent: Node | None) -> None:
        self.tag = tag
        self.attrs = attrs
        self.parent = parent
        self.children: list[Node | str] = []

    def text(self, skip: tuple[str, ...] = ()) -> str:
        out = []
        for c in self.children:
            if isinstance(c, str):
                out.append(c)
            elif c.tag not in skip:
                out.append(c.text(skip))
        return "".join(out)

    def iter(self, tag: str | None = None, cls: str | None = None) -> list[Node]:
        found = []
        for c in self.children:
            if isinstance(c, Node):
                if (tag is None or c.tag == tag) and (
                    cls is None or cls in (c.attrs.get("class") or "").split()
                ):
                    found.append(c)
                found.extend(c.iter(tag, cls))
        return found

    def one(self, tag: str | None = None, cls: str | None = None) -> Node:
        found = self.iter(tag, cls)
        assert len(found) == 1, f"{len(found)} <{tag} class={cls}> found"
        return found[0]


_VOID = {"br", "hr", "img", "input", "meta", "link", "col", "wbr"}


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {}, None)
        self.cur = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs), self.cur)
        self.cur.children.append(node)
        if tag not in _VOID:
            self.cur = node

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.cur.children.append(Node(tag, dict(attrs), self.cur))

    def handle_endtag(self, tag: str) -> None:
        node: Node | None = self.cur
        while node is not None and node.tag != tag:
            node = node.parent
        assert node is not None, f"stray </{tag}>"
        assert node.parent is not None, f"stray </{tag}>"
        self.cur = node.parent

    def handle_data(self, data: str) -> None:
        self.cur.children.append(data)


def dom(markup: str) -> Node:
    p = _Parser()
    p.feed(markup)
    p.close()
    assert p.cur is p.root, f"unclosed <{p.cur.tag}>"
    return p.root


def assert_no_script(root: Node) -> None:
    assert not root.iter("script"), "a value was not escaped"
    for node in root.iter():
        assert not any(k.startswith("on") for k in node.attrs), node.attrs


def body_rows(table: Node) -> list[list[str]]:
    return [[td.text() for td in tr.iter("td")] for tr in table.one("tbody").iter("tr")]


# ------------------------------------------------------------------------ verdict
GUARD = SafeQuery(Policy(denied_tables=["users"]))


def marks_of(pre: Node) -> list[tuple[int, str, str]]:
    """(offset in the text, marked text, data-violations) of every mark in a <pre>."""
    out = []
    pos = 0
    for c in pre.children:
        if isinstance(c, str):
            pos += len(c)
        else:
            assert c.tag == "mark"
            assert int(c.attrs["data-offset"] or "-1") == pos
            out.append((pos, c.text(), c.attrs["data-violations"] or ""))
            pos += len(c.text())
    return out


def test_verdict_marks_every_violation_at_its_offset() -> None:
    sql = "SELECT name FROM users WHERE 1=1 OR 1=1"
    v = GUARD.check(sql)
    assert not v.allowed
    assert v.text == sql
    root = dom(v._repr_html_())
    box = root.one("div", "avl-verdict")
    pre = box.one("pre", "avl-sql")
    assert pre.text() == sql  # the marks cut the text, they add nothing to it
    marks = marks_of(pre)
    offsets = {v.position.offset for v in v.violations if v.position is not None}
    assert {m[0] for m in marks} == offsets
    by_offset = {m[0]: m for m in marks}
    users = sql.index("users")
    assert by_offset[users][1] == "users"
    # a violation about an expression marks all of it (Position.end), not one token
    assert by_offset[sql.index("1=1")][1] == "1=1 OR 1=1"
    items = box.one("ol", "avl-violations").iter("li")
    assert [li.attrs["data-code"] for li in items] == [c.value for c in v.codes]
    for i, violation in enumerate(v.violations, 1):
        assert violation.position is not None
        assert str(i) in by_offset[violation.position.offset][2].split(",")
    assert "rejected" in box.text()


def test_violations_at_one_token_share_one_mark() -> None:
    sql = "SELECT name FROM users; DROP TABLE users"
    v = GUARD.check(sql)
    pre = dom(v._repr_html_()).one("pre", "avl-sql")
    assert pre.text() == sql
    marks = marks_of(pre)
    shared = [m for m in marks if "," in m[2]]
    assert shared, marks  # two violations point at the last token
    assert sorted(int(n) for m in marks for n in m[2].split(",")) == list(
        range(1, len(v.violations) + 1)
    )


def test_a_call_is_marked_with_its_parentheses() -> None:
    sql = "SELECT load_extension('x') AS y, 2 AS z"
    v = SafeQuery(Policy()).check(sql)
    marks = marks_of(dom(v._repr_html_()).one("pre", "avl-sql"))
    assert [m[1] for m in marks] == ["load_extension('x')"]


def test_a_long_span_is_marked_by_its_first_token() -> None:
    joins = " ".join(f"JOIN t{i} ON t{i}.id = t0.id" for i in range(1, 12))
    sql = f"SELECT t0.id FROM t0 {joins}"
    v = SafeQuery(Policy(max_joins=2)).check(sql)
    assert "too_many_joins" in [c.value for c in v.codes]
    for offset, text, _ in marks_of(dom(v._repr_html_()).one("pre", "avl-sql")):
        assert len(text) <= _html.MAX_MARK
        assert sql[offset : offset + len(text)] == text


def test_parse_error_is_marked_at_its_position() -> None:
    sql = "SELECT a\nFROM t WHERE ((("
    v = GUARD.check(sql)
    (violation,) = v.violations
    assert violation.position is not None
    marks = marks_of(dom(v._repr_html_()).one("pre", "avl-sql"))
    line_start = sql.index("\n") + 1
    assert marks == [(line_start + violation.position.col - 1, "(", "1")]


def test_a_position_without_offset_is_marked_from_its_line_and_column() -> None:
    sql = "SELECT a\nFROM t WHERE ((("
    v = Verdict(
        allowed=False,
        violations=(
            Violation(
                code=ViolationCode.PARSE_ERROR, message="no", position=Position(line=2, col=16)
            ),
        ),
        text=sql,
    )
    marks = marks_of(dom(v._repr_html_()).one("pre", "avl-sql"))
    assert marks == [(sql.index("\n") + 16, "(", "1")]


def test_verdict_escapes_the_sql_and_the_messages() -> None:
    sql = f"SELECT '{XSS}' AS x FROM users"
    v = GUARD.check(sql)
    markup = v._repr_html_()
    assert XSS not in markup
    root = dom(markup)
    assert_no_script(root)
    assert root.one("pre", "avl-sql").text() == sql
    allowed = SafeQuery(Policy()).check(f"SELECT '{XSS}' AS x")
    root = dom(allowed._repr_html_())
    assert_no_script(root)
    assert XSS in root.text()


def test_verdict_repr_is_readable() -> None:
    v = GUARD.check("SELECT name FROM users")
    text = repr(v)
    assert text.splitlines()[0] == "Verdict(rejected, select, 1 violation)"
    assert "table_denied at 1:18: table 'users' is denied" in text
    ok = SafeQuery(Policy(max_rows=5)).check("SELECT 1 AS one")
    assert repr(ok).splitlines() == ["Verdict(allowed, select)", "  sql: SELECT 1 AS one LIMIT 5"]
    # the rewritten SQL is shown, the text as written folded under it
    root = dom(ok._repr_html_())
    pres = root.iter("pre", "avl-sql")
    assert [p.text() for p in pres] == ["SELECT 1 AS one LIMIT 5", "SELECT 1 AS one"]


def test_verdict_equality_ignores_the_text() -> None:
    policy = SafeQuery(Policy(), cache_size=0)
    assert policy.check("SELECT 1 AS x") == policy.check("SELECT 1 AS x;")
    assert policy.check("SELECT 1 AS x;").text == "SELECT 1 AS x;"


def test_long_sql_is_cut() -> None:
    sql = "SELECT " + ", ".join(f"c{i}" for i in range(6000)) + " FROM users"
    v = SafeQuery(Policy(denied_tables=["users"], max_length=100_000)).check(sql)
    root = dom(v._repr_html_())
    pre = root.one("pre", "avl-sql")
    assert len(pre.text()) == _html.MAX_SQL
    assert f"… {len(sql) - _html.MAX_SQL} more characters" in root.text()
    assert root.one("ol", "avl-violations").iter("li")  # still listed


# ----------------------------------------------------------------------- decision
def test_decision_views() -> None:
    limiter = RateLimiter("2/second")
    first = limiter.hit("nb-user")
    assert repr(first).startswith("Decision(allowed, 1 of 2 left, full again in ")
    limiter.hit("nb-user")
    refused = limiter.hit("nb-user")
    assert repr(refused).startswith("Decision(refused, retry in ")
    assert repr(refused).endswith("rate 2/second)")
    root = dom(refused._repr_html_())
    box = root.one("div", "avl-decision")
    rows = dict(body_rows(box.one("table")))  # type: ignore[arg-type]
    assert rows["left"] == "0 of 2"
    assert rows["rate"] == "2/second"
    assert rows["retry"].startswith("in ")
    never = Decision(
        allowed=False, remaining=0, limit=1, reset_after=0.0, retry_after=math.inf,
        rate=Rate(limit=1, period_s=1), rates=(Rate(limit=1, period_s=1),),
    )  # fmt: skip
    assert "retry never" in repr(never)


# ------------------------------------------------------------------------ history
@pytest.fixture
def history() -> History:
    h = History("memory://")
    for i in range(60):
        h.record(
            Entry(
                user="ann" if i % 2 else "bob",
                question=f"question {i} {XSS}",
                sql=f"SELECT * FROM orders WHERE id = {i}",
                outcome="ok" if i % 3 else "rejected",
                violations=[] if i % 3 else ["table_denied"],
                row_count=i,
                timings={"total": 0.002 * i},
                time=1_767_225_600.0 + i,
            )
        )
    return h


def test_page_repr_shows_the_entries(history: History) -> None:
    page = history.search(limit=1)
    lines = repr(page).splitlines()
    assert lines[0] == f"Page(1 entry, next_cursor={page.next_cursor!r})"
    assert "question 59" in lines[2]
    assert "2026-01-01 00:00:59" in lines[2]
    big = history.search(limit=30)
    lines = repr(big).splitlines()
    assert lines[0].startswith("Page(30 entries")
    assert len(lines) == 1 + 1 + 10 + 1
    assert lines[-1] == "  … 20 more entries"
    assert repr(Page()) == "Page(0 entries, next_cursor=None)"


def test_page_html_is_a_bounded_escaped_table(history: History) -> None:
    page = history.search(limit=60)
    root = dom(page._repr_html_())
    assert_no_script(root)
    box = root.one("div", "avl-page")
    table = box.one("table")
    heads = [th.text() for th in table.one("thead").iter("th")]
    assert heads[:6] == ["seq", "time (UTC)", "user", "role", "outcome", "question"]
    rows = body_rows(table)
    assert len(rows) == _html.MAX_ROWS
    assert rows[0][0] == "60"
    assert rows[0][5] == f"question 59 {XSS}"
    assert rows[1][4] == "ok"
    assert rows[2][4] == "rejected (table_denied)"
    assert "… 10 more entries" in box.text()
    # numbers are right-aligned
    seq_cell = table.one("tbody").iter("tr")[0].iter("td")[0]
    assert "text-align:right" in (seq_cell.attrs["style"] or "")


def test_page_to_pandas(history: History) -> None:
    pd = need_module("pandas", reason="the pandas extra is not installed")
    page = history.search(limit=5)
    df = page.to_pandas()
    assert df.shape == (5, len(Entry.__attrs_attrs__) + 1)
    assert list(df["seq"]) == [60, 59, 58, 57, 56]
    assert str(df["time"].dtype).startswith("datetime64")
    assert str(df["time"].dt.tz) == "UTC"
    assert df["time"].iloc[0] == pd.Timestamp("2026-01-01 00:00:59", tz="UTC")
    assert df["latency_s"].iloc[0] == pytest.approx(0.118)
    assert df["violations"].iloc[2] == ["table_denied"]
    assert df["violations"].iloc[1] == []
    assert df["question"].iloc[0] == f"question 59 {XSS}"
    empty = Page().to_pandas()
    assert empty.shape == (0, df.shape[1])
    assert list(empty.columns) == list(df.columns)


def test_verify_report_views(history: History) -> None:
    report = history.verify()
    assert repr(report).startswith("VerifyReport(ok, 60 checked, head seq 60 ")
    root = dom(report._repr_html_())
    assert "chain verified" in root.one("div", "avl-verify").text()
    bad = VerifyReport(
        ok=False,
        checked=7,
        problem=ProblemKind.ALTERED,
        entry_id="abc",
        seq=5,
        message=f"entry 5 was changed {XSS}",
        head_seq=9,
        head_hash="f" * 64,
    )
    assert (
        repr(bad)
        == f"VerifyReport(altered at seq 5 (entry abc), 7 checked: entry 5 was changed {XSS})"
    )
    root = dom(bad._repr_html_())
    assert_no_script(root)
    box = root.one("div", "avl-verify")
    assert "chain altered" in box.text()
    assert dict(body_rows(box.one("table")))["at seq"] == "5"  # type: ignore[arg-type]


# ------------------------------------------------------------------------ metrics
def test_metrics_snapshot_views() -> None:
    m = Metrics()
    assert repr(m.snapshot()) == "MetricsSnapshot(window_s=300, empty)"
    m.observe_stage("execute", 0.004)
    m.observe_stage("model", 0.8)
    m.record_tokens("openai/gpt-4o-mini", 100, 20)
    m.record_rejection("table_denied")
    m.record_cache(True)
    m.record_cache(False)
    m.count("asks", 3, user=XSS)
    snap = m.snapshot()
    text = repr(snap)
    assert "  stages (percentiles over the last 300 s):" in text
    assert "    execute      1    4.0 ms" in text
    assert "50.0%" in text
    root = dom(snap._repr_html_())
    assert_no_script(root)
    box = root.one("div", "avl-metrics")
    tables = box.iter("table")
    stages = body_rows(tables[0])
    assert stages[0][:3] == ["execute", "1", "4.0 ms"]
    assert stages[1][0] == "model"
    assert any(XSS in row[0] for t in tables for row in body_rows(t))


# ------------------------------------------------------------------------- answer
@pytest.fixture
def shop(tmp_path: Path) -> Path:
    path = tmp_path / "shop.db"
    create_demo_database(str(path))
    return path


def test_answer_html_shows_the_verdict_and_marks_a_rejection(shop: Path) -> None:
    model = FakeChatModel(default=f"SELECT name, '{XSS}' FROM customers; DROP TABLE orders")
    a = Assistant(db=f"sqlite:///{shop}", model=model, cache_threshold=None, max_attempts=1)
    ans = a.ask(f"drop it {XSS}")
    assert not ans.ok
    root = dom(ans._repr_html_())
    assert_no_script(root)
    box = root.one("div", "avl-answer")
    assert f"drop it {XSS}" in box.one("div", "avl-question").text()
    assert "rejected" in box.one("div", "avl-question").text()
    assert "rejected" not in box.one("div", "avl-verdict-head").text()  # said once
    pre = box.one("pre", "avl-sql")
    assert pre.text() == ans.sql
    marks = marks_of(pre)
    assert marks
    assert all(ans.sql[o : o + len(t)] == t for o, t, _ in marks)
    codes = [li.attrs["data-code"] for li in box.one("ol", "avl-violations").iter("li")]
    assert "statement_kind" in codes
    a.close()


def test_answer_html_is_bounded() -> None:
    rows = [(i, f"name {i}", None if i % 7 == 0 else i * 1.5) for i in range(120)]
    ans = Answer(
        question="all",
        sql="SELECT id, name, x FROM t",
        columns=["id", "name", "x"],
        rows=rows,
    )
    root = dom(ans._repr_html_())
    table = root.one("table")
    shown = body_rows(table)
    assert len(shown) == _html.MAX_ROWS
    assert shown[0] == ["0", "name 0", "NULL"]
    assert shown[1] == ["1", "name 1", "1.5"]
    assert "… 70 more rows" in root.text()
    assert not root.iter("p", "avl-summary")
    text = repr(ans).splitlines()
    assert text[-1] == "  … 110 more rows"
    long_cell = Answer(question="q", columns=["t"], rows=[("x" * 1000,)])
    (cell,) = body_rows(dom(long_cell._repr_html_()).one("table"))[0]
    assert len(cell) == _html.MAX_CELL
    assert cell.endswith("…")


def test_answer_html_shows_the_summary(shop: Path) -> None:
    a = Assistant(db=f"sqlite:///{shop}")
    a.train_from_database()
    ans = a.ask("How many customers are there in each country?")
    assert ans.summary
    root = dom(ans._repr_html_())
    assert root.one("p", "avl-summary").text() == ans.summary
    assert "allowed" in root.one("div", "avl-verdict-head").text()
    assert f"  summary: {ans.summary}" in repr(ans)
    escaped = dom(Answer(question="q", summary=XSS)._repr_html_())
    assert_no_script(escaped)
    assert escaped.one("p", "avl-summary").text() == XSS
    a.close()


# -------------------------------------------------------------------------- chart
def bar_chart() -> Chart:
    return Chart(
        {
            "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
            "description": f"per city {XSS}",
            "data": {
                "values": [
                    {"city": "Rome", "n": 1},
                    {"city": XSS, "n": 4},
                    {"city": "London", "n": 2},
                    {"city": "Rome", "n": 2},
                ]
            },
            "mark": "bar",
            "encoding": {
                "x": {"field": "city", "type": "nominal"},
                "y": {"field": "n", "type": "quantitative"},
            },
        }
    )


def test_chart_is_the_spec_and_a_mime_bundle() -> None:
    chart = bar_chart()
    assert chart["mark"] == "bar"
    assert isinstance(chart.spec, dict)
    assert chart.to_dict() == dict(chart)
    assert json.loads(json.dumps(chart)) == chart.to_dict()
    bundle = chart._repr_mimebundle_()
    assert set(bundle) == {VEGALITE, "image/svg+xml", "text/plain"}
    assert type(bundle[VEGALITE]) is dict
    assert bundle[VEGALITE] == chart.to_dict()
    assert bundle["text/plain"] == "Chart(bar: n by city, 4 points)"
    assert set(chart._repr_mimebundle_(include={VEGALITE})) == {VEGALITE}
    assert VEGALITE not in chart._repr_mimebundle_(exclude={VEGALITE})
    assert not hasattr(chart, "_repr_html_")  # html would outrank Vega in JupyterLab


def test_chart_svg_draws_the_bars() -> None:
    svg = bar_chart().to_svg()
    assert "<script" not in svg
    root = ET.fromstring(svg)  # well-formed XML, values escaped
    ns = {"s": "http://www.w3.org/2000/svg"}
    bars = root.findall("s:rect[@class='avl-bar']", ns)
    # summed per category, in ascending order as Vega-Lite sorts a nominal axis
    titles = [b.find("s:title", ns).text for b in bars]  # type: ignore[union-attr]
    assert titles == [f"{XSS}: 4", "London: 2", "Rome: 3"]
    heights = [float(b.get("height", "0")) for b in bars]
    assert heights[0] > heights[2] > heights[1] > 0
    assert heights[0] / heights[1] == pytest.approx(2.0, rel=0.02)
    assert root.find("s:title", ns).text == f"per city {XSS}"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("sql", "kept"),
    [
        ("SELECT city, revenue FROM cities ORDER BY revenue DESC", True),
        ("select city, revenue from cities order\n  by 2 desc limit 3", True),
        ("SELECT city, SUM(x) OVER (ORDER BY y) FROM t", False),  # a window's order
        ("SELECT city, n FROM (SELECT city, n FROM t ORDER BY n) AS s", False),
        ("SELECT city, revenue FROM cities", False),
    ],
)
def test_chart_keeps_the_order_the_query_chose(sql: str, kept: bool) -> None:
    rows = (("Paris", 1200.25), ("Zurich", 640.75), ("Lisbon", 80.0))
    answer = Answer(question="q", sql=sql, columns=("city", "revenue"), rows=rows)
    chart = answer.chart()
    assert chart is not None
    x = chart["encoding"]["x"]
    assert ("sort" in x and x["sort"] is None) is kept
    root = ET.fromstring(chart.to_svg())
    ns = {"s": "http://www.w3.org/2000/svg"}
    titles = [b.find("s:title", ns).text for b in root.findall("s:rect[@class='avl-bar']", ns)]  # type: ignore[union-attr]
    order = ["Paris", "Zurich", "Lisbon"] if kept else ["Lisbon", "Paris", "Zurich"]
    assert [t.split(":")[0] for t in titles] == order  # type: ignore[union-attr]


def test_chart_svg_line_and_many_points() -> None:
    values = [{"day": f"2026-01-{i % 28 + 1:02d}/{i}", "total": float(i)} for i in range(700)]
    chart = Chart(
        {
            "data": {"values": values},
            "mark": "line",
            "encoding": {
                "x": {"field": "day", "type": "ordinal"},
                "y": {"field": "total", "type": "quantitative"},
            },
        }
    )
    root = ET.fromstring(chart.to_svg())
    ns = {"s": "http://www.w3.org/2000/svg"}
    assert len(root.findall("s:circle", ns)) == 500
    assert len(root.findall("s:polyline", ns)) == 1
    texts = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "… 200 more not drawn" in texts


def test_answer_chart_keeps_working_as_a_dict(shop: Path) -> None:
    a = Assistant(db=f"sqlite:///{shop}")
    a.train_from_database()
    chart = a.ask("How many customers are there in each country?").chart()
    assert isinstance(chart, Chart)
    assert chart["mark"] == "bar"
    assert chart["encoding"]["y"]["type"] == "quantitative"
    assert len(ET.fromstring(chart.to_svg()).findall("{http://www.w3.org/2000/svg}rect")) == 7
    a.close()


def test_ipython_displays_the_chart_and_the_views() -> None:
    formatters = need_module("IPython.core.formatters", reason="IPython not installed")
    fmt = formatters.DisplayFormatter()
    data, _ = fmt.format(bar_chart())
    assert VEGALITE in data
    assert "image/svg+xml" in data
    assert "text/html" not in data
    data, _ = fmt.format(GUARD.check("SELECT * FROM users"))
    assert "avl-verdict" in data["text/html"]
    assert data["text/plain"].startswith("Verdict(rejected")


def test_html_helpers() -> None:
    assert _html.token_end('SELECT "a b" FROM t', 7) == 12
    assert _html.token_end("x = 'it''s' + 1", 4) == 11
    assert _html.token_end("a   ", 1) == 1
    assert _html.offset_of("ab\ncd", 2, 2) == 4
    assert _html.offset_of("ab\ncd", 2, 99) == 4  # clamped to the line
    assert _html.offset_of("ab", 3, 1) is None
    assert _html.cell_text(0.1 + 0.2) == "0.3"
    assert _html.cell_text(343.5) == "343.5"
    assert _html.cell_text(b"\x01\xff") == "01ff"
    assert _html.esc("\"'<>&") == "&quot;&#x27;&lt;&gt;&amp;"


# ------------------------------------------------- the example notebook, for real
def test_example_notebook_runs_and_renders() -> None:
    """examples/notebook.ipynb runs top to bottom in a real kernel; each value cell
    gives the mime types a notebook draws, and nbconvert's HTML shows the SVG chart."""
    need_module("nbclient", reason="nbclient is not installed (the test extra)")
    import importlib.util

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location(
        "render_notebook", root / "examples/render_notebook.py"
    )
    assert spec is not None
    assert spec.loader is not None
    render = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render)
    nb = render.execute(root / "examples" / "notebook.ipynb")
    outputs: dict[str, dict[str, Any]] = {}
    for cell in nb.cells:  # type: ignore[attr-defined]
        if cell.cell_type != "code":
            continue
        for out in cell.outputs:
            assert out.output_type != "error", "".join(out.get("traceback", []))
            if out.output_type in ("execute_result", "display_data"):
                outputs[cell.source.splitlines()[-1]] = out.data
    answer = dom(outputs["answer"]["text/html"])
    assert answer.one("div", "avl-answer")
    assert answer.one("p", "avl-summary").text()
    for chart_cell in ("chart", "by_day.chart()"):
        data = outputs[chart_cell]
        assert VEGALITE in data
        assert ET.fromstring(data["image/svg+xml"]).get("class") == "avl-chart"
    assert outputs["by_day.chart()"][VEGALITE]["mark"] == "line"
    verdicts = [v for k, v in outputs.items() if k.startswith("guard.check(")]
    assert len(verdicts) == 2
    assert dom(verdicts[0]["text/html"]).iter("mark", "avl-violation")
    assert "avl-page" in outputs["page"]["text/html"]
    assert "chain verified" in outputs["history.verify()"]["text/html"]
    assert "avl-decision" in outputs["decisions[-1]"]["text/html"]
    assert "avl-metrics" in outputs["metrics.snapshot()"]["text/html"]
    page = render.to_html(nb)
    # nbconvert has no Vega: its page shows avl's SVG of both charts (inline, or as
    # data: images in recent versions)
    inline = re.findall(r"<svg[^>]*class=[\"']avl-chart", page)
    images = [
        base64.b64decode(m).decode()
        for m in re.findall(r"src=[\"']data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)", page)
    ]
    assert len(inline) + sum("class='avl-chart'" in svg for svg in images) == 2


def test_stats_views(history: History) -> None:
    stats = history.stats()
    text = repr(stats)
    assert text.splitlines()[0] == "Stats(60 entries)"
    assert "  by outcome:" in text
    root = dom(stats._repr_html_())
    box = root.one("div", "avl-stats")
    tables = box.iter("table")
    total = body_rows(tables[0])
    assert total[0][:2] == ["all", "60"]
    by_user = {row[0]: row for row in body_rows(tables[1])}
    assert by_user["ann"][1] == "30"
    assert by_user["bob"][1] == "30"


def test_explanation_views(shop: Path) -> None:
    a = Assistant(db=f"sqlite:///{shop}")
    review = a.explain("SELECT * FROM orders WHERE customer_id = 3")
    text = repr(review)
    assert text.splitlines()[0] == "Explanation(full scans: orders, 1 plan line, 1 suggestion)"
    assert "full scan of orders" in dom(review._repr_html_()).text()
    assert "  suggest: CREATE INDEX" in text
    root = dom(review._repr_html_())
    box = root.one("div", "avl-explanation")
    pres = [p.text() for p in box.iter("pre", "avl-sql")]
    assert pres[0] == review.sql
    assert "SCAN orders" in pres[1]
    assert pres[2].startswith("CREATE INDEX")
    a.close()
