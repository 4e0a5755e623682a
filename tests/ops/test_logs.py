"""Structured logs: context fields, trace ids, redaction, JSON output."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from avl.errors import ConfigError
from avl.logs import (
    LOGGERS,
    ContextFilter,
    RedactFilter,
    configure_logging,
    json_formatter,
    log_context,
    log_fields,
    redact,
    set_outcome,
)
from avl.metrics import start_span


@pytest.fixture
def json_out() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = configure_logging("DEBUG", json=True, stream=out, static_fields={"service": "t"})
    try:
        yield out
    finally:
        logging.getLogger("avl").removeHandler(handler)
        logging.getLogger("avl").setLevel(logging.NOTSET)


def records(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_every_record_carries_the_context_fields(json_out: io.StringIO) -> None:
    log = logging.getLogger("avl.assistant")
    with log_context(request_id="req-1", user="ann"):
        log.info("question answered", extra={"model": "offline/x", "tokens_in": 12})
        set_outcome("ok")
        log.info("after")
    log.warning("outside")
    first, second, third = records(json_out)
    assert first["message"] == "question answered"
    assert first["level"] == "INFO"
    assert first["logger"] == "avl.assistant"
    assert first["service"] == "t"
    assert (first["request_id"], first["user"], first["outcome"]) == ("req-1", "ann", "")
    assert (first["model"], first["tokens_in"]) == ("offline/x", 12)
    assert first["trace_id"] == first["span_id"] == ""
    assert "timestamp" in first
    assert second["outcome"] == "ok"
    assert (third["request_id"], third["user"], third["outcome"]) == ("", "", "")


def test_trace_and_span_ids_come_from_the_current_span(
    span_exporter: Any, json_out: io.StringIO
) -> None:
    with start_span("avl.ask") as span:
        logging.getLogger("avl.web").info("inside")
    (record,) = records(json_out)
    ids = span.ids
    assert ids is not None
    assert (record["trace_id"], record["span_id"]) == (ids.trace_id, ids.span_id)
    assert len(record["trace_id"]) == 32


def test_explicit_extra_wins_over_context(json_out: io.StringIO) -> None:
    with log_context(user="ann", outcome="ok"):
        logging.getLogger("avl").info("x", extra={"outcome": "rejected"})
    assert records(json_out)[0]["outcome"] == "rejected"


def test_outcome_set_in_a_worker_thread_reaches_the_request(json_out: io.StringIO) -> None:
    async def handler() -> None:
        with log_context(request_id="r-9") as fields:
            await asyncio.to_thread(set_outcome, "rate_limited", user="bob")
            assert fields["outcome"] == "rate_limited"
            logging.getLogger("avl.web.access").info("request done")

    asyncio.run(handler())
    (record,) = records(json_out)
    assert (record["request_id"], record["user"], record["outcome"]) == (
        "r-9",
        "bob",
        "rate_limited",
    )


def test_nested_contexts_restore() -> None:
    with log_context(request_id="a", user="ann"):
        with log_context(user="bob"):
            assert dict(log_fields()) == {"request_id": "a", "user": "bob"}
        assert dict(log_fields()) == {"request_id": "a", "user": "ann"}
    assert dict(log_fields()) == {}
    set_outcome("ignored")  # outside any context: nothing to set
    assert dict(log_fields()) == {}


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("db postgresql://app:s3cr3t-pw@db:5432/prod", "s3cr3t-pw"),
        ("redis://:hunter2@cache:6379/0 down", "hunter2"),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig", "eyJhbGciOiJIUzI1NiJ9"),
        ("calling with api_key=sk-live-0123456789abcdef", "0123456789abcdef"),
        ('{"password": "pa55word!"}', "pa55word!"),
        ("X-API-Key: avlk_abcdef0123456789", "abcdef0123456789"),
        ("key AIzaSyA1234567890abcdefghijklmnop leaked", "1234567890abcdefghij"),
        ("token=abc.def.ghi&x=1", "abc.def.ghi"),
    ],
)
def test_secrets_are_redacted(text: str, secret: str) -> None:
    assert secret not in redact(text)


def test_redaction_keeps_ordinary_text() -> None:
    text = "SELECT count(*) FROM orders WHERE status = 'shipped' (user ann, 12 rows)"
    assert redact(text) == text


def test_records_lose_secrets_and_values(json_out: io.StringIO) -> None:
    log = logging.getLogger("avl.db")
    log.warning(
        "lost connection to %s",
        "postgresql://app:topsecret@db/prod",
        extra={
            "password": "topsecret",
            "dsn": "postgresql://app:topsecret@db/prod",
            "rows": [["ann@example.com", 42]],
            "params": {"email": "ann@example.com"},
            "note": "retrying with token=abcdef123",
        },
    )
    (record,) = records(json_out)
    raw = json_out.getvalue()
    assert "topsecret" not in raw
    assert "ann@example.com" not in raw
    assert "abcdef123" not in raw
    assert record["message"] == "lost connection to postgresql://app:***@db/prod"
    assert record["password"] == "[REDACTED]"
    assert record["dsn"] == "[REDACTED]"
    assert "rows" not in record
    assert "params" not in record


def test_values_kept_when_allowed() -> None:
    record = logging.LogRecord("avl", logging.INFO, __file__, 1, "m", None, None)
    record.rows = [[1]]
    assert RedactFilter(allow_values=True).filter(record) is True
    assert record.rows == [[1]]
    assert RedactFilter().filter(record) is True
    assert not hasattr(record, "rows")


def test_exception_is_in_the_json(json_out: io.StringIO) -> None:
    try:
        raise RuntimeError("boom at postgresql://u:pw123456@h/db")
    except RuntimeError:
        logging.getLogger("avl.web").exception("unhandled")
    (record,) = records(json_out)
    assert "RuntimeError" in record["exc_info"]


def test_text_format_names_every_field() -> None:
    out = io.StringIO()
    handler = configure_logging("info", stream=out)
    try:
        with log_context(request_id="r-2", user="ann", outcome="ok"):
            logging.getLogger("avl.web").info("hello")
        logging.getLogger("avl.web").debug("not shown")
    finally:
        logging.getLogger("avl").removeHandler(handler)
        logging.getLogger("avl").setLevel(logging.NOTSET)
    line = out.getvalue().strip()
    assert line.endswith("INFO avl.web [trace= span= request=r-2 user=ann outcome=ok] hello")
    assert "not shown" not in out.getvalue()


def test_configure_twice_does_not_stack() -> None:
    out = io.StringIO()
    configure_logging(stream=out)
    handler = configure_logging(stream=out)
    try:
        logging.getLogger("avl").warning("once")
    finally:
        logging.getLogger("avl").removeHandler(handler)
        logging.getLogger("avl").setLevel(logging.NOTSET)
    assert out.getvalue().count("once") == 1


@pytest.mark.parametrize("level", ["LOUD", True, 2.5])
def test_bad_level(level: Any) -> None:
    with pytest.raises(ConfigError, match="level"):
        configure_logging(level)


def test_hierarchy_is_under_avl() -> None:
    assert all(name == "avl" or name.startswith("avl.") for name in LOGGERS)
    assert {"avl.assistant", "avl.web", "avl.web.access"} <= set(LOGGERS)


def test_filter_alone_on_a_plain_handler() -> None:
    record = logging.LogRecord("avl", logging.INFO, __file__, 1, "m %s", ("x",), None)
    assert ContextFilter().filter(record) is True
    assert (record.trace_id, record.request_id, record.user) == ("", "", "")
    assert json_formatter().format(record).startswith("{")


async def _app(scope: Any, receive: Any, send: Any) -> None:
    logging.getLogger("avl.assistant").info("inside the request")
    if scope["path"] == "/rejected":
        set_outcome("rejected", user="ann")
    status = {"/": 200, "/rejected": 422, "/limited": 429, "/boom": 500}[scope["path"]]
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def _get(app: Any, path: str, headers: dict[str, str] | None = None) -> Any:
    import httpx

    async def go() -> Any:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return await c.get(path, headers=headers)

    return asyncio.run(go())


def test_access_log_request_ids_and_outcomes(json_out: io.StringIO) -> None:
    from avl.logs import AccessLog

    app = AccessLog(_app)
    r = _get(app, "/?question=secret-question", {"X-Request-Id": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    inside, access = records(json_out)
    assert inside["request_id"] == access["request_id"] == "abc-123"
    assert access["logger"] == "avl.web.access"
    assert access["message"] == "GET / 200"
    assert (access["method"], access["path"], access["status"], access["outcome"]) == (
        "GET",
        "/",
        200,
        "ok",
    )
    assert access["duration_ms"] >= 0
    assert "secret-question" not in json_out.getvalue()
    json_out.truncate(0)
    json_out.seek(0)
    # a header that is not a short token is replaced by a fresh id
    r = _get(app, "/rejected", {"X-Request-Id": "x" * 500})
    new_id = r.headers["x-request-id"]
    assert len(new_id) == 32
    _, access = records(json_out)
    assert (access["request_id"], access["outcome"], access["user"]) == (new_id, "rejected", "ann")
    json_out.truncate(0)
    json_out.seek(0)
    for path, outcome in (("/limited", "rate_limited"), ("/boom", "error")):
        _get(app, path)
        assert records(json_out)[-1]["outcome"] == outcome


def test_access_log_can_ignore_caller_ids(json_out: io.StringIO) -> None:
    from avl.logs import AccessLog, bind_log_fields

    async def app(scope: Any, receive: Any, send: Any) -> None:
        bind_log_fields(user="bob", ignored=None)
        await _app(scope, receive, send)

    r = _get(AccessLog(app, trust_request_id=False), "/", {"X-Request-Id": "abc"})
    assert r.headers["x-request-id"] != "abc"
    assert records(json_out)[-1]["user"] == "bob"


def test_serve_configures_json_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    from avl.cli._web import _configure_logs

    out = io.StringIO()
    monkeypatch.setattr("sys.stderr", out)
    monkeypatch.setenv("AVL_LOG_FORMAT", "json")
    try:
        _configure_logs(argparse.Namespace(log_format=None, log_level="warning"))
        logging.getLogger("avl.web").info("hidden")
        logging.getLogger("avl.web").warning("shown")
    finally:
        for h in list(logging.getLogger("avl").handlers):
            if h.get_name() == "avl.logs":
                logging.getLogger("avl").removeHandler(h)
        logging.getLogger("avl").setLevel(logging.NOTSET)
    (record,) = [json.loads(line) for line in out.getvalue().splitlines()]
    assert (record["message"], record["service"], record["level"]) == ("shown", "avl", "WARNING")


def test_serve_refuses_an_unknown_log_format(monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    from avl.cli._common import UsageError
    from avl.cli._web import _configure_logs

    monkeypatch.setenv("AVL_LOG_FORMAT", "xml")
    with pytest.raises(UsageError, match="AVL_LOG_FORMAT"):
        _configure_logs(argparse.Namespace(log_format=None, log_level=None))


def test_access_log_skips_the_probes(json_out: io.StringIO) -> None:
    from avl.logs import AccessLog

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    r = _get(AccessLog(app), "/healthz")
    assert "x-request-id" not in r.headers
    assert json_out.getvalue() == ""


def test_the_access_record_has_the_questions_outcome(json_out: io.StringIO) -> None:
    from avl.console import Console
    from avl.web import create_app
    from tests.ops.test_chaos import request

    with Console(history="memory://") as console:
        app = create_app(console)
        # a 200 whose question was not answered with rows: the access record says how
        # the question ended, not just "ok" from the status
        r = request(app, "POST", "/v1/ask", {"question": "What is the weather on Mars today?"})
        latest = next(iter(console.history.search(limit=1)))
    assert r.status_code == 200
    access = [x for x in records(json_out) if x["logger"] == "avl.web.access"]
    assert str(latest.outcome) != "ok"
    assert access[-1]["outcome"] == str(latest.outcome)
