"""Web adapter benchmarks under wrk, beside a bare Starlette JSON endpoint.

Plain script (prints figures; never asserts on timings)::

    .venv/bin/python benches/bench_web.py                  # 10 s per wrk run
    .venv/bin/python benches/bench_web.py --duration 3     # quicker
    .venv/bin/python benches/bench_web.py --json out.json

In one run, each server is uvicorn with 1 worker, access log off, on loopback, in
its own process pinned to CPU 1 (``taskset``, when available); wrk uses 2 threads
and 64 connections, pinned to CPU 0:

- ``bare``: a Starlette app with one ``GET /json`` returning ``{"status": "ok"}``
  (the peer: what Starlette itself costs);
- avl ``GET /healthz``;
- avl ``POST /v1/sql/check``, cached: the same SQL every time (the verdict cache
  answers after the first request);
- avl ``POST /v1/sql/check``, uncached: a different SQL text on every request (every
  request parses and walks the SQL with SafeQuery);
- ``avl-core``: the same app without the middlewares issue 12 added (tracing, route
  metrics, security headers -- now in one layer, ``Envelope``, with the access log --
  the Host check, the cross-site guard), the access log served by its own
  ``avl.logs.AccessLog``, so the cached check's figure beside it is what those
  layers cost, in the same run (the servers compared get the same requests: the
  uncached run comes last);
- ``avl-base`` (with ``--base-root DIR``, a checkout of the code before): the old app.

The avl app runs over a real :class:`avl.console.Console` (demo SQLite database,
in-memory History and Metrics) whose rate limiter is on with a high rate, so every
``/v1`` request pays for authentication and a rate-limit hit.

Beside requests/s, each run reports the server's CPU microseconds per request (from
``/proc``, the median round): time the server waited for a CPU on a busy machine is
not in it, so it compares the apps far more steadily than requests/s does.

Then the time to the first SSE event of ``POST /v1/ask`` (``Accept:
text/event-stream``) with a scripted instant model, p50 and p95 over sequential
requests with httpx.

Then the same endpoints called in-process (the ASGI app awaited directly, no
sockets): the CPU cost per request of each layer, best of 3, which a shared machine
disturbs much less than wrk.

``--starvation`` measures instead what issue 12 asked: with 120 SSE streams open by
one user (a model that takes a minute to answer, so every stream stays open), the
latency of another user's requests (``GET /v1/history``, an uncached
``POST /v1/sql/check``, ``GET /v1/ratelimit``), p50/p95/max over sequential requests,
beside the same requests with no stream open; with ``--base-root`` the old code
too::

    .venv/bin/python benches/bench_web.py --starvation [--base-root /tmp/avl-before]

``--paired ROUNDS`` measures only what the issue-12 layers cost: the cached check's
server CPU per request, the full app against ``avl-core``, alternating round by
round, with the median of the per-round differences::

    .venv/bin/python benches/bench_web.py --paired 10 --duration 3

The machine is shared and noisy: the wrk runs are interleaved over ``--rounds``
rounds and the best round of each endpoint is reported; compare the figures of one
run with each other only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_HOG = "hog-key-0123456789abcdef"
_OTHER = "other-key-0123456789abcd"
_SLOW_S = 60.0


def _core_app(console: Any, *, access_log: bool = True) -> Any:
    """The app without the layers issue 12 added (for the cost of those layers).

    Issue 12 added tracing, route metrics, security headers (the three are now one
    layer, ``Envelope``, with the access log), the Host check and the cross-site
    guard. Without them, the access log (which came with another issue) is served by
    its own middleware, ``avl.logs.AccessLog``, unless ``access_log`` is off.
    """
    from starlette.middleware import Middleware

    from avl.logs import AccessLog
    from avl.web import WebSettings
    from avl.web import _app as web_app
    from avl.web import _middleware as mw

    new = (mw.Envelope, mw.HostCheck, mw.CrossSiteGuard)
    full = web_app.middleware_stack

    def core_stack(*args: Any) -> Any:
        kept = [m for m in full(*args) if m.cls not in new]
        return [Middleware(AccessLog), *kept] if access_log else kept

    web_app.middleware_stack = core_stack  # type: ignore[assignment]
    try:
        return web_app.build_app(console, WebSettings())
    finally:
        web_app.middleware_stack = full  # type: ignore[assignment]


def _slow_console() -> Any:
    """A console whose model takes a minute per answer (streams stay open)."""
    import attrs

    from avl.console import Console
    from avl.testing import FakeChatModel

    class SlowModel(FakeChatModel):
        def complete(self, messages: Any, **kw: Any) -> Any:
            time.sleep(_SLOW_S)
            return super().complete(messages, **kw)

        def stream(self, messages: Any, **kw: Any) -> Any:
            time.sleep(_SLOW_S)
            yield from super().stream(messages, **kw)

    console = Console(
        model=SlowModel(default="SELECT count(*) FROM customers"),
        ratelimit={"rates": "10000000/second"},
        assistant={"cache_threshold": None},
    )
    return console, attrs


def serve(kind: str, port: int) -> None:
    """Child process: serve one app until killed."""
    import uvicorn

    if kind == "bare":
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        async def endpoint(request: Request) -> JSONResponse:
            return JSONResponse({"status": "ok"})

        app: Any = Starlette(routes=[Route("/json", endpoint)])
    elif kind == "slow":
        from avl.web import ApiKeyAuthenticator, Identity, WebSettings, create_app

        console, attrs = _slow_console()
        auth = ApiKeyAuthenticator.from_keys(
            {_HOG: Identity(user="hog"), _OTHER: Identity(user="other")}
        )
        known = {f.name for f in attrs.fields(WebSettings)}
        caps = {"max_streams": 200, "max_streams_per_user": 200}  # all 120 streams open
        app = create_app(
            console, authenticator=auth, **{k: v for k, v in caps.items() if k in known}
        )
    else:
        from avl.console import Console
        from avl.testing import FakeChatModel
        from avl.web import create_app

        model = FakeChatModel(default="SELECT count(*) FROM customers")
        console = Console(model=model, ratelimit={"rates": "10000000/second"})
        app = _core_app(console) if kind == "avl-core" else create_app(console)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _wait_up(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server on {port} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"server on {port} did not start")


_LUA_CACHED = """
wrk.method = "POST"
wrk.body = '{"sql": "SELECT name, city FROM customers WHERE country = \\'FR\\' ORDER BY name"}'
wrk.headers["Content-Type"] = "application/json"
"""

_LUA_UNCACHED = """
local counter = 0
local thread_id = 0
local next_id = 0
function setup(thread)
  next_id = next_id + 1
  thread:set("tid", next_id)
end
function init(args)
  thread_id = tid
end
function request()
  counter = counter + 1
  local n = thread_id * 100000000 + counter
  local body = '{"sql": "SELECT name, city FROM customers WHERE id = ' .. n .. ' ORDER BY name"}'
  return wrk.format("POST", "/v1/sql/check", {["Content-Type"] = "application/json"}, body)
end
"""


def _to_ms(value: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", value)
    if not m:
        return float("nan")
    number, unit = float(m.group(1)), m.group(2)
    return number / 1000 if unit == "us" else number * 1000 if unit == "s" else number


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url: str, duration: int, script: str | None, pid: int | None = None) -> dict[str, float]:
    """Run wrk once and parse requests/s, p50, p99 and non-2xx counts; with the
    server's ``pid``, also the server's CPU microseconds per request (robust to a
    busy machine: time the server waited for a CPU is not counted)."""
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    cmd = [*pin, "wrk", "-t2", "-c64", f"-d{duration}s", "--latency"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script or "")
        lua = f.name
    try:
        if script:
            cmd += ["-s", lua]
        cpu0 = _cpu_s(pid) if pid else 0.0
        out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
        cpu = _cpu_s(pid) - cpu0 if pid else 0.0
    finally:
        os.unlink(lua)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _to_ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _to_ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    total = re.search(r"(\d+) requests in", out)
    n = float(total.group(1)) if total else 0.0
    return {
        "rps": rps,
        "p50_ms": p50,
        "p99_ms": p99,
        "non_2xx": float(bad.group(1)) if bad else 0,
        "cpu_us": cpu / n * 1e6 if n and pid else float("nan"),
    }


def first_event_latency(port: int, n: int) -> dict[str, float]:
    """Seconds from sending an SSE ask to receiving its first event."""
    import httpx

    url = f"http://127.0.0.1:{port}/v1/ask"
    samples: list[float] = []
    with httpx.Client(timeout=30) as client:
        for i in range(n + 5):
            body = {"question": f"How many customers are there? ({i})"}
            t0 = time.perf_counter()
            with client.stream(
                "POST", url, json=body, headers={"accept": "text/event-stream"}
            ) as response:
                got = None
                for line in response.iter_lines():  # read the whole stream
                    if got is None and line.startswith("event:"):
                        got = time.perf_counter() - t0
            if got is not None and i >= 5:  # the first 5 warm up
                samples.append(got)
    samples.sort()
    return {
        "p50_ms": statistics.median(samples) * 1000,
        "p95_ms": samples[int(0.95 * (len(samples) - 1))] * 1000,
        "n": float(len(samples)),
    }


def in_process(n: int, *, base: bool = False) -> dict[str, float]:
    """CPU microseconds per request calling the ASGI apps directly (no sockets, no
    HTTP parsing), measured with ``time.thread_time`` (this thread's CPU time, so
    other processes on a shared machine barely move it), best of 5 interleaved
    rounds. ``base``: the code on ``PYTHONPATH`` is the old one (no ``avl-core``)."""
    import asyncio

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from avl.console import Console
    from avl.web import create_app

    async def endpoint(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    bare = Starlette(routes=[Route("/json", endpoint)])
    console = Console(ratelimit={"rates": "10000000/second"})
    app = create_app(console)
    core = None if base else _core_app(console)
    core_bare = None if base else _core_app(console, access_log=False)

    def scope(method: str, path: str, body: bytes = b"") -> dict[str, Any]:
        headers = [(b"host", b"127.0.0.1:8000")]
        if body:
            headers += [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ]
        return {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1", "method": method, "scheme": "http", "path": path,
            "raw_path": path.encode(), "query_string": b"", "root_path": "",
            "headers": headers, "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
        }  # fmt: skip

    async def per_request(target: Any, method: str, path: str, bodies: list[bytes]) -> float:
        async def send(message: Any) -> None:
            pass

        async def call(body: bytes) -> None:
            async def receive() -> dict[str, Any]:
                return {"type": "http.request", "body": body, "more_body": False}

            await target(scope(method, path, body), receive, send)

        for body in bodies[:200]:
            await call(body)
        t0 = time.thread_time()
        for i in range(n):
            await call(bodies[i % len(bodies)])
        return (time.thread_time() - t0) / n * 1e6

    cached = [json.dumps({"sql": "SELECT name, city FROM customers ORDER BY name"}).encode()]
    uncached = [
        json.dumps({"sql": f"SELECT name FROM customers WHERE id = {i}"}).encode()
        for i in range(n + 200)
    ]

    async def measure() -> dict[str, float]:
        out: dict[str, float] = {}
        runs: list[tuple[str, tuple[Any, str, str, list[bytes]]]] = [
            ("bare Starlette GET /json", (bare, "GET", "/json", [b""])),
            ("avl GET /healthz", (app, "GET", "/healthz", [b""])),
            ("avl POST /v1/sql/check (cached)", (app, "POST", "/v1/sql/check", cached)),
        ]
        if core is not None:
            runs.append(
                ("avl-core POST /v1/sql/check (cached)", (core, "POST", "/v1/sql/check", cached))
            )
            runs.append(
                (
                    "avl-core, no access log (cached)",
                    (core_bare, "POST", "/v1/sql/check", cached),
                )
            )
        for _ in range(5):  # best of 5, interleaved
            for name, args in runs:
                us = await per_request(*args)
                out[name] = min(out.get(name, us), us)
        out["avl POST /v1/sql/check (uncached)"] = await per_request(
            app, "POST", "/v1/sql/check", uncached
        )
        return out

    try:
        return asyncio.run(measure())
    finally:
        console.close()


def _spawn(kind: str, port: int, root: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    # Same pinning for every server (one CPU), wrk on the other: fairer on 2 cores.
    pin = ["taskset", "-c", "1"] if shutil.which("taskset") else []
    return subprocess.Popen(
        [*pin, sys.executable, __file__, "--serve", kind, str(port)], env=env, cwd=root
    )


def _percentiles(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    return {
        "p50_ms": statistics.median(samples) * 1000,
        "p95_ms": samples[int(0.95 * (len(samples) - 1))] * 1000,
        "max_ms": samples[-1] * 1000,
        "n": float(len(samples)),
    }


def starvation(
    port: int, streams: int, requests: int, probe_timeout_s: float = 10.0
) -> dict[str, dict[str, float]]:
    """Another user's latency with no stream open, then with ``streams`` open by one user."""
    import asyncio

    import httpx

    base = f"http://127.0.0.1:{port}"

    timeouts = [0]

    async def probe(client: httpx.AsyncClient, n: int) -> list[float]:
        out = []
        for i in range(n):
            t0 = time.perf_counter()
            try:
                if i % 3 == 0:
                    r = await client.get(
                        "/v1/history", params={"limit": "5"}, timeout=probe_timeout_s
                    )
                elif i % 3 == 1:
                    sql = f"SELECT name FROM customers WHERE id = {i}"
                    r = await client.post(
                        "/v1/sql/check", json={"sql": sql}, timeout=probe_timeout_s
                    )
                else:
                    r = await client.get("/v1/ratelimit", timeout=probe_timeout_s)
                r.raise_for_status()
            except httpx.TimeoutException:
                timeouts[0] += 1  # counted at the timeout: the real wait was longer
            out.append(time.perf_counter() - t0)
        return out

    async def run() -> dict[str, dict[str, float]]:
        limits = httpx.Limits(max_connections=streams + 10, max_keepalive_connections=streams + 10)
        timeout = httpx.Timeout(120.0)
        other = httpx.AsyncClient(base_url=base, headers={"x-api-key": _OTHER}, timeout=timeout)
        hog = httpx.AsyncClient(
            base_url=base, headers={"x-api-key": _HOG}, timeout=timeout, limits=limits
        )
        async with other, hog:
            await probe(other, 30)  # warm up
            quiet = await probe(other, requests)
            opened: list[Any] = []
            statuses: list[int] = []

            async def open_stream(i: int) -> None:
                request = hog.build_request(
                    "POST",
                    "/v1/ask",
                    json={"question": f"How many customers are there? ({i})"},
                    headers={"accept": "text/event-stream"},
                )
                response = await hog.send(request, stream=True)
                statuses.append(response.status_code)
                opened.append(response)

            await asyncio.gather(*(open_stream(i) for i in range(streams)))
            await asyncio.sleep(1.0)  # every stream is in the slow model or queued for it
            busy = await probe(other, requests)
            for response in opened:
                await response.aclose()
        return {
            "no stream open": _percentiles(quiet),
            f"{streams} streams open by one user": {
                **_percentiles(busy),
                "streams_200": float(statuses.count(200)),
                "timeouts": float(timeouts[0]),
            },
        }

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (best kept)")
    parser.add_argument("--sse-requests", type=int, default=200)
    parser.add_argument("--in-process-requests", type=int, default=5000)
    parser.add_argument("--base-root", type=Path, help="a checkout of the code before, served too")
    parser.add_argument("--starvation", action="store_true", help="measure starvation instead")
    parser.add_argument("--streams", type=int, default=120)
    parser.add_argument("--requests", type=int, default=150)
    parser.add_argument("--probe-timeout", type=float, default=10.0, help="seconds per probe")
    parser.add_argument(
        "--paired",
        type=int,
        metavar="ROUNDS",
        help="only the cached check, avl against avl-core, alternating for ROUNDS rounds",
    )
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--serve", nargs=2, metavar=("KIND", "PORT"), help=argparse.SUPPRESS)
    parser.add_argument("--in-process-base", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return
    if args.in_process_base:
        print(json.dumps(in_process(args.in_process_base, base=True)))
        return
    if args.starvation:
        main_starvation(args)
        return
    if args.paired:
        main_paired(args)
        return
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install -y wrk)")
    kinds = {"bare": ROOT, "avl": ROOT, "avl-core": ROOT}
    if args.base_root:
        kinds["avl-base"] = args.base_root
    ports = {kind: _free_port() for kind in kinds}
    procs = {
        kind: _spawn("avl" if kind == "avl-base" else kind, ports[kind], root)
        for kind, root in kinds.items()
    }
    results: dict[str, dict[str, float]] = {}
    try:
        for kind, port in ports.items():
            _wait_up(port, procs[kind])
        url = {kind: f"http://127.0.0.1:{port}" for kind, port in ports.items()}
        runs = [
            ("bare Starlette GET /json", "bare", "/json", None),
            ("avl GET /healthz", "avl", "/healthz", None),
            ("avl POST /v1/sql/check (cached)", "avl", "/v1/sql/check", _LUA_CACHED),
            ("avl-core POST /v1/sql/check (cached)", "avl-core", "/v1/sql/check", _LUA_CACHED),
        ]
        if "avl-base" in url:
            runs += [
                ("avl-base GET /healthz", "avl-base", "/healthz", None),
                ("avl-base POST /v1/sql/check (cached)", "avl-base", "/v1/sql/check", _LUA_CACHED),
            ]
        for _name, kind, path, script in runs:
            wrk(url[kind] + path, 1, script)  # warm-up
        cpu: dict[str, list[float]] = {}
        for _ in range(args.rounds):  # interleaved rounds; the best one is reported
            for name, kind, path, script in runs:
                r = wrk(url[kind] + path, args.duration, script, pid=procs[kind].pid)
                cpu.setdefault(name, []).append(r["cpu_us"])
                if name not in results or r["rps"] > results[name]["rps"]:
                    results[name] = r
        for name, values in cpu.items():  # the median round (CPU time is steadier than req/s)
            results[name]["cpu_us"] = statistics.median(values)
        # Last, so the servers compared above have served the same requests (an
        # uncached run fills caches and the heap, which then costs every request).
        name = "avl POST /v1/sql/check (uncached)"
        results[name] = wrk(
            url["avl"] + "/v1/sql/check", args.duration, _LUA_UNCACHED, pid=procs["avl"].pid
        )
        results["avl SSE ask: time to first event"] = first_event_latency(
            ports["avl"], args.sse_requests
        )
    finally:
        for proc in procs.values():
            proc.terminate()
            proc.wait(timeout=30)
    base = results["bare Starlette GET /json"]["rps"]
    import importlib.util

    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    print(
        f"wrk -t2 -c64 -d{args.duration}s, uvicorn 1 worker ({loop} + {http}), access log "
        f"off, loopback, best of {args.rounds} interleaved rounds"
    )
    print(
        f"{'endpoint':42} {'req/s':>10} {'vs bare':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'non-2xx':>8} {'server CPU us/req':>18}"
    )
    for name, r in results.items():
        if "rps" in r:
            print(
                f"{name:42} {r['rps']:10.0f} {r['rps'] / base:8.2f} {r['p50_ms']:8.2f} "
                f"{r['p99_ms']:8.2f} {r['non_2xx']:8.0f} {r['cpu_us']:18.1f}"
            )
    full = results["avl POST /v1/sql/check (cached)"]
    core = results["avl-core POST /v1/sql/check (cached)"]
    print(
        f"cached check, full app vs without the issue-12 layers: req/s {full['rps'] / core['rps']:.3f}x, "
        f"server CPU per request {full['cpu_us'] / core['cpu_us']:.3f}x "
        f"(+{full['cpu_us'] - core['cpu_us']:.1f} us)"
    )
    sse = results["avl SSE ask: time to first event"]
    print(
        f"SSE ask, time to first event over {sse['n']:.0f} requests: "
        f"p50 {sse['p50_ms']:.2f} ms, p95 {sse['p95_ms']:.2f} ms"
    )
    micro = in_process(args.in_process_requests)
    if args.base_root:
        env = {**os.environ, "PYTHONPATH": str(args.base_root)}
        out = subprocess.run(
            [sys.executable, __file__, "--in-process-base", str(args.in_process_requests)],
            env=env, cwd=args.base_root, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        for name, us in json.loads(out).items():
            if name != "bare Starlette GET /json":
                micro[name.replace("avl ", "avl-base ", 1)] = us
    print("in-process ASGI calls (no sockets, no HTTP parsing), CPU microseconds per request:")
    bare_us = micro["bare Starlette GET /json"]
    for name, us in micro.items():
        print(f"  {name:42} {us:8.1f} us   speed vs bare {bare_us / us:5.2f}")
    full_us = micro["avl POST /v1/sql/check (cached)"]
    core_us = micro["avl-core POST /v1/sql/check (cached)"]
    print(f"  the issue-12 layers cost {full_us - core_us:.1f} us per cached check in process")
    if args.json:
        Path(args.json).write_text(json.dumps({**results, "in_process_us": micro}, indent=2))


def main_paired(args: argparse.Namespace) -> None:
    """The cached check's server CPU per request, the full app against ``avl-core``,
    in alternating order round by round; the median of the per-round differences is
    steadier than the difference of two medians."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install -y wrk)")
    kinds = ["avl", "avl-core"]
    ports = {kind: _free_port() for kind in kinds}
    procs = {kind: _spawn(kind, ports[kind], ROOT) for kind in kinds}
    cpu: dict[str, list[float]] = {kind: [] for kind in kinds}
    try:
        for kind in kinds:
            _wait_up(ports[kind], procs[kind])
        url = {kind: f"http://127.0.0.1:{ports[kind]}/v1/sql/check" for kind in kinds}
        for kind in kinds:
            wrk(url[kind], 1, _LUA_CACHED)  # warm-up
        for i in range(args.paired):
            for kind in kinds if i % 2 == 0 else kinds[::-1]:
                r = wrk(url[kind], args.duration, _LUA_CACHED, pid=procs[kind].pid)
                cpu[kind].append(r["cpu_us"])
    finally:
        for proc in procs.values():
            proc.terminate()
            proc.wait(timeout=30)
    full, core = statistics.median(cpu["avl"]), statistics.median(cpu["avl-core"])
    diffs = [a - b for a, b in zip(cpu["avl"], cpu["avl-core"], strict=True)]
    paired = statistics.median(diffs)
    print(f"cached check, server CPU us per request, {args.paired} alternating rounds:")
    for kind in kinds:
        print(f"  {kind:9} " + " ".join(f"{v:6.1f}" for v in cpu[kind]))
    print(
        f"medians: avl {full:.1f}, avl-core {core:.1f} (+{full - core:.1f} us, "
        f"{100 * (full - core) / core:+.1f}%); median paired difference {paired:.1f} us "
        f"({100 * paired / core:+.1f}%)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(cpu, indent=2))


def main_starvation(args: argparse.Namespace) -> None:
    roots = {"avl": ROOT}
    if args.base_root:
        roots["avl-base"] = args.base_root
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, root in roots.items():
        port = _free_port()
        proc = _spawn("slow", port, root)
        try:
            _wait_up(port, proc)
            out[name] = starvation(port, args.streams, args.requests, args.probe_timeout)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(
        f"another user's requests (history, uncached check, ratelimit; {args.requests} "
        f"sequential), uvicorn 1 worker, a model that answers in {_SLOW_S:.0f} s"
    )
    print(
        f"{'code':10} {'situation':34} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>9} "
        f"{'streams 200':>12} {'timeouts':>9}"
    )
    for name, rows in out.items():
        for situation, r in rows.items():
            opened = f"{r['streams_200']:.0f}" if "streams_200" in r else "-"
            late = f"{r['timeouts']:.0f}" if "timeouts" in r else "-"
            print(
                f"{name:10} {situation:34} {r['p50_ms']:8.2f} {r['p95_ms']:8.2f} "
                f"{r['max_ms']:9.2f} {opened:>12} {late:>9}"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
