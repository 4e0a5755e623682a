"""``avl check`` on scripts, ``--version``, completions, the renderer and serve's errors."""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from avl import __version__
from avl.cli import main
from avl.cli._check import split_statements
from avl.cli._render import Style, render_csv, render_table

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}


def run(*argv: str, stdin: str | None = None) -> tuple[int, str, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "avl.cli", *argv],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env=ENV,
        check=False,
    )
    return proc.returncode, proc.stdout, proc.stderr


def test_version_prints_the_package_version() -> None:
    assert run("--version") == (0, f"avl {__version__}\n", "")
    out = io.StringIO()
    assert main(["--version"], out=out) == 0
    assert out.getvalue() == f"avl {__version__}\n"


def test_check_file_gives_one_verdict_per_statement(tmp_path: Path) -> None:
    script = tmp_path / "q.sql"
    script.write_text("SELECT name FROM users; DROP TABLE users")
    code, out, err = run("check", "-f", str(script))
    assert code == 1, err
    assert out.splitlines()[:3] == [
        f"{script}:1: allowed",
        "SELECT name FROM users",
        f"{script}:1: rejected",
    ]
    assert "statement_kind" in out.splitlines()[3]


def test_check_stdin_dash(tmp_path: Path) -> None:
    assert run("check", "-", stdin="SELECT 1") == (0, "<stdin>:1: allowed\nSELECT 1\n", "")
    code, out, _ = run("check", "-", stdin="SELECT 1;\n\nSELECT 2;\n")
    assert code == 0
    assert out == "<stdin>:1: allowed\nSELECT 1\n<stdin>:3: allowed\nSELECT 2\n"


def test_check_argument_is_one_statement() -> None:
    code, out, _ = run("check", "SELECT 1; SELECT 2")
    assert code == 1
    assert "multiple_statements" in out


def test_parse_error_points_at_line_and_column_with_a_caret() -> None:
    code, out, _ = run("check", "-", stdin="SELECT 1;\nSELECT a,\n  (((( FROM t")
    assert code == 1
    lines = out.splitlines()
    i = lines.index("<stdin>:2: rejected")
    assert lines[i + 1].startswith("  parse_error at 3:")
    col = int(lines[i + 1].split(" at 3:")[1].split(":")[0])
    assert lines[i + 2] == "      (((( FROM t"
    assert lines[i + 3] == "    " + " " * (col - 1) + "^"


def test_check_json_is_the_http_verdict_shape_with_script_positions() -> None:
    code, out, _ = run("check", "--json", "-", stdin="SELECT 1;\nDELETE FROM t")
    assert code == 1
    first, second = (json.loads(line) for line in out.splitlines())
    assert first == {  # exactly the /v1/sql/check body
        "allowed": True,
        "violations": [],
        "sql": "SELECT 1",
        "kind": "select",
        "tables": [],
        "columns": [],
        "role": "default",
    }
    assert second["allowed"] is False
    assert second["violations"][0]["code"] == "statement_kind"
    position = second["violations"][0]["position"]  # in the script, not the statement
    assert (position["line"], position["offset"]) == (2, None)


def test_check_csv() -> None:
    code, out, _ = run("check", "--csv", "-", stdin="SELECT 1; DELETE FROM t")
    assert code == 1
    assert out.splitlines() == [
        "source,line,verdict,codes,sql",
        "<stdin>,1,allowed,,SELECT 1",
        "<stdin>,1,rejected,statement_kind,DELETE FROM t",
    ]


def test_a_file_name_given_as_sql_gets_a_hint(tmp_path: Path) -> None:
    script = tmp_path / "q.sql"
    script.write_text("SELECT 1")
    code, out, err = run("check", str(script))
    assert (code, out) == (2, "")
    assert f"use 'avl check -f {script}'" in err or f"avl check -f {script}" in err


def test_split_keeps_semicolons_in_strings_names_and_comments() -> None:
    text = "SELECT 'a;b', \"c;d\" FROM t -- x;y\n;\n/* ; */ SELECT 2"
    got = split_statements(text, dialect="sqlite")
    assert [s.sql for s in got] == ["SELECT 'a;b', \"c;d\" FROM t -- x;y", "/* ; */ SELECT 2"]
    assert [(s.line, s.col) for s in got] == [(1, 1), (3, 1)]
    assert [s.sql for s in split_statements("SELECT 'open", dialect="sqlite")] == ["SELECT 'open"]


def test_table_aligns_and_right_aligns_numbers() -> None:
    out = io.StringIO()
    n = render_table(
        ["city", "total"],
        [("London", 343.5), ("Rome", 12), ("Paris", None)],
        out,
        style=Style(False),
    )
    assert n == 3
    assert out.getvalue() == (
        "city    total\n──────  ─────\nLondon  343.5\nRome       12\nParis    NULL\n"
    )


def test_table_cuts_cells_to_the_width_on_a_terminal_and_colours() -> None:
    out = io.StringIO()
    render_table(["a", "b"], [("x" * 50, "y" * 50)], out, style=Style(True), max_width=40)
    lines = out.getvalue().splitlines()
    assert "\x1b[1m" in lines[0]
    assert "…" in lines[2]
    assert len(lines[2]) <= 40


def test_csv_quotes_and_nulls() -> None:
    out = io.StringIO()
    render_csv(["a", "b"], [('x,"y"', None), ("line\nbreak", 1)], out)
    assert out.getvalue() == 'a,b\n"x,""y""",\n"line\nbreak",1\n'


def test_serve_rejects_a_bad_port_and_a_port_in_use() -> None:
    code, _, err = run("serve", "--port", "99999")
    assert code == 2
    assert "port must be between 1 and 65535, got 99999" in err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _, err = run("serve", "--port", str(port))
    assert code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in err
    assert "Traceback" not in err


def test_bash_completion_completes_commands_options_and_files(tmp_path: Path) -> None:
    code, script, _ = run("completion", "bash")
    assert code == 0
    (tmp_path / "avl.bash").write_text(script)
    (tmp_path / "queries.sql").write_text("SELECT 1")
    probe = (
        f"source {tmp_path / 'avl.bash'}\n"
        'COMP_WORDS=(avl che); COMP_CWORD=1; _avl; echo "${COMPREPLY[@]}"\n'
        'COMP_WORDS=(avl check --di); COMP_CWORD=2; _avl; echo "${COMPREPLY[@]}"\n'
        f'COMP_WORDS=(avl check -f {tmp_path}/quer); COMP_CWORD=3; _avl; echo "${{COMPREPLY[@]}}"\n'
    )
    got = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True)
    assert got.stdout.splitlines() == ["check", "--dialect", f"{tmp_path}/queries.sql"]


@pytest.mark.skipif(shutil.which("fish") is None and not os.environ.get("CI"), reason="no fish")
def test_fish_completion_completes_options(tmp_path: Path) -> None:
    code, script, _ = run("completion", "fish")
    assert code == 0
    (tmp_path / "avl.fish").write_text(script)
    got = subprocess.run(
        ["fish", "-c", f"source {tmp_path / 'avl.fish'}; complete -C 'avl check --dia'"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert got.stdout.split("\t")[0] == "--dialect"


@pytest.mark.skipif(shutil.which("zsh") is None and not os.environ.get("CI"), reason="no zsh")
def test_zsh_completion_is_valid_zsh_and_names_every_command(tmp_path: Path) -> None:
    code, script, _ = run("completion", "zsh")
    assert code == 0
    path = tmp_path / "_avl"
    path.write_text(script)
    subprocess.run(["zsh", "-n", str(path)], check=True)
    for command in ("demo", "check", "ask", "history", "serve", "completion"):
        assert f"'{command}:" in script
