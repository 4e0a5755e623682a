"""The console page in headless Chromium (Debian's package, driven by Playwright)."""

from __future__ import annotations

from typing import Any

import pytest

from avl.console import Console
from avl.web import create_app

from .conftest import LiveServer, expect

pytestmark = pytest.mark.browser

#: The first cell of the first answer's table in the thread.
ROWS = "#thread table.rows tbody tr td"


def test_ask_shows_sql_and_rows(browser: Any, demo_url: str) -> None:
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(demo_url)
    page.fill("#question", "How many customers are there?")
    page.click("#ask-button")
    page.wait_for_selector(ROWS, timeout=15_000)
    assert page.inner_text(ROWS) == "12"
    assert page.inner_text("#thread .sql-code") == "SELECT COUNT(*) FROM customers LIMIT 1000"
    assert page.inner_text("#thread .badge.verdict") == "Allowed"
    # The history panel lists the question once the stream is done.
    page.wait_for_selector("#history li .q", timeout=15_000)
    assert page.inner_text("#history li .q") == "How many customers are there?"
    # Search the history: no match empties the list, a match brings the entry back.
    page.fill("#history-q", "zebra")
    page.press("#history-q", "Enter")
    expect(page.locator("#history li")).to_have_count(0)  # (no wait_for_function: the CSP)
    page.fill("#history-q", "customers")
    page.press("#history-q", "Enter")
    page.wait_for_selector("#history li .q", timeout=15_000)
    assert page.locator("#history li").count() == 1
    assert errors == []
    page.close()


def test_rejected_query_shows_violations(browser: Any, demo_url: str) -> None:
    page = browser.new_page()
    page.goto(demo_url)
    page.click("#sql-panel summary")  # the SQL panel starts folded
    page.fill("#sql", "DELETE FROM customers")
    page.click("#run-button")
    page.wait_for_selector("#thread .violations li", timeout=15_000)
    assert page.inner_text("#thread .badge.verdict") == "Refused"
    assert page.inner_text("#thread .violations li code") == "statement_kind"
    assert page.locator("#thread table.rows").count() == 0
    page.fill("#sql", "SELECT name FROM customers ORDER BY id LIMIT 2")
    page.click("#check-button")
    page.wait_for_selector("#verdict.allowed", timeout=15_000)
    assert page.locator("#violations li").count() == 0
    page.close()


def test_long_entries_do_not_widen_the_page(browser: Any, demo_url: str) -> None:
    page = browser.new_page(viewport={"width": 1024, "height": 768})
    page.goto(demo_url)
    expect(page.locator("#who")).to_have_text("signed in as local")
    page.click("#sql-panel summary")
    page.fill("#sql", "SELECT '" + "0" * 3000 + "' AS wide")
    page.click("#run-button")
    page.wait_for_selector(ROWS, timeout=15_000)
    page.locator("#history li .q", has_text="000").first.wait_for(timeout=15_000)
    assert page.evaluate("document.documentElement.scrollWidth") == 1024
    page.close()


def test_signing_in_with_an_api_key(browser: Any) -> None:
    from avl.web import ApiKeyAuthenticator, Identity

    key = "page-key-0123456789abcdef"
    console = Console(ratelimit={"rates": "1000/second"})
    auth = ApiKeyAuthenticator.from_keys({key: Identity(user="ann")})
    try:
        with LiveServer(create_app(console, authenticator=auth)) as server:
            page = browser.new_page()
            page.goto(server.url + "/")
            page.wait_for_selector("#key-form:not([hidden])", timeout=15_000)
            assert page.inner_text("#status").startswith("Sign in: credentials required")
            page.fill("#api-key", "wrong-key-0123456789")
            page.click("#key-button")
            expect(page.locator("#status")).to_contain_text("invalid API key")
            page.fill("#api-key", key)
            page.click("#key-button")
            expect(page.locator("#who")).to_have_text("signed in as ann")
            assert page.locator("#key-form").is_hidden()
            page.fill("#question", "How many customers are there?")
            page.click("#ask-button")
            page.wait_for_selector(ROWS, timeout=15_000)
            assert page.inner_text(ROWS) == "12"
            page.wait_for_selector("#history li .q", timeout=15_000)
            assert page.inner_text("#history li .q") == "How many customers are there?"
            page.close()
    finally:
        console.close()
