"""Ask a local model through its OpenAI-compatible endpoint (Ollama, vLLM, LM Studio...).

Run against a real Ollama server (``ollama serve`` and ``ollama pull llama3.2``)::

    python examples/llm_ollama.py
    python examples/llm_ollama.py --url "openai+http://localhost:8000/v1?model=Qwen/Qwen2.5-7B-Instruct"

With ``--simulate`` (the default when nothing answers on localhost:11434) the same code
runs against an in-process stand-in that answers the way Ollama does, so the example
works anywhere, without a network.
"""

from __future__ import annotations

import argparse
import json
import socket

import httpx

from avl.errors import ProviderError
from avl.llm import Message, RetryPolicy, count_tokens, create_chat_model

DEFAULT_URL = "openai+http://localhost:11434/v1?model=llama3.2"

PROMPT = [
    Message(
        role="system",
        content="You write one SQLite query and nothing else.\n"
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, country TEXT);",
    ),
    Message(role="user", content="How many customers are in France?"),
]


def ollama_like(request: httpx.Request) -> httpx.Response:
    """Answer like Ollama's /v1/chat/completions (non-streamed and streamed)."""
    body = json.loads(request.content)
    sql = "SELECT COUNT(*) FROM customers WHERE country = 'France';"
    usage = {"prompt_tokens": 48, "completion_tokens": 14, "total_tokens": 62}
    if not body.get("stream"):
        return httpx.Response(
            200,
            json={
                "id": "chatcmpl-123",
                "object": "chat.completion",
                "created": 1764058211,
                "model": body["model"],
                "system_fingerprint": "fp_ollama",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": sql},
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage,
            },
        )
    chunks = []
    for piece in ("SELECT COUNT(*)", " FROM customers", " WHERE country = 'France';"):
        delta = {"role": "assistant", "content": piece}
        chunks.append({"model": body["model"], "choices": [{"index": 0, "delta": delta}]})
    chunks.append(
        {"model": body["model"], "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    )
    chunks.append({"model": body["model"], "choices": [], "usage": usage})
    stream = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, text=stream)


def ollama_is_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 11434), timeout=0.5):
            return True
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_URL, help="chat-model URL")
    parser.add_argument("--simulate", action="store_true", help="use the in-process stand-in")
    args = parser.parse_args()

    simulate = args.simulate or (args.url == DEFAULT_URL and not ollama_is_up())
    extra = {"transport": httpx.MockTransport(ollama_like)} if simulate else {}
    model = create_chat_model(args.url, retry=RetryPolicy(max_attempts=2), **extra)
    print(f"model: {model.name}{' (simulated)' if simulate else ''}")
    print(f"prompt tokens (o200k_base, offline): {sum(count_tokens(m.content) for m in PROMPT)}")

    try:
        answer = model.complete(PROMPT, max_tokens=200, temperature=0)
        print(f"\ncomplete: {answer.text}")
        print(f"  usage={answer.usage} stop={answer.stop_reason} cost={answer.cost_usd}")

        print("\nstream:   ", end="")
        for delta in model.stream(PROMPT, max_tokens=200, temperature=0):
            print(delta.text, end="", flush=True)
            if delta.done:
                print(f"\n  usage={delta.usage} stop={delta.stop_reason}")
    except ProviderError as exc:
        print(f"\nthe model failed: {exc}")


if __name__ == "__main__":
    main()
