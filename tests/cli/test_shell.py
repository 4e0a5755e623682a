"""``avl shell``: driven for real, through a pipe (the plain reader), through
prompt_toolkit in process (a pipe input, keys sent one step at a time) and through a
pseudo-terminal (the installed command as a user runs it)."""

from __future__ import annotations

import asyncio
import io
import os
import select
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from avl.cli._shell import (
    COMMANDS,
    Shell,
    ShellHistory,
    history_path,
    is_complete,
    prompt_loop,
    prompt_session,
    read_inputs,
)
from avl.console import Console

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def config(tmp_path: Path, shop: Path) -> Path:
    path = tmp_path / "avl.toml"
    path.write_text(
        f'db = "sqlite:///{shop}"\n'
        f'history = "sqlite:///{tmp_path / "history.db"}"\n'
        "[roles.admin]\n"
        "[roles.analyst]\n"
        'denied_columns = ["customers.email"]\n'
    )
    return path


@pytest.fixture
def console(config: Path) -> Iterator[Console]:
    with Console.from_toml(config) as c:
        yield c


def shell_run(
    tmp_path: Path, stdin: str, *argv: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "avl.cli", "shell", *argv],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "NO_COLOR": "1",
            "AVL_SHELL_HISTORY": str(tmp_path / "shell_history"),
            **(env or {}),
        },
        check=False,
    )


# ------------------------------------------------------------------ input rules
def test_input_ends_at_semicolon_question_mark_or_blank_line() -> None:
    assert is_complete("\\tables")
    assert is_complete("\\describe customers")
    assert is_complete("how many customers are there?")
    assert is_complete("\\sql SELECT 1;")
    assert not is_complete("how many customers")
    assert not is_complete("\\sql SELECT name")
    assert not is_complete("\\sql")
    assert is_complete("how many customers\n")  # a blank line
    assert is_complete("\\sql SELECT name\nFROM customers\n  ")
    assert list(read_inputs(["\\tables", "how many", "customers", "", "\\sql SELECT", "1;"])) == [
        "\\tables",
        "how many\ncustomers",
        "\\sql SELECT\n1;",
    ]
    assert list(read_inputs(["  ", "a question without an end"])) == ["a question without an end"]


def test_history_path_from_env_and_xdg(tmp_path: Path) -> None:
    assert history_path(None, {"AVL_SHELL_HISTORY": str(tmp_path / "h")}) == tmp_path / "h"
    assert history_path(None, {"XDG_STATE_HOME": str(tmp_path)}) == (
        tmp_path / "avl" / "shell_history"
    )
    assert history_path(str(tmp_path / "x"), {"AVL_SHELL_HISTORY": "/nope"}) == tmp_path / "x"


def test_history_file_is_private_bounded_and_keeps_multi_line_inputs(tmp_path: Path) -> None:
    h = ShellHistory(tmp_path / "state" / "avl" / "shell_history", limit=5)
    for i in range(30):
        h.append(f"\\sql SELECT {i}\nFROM t;" + " " * 400)
    assert (h.path.stat().st_mode & 0o777) == 0o600
    got = h.load()
    assert len(got) == 5
    assert got[-1].startswith("\\sql SELECT 29\nFROM t;")
    assert len(h.path.read_text().splitlines()) <= 10  # rewritten, not grown without end
    h.path.write_text(h.path.read_text() + "not json\n")  # a damaged line is passed over
    assert len(h.load()) == 5


# ------------------------------------------------------- the plain reader (pipe)
def test_scripted_through_a_pipe(tmp_path: Path, config: Path) -> None:
    script = (
        "\\tables\n"
        "\\describe customers\n"
        "\\sql SELECT name, city\n"
        "FROM customers\n"
        "ORDER BY id;\n"
        "\\sql DELETE FROM customers;\n"
        "\\role nobody\n"
        "\\sql SELECT email FROM customers;\n"
        "how many customers\n"
        "are there?\n"
        "\\history customers\n"
        "\\quit\n"
        "\\tables\n"  # after \quit: never read
    )
    proc = shell_run(tmp_path, script, "--config", str(config), "--role", "analyst")
    assert proc.returncode == 1, proc.stderr  # a statement was refused, a role unknown
    out = proc.stdout
    assert "avl shell:" not in out  # no banner and no prompt when piped
    # \tables and \describe: the analyst's view, without the denied column
    assert "customers        3" in out
    assert "orders           3" in out
    describe = out.split("customers\ncolumn")[1].split("verdict")[0]
    assert "name" in describe
    assert "city" in describe
    assert "email" not in describe
    # a multi-line \sql statement ran read-only, after SafeQuery
    assert "SQL: SELECT name, city\nFROM customers\nORDER BY id LIMIT 1000" in out
    assert "Ann   Paris" in out
    assert "statement_kind: DELETE statements are not allowed" in out
    # an unknown role is a clear error and the analyst role stays
    assert "error: no policy is configured for role 'nobody'" in out
    assert "column_denied: column customers.email is denied" in out
    # a two-line question
    assert "Q: how many customers\nare there?" in out
    assert "\n       3\n" in out
    # the History holds what the shell asked
    assert "how many customers" in out.split("question or SQL")[1]
    from avl.history import History

    history = History(f"sqlite:///{tmp_path / 'history.db'}", create=False)
    try:
        runs = [e for e in history.search(limit=50) if e.sql and not e.question]
    finally:
        history.close()
    assert runs  # \sql runs are recorded, tagged as the shell's
    assert all(e.tags == ("shell",) for e in runs)
    assert out.count("customers        3") == 1  # the \tables after \quit did not run
    assert not (tmp_path / "shell_history").exists()  # piped input keeps no history


def test_a_clean_script_exits_0_and_mistakes_are_errors_not_crashes(
    tmp_path: Path, config: Path
) -> None:
    ok = shell_run(
        tmp_path, "\\tables\n\\sql SELECT 1;\n\\help\n", "--config", str(config), "--role", "admin"
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "\\describe TABLE" in ok.stdout  # \help
    bad = shell_run(
        tmp_path,
        "\\describe\n\\nosuch\n\\describe secrets\n\\sql\n\n\\tables\n",
        "--config",
        str(config),
        "--role",
        "admin",
    )
    assert bad.returncode == 1
    assert bad.stderr == ""
    out = bad.stdout
    assert "error: \\describe TABLE" in out
    assert "error: unknown command \\nosuch; \\help lists the commands" in out
    assert "error: no table 'secrets' that you may read" in out
    assert "error: give the SQL after the command" in out
    assert "customers" in out.split("give the SQL")[1]  # the session went on


def test_unknown_role_at_start_is_a_one_line_error(tmp_path: Path, config: Path) -> None:
    proc = shell_run(tmp_path, "\\tables\n", "--config", str(config), "--role", "nobody")
    assert proc.returncode == 2
    assert proc.stderr.startswith("avl shell: error: no policy is configured for role 'nobody'")
    assert proc.stderr.count("\n") == 1


def test_follow_up_questions_share_one_session(tmp_path: Path) -> None:
    history_db = tmp_path / "history.db"
    proc = shell_run(  # no --db: the sample database
        tmp_path,
        "How many customers are there in each country?\nand only in France?\n",
        "--history",
        f"sqlite:///{history_db}",
    )
    assert proc.returncode == 0, proc.stderr
    follow_up = proc.stdout.split("Q: and only in France?")[1]
    assert "'France'" in follow_up.splitlines()[1]  # the follow-up refined the question
    from avl.history import History

    history = History(f"sqlite:///{history_db}", create=False)
    try:
        entries = [e for e in history.search(limit=50) if e.question and e.outcome != "pending"]
    finally:
        history.close()
    assert [e.question for e in entries] == [
        "and only in France?",
        "How many customers are there in each country?",
    ]
    sessions = {e.session for e in entries}
    assert len(sessions) == 1
    assert sessions != {""}


# ------------------------------------------------------------- prompt_toolkit
def _drive(
    shell: Shell, history: ShellHistory, steps: Callable[[Any, Callable[[], str]], Any]
) -> None:
    """Run ``prompt_loop`` on a pipe input while ``steps`` types into it."""
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    async def main() -> None:
        with create_pipe_input() as inp:
            session = prompt_session(shell, history, input=inp, output=DummyOutput())

            async def typer() -> None:
                await steps(inp, lambda: session.default_buffer.text)

            await asyncio.wait_for(asyncio.gather(prompt_loop(shell, session), typer()), 300)

    asyncio.run(main())


async def until(cond: Callable[[], bool], what: str) -> None:
    """Wait for the prompt's state (never asserts a time: a slow machine waits longer)."""
    for _ in range(6000):
        if cond():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never reached: {what}")


async def type_and_wait(inp: Any, buf: Callable[[], str], keys: str, expect: str) -> None:
    inp.send_text(keys)
    await until(lambda: buf() == expect, f"{expect!r} (buffer {buf()!r})")


def test_prompt_toolkit_completes_only_what_the_role_may_read(
    tmp_path: Path, console: Console
) -> None:
    out = io.StringIO()
    shell = Shell(console, out, role="analyst")
    history = ShellHistory(tmp_path / "h")

    async def steps(inp: Any, buf: Callable[[], str]) -> None:
        await type_and_wait(inp, buf, "\\desc", "\\desc")
        await type_and_wait(inp, buf, "\t", "\\describe")  # a command
        await type_and_wait(inp, buf, " cust", "\\describe cust")
        await type_and_wait(inp, buf, "\t", "\\describe customers")  # a table
        inp.send_text("\r")
        await until(lambda: "column" in out.getvalue(), "\\describe ran")
        await type_and_wait(inp, buf, "\\sql SELECT customers.na", "\\sql SELECT customers.na")
        await type_and_wait(inp, buf, "\t", "\\sql SELECT customers.name")  # a column
        # a denied column is never offered: Tab leaves the word alone
        await type_and_wait(inp, buf, ", customers.em", "\\sql SELECT customers.name, customers.em")
        inp.send_text("\t")
        await type_and_wait(inp, buf, "x", "\\sql SELECT customers.name, customers.emx")
        inp.send_text("\x03")  # Ctrl-C drops the input
        await until(lambda: buf() == "", "cleared")
        inp.send_text("\\quit\r")

    _drive(shell, history, steps)
    assert "customers\ncolumn" in out.getvalue()
    assert shell.completions("SELECT em") == []
    assert "customers.email" not in shell.completions("SELECT customers.")
    # the admin role's view has the column
    admin = Shell(console, io.StringIO(), role="admin")
    assert admin.completions("SELECT customers.em") == ["customers.email"]
    assert admin.completions("\\role an") == ["analyst"]
    assert admin.completions("\\role ") == ["admin", "analyst"]
    assert admin.completions("\\describe ") == ["customers", "orders"]
    assert admin.completions("\\") == [f"\\{c}" for c in COMMANDS]
    assert admin.completions("SELECT * FROM o") == ["orders"]


def test_prompt_toolkit_role_multiline_and_history_across_sessions(
    tmp_path: Path, console: Console
) -> None:
    out = io.StringIO()
    shell = Shell(console, out, role="analyst")
    history = ShellHistory(tmp_path / "state" / "shell_history")

    async def first(inp: Any, buf: Callable[[], str]) -> None:
        # \role with an unknown role: an error, and the analyst role stays
        inp.send_text("\\role nobody\r")
        await until(lambda: "no policy is configured" in out.getvalue(), "role error")
        assert shell.role == "analyst"
        # multi-line: Enter on an incomplete line starts a new line
        await type_and_wait(inp, buf, "\\sql SELECT name", "\\sql SELECT name")
        await type_and_wait(inp, buf, "\r", "\\sql SELECT name\n")
        await type_and_wait(
            inp,
            buf,
            "FROM customers WHERE city = 'Rome';",
            ("\\sql SELECT name\nFROM customers WHERE city = 'Rome';"),
        )
        inp.send_text("\r")  # complete: submitted
        await until(lambda: "Bob" in out.getvalue(), "the query ran")
        inp.send_text("\\quit\r")

    _drive(shell, history, first)
    text = out.getvalue()
    assert "error: no policy is configured for role 'nobody'" in text
    assert "SQL: SELECT name\nFROM customers WHERE city = 'Rome' LIMIT 1000" in text
    assert history.load() == [
        "\\role nobody",
        "\\sql SELECT name\nFROM customers WHERE city = 'Rome';",
        "\\quit",
    ]

    # a new session reads the file: Up recalls the multi-line statement
    out2 = io.StringIO()
    shell2 = Shell(console, out2, role="admin")

    async def second(inp: Any, buf: Callable[[], str]) -> None:
        await until(lambda: buf() == "", "a prompt")
        inp.send_text("\x1b[A")
        await until(lambda: buf() == "\\quit", "the last input recalled")
        inp.send_text("\x1b[A")
        await until(lambda: buf().startswith("\\sql SELECT name\nFROM"), "the statement recalled")
        inp.send_text("\r")  # complete (it ends with ;): submitted wherever the cursor is
        await until(lambda: "Bob" in out2.getvalue(), f"the recalled query ran {buf()!r}")
        inp.send_text("\\quit\r")

    _drive(shell2, ShellHistory(tmp_path / "state" / "shell_history"), second)
    assert "FROM customers WHERE city = 'Rome' LIMIT 1000" in out2.getvalue()


def test_prompt_toolkit_follow_up_question_and_a_new_session_per_role(tmp_path: Path) -> None:
    out = io.StringIO()
    with Console() as demo:  # the sample database, a History in memory
        shell = Shell(demo, out)
        first_session = shell.session_id

        async def steps(inp: Any, buf: Callable[[], str]) -> None:
            inp.send_text("How many customers are there in each country?\r")
            await until(lambda: "Q: How many customers" in out.getvalue(), "first answer")
            inp.send_text("and only in France?\r")
            await until(lambda: "summary" in out.getvalue().split("France?")[-1], "follow-up")
            inp.send_text("\x04")  # Ctrl-D on an empty line leaves

        _drive(shell, ShellHistory(tmp_path / "h"), steps)
        assert "'France'" in out.getvalue().split("Q: and only in France?")[1].splitlines()[1]
        assert demo.history is not None
        entries = [
            e for e in demo.history.search(limit=50) if e.question and e.outcome != "pending"
        ]
        assert len(entries) == 2
        assert {e.session for e in entries} == {first_session}
        shell.handle("\\role default")  # a role change starts a new conversation
        assert shell.session_id != first_session


# ------------------------------------------------------------- a real terminal
def _read_until(fd: int, needle: bytes, seen: bytearray) -> None:
    while needle not in seen:
        ready, _, _ = select.select([fd], [], [], 60)
        if not ready:
            raise AssertionError(f"no {needle!r} in {bytes(seen)[-400:]!r}")
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            chunk = b""
        if not chunk:
            raise AssertionError(f"the shell ended before {needle!r}: {bytes(seen)[-400:]!r}")
        seen.extend(chunk)


def _wait(pid: int, fd: int, seen: bytearray) -> int:
    """The child's exit status (its output read meanwhile); it is killed, and its
    threads' stacks shown, when it does not end (a failure)."""
    import signal
    import time

    for _ in range(3000):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        chunk = b""
        if select.select([fd], [], [], 0.1)[0]:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the child closed the terminal: it is on its way out
                chunk = b""
        seen.extend(chunk)
        if not chunk:
            time.sleep(0.05)
    os.kill(pid, signal.SIGABRT)  # PYTHONFAULTHANDLER prints where it hangs
    time.sleep(1)
    try:
        seen.extend(os.read(fd, 65536))
    except OSError:
        pass
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError(f"the shell did not end: {bytes(seen)[-3000:]!r}")


def _spawn(tmp_path: Path, config: Path, hist: Path, *extra: str) -> tuple[int, int]:
    """``avl shell`` on a new pseudo-terminal: ``(pid, the terminal's fd)``."""
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # the child: the command line a user runs, on the terminal
        os.environ.update(
            PYTHONPATH=str(ROOT),
            NO_COLOR="1",
            TERM="xterm",
            PROMPT_TOOLKIT_NO_CPR="1",
            PYTHONFAULTHANDLER="1",
            AVL_SHELL_HISTORY=str(hist),
        )
        os.chdir(tmp_path)
        argv = ["-m", "avl.cli", "shell", "--config", str(config), "--role", "analyst", *extra]
        os.execv(sys.executable, [sys.executable, *argv])
    return pid, fd


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
@pytest.mark.parametrize("mode", ["prompt_toolkit", "readline"])
def test_in_a_pseudo_terminal(tmp_path: Path, config: Path, mode: str) -> None:
    hist = tmp_path / "shell_history"
    pid, fd = _spawn(tmp_path, config, hist, *(["--plain"] if mode == "readline" else []))
    seen = bytearray()
    try:
        _read_until(fd, b"avl (analyst)>", seen)
        os.write(fd, b"\\describe cus\t")
        _read_until(fd, b"tomers", seen)  # the completion, drawn after what was typed
        os.write(fd, b"\r")
        _read_until(fd, b"city", seen)
        os.write(fd, b"\\quit\r")
        status = _wait(pid, fd, seen)
    finally:
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, bytes(seen)[-400:]
    assert b"email" not in seen
    assert ShellHistory(hist).load() == ["\\describe customers", "\\quit"]
