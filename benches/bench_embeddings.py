"""Embedder benchmarks beside the libraries they wrap (plain script, prints figures).

    .venv/bin/python benches/bench_embeddings.py                   # both sections
    .venv/bin/python benches/bench_embeddings.py --only local --rounds 5
    .venv/bin/python benches/bench_embeddings.py --only openai --latency-ms 41 --per-input-ms 0.5

``local``: :class:`avl.embeddings.LocalEmbedder` beside a bare
``SentenceTransformer.encode`` call on the same loaded model, the same texts
(``--texts`` SQL statements of the shared corpora, every k-th row of
``benign/benign.jsonl``), the same batch size and normalisation, interleaved
round by round (the order alternates). Also shown: encoding the input slice by
slice in input order, which is what LocalEmbedder did before (each batch padded to
its longest text). The vectors are compared element by element.

``openai``: :class:`avl.embeddings.OpenAIEmbedder` beside a bare ``httpx`` loop (one
``POST /v1/embeddings`` of 2,048 inputs after another, ``response.json()``, NumPy
array), both against the same local server: a real HTTP server on loopback, in a
separate process, that answers in OpenAI's wire format with the response headers
recorded in ``tests/fixtures/embeddings/openai_ok_3_texts_dim8.json`` and one
fixed vector per text (``--dim`` floats written like OpenAI's, 9 significant
digits). It waits before answering, as the API does: ``--latency-ms`` per
request (default 41, the ``openai-processing-ms`` of the recording) plus
``--per-input-ms`` per input (default 0.5: 2,048 inputs take about a second).
Both clients send requests of 2,048 inputs; avl runs ``max_concurrency`` of them
at once (4 by default) and is also timed with 1 (the wrapper's own cost).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = Path(os.environ.get("AVL_SHARED_DATA", ROOT.parent / "shared" / "data"))
RECORDING = ROOT / "tests" / "fixtures" / "embeddings" / "openai_ok_3_texts_dim8.json"
MODEL = "text-embedding-3-small"


def sql_texts(n: int) -> list[str]:
    rows = (DATA / "benign" / "benign.jsonl").read_text().splitlines()
    step = max(1, len(rows) // n)
    return [json.loads(line)["sql"] for line in rows[::step][:n]]


def mixed_texts(n: int) -> list[str]:
    """SQL statements and questions, for the HTTP section."""
    out = [json.loads(line)["question"] for line in (DATA / "text2sql" / "questions.jsonl").open()]
    out += [json.loads(line)["sql"] for line in (DATA / "benign" / "benign.jsonl").open()]
    return out[:n]


def rounds_table(times: dict[str, list[float]], count: int) -> None:
    for name, values in times.items():
        rates = [count / t for t in values]
        print(f"  {name:<58} best {max(rates):>8.1f}/s   median {np.median(rates):>8.1f}/s")


def ratio(times: dict[str, list[float]], a: str, b: str, label: str, target: float | None) -> None:
    per_round = [tb / ta for ta, tb in zip(times[a], times[b], strict=True)]
    goal = f" (target {target}x)" if target else ""
    print(
        f"  {label:<46} median {np.median(per_round):.2f}x  rounds "
        f"{min(per_round):.2f}-{max(per_round):.2f}x{goal}"
    )


# -- local model ----------------------------------------------------------------------
def bench_local(args: argparse.Namespace) -> None:
    from avl.embeddings import LocalEmbedder

    texts = sql_texts(args.texts)
    emb = LocalEmbedder(batch_size=args.batch_size, normalize=True)
    model = emb._model  # the same loaded SentenceTransformer for the peer

    def bare() -> np.ndarray:
        out: np.ndarray = model.encode(
            texts,
            batch_size=args.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return out

    def sliced() -> np.ndarray:
        parts = [
            model.encode(
                texts[i : i + args.batch_size],
                batch_size=args.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
            for i in range(0, len(texts), args.batch_size)
        ]
        return np.concatenate(parts)

    import torch

    print(
        f"\n[local] {len(texts)} SQL texts (mean {np.mean([len(t) for t in texts]):.0f} chars), "
        f"all-MiniLM-L6-v2, batch_size={args.batch_size}, normalised; torch threads "
        f"{torch.get_num_threads()}; {args.rounds} interleaved rounds"
    )
    methods = {
        "avl LocalEmbedder.embed": lambda: emb.embed(texts),
        "bare SentenceTransformer.encode": bare,
        "encode slice by slice in input order (LocalEmbedder before)": sliced,
    }
    times: dict[str, list[float]] = {name: [] for name in methods}
    results: dict[str, np.ndarray] = {}
    order = list(methods)
    for r in range(args.rounds):
        for name in order if r % 2 == 0 else order[::-1]:
            t0 = time.perf_counter()
            results[name] = methods[name]()
            times[name].append(time.perf_counter() - t0)
    rounds_table(times, len(texts))
    ratio(
        times,
        "avl LocalEmbedder.embed",
        "bare SentenceTransformer.encode",
        "avl / bare encode",
        0.95,
    )
    ratio(
        times,
        "encode slice by slice in input order (LocalEmbedder before)",
        "bare SentenceTransformer.encode",
        "slice-by-slice / bare encode",
        None,
    )
    a = results["avl LocalEmbedder.embed"]
    b = results["bare SentenceTransformer.encode"]
    c = results["encode slice by slice in input order (LocalEmbedder before)"]
    print(
        f"  vectors: avl vs bare max |diff| {float(np.abs(a - b).max()):.1e} "
        f"(identical: {bool(np.array_equal(a, b))}); slice-by-slice vs bare "
        f"{float(np.abs(c - b).max()):.1e}"
    )


# -- OpenAI-compatible HTTP --------------------------------------------------------------
def serve(
    port_file: str, dim: int, latency_ms: float, per_input_ms: float, texts_file: str
) -> None:
    """The recorded server (runs in its own process)."""
    recording = json.loads(RECORDING.read_text())
    headers: dict[str, str] = dict(recording["response"]["headers"])
    texts = json.loads(Path(texts_file).read_text())
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((len(texts), dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    # each text's "embedding" array, written once like OpenAI writes floats
    fragments = {
        t: "[" + ",".join(f"{v:.9g}" for v in vec.tolist()) + "]"
        for t, vec in zip(texts, vectors, strict=True)
    }
    # encoding_format="base64": the float32 bytes of the same (9-digit) values
    packed = {
        t: '"' + base64.b64encode(np.asarray(json.loads(f), dtype="<f4").tobytes()).decode() + '"'
        for t, f in fragments.items()
    }

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            inputs = body["input"]
            wait_ms = latency_ms + per_input_ms * len(inputs)
            time.sleep(wait_ms / 1000.0)
            table = packed if body.get("encoding_format") == "base64" else fragments
            data = ",".join(
                f'{{"object":"embedding","index":{i},"embedding":{table[t]}}}'
                for i, t in enumerate(inputs)
            )
            tokens = sum(len(t) // 4 + 1 for t in inputs)
            usage = f'{{"prompt_tokens":{tokens},"total_tokens":{tokens}}}'
            payload = (
                f'{{"object":"list","data":[{data}],"model":"{body["model"]}","usage":{usage}}}'
            ).encode()
            self.send_response(200)
            for key, value in headers.items():
                if key == "openai-processing-ms":
                    value = str(int(wait_ms))
                self.send_header(key, value)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    Path(port_file).write_text(str(server.server_address[1]))
    server.serve_forever()


def bench_openai(args: argparse.Namespace) -> None:
    import tempfile

    import httpx

    from avl.embeddings import OpenAIEmbedder

    texts = mixed_texts(args.http_texts)
    tmp = Path(tempfile.mkdtemp(prefix="avl-bench-"))
    (tmp / "texts.json").write_text(json.dumps(texts))
    port_file = tmp / "port"
    proc = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--serve",
            str(port_file),
            "--dim",
            str(args.dim),
            "--latency-ms",
            str(args.latency_ms),
            "--per-input-ms",
            str(args.per_input_ms),
            "--texts-file",
            str(tmp / "texts.json"),
        ]
    )
    try:
        for _ in range(600):
            if port_file.exists() and port_file.read_text():
                break
            time.sleep(0.1)
        base = f"http://127.0.0.1:{port_file.read_text()}/v1"
        url = base + "/embeddings"
        print(
            f"\n[openai] {len(texts)} texts, dim {args.dim}, recorded server on loopback "
            f"(latency {args.latency_ms} ms + {args.per_input_ms} ms/input); "
            f"{args.rounds} interleaved rounds"
        )
        headers = {"Authorization": "Bearer sk-bench", "Content-Type": "application/json"}
        client = httpx.Client(timeout=120)

        def bare(fmt: str = "float") -> np.ndarray:
            parts = []
            for i in range(0, len(texts), 2048):
                r = client.post(
                    url,
                    json={"model": MODEL, "input": texts[i : i + 2048], "encoding_format": fmt},
                    headers=headers,
                )
                r.raise_for_status()
                rows = [d["embedding"] for d in r.json()["data"]]
                if fmt == "base64":
                    raw = b"".join(base64.b64decode(x) for x in rows)
                    parts.append(np.frombuffer(raw, dtype="<f4").reshape(len(rows), -1))
                else:
                    parts.append(np.asarray(rows, dtype=np.float32))
            return np.concatenate(parts)

        avl4 = OpenAIEmbedder(MODEL, base_url=base, api_key="sk-bench", dim=args.dim, timeout_s=120)
        avl1 = OpenAIEmbedder(
            MODEL, base_url=base, api_key="sk-bench", dim=args.dim, timeout_s=120, max_concurrency=1
        )
        avl4b = OpenAIEmbedder(
            MODEL,
            base_url=base,
            api_key="sk-bench",
            dim=args.dim,
            timeout_s=120,
            encoding_format="base64",
        )
        methods = {
            "bare httpx loop (2,048 inputs per request)": bare,
            "avl OpenAIEmbedder (max_concurrency=4, the default)": lambda: avl4.embed(texts),
            "avl OpenAIEmbedder (max_concurrency=1)": lambda: avl1.embed(texts),
            "bare httpx loop, base64": lambda: bare("base64"),
            "avl OpenAIEmbedder, base64 (max_concurrency=4)": lambda: avl4b.embed(texts),
        }
        times: dict[str, list[float]] = {name: [] for name in methods}
        results: dict[str, np.ndarray] = {}
        order = list(methods)
        for r in range(args.rounds):
            for name in order if r % 2 == 0 else order[::-1]:
                t0 = time.perf_counter()
                results[name] = methods[name]()
                times[name].append(time.perf_counter() - t0)
        rounds_table(times, len(texts))
        ratio(
            times,
            "avl OpenAIEmbedder (max_concurrency=4, the default)",
            "bare httpx loop (2,048 inputs per request)",
            "avl (4 in flight) / bare loop",
            None,
        )
        ratio(
            times,
            "avl OpenAIEmbedder (max_concurrency=1)",
            "bare httpx loop (2,048 inputs per request)",
            "avl (1 in flight) / bare loop",
            0.95,
        )
        ratio(
            times,
            "avl OpenAIEmbedder, base64 (max_concurrency=4)",
            "bare httpx loop, base64",
            "base64: avl (4 in flight) / bare loop",
            None,
        )
        same = all(
            np.array_equal(results[name], results["bare httpx loop (2,048 inputs per request)"])
            for name in methods
        )
        print(f"  identical vectors from every client and format: {same}")
        client.close()
        avl4.close()
        avl1.close()
        avl4b.close()
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--only", default="local,openai", help="sections, comma-separated")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--texts", type=int, default=600, help="texts for the local section")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--http-texts", type=int, default=5000, help="texts for the openai section")
    ap.add_argument("--dim", type=int, default=1536)
    ap.add_argument("--latency-ms", type=float, default=41.0)
    ap.add_argument("--per-input-ms", type=float, default=0.5)
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    ap.add_argument("--texts-file", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve, args.dim, args.latency_ms, args.per_input_ms, args.texts_file)
        return
    only = {s.strip() for s in args.only.split(",")}
    if "local" in only:
        bench_local(args)
    if "openai" in only:
        bench_openai(args)


if __name__ == "__main__":
    main()
