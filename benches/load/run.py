"""Load tests against ``avl serve`` on loopback, beside a bare Starlette app, with locust.

Scenarios (the roadmap's):

- ``smoke``: 1 user per endpoint for a few seconds (does everything answer?);
- ``load``: 10 users ramping to 100, each sending one request per second (100 req/s
  offered at the end): the latency objectives apply here;
- ``stress``: 200 users sending back to back: the most the server answers per second,
  and what latency becomes when it is saturated;
- ``spike``: 1,000 requests from 100 users that arrive at once.

Each endpoint is loaded on its own (avl's, then the bare Starlette one of the same shape,
interleaved), ``--repeat`` times, and the runner prints requests/s, p50/p95/p99 and the
error rate per endpoint beside the objectives: p50 < 50 ms, p95 < 200 ms, p99 < 500 ms,
errors < 0.1%. Both servers are one uvicorn worker on loopback, with uvloop and
httptools when installed (``pip install 'avl[load]'``), access log off. Locust runs on the
same machine: on a small machine it competes with the server for the CPU, so the figures
are a floor, not a capacity.

    python benches/load/run.py --scenario load --duration 20 --repeat 3
    python benches/load/run.py --scenario all --json results.json

Everything is bounded in time: each locust run by ``--duration`` (and a hard timeout),
the servers are stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

SLO = {"p50": 50.0, "p95": 200.0, "p99": 500.0, "errors": 0.001}

# (user class, label) in the order they are loaded; each avl endpoint is followed by its
# bare Starlette peer so both see the same machine state.
ENDPOINTS = (
    ("Healthz", "avl GET /healthz"),
    ("BareHealthz", "bare Starlette GET /healthz"),
    ("CheckCached", "avl POST /v1/sql/check (cached)"),
    ("BareEcho", "bare Starlette POST /echo (JSON)"),
    ("CheckUncached", "avl POST /v1/sql/check (uncached)"),
    ("Ask", "avl POST /v1/ask (offline)"),
)

SCENARIOS: dict[str, dict[str, Any]] = {
    "smoke": {"users": 1, "spawn_rate": 1, "duration": 5},
    "load": {"users": 100, "spawn_rate": 10, "duration": 20, "pacing_s": 1.0},
    "stress": {"users": 200, "spawn_rate": 50, "duration": 20},
    "spike": {"users": 100, "spawn_rate": 100, "duration": 60, "requests": 1000},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"server at {url} did not come up in {timeout_s:.0f}s")


def start_servers(workdir: Path) -> tuple[list[subprocess.Popen[bytes]], str, str]:
    """``avl serve`` (offline demo console, no rate limit) and the bare Starlette app."""
    config = workdir / "avl.toml"
    # No rate limit and no request cap: the load test measures the server, not a limit.
    config.write_text('history = "memory://"\n\n[ratelimit]\nrates = ""\n')
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env.pop("AVL_CONFIG", None)
    avl_port, bare_port = free_port(), free_port()
    log = open(workdir / "servers.log", "wb")  # noqa: SIM115 - closed with the process
    avl = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "avl.cli",
            "serve",
            "--config",
            str(config),
            "--port",
            str(avl_port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    bare = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--app-dir",
            str(HERE),
            "bare_app:app",
            "--port",
            str(bare_port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    avl_url, bare_url = f"http://127.0.0.1:{avl_port}", f"http://127.0.0.1:{bare_port}"
    wait_up(avl_url + "/healthz")
    wait_up(bare_url + "/healthz")
    return [avl, bare], avl_url, bare_url


def run_locust(
    user: str, scenario: dict[str, Any], duration: float, avl: str, bare: str, workdir: Path
) -> dict[str, Any]:
    prefix = workdir / f"{user}-{time.monotonic_ns()}"
    env = {**os.environ, "AVL_LOAD_AVL": avl, "AVL_LOAD_BARE": bare}
    if scenario.get("pacing_s"):
        env["AVL_LOAD_PACING_S"] = str(scenario["pacing_s"])
    if scenario.get("requests"):
        env["AVL_LOAD_REQUESTS_PER_USER"] = str(scenario["requests"] // scenario["users"])
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(HERE / "locustfile.py"),
        "--headless",
        "--users",
        str(scenario["users"]),
        "--spawn-rate",
        str(scenario["spawn_rate"]),
        "--run-time",
        f"{int(duration)}s",
        "--stop-timeout",
        "5",
        "--skip-log",
        "--json-file",
        str(prefix),
        "--loglevel",
        "WARNING",
        user,
    ]
    subprocess.run(cmd, env=env, cwd=HERE, timeout=duration + 60, capture_output=True, check=False)
    try:
        stats = json.loads(Path(f"{prefix}.json").read_text())
    except (OSError, ValueError):
        return {"requests": 0}
    if not stats or not stats[0]["num_requests"]:
        return {"requests": 0}
    st = stats[0]
    n = int(st["num_requests"])
    elapsed = max(1e-9, float(st["last_request_timestamp"]) - float(st["start_time"]))
    return {
        "name": st["name"],
        "requests": n,
        "rps": n / elapsed,
        "p50": _percentile(st["response_times"], n, 0.50),
        "p95": _percentile(st["response_times"], n, 0.95),
        "p99": _percentile(st["response_times"], n, 0.99),
        "errors": int(st["num_failures"]) / n,
    }


def _percentile(histogram: dict[str, int], n: int, q: float) -> float:
    """The response time below which ``q`` of the requests fall (locust's buckets:
    whole milliseconds under 100 ms, 10 ms steps under 1 s, 100 ms steps above)."""
    seen = 0
    for value, count in sorted(((float(k), c) for k, c in histogram.items())):
        seen += count
        if seen >= q * n:
            return value
    return max(float(k) for k in histogram)


def verdict(m: dict[str, Any]) -> str:
    marks = [
        f"p50{'<' if m['p50'] < SLO['p50'] else '>='}50",
        f"p95{'<' if m['p95'] < SLO['p95'] else '>='}200",
        f"p99{'<' if m['p99'] < SLO['p99'] else '>='}500",
        f"err{'<' if m['errors'] < SLO['errors'] else '>='}0.1%",
    ]
    held = all("<" in x for x in marks)
    return "all SLOs hold" if held else "MISSED: " + ", ".join(x for x in marks if ">=" in x)


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def med(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    return {
        "name": runs[0]["name"],
        "requests": sum(r["requests"] for r in runs),
        "rps": med("rps"),
        "rps_min": min(r["rps"] for r in runs),
        "rps_max": max(r["rps"] for r in runs),
        "p50": med("p50"),
        "p95": med("p95"),
        "p99": med("p99"),
        "p99_max": max(r["p99"] for r in runs),
        "errors": sum(r["errors"] * r["requests"] for r in runs)
        / max(1, sum(r["requests"] for r in runs)),
    }


def ms(value: float) -> str:
    """Locust rounds response times to whole milliseconds (10 ms steps above 100 ms)."""
    return "<1" if value < 1 else f"{value:.0f}"


def print_table(scenario: str, spec: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    print(
        f"\n== {scenario}: {spec['users']} user(s)"
        + (f", {spec['requests']} requests" if spec.get("requests") else "")
        + (", 1 request/s each" if spec.get("pacing_s") == 1.0 else "")
        + ("" if spec.get("pacing_s") or spec.get("requests") else ", back to back")
        + f" (median of {rows[0]['repeats']} run(s); req/s min-max)"
    )
    head = f"{'endpoint':38} {'req/s':>17} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'errors':>7}  SLO"
    print(head)
    print("-" * len(head) + "-" * 20)
    for m in rows:
        rps = f"{m['rps']:.0f} ({m['rps_min']:.0f}-{m['rps_max']:.0f})"
        print(
            f"{m['name']:38} {rps:>17} {ms(m['p50']):>7} {ms(m['p95']):>7} {ms(m['p99']):>7} "
            f"{100 * m['errors']:>6.2f}%  {verdict(m)}"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=textwrap.dedent(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--scenario", default="load", choices=[*SCENARIOS, "all"])
    ap.add_argument("--duration", type=float, default=None, help="seconds per locust run")
    ap.add_argument("--repeat", type=int, default=1, help="runs per endpoint (interleaved)")
    ap.add_argument("--only", nargs="*", default=None, help="user classes to run")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args(argv)
    try:
        import httptools  # noqa: F401
        import uvloop  # noqa: F401

        fast = "uvloop + httptools"
    except ImportError:
        fast = "asyncio + h11 (uvloop/httptools not installed)"
    print(f"servers: one uvicorn worker each, {fast}, access log off; {os.cpu_count()} CPUs")
    names = [*SCENARIOS] if args.scenario == "all" else [args.scenario]
    endpoints = [e for e in ENDPOINTS if args.only is None or e[0] in args.only]
    results: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="avl-load-") as tmp:
        workdir = Path(tmp)
        procs, avl, bare = start_servers(workdir)
        try:
            for scenario in names:
                spec = SCENARIOS[scenario]
                duration = args.duration or spec["duration"]
                runs: dict[str, list[dict[str, Any]]] = {}
                for _ in range(args.repeat):
                    for user, _label in endpoints:
                        m = run_locust(user, spec, duration, avl, bare, workdir)
                        if m["requests"]:
                            runs.setdefault(user, []).append(m)
                rows = []
                for user, _label in endpoints:
                    if user in runs:
                        row = summarize(runs[user])
                        row["repeats"] = len(runs[user])
                        rows.append(row)
                results[scenario] = rows
                if rows:
                    print_table(scenario, spec, rows)
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
    if args.json:
        Path(args.json).write_text(json.dumps({"loop": fast, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
