"""Start-up time of the ``avl`` command beside Python importing what avl wraps.

Run: ``.venv/bin/python benches/bench_startup.py [--runs 15] [--importtime]``

Every command runs as a fresh process (``subprocess.run``, timed with
``time.perf_counter`` around the call), ``--runs`` times, interleaved: one run of
each command per round, so a burst of load on the shared machine hits every
command alike. The median and the spread (interquartile range) are reported.

The commands:

- ``floor: sqlglot parse``: ``python -c "import sqlglot; sqlglot.parse_one('SELECT 1')"``
  (the peer of ``avl --version`` and ``avl check``; target 1.2x);
- ``floor: numpy+sqlglot``: ``python -c "import numpy, sqlglot"`` (the peer of
  ``avl ask``; target 1.3x after the query's own time is added to it);
- ``avl --version``, ``avl check "SELECT 1"`` through the installed console script
  (the ``avl`` next to the Python running the bench) and through ``python -m avl``;
- ``avl ask`` on the demo database (``create_demo_database``) with the offline model;
- ``ask in-process (warm)``: the query's own time. One process imports avl, runs
  the same ``avl ask`` through :func:`avl.cli.main` once (imports and first-use
  set-up), then times a second, identical ``main([...])`` call: reading the
  configuration, opening the database, reading its schema, training, generating,
  checking, running and printing the answer, everything but the imports. That
  second figure is what an ``avl ask`` costs beyond importing its code, so the
  ask target is ``ask <= 1.3 * (numpy+sqlglot + warm ask)``.

The avl code measured is the one the running Python imports (set ``PYTHONPATH`` to a
checkout to measure it instead of the installed copy). Python writes no bytecode
cache when ``PYTHONDONTWRITEBYTECODE`` is set; ``--bytecode`` says which state to
measure: ``keep`` (default: whatever is there), ``compiled`` (compile avl's
``__pycache__`` first, as ``pip install`` does) or ``source`` (no cache: every
import of an avl module compiles it, as an editable checkout under
``PYTHONDONTWRITEBYTECODE=1`` does).

``--importtime`` adds, after the figures, the largest cumulative entries of
``python -X importtime`` for ``avl check`` and ``avl ask``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

QUESTION = "how many orders are there?"


def _avl_package() -> Path:
    out = subprocess.run(  # from / as the commands run: not a checkout in the cwd
        [sys.executable, "-c", "import avl, os; print(os.path.dirname(avl.__file__))"],
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
    )
    return Path(out.stdout.strip())


def _set_bytecode(mode: str) -> str:
    if mode == "keep":
        return "as found"
    package = _avl_package()
    for cache in package.rglob("__pycache__"):
        shutil.rmtree(cache)
    if mode == "compiled":
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", str(package)],
            check=True,
            env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
        )
        return f"compiled ({package})"
    return f"source, no cache ({package})"


def _console_script() -> list[str]:
    script = Path(sys.executable).parent / "avl"
    if script.exists():
        return [str(script)]
    found = shutil.which("avl")
    if found is None:
        raise SystemExit("no avl console script next to this Python or on PATH")
    return [found]


_WARM = """
import io, sys, time
from avl.cli import main
argv = sys.argv[1:]
main(argv, out=io.StringIO())
t, c = time.perf_counter(), time.process_time()
main(argv, out=io.StringIO())
print(time.perf_counter() - t, time.process_time() - c)
"""


def _time(cmd: list[str], env: dict[str, str], cwd: str) -> tuple[float, float]:
    """Wall seconds (``perf_counter`` around the process) and its CPU seconds (user +
    system, from ``wait4``): the second is what the process itself spent, less
    disturbed when other work shares the cores."""
    t = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=env, cwd=cwd,
    )  # fmt: skip
    _, status, usage = os.wait4(proc.pid, 0)
    took = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        again = subprocess.run(cmd, capture_output=True, env=env, cwd=cwd)
        raise SystemExit(f"{cmd} failed ({proc.returncode}): {again.stderr.decode()[-500:]}")
    return took, usage.ru_utime + usage.ru_stime


def _warm(ask: list[str], env: dict[str, str], cwd: str) -> tuple[float, float]:
    proc = subprocess.run(
        [sys.executable, "-c", _WARM, *ask], capture_output=True, text=True, env=env, cwd=cwd
    )
    if proc.returncode != 0:
        raise SystemExit(f"warm ask failed: {proc.stderr[-500:]}")
    wall, cpu = proc.stdout.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


def _importtime(cmd: list[str], env: dict[str, str], cwd: str, top: int) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *cmd], capture_output=True, text=True, env=env, cwd=cwd
    )
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        _, self_us, cum_us, name = (p.strip() for p in line.replace(":", "|", 1).split("|"))
        rows.append((int(cum_us), int(self_us), name))
    rows.sort(reverse=True)
    return [
        f"    {cum / 1000:7.1f} ms  (self {own / 1000:5.1f})  {name}"
        for cum, own, name in rows[:top]
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=15, help="fresh processes per command")
    ap.add_argument("--bytecode", choices=["keep", "compiled", "source"], default="keep")
    ap.add_argument("--importtime", action="store_true", help="list the top imports too")
    ap.add_argument("--top", type=int, default=25, help="rows of --importtime")
    args = ap.parse_args()

    state = _set_bytecode(args.bytecode)
    py = sys.executable
    avl = _console_script()
    tmp = tempfile.mkdtemp(prefix="avl-bench-startup-")
    try:
        db = Path(tmp) / "shop.db"
        subprocess.run(
            [py, "-c", f"from avl.assistant import create_demo_database as c; c({str(db)!r})"],
            check=True,
        )
        env = dict(os.environ)
        if args.bytecode == "source":
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        ask = ["ask", QUESTION, "--db", f"sqlite:///{db}"]
        commands: dict[str, list[str]] = {
            "floor: sqlglot parse": [py, "-c", "import sqlglot; sqlglot.parse_one('SELECT 1')"],
            "floor: numpy+sqlglot": [py, "-c", "import numpy, sqlglot"],
            "avl --version": [*avl, "--version"],
            'avl check "SELECT 1"': [*avl, "check", "SELECT 1"],
            "python -m avl --version": [py, "-m", "avl", "--version"],
            'python -m avl check "SELECT 1"': [py, "-m", "avl", "check", "SELECT 1"],
            "avl ask (demo db)": [*avl, *ask],
        }
        names = [*commands, "ask in-process (warm)"]
        wall: dict[str, list[float]] = {name: [] for name in names}
        cpu: dict[str, list[float]] = {name: [] for name in names}
        for cmd in commands.values():  # one untimed run each: disk cache, bytecode
            _time(cmd, env, tmp)
        for _ in range(args.runs):
            for name, cmd in commands.items():
                w, c = _time(cmd, env, tmp)
                wall[name].append(w)
                cpu[name].append(c)
            w, c = _warm(ask, env, tmp)
            wall["ask in-process (warm)"].append(w)
            cpu["ask in-process (warm)"].append(c)

        print(f"python {sys.version.split()[0]}, avl bytecode: {state}, {args.runs} runs each")
        for label, times in (("wall", wall), ("cpu (user+sys)", cpu)):
            med = {name: statistics.median(ts) for name, ts in times.items()}
            print(f"\n{label}")
            print(f"{'command':34} {'median':>9} {'IQR':>9}  ratio")
            floor = med["floor: sqlglot parse"]
            for name, ts in times.items():
                q = statistics.quantiles(ts, n=4) if len(ts) > 1 else [ts[0]] * 3
                ratio = ""
                if name.endswith(("--version", '"SELECT 1"')):
                    ratio = f"{med[name] / floor:.2f}x sqlglot parse (target <= 1.20x)"
                print(f"{name:34} {med[name] * 1000:7.1f}ms {(q[2] - q[0]) * 1000:7.1f}ms  {ratio}")
            ask_t, np_t = med["avl ask (demo db)"], med["floor: numpy+sqlglot"]
            warm_t = med["ask in-process (warm)"]
            print(
                f"avl ask / (numpy+sqlglot + warm ask) = {ask_t * 1000:.1f} / "
                f"({np_t * 1000:.1f} + {warm_t * 1000:.1f}) = {ask_t / (np_t + warm_t):.2f}x "
                "(target <= 1.30x)"
            )
        if args.importtime:
            for label, cmd in (
                ('avl check "SELECT 1"', ["-m", "avl", "check", "SELECT 1"]),
                ("avl ask (demo db)", ["-m", "avl", *ask]),
            ):
                print(f"\n-X importtime, largest cumulative: {label}")
                print("\n".join(_importtime(cmd, env, tmp, args.top)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
