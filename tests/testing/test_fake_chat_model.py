"""The chat-model doubles and the recorded transport of avl.testing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from avl.errors import ProviderError
from avl.llm import AsyncChatModel, ChatModel, Completion, Delta, Message, Usage
from avl.testing import (
    AsyncFakeChatModel,
    FakeCall,
    FakeChatModel,
    Recording,
    load_recording,
    recorded_transport,
)

Q = [Message(role="system", content="be brief"), Message(role="user", content="how many users?")]


def test_is_a_chat_model() -> None:
    assert isinstance(FakeChatModel(), ChatModel)
    assert isinstance(AsyncFakeChatModel(), AsyncChatModel)


def test_replies_in_order_and_records_calls() -> None:
    scripted = Completion(text="SELECT 2", model="m", provider="p", usage=Usage(input_tokens=9))
    model = FakeChatModel(["SELECT 1", scripted], name="scripted")
    first = model.complete(Q, max_tokens=10, temperature=0.5, stop=[";"])
    assert first == Completion(
        text="SELECT 1",
        model="scripted",
        provider="fake",
        usage=Usage(input_tokens=6, output_tokens=2),
        cost_usd=0.0,
        stop_reason="stop",
    )
    assert model.complete(Q) is scripted
    assert model.calls == [
        FakeCall(messages=tuple(Q), max_tokens=10, temperature=0.5, stop=(";",)),
        FakeCall(messages=tuple(Q)),
    ]
    assert model.received == [tuple(Q), tuple(Q)]
    assert model.remaining == 0
    assert model.name == "scripted"


def test_exceptions_are_raised_in_turn() -> None:
    model = FakeChatModel([ProviderError("down", provider="x", status=503), "SELECT 1"])
    with pytest.raises(ProviderError, match="down"):
        model.complete(Q)
    assert model.complete(Q).text == "SELECT 1"


def test_running_out_fails_loudly_unless_a_default_is_given() -> None:
    model = FakeChatModel(["a"])
    model.complete(Q)
    with pytest.raises(
        AssertionError, match=r"ran out of scripted replies \(1 given, this is call #2\)"
    ):
        model.complete(Q)
    assert FakeChatModel(default="SELECT 1").complete(Q).text == "SELECT 1"


def test_stream_in_small_deltas() -> None:
    model = FakeChatModel(["SELECT id FROM t"], chunk_size=5)
    deltas = list(model.stream(Q))
    assert deltas == [
        Delta(text="SELEC"),
        Delta(text="T id "),
        Delta(text="FROM "),
        Delta(text="t"),
        Delta(
            done=True,
            usage=Usage(input_tokens=6, output_tokens=4),
            stop_reason="stop",
            model="fake",
            cost_usd=0.0,
        ),
    ]
    assert model.calls[0].streamed is True


def test_stream_raises_scripted_exception_when_iterated() -> None:
    model = FakeChatModel([ProviderError("cut", provider="x")])
    iterator = model.stream(Q)
    with pytest.raises(ProviderError, match="cut"):
        next(iter(iterator))


def test_stop_sequences_cut_string_replies() -> None:
    assert FakeChatModel(["SELECT 1; DROP TABLE t"]).complete(Q, stop=[";"]).text == "SELECT 1"


def test_bad_script() -> None:
    with pytest.raises(TypeError, match=r"replies\[0\] must be a str"):
        FakeChatModel([42])  # type: ignore[list-item]


def test_single_string_is_one_reply() -> None:
    model = FakeChatModel("only")
    assert model.remaining == 1


def test_async_twin() -> None:
    model = AsyncFakeChatModel(["SELECT 1", ValueError("boom"), "abcdefgh"], chunk_size=4)

    async def run() -> tuple[str, list[str]]:
        first = await model.complete(Q)
        with pytest.raises(ValueError, match="boom"):
            await model.complete(Q)
        streamed = [d.text async for d in model.stream(Q)]
        return first.text, streamed

    assert asyncio.run(run()) == ("SELECT 1", ["abcd", "efgh", ""])
    assert len(model.calls) == 3


RAW = b'HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 99\r\nX-Request-Id: r-1\r\n\r\n{"ok": true}\n'


def test_load_recording_reads_raw_http(tmp_path: Path) -> None:
    file = tmp_path / "ok.http"
    file.write_bytes(RAW)
    recording = load_recording(file, path="/v1/things", method="PUT")
    assert recording == Recording(
        method="PUT",
        path="/v1/things",
        status=201,
        headers={"content-type": "application/json", "x-request-id": "r-1"},
        body=b'{"ok": true}\n',
    )


def test_load_recording_rejects_other_files(tmp_path: Path) -> None:
    file = tmp_path / "bad.http"
    file.write_bytes(b'{"just": "json"}')
    with pytest.raises(ValueError, match="no blank line"):
        load_recording(file, path="/")
    file.write_bytes(b"200 OK\n\nbody")
    with pytest.raises(ValueError, match="not an HTTP status line"):
        load_recording(file, path="/")


def test_transport_replays_in_order_and_records(tmp_path: Path) -> None:
    (tmp_path / "ok.http").write_bytes(RAW)
    transport = recorded_transport(
        ("PUT", "/v1/things", "ok.http"),
        Recording(method="GET", path="/v1/things", params={"page": "2"}, status=404, body=b"nope"),
        base_dir=tmp_path,
    )
    with httpx.Client(transport=transport, base_url="http://api") as client:
        first = client.put("/v1/things", json={"a": 1})
        second = client.get("/v1/things", params={"page": "2"})
    assert (first.status_code, first.json(), first.headers["x-request-id"]) == (
        201,
        {"ok": True},
        "r-1",
    )
    assert (second.status_code, second.text) == (404, "nope")
    assert [r.method for r in transport.requests] == ["PUT", "GET"]
    assert transport.requests[0].content == b'{"a":1}'
    transport.assert_all_used()


def test_transport_checks_method_path_params_and_count() -> None:
    transport = recorded_transport(Recording(method="POST", path="/a", params={"v": "1"}))
    client = httpx.Client(transport=transport, base_url="http://api")
    with pytest.raises(AssertionError, match="was GET /a, expected POST /a"):
        client.get("/a")
    transport = recorded_transport(Recording(method="POST", path="/a", params={"v": "1"}))
    client = httpx.Client(transport=transport, base_url="http://api")
    with pytest.raises(AssertionError, match="query parameter v=None, expected '1'"):
        client.post("/a")
    transport = recorded_transport()
    with pytest.raises(AssertionError, match="unexpected request #1"):
        httpx.Client(transport=transport).get("http://api/")
    transport = recorded_transport(Recording(path="/a"))
    with pytest.raises(AssertionError, match="1 recorded response"):
        transport.assert_all_used()


def test_transport_errors_and_cut_streams_sync_and_async() -> None:
    transport = recorded_transport(
        Recording(path="/a", error=httpx.ConnectError("refused")),
        Recording(path="/a", body=b"0123456789" * 5, cut_after=23),
        Recording(path="/a", body=b"0123456789" * 5, cut_after=23),
    )
    client = httpx.Client(transport=transport, base_url="http://api")
    with pytest.raises(httpx.ConnectError):
        client.post("/a")
    received = b""
    with pytest.raises(httpx.RemoteProtocolError), client.stream("POST", "/a") as response:
        for chunk in response.iter_bytes():
            received += chunk
    assert received == (b"0123456789" * 5)[:23]

    async def run() -> bytes:
        got = b""
        aclient = httpx.AsyncClient(transport=transport, base_url="http://api")
        async with aclient, aclient.stream("POST", "/a") as response:
            async for chunk in response.aiter_bytes():
                got += chunk
        return got

    with pytest.raises(httpx.RemoteProtocolError):
        asyncio.run(run())
