"""The private SSE line parser."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from avl.llm._sse import SSEDecoder, SSEEvent


def decode(lines: list[str]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    return [e for e in map(decoder.feed, lines) if e is not None]


def test_fields_comments_and_multiline_data() -> None:
    lines = [
        ": keep-alive",
        "event: message_start",
        "id: 7",
        'data: {"a":',
        "data:1}",
        "retry: 100",
        "",
        "",
        "data: [DONE]",
        "",
    ]
    assert decode(lines) == [
        SSEEvent(event="message_start", data='{"a":\n1}', id="7"),
        SSEEvent(event="message", data="[DONE]", id="7"),
    ]


def test_pending_tells_about_an_unfinished_event() -> None:
    decoder = SSEDecoder()
    assert decoder.feed("data: partial") is None
    assert decoder.pending is True
    assert decoder.feed("") == SSEEvent(data="partial")
    assert decoder.pending is False


def test_carriage_returns_are_stripped() -> None:
    assert decode(["data: x\r", "\r"]) == [SSEEvent(data="x")]


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["message", "ping", "content_block_delta"]),
            st.lists(
                st.text(alphabet=st.characters(blacklist_characters="\r\n"), max_size=20),
                min_size=1,
                max_size=3,
            ),
        ),
        max_size=5,
    )
)
def test_round_trip(events: list[tuple[str, list[str]]]) -> None:
    lines: list[str] = []
    for name, data in events:
        lines.append(f"event: {name}")
        lines.extend(f"data: {d}" for d in data)
        lines.append("")
    assert decode(lines) == [SSEEvent(event=n, data="\n".join(d)) for n, d in events]
