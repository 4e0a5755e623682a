"""The start-up structure of ``avl``: what each command path imports (no timing).

``avl --version`` and ``avl check`` must stay close to Python importing sqlglot
(``benches/bench_startup.py`` measures it). These tests guard the structure that
makes that true, by the modules a fresh process holds after the command has run:
no numpy, httpx or tiktoken, no Assistant, no other command's module, no sqlglot
dialect or allow-list the check does not use. They fail when an eager import comes
back; they never look at a clock.
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import unavailable

ROOT = Path(__file__).resolve().parents[2]

_LOADED = """
import io, json, sys
from avl.cli import main
code = main(sys.argv[1:], out=io.StringIO(), err=io.StringIO())
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""

# what no start-up path below may import
HEAVY = ("numpy", "httpx", "tiktoken", "rich", "sqlalchemy", "starlette", "asyncio", "avl.typing")


def python(*args: str, stdin: str = "", check: bool = False) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` in a fresh process that sees this checkout's avl."""
    return subprocess.run(
        [sys.executable, *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        timeout=60,
        check=check,
    )


def loaded(*argv: str, stdin: str = "") -> tuple[int, set[str]]:
    """The exit code of ``avl ARGV`` and the modules its fresh process imported."""
    proc = python("-c", _LOADED, *argv, stdin=stdin, check=True)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return out["code"], set(out["modules"])


def under(modules: set[str], *roots: str) -> set[str]:
    return {m for m in modules if any(m == r or m.startswith(r + ".") for r in roots)}


def test_version_imports_nothing_but_the_command_line() -> None:
    code, mods = loaded("--version")
    assert code == 0
    assert under(mods, "avl") <= {"avl", "avl.cli", "avl.cli._common", "avl.errors"}
    assert not under(mods, "sqlglot", "attr", "attrs", "argparse", *HEAVY)


def test_check_imports_safequery_and_its_dialect_only() -> None:
    code, mods = loaded("check", "SELECT 1")
    assert code == 0
    assert "avl.safety._checker" in mods  # the real check ran
    assert not under(mods, *HEAVY)
    # no other command, no Assistant, no template engine
    other_commands = {m for m in under(mods, "avl.cli") if m.startswith("avl.cli._")}
    assert other_commands <= {"avl.cli._check", "avl.cli._common", "avl.cli._render"}
    assert not under(
        mods, "avl.assistant", "avl.llm", "avl.console", "avl.safety._template", "avl._html"
    )
    # sqlite (the default dialect) and nothing else: no other dialect, no other list
    dialects = {m.split(".")[2] for m in mods if m.startswith("sqlglot.dialects.")} - {"dialect"}
    assert dialects == {"sqlite"}
    lists = {m.split(".")[3] for m in under(mods, "avl.safety.allowlists") if m.count(".") == 3}
    assert lists <= {"sqlite", "never", "typed", "_doc"}


def test_check_imports_only_the_rule_modules_the_statement_needs() -> None:
    code, mods = loaded("check", "SELECT 1")
    assert code == 0
    rule_modules = {m.split(".")[3] for m in under(mods, "avl.safety.rules") if m.count(".") == 3}
    # a SELECT is a query and a statement; no table, column, call, condition or size
    assert rule_modules == {"_util", "queries", "statements"}
    assert "avl.safety._rewrite" not in mods  # nothing to rewrite
    code, mods = loaded("check", "SELECT a FROM t WHERE a > 1")
    assert code == 0
    rule_modules = {m.split(".")[3] for m in under(mods, "avl.safety.rules") if m.count(".") == 3}
    assert {"columns", "relations", "predicates"} <= rule_modules
    assert "shapes" not in rule_modules


def test_check_in_another_dialect_loads_that_dialect() -> None:
    code, mods = loaded("check", "--dialect", "postgres", "SELECT 1")
    assert code == 0
    assert "sqlglot.dialects.postgres" in mods
    assert "avl.safety.allowlists.postgres" in mods
    assert "avl.safety.allowlists.mysql" not in mods


def test_check_with_a_file_and_json() -> None:
    code, mods = loaded("check", "--json", "-", stdin="SELECT 1; DELETE FROM t")
    assert code == 1
    assert not under(mods, *HEAVY)


def test_ask_imports_no_http_client_event_loop_or_tracer(tmp_path: Path) -> None:
    from avl.assistant import create_demo_database

    db = create_demo_database(tmp_path / "shop.db")
    code, mods = loaded("ask", "how many orders are there?", "--db", f"sqlite:///{db}")
    assert code == 0
    assert "avl.llm.offline" in mods  # the real pipeline ran
    assert not under(mods, "httpx", "rich", "click", "tiktoken", "asyncio", "opentelemetry")
    assert not under(mods, "avl.embeddings._openai", "avl.embeddings._local", "avl.web")
    assert not under(mods, "avl._html")  # the notebook views


def test_tracing_still_follows_an_application_tracer_provider() -> None:
    code = """
import avl.metrics as m
assert m.tracing_enabled() is False
try:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
except ImportError:
    print("no opentelemetry-sdk")
else:
    trace.set_tracer_provider(TracerProvider())
    assert m.tracing_enabled() is True
    with m.start_span("avl.test") as span:
        assert span.recording and m.current_ids() is not None
    print("ok")
"""
    proc = python("-c", code)
    if proc.stdout.strip() == "no opentelemetry-sdk":
        unavailable("opentelemetry-sdk is not installed (the test extra has it)")
    assert proc.stdout.strip() == "ok", proc.stderr


def test_startup_pauses_the_collector_only_for_the_process_command_line() -> None:
    import gc

    from avl.cli import _common, main

    frozen = gc.get_freeze_count()
    assert main(["check", "SELECT 1"], out=io.StringIO()) == 0
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen  # called with arguments: nothing frozen
    code = """
import gc, sys
from avl.cli import main
sys.argv = ["avl", "check", "SELECT 1"]
assert main() == 0
assert gc.isenabled() and gc.get_freeze_count() > 0
from avl.cli import _common
with _common.startup():  # once per process
    assert gc.isenabled()
print("ok")
"""
    proc = python("-c", code)
    assert proc.stdout.strip().endswith("ok"), proc.stderr
    assert not _common.WHOLE_PROCESS


def test_help_still_lists_every_command() -> None:
    from avl.cli import _COMMANDS, _MODULE_OF, build_parser

    names = set(_MODULE_OF)
    full = build_parser()
    sub = next(a for a in full._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) >= names
    assert set(_MODULE_OF.values()) <= set(_COMMANDS)


@pytest.mark.parametrize("module", __import__("avl.cli", fromlist=["_COMMANDS"])._COMMANDS)
def test_every_command_is_mapped_to_the_module_that_registers_it(module: str) -> None:
    from avl.cli import _MODULE_OF

    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="command")
    importlib.import_module(module).register(sub)
    for name in sub.choices:
        assert _MODULE_OF.get(name) == module, f"avl {name}: add it to avl.cli._MODULE_OF"


def test_a_single_command_parser_parses_as_the_full_one() -> None:
    from avl.cli import build_parser

    argv = ["check", "--dialect", "postgres", "--max-rows", "5", "SELECT 1"]
    assert vars(build_parser("check").parse_args(argv)) == vars(build_parser().parse_args(argv))


def test_an_unknown_command_still_reports_the_choices() -> None:
    proc = python("-m", "avl", "chekc", "SELECT 1")
    assert proc.returncode == 2
    assert "invalid choice" in proc.stderr
    assert "'check'" in proc.stderr


def test_python_dash_m_avl_is_the_command() -> None:
    from avl import __version__

    proc = python("-m", "avl", "--version", check=True)
    assert proc.stdout == f"avl {__version__}\n"


def test_lazy_public_names_stay_importable() -> None:
    code = """
import avl, avl.safety
names = {n: getattr(avl, n) for n in avl.__all__}
from avl import AvlError, Clock, SystemClock
from avl.safety import Template
from avl._clock import Clock as C2
import avl.errors, avl.typing, avl._clock, avl.safety._template
assert AvlError is avl.errors.AvlError and Clock is avl.typing.Clock is C2
assert SystemClock is avl._clock.SystemClock and Template is avl.safety._template.Template
assert set(avl.__all__) <= set(dir(avl)) and set(avl.safety.__all__) <= set(dir(avl.safety))
try:
    avl.nope
except AttributeError as exc:
    assert "nope" in str(exc)
else:
    raise AssertionError("avl.nope")
ns = {}
exec("from avl import *; from avl.safety import *", ns)
assert {"AvlError", "Clock", "SystemClock", "Template", "SafeQuery"} <= set(ns)
print("ok")
"""
    proc = python("-c", code)
    assert proc.stdout.strip() == "ok", proc.stderr
