"""The Ollama example runs end to end against its in-process stand-in."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_ollama_example_simulated() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "llm_ollama.py"), "--simulate"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = done.stdout.splitlines()
    assert lines[0] == "model: openai/llama3.2 (simulated)"
    assert "complete: SELECT COUNT(*) FROM customers WHERE country = 'France';" in lines
    assert "stream:   SELECT COUNT(*) FROM customers WHERE country = 'France';" in lines
    assert (
        lines.count(
            "  usage=Usage(input_tokens=48, output_tokens=14, cached_tokens=0, "
            "cache_creation_tokens=0) stop=stop"
        )
        == 1
    )
