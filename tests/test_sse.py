"""avl.sse: encoder, incremental parser (WHATWG algorithm), round trips."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from avl.errors import InvalidInputError
from avl.sse import Event, SSEParser, aparse, comment, encode, parse


def test_encode_simple() -> None:
    assert encode("hello") == b"data: hello\n\n"


def test_encode_all_fields_and_multiline() -> None:
    raw = encode("a\r\nb\rc\nd", event="update", id="s1:4", retry=2500)
    assert raw == (b"event: update\nid: s1:4\nretry: 2500\ndata: a\ndata: b\ndata: c\ndata: d\n\n")


def test_encode_empty_data_still_dispatches() -> None:
    assert encode("") == b"data: \n\n"
    assert list(parse([encode("")])) == [Event(data="")]


def test_encode_rejects_bad_fields() -> None:
    with pytest.raises(InvalidInputError, match="id must not contain a line break"):
        encode("x", id="a\nb")
    with pytest.raises(InvalidInputError, match="NUL"):
        encode("x", id="a\0b")
    with pytest.raises(InvalidInputError, match="event must not contain a line break"):
        encode("x", event="a\rb")
    with pytest.raises(InvalidInputError, match="retry must be a non-negative int"):
        encode("x", retry=-1)
    with pytest.raises(InvalidInputError, match="data must be a str"):
        encode(b"x")  # type: ignore[arg-type]


def test_comment() -> None:
    assert comment() == b":\n\n"
    assert comment("ping") == b": ping\n\n"
    assert comment("a\nb") == b": a\n: b\n\n"
    assert list(parse([comment("ping"), b"data: x\n\n"])) == [Event(data="x")]


def test_parser_spec_example_fields() -> None:
    stream = (
        "\ufeffdata: first\n"
        ": a comment\n"
        "data\n"
        "data:  two spaces\n"
        "\n"
        "event: custom\n"
        "id: 42\n"
        "data:x\n"
        "\n"
        "id\n"
        "data: after reset\n"
        "\n"
    )
    assert list(parse([stream])) == [
        Event(data="first\n\n two spaces"),
        Event(data="x", event="custom", id="42"),
        Event(data="after reset", id=""),
    ]


def test_parser_line_endings_split_anywhere() -> None:
    raw = b"data: a\r\ndata: b\rdata: c\n\r\nevent: e\r\r"
    expected = [Event(data="a\nb\nc"), Event(event="e", data="", id=None)][:1]
    # Every split point, including inside CRLF, gives the same result.
    for cut in range(len(raw) + 1):
        assert list(parse([raw[:cut], raw[cut:]])) == expected
    # Byte by byte too.
    assert list(parse([bytes([b]) for b in raw])) == expected


def test_parser_crlf_split_counts_once() -> None:
    p = SSEParser()
    assert p.feed("data: a\r") == []
    assert p.feed("\n") == []  # the LF completes the CRLF; no blank line yet
    assert p.feed("\r\n") == [Event(data="a")]


def test_parser_multibyte_split() -> None:
    raw = encode("héllo €")
    for cut in range(len(raw) + 1):
        assert list(parse([raw[:cut], raw[cut:]])) == [Event(data="héllo €")]


def test_parser_bom_only_at_start() -> None:
    assert list(parse([b"\xef\xbb", b"\xbfdata: a\n\n"])) == [Event(data="a")]
    # A BOM later in the stream is part of the field name (so an unknown field).
    assert list(parse(["data: a\n\n\ufeffdata: b\n\n"])) == [Event(data="a")]


def test_parser_retry_only_digits() -> None:
    p = SSEParser()
    assert p.feed("retry: 12a\ndata: x\n\n") == [Event(data="x")]
    assert p.retry is None
    assert p.feed("retry: 300\ndata: y\n\n") == [Event(data="y", retry=300)]
    assert p.retry == 300
    assert p.feed("retry: ٣\ndata: z\n\n") == [Event(data="z")]  # non-ASCII digit
    assert p.retry == 300


def test_parser_id_with_nul_ignored_and_carried_over() -> None:
    p = SSEParser()
    events = p.feed("id: 1\ndata: a\n\nid: 2\0x\ndata: b\n\ndata: c\n\n")
    assert events == [Event(data="a", id="1"), Event(data="b", id="1"), Event(data="c", id="1")]
    assert p.last_event_id == "1"


def test_parser_no_data_no_dispatch_and_unterminated_discarded() -> None:
    assert list(parse(["event: x\n\n", "id: 5\n\n", "data: tail"])) == []
    p = SSEParser()
    p.feed("event: x\n\n")
    assert p.feed("data: y\n\n") == [Event(data="y")]  # event type was reset


def test_parser_unknown_field_ignored() -> None:
    assert list(parse(["foo: bar\ndata: a\n\n"])) == [Event(data="a")]


def test_parser_rejects_non_text() -> None:
    with pytest.raises(InvalidInputError, match="chunks must be str or bytes"):
        SSEParser().feed(3)  # type: ignore[arg-type]


def test_aparse() -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for part in (b"data: a\n", b"\nid: 9\ndata: b\n\n"):
            yield part

    async def collect() -> list[Event]:
        return [e async for e in aparse(chunks())]

    assert asyncio.run(collect()) == [Event(data="a"), Event(data="b", id="9")]


def test_event_encode_round_trip() -> None:
    e = Event(data="p\nq", event="sql", id="s:1", retry=10)
    assert list(parse([e.encode()])) == [e]


_single_line = st.text(
    alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)),
    max_size=20,
)
_events = st.builds(
    lambda data, event, id_, retry: (data, event, id_, retry),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40),
    st.one_of(st.none(), _single_line.filter(lambda s: s != "")),
    st.one_of(st.none(), _single_line.filter(lambda s: "\0" not in s)),
    st.one_of(st.none(), st.integers(min_value=0, max_value=10**9)),
)


@given(st.lists(_events, max_size=6), st.integers(min_value=1, max_value=7))
def test_round_trip(specs: list[tuple[str, str | None, str | None, int | None]], step: int) -> None:
    raw = b"".join(encode(d, event=e, id=i, retry=r) for d, e, i, r in specs)
    chunks = [raw[k : k + step] for k in range(0, len(raw), step)]
    expected = []
    last_id: str | None = None
    for data, event, id_, retry in specs:
        if id_ is not None:
            last_id = id_
        norm = data.replace("\r\n", "\n").replace("\r", "\n")
        expected.append(Event(data=norm, event=event or "message", id=last_id, retry=retry))
    assert list(parse(chunks)) == expected
