"""``avl shell``: an interactive session with the Assistant and SafeQuery.

Plain text is a question for the Assistant; later questions are follow-ups in the
same session. Backslash commands look at the schema and run SQL::

    \\tables              the tables you may read
    \\describe T          the columns of table T that you may read
    \\sql SQL             check SQL with SafeQuery and, when allowed, run it read-only
    \\explain SQL         the database's plan for SQL and index suggestions
    \\history [TEXT]      your earlier questions (from the History), matching TEXT
    \\role R              switch to role R (an unknown role keeps the current one)
    \\help                this list
    \\quit                leave (also Ctrl-D)

**Input ends** at a line that ends with ``;`` or ``?``, or at a blank line; a line
that is a backslash command without SQL (``\\tables``, ``\\describe T``, ``\\role R``,
...) ends at once. Until then Enter starts a new line, so a long question or SQL
statement can span lines.

On a terminal the session uses prompt_toolkit (``pip install 'avl[shell]'``): tab
completes commands, and the table and column names of your role's policy view (a
denied column is never offered), and the input history is kept across sessions.
Without prompt_toolkit it falls back to ``readline``; when standard input is not a
terminal (``printf '\\\\tables\\n' | avl shell``) it reads lines plainly, prints no
prompt and keeps no history, and exits with 1 when any input failed (an error, a
refused statement, a question without a result), else 0.

The history file is ``$AVL_SHELL_HISTORY``, else ``$XDG_STATE_HOME/avl/shell_history``
(``~/.local/state/avl/shell_history`` when ``XDG_STATE_HOME`` is not set).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TextIO

from avl.cli._common import (
    EXIT_OK,
    EXIT_REJECTED,
    UsageError,
    console_from_args,
    console_options,
    context_of,
    load_training,
    print_answer,
)
from avl.errors import AvlError

__all__ = [
    "COMMANDS",
    "Shell",
    "ShellHistory",
    "history_path",
    "is_complete",
    "register",
]

_EXAMPLES = r"""examples:
  avl shell --db sqlite:///shop.db
  avl shell --config avl.toml --role analyst --context tenant=7
  printf '\\tables\n\\describe customers\n' | avl shell --db sqlite:///shop.db
  AVL_SHELL_HISTORY=/tmp/h avl shell      keep the input history elsewhere

inside the shell:
  how many customers are there?           a question (ends at ? or ; or a blank line)
  and only in Paris?                      a follow-up to the last question
  \sql SELECT name FROM customers;        check with SafeQuery, then run read-only
  \describe customers                     the columns your role may read
  \role analyst                           switch role; \help lists every command
"""

#: the backslash commands: name -> (argument, help)
COMMANDS: dict[str, tuple[str, str]] = {
    "tables": ("", "the tables you may read"),
    "describe": ("TABLE", "the columns of TABLE that you may read"),
    "sql": ("SQL", "check SQL with SafeQuery and, when allowed, run it read-only"),
    "explain": ("SQL", "the database's plan for SQL and index suggestions"),
    "history": ("[TEXT]", "your earlier questions in the History, matching TEXT"),
    "role": ("ROLE", "switch to ROLE (an unknown role keeps the current one)"),
    "help": ("", "this list"),
    "quit": ("", "leave the shell (also Ctrl-D)"),
}
_ALIASES = {"q": "quit", "exit": "quit", "d": "describe", "dt": "tables", "?": "help"}
#: commands whose argument is SQL: they end at ``;`` or a blank line like a question
_SQL_COMMANDS = frozenset({"sql", "explain"})
_WORD = re.compile(r"[\w.]+$")


def register(sub: Any) -> None:
    """Add ``shell`` to the subcommands."""
    p = sub.add_parser(
        "shell",
        help="an interactive session: questions, follow-ups, \\sql, \\describe, \\role",
        description="An interactive session with the Assistant and SafeQuery: plain text "
        "is a question (later ones are follow-ups), backslash commands show the schema "
        "your role may read and run SQL read-only.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    console_options(p)
    p.add_argument(
        "--history",
        metavar="URL",
        help="History to record questions into, e.g. sqlite:///history.db (or AVL_HISTORY)",
    )
    p.add_argument("--role", default=None, help="the policy role to start as, e.g. --role analyst")
    p.add_argument(
        "--context",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a row-filter parameter, e.g. --context tenant=7 (repeatable; digits become integers)",
    )
    p.add_argument(
        "--history-file",
        metavar="FILE",
        default=None,
        help="where the input history is kept, e.g. ~/.avl_history (default: "
        "AVL_SHELL_HISTORY, else $XDG_STATE_HOME/avl/shell_history)",
    )
    p.add_argument(
        "--plain",
        action="store_true",
        help="read plain lines with input() even on a terminal (no prompt_toolkit)",
    )
    p.set_defaults(func=_cmd_shell)


# ------------------------------------------------------------------ input rules
def _command(text: str) -> tuple[str, str] | None:
    """``(command, argument)`` of a backslash line (aliases resolved), else ``None``."""
    s = text.strip()
    if not s.startswith("\\"):
        return None
    head, _, rest = s[1:].partition(" ")
    if "\n" in head:
        head, _, more = head.partition("\n")
        rest = more + (" " + rest if rest else "")
    name = head.strip().lower()
    return _ALIASES.get(name, name), rest.strip()


def is_complete(text: str) -> bool:
    """Whether ``text`` is a whole input (Enter submits it) or goes on.

    Input ends at a line ending with ``;`` or ``?``, or at a blank line; a
    backslash command without SQL ends at once.
    """
    if not text.strip():
        return True
    lines = text.split("\n")
    if len(lines) > 1 and not lines[-1].strip():
        return True  # a blank line ends the input
    cmd = _command(text)
    if cmd is not None and cmd[0] not in _SQL_COMMANDS:
        return True
    return text.rstrip().endswith((";", "?"))


# ---------------------------------------------------------------- history file
def history_path(explicit: str | None = None, environ: dict[str, str] | None = None) -> Path:
    """The input-history file: ``explicit``, else ``$AVL_SHELL_HISTORY``, else
    ``$XDG_STATE_HOME/avl/shell_history`` (``~/.local/state`` when unset)."""
    env = os.environ if environ is None else environ
    if explicit:
        return Path(explicit).expanduser()
    if env.get("AVL_SHELL_HISTORY"):
        return Path(env["AVL_SHELL_HISTORY"]).expanduser()
    state = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "avl" / "shell_history"


class ShellHistory:
    """The shell's input history in a file: one JSON object a line
    (``{"t": unix time, "text": input}``), so multi-line inputs stay whole.

    Args:
        path: the file (created, with its folder, on the first write; mode 0600).
        limit: how many inputs are loaded.
    """

    def __init__(self, path: Path, *, limit: int = 1000) -> None:
        self.path = path
        self.limit = limit

    def load(self) -> list[str]:
        """The inputs, oldest first (a damaged line is passed over)."""
        try:
            raw = self.path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []
        out: list[str] = []
        for line in raw.splitlines():
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(item, dict) and isinstance(item.get("text"), str):
                out.append(item["text"])
        return out[-self.limit :]

    def append(self, text: str) -> None:
        """Add one input at the end of the file; past twice ``limit`` inputs the file
        is rewritten with the newest ``limit`` (atomically: a new file renamed over)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"t": round(time.time(), 3), "text": text}) + "\n")
            size = fh.tell()
        if size > 400 * self.limit:  # cheap guard before counting lines
            lines = self.path.read_text(encoding="utf-8", errors="replace").splitlines()
            if len(lines) > 2 * self.limit:
                tmp = self.path.with_name(self.path.name + ".tmp")
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write("\n".join(lines[-self.limit :]) + "\n")
                os.replace(tmp, self.path)


# ------------------------------------------------------------------------ shell
class Shell:
    """One interactive session over a Console, as one user in one role.

    Args:
        console: the :class:`~avl.console.Console` to ask.
        out: where answers are written.
        user: who is asking (limits and history).
        role: the role to start as (``None``: the default policy).
        context: the row-filter parameters.
    """

    def __init__(
        self,
        console: Any,
        out: TextIO,
        *,
        user: str = "cli",
        role: str | None = None,
        context: dict[str, Any] | None = None,
    ) -> None:
        from avl.mcp import Caller

        self.console = console
        self.out = out
        self.context = dict(context or {})
        console.policy_for(role)  # an unknown role is refused before the session starts
        self.caller = Caller(user=user, role=role, context=self.context, via="shell")
        self._names: tuple[list[str], dict[str, list[str]]] | None = None
        self._session: Any = None
        #: inputs that failed: an error, a refusal, a question without a result
        self.failures = 0
        self._new_session()

    @property
    def role(self) -> str | None:
        """The current role."""
        return self.caller.role

    def _new_session(self) -> None:
        """A new conversation (at the start and on a role change): its questions are
        follow-ups of each other (:meth:`avl.assistant.Assistant.session`)."""
        self._session = self.console.assistant.session(
            user=self.caller.user, role=self.caller.role, context=self.context or None
        )

    @property
    def session_id(self) -> str:
        """The id of the current conversation (recorded with each question)."""
        return str(self._session.id)

    # -------------------------------------------------------------- completion
    def names(self) -> tuple[list[str], dict[str, list[str]]]:
        """``(tables, table -> columns)`` of the current role's policy view."""
        if self._names is None:
            view = self.console.assistant.view(self.caller.role, self.context or None)
            tables = [t.name for t in view.tables]
            columns = {t.name: [c.name for c in t.columns] for t in view.tables}
            self._names = (tables, columns)
        return self._names

    def completions(self, before_cursor: str) -> list[str]:
        """The words that may complete the last word of ``before_cursor``."""
        head = before_cursor.lstrip()
        if not head or (head.startswith("\\") and not any(c.isspace() for c in head)):
            names = [f"\\{c}" for c in COMMANDS]
            return [n for n in names if n.startswith(head)]
        m = _WORD.search(before_cursor)
        word = m.group() if m else ""
        cmd = _command(before_cursor)
        if cmd is not None and cmd[0] == "role" and " " not in cmd[1]:
            return [r for r in sorted(self.console.policies) if r.startswith(word)]
        tables, columns = self.names()
        low = word.lower()
        if "." in word:
            table, _, col = word.rpartition(".")
            for t, cols in columns.items():
                if t.lower() == table.lower():
                    return [f"{table}.{c}" for c in cols if c.lower().startswith(col.lower())]
            return []
        if cmd is not None and cmd[0] == "describe":
            return [t for t in tables if t.lower().startswith(low)]
        seen: dict[str, None] = {}
        for name in [*tables, *(c for cs in columns.values() for c in cs)]:
            if name.lower().startswith(low):
                seen.setdefault(name, None)
        return list(seen)

    # --------------------------------------------------------------- commands
    def handle(self, text: str) -> bool:
        """Run one input; returns ``False`` when the session should end."""
        text = text.strip()
        if not text:
            return True
        cmd = _command(text)
        try:
            if cmd is None:
                self._ask(text)
                return True
            name, arg = cmd
            if name == "quit":
                return False
            run = self._handlers().get(name)
            if run is None:
                self._error(f"unknown command \\{name}; \\help lists the commands")
            else:
                run(arg)
        except (AvlError, UsageError) as exc:
            self._error(str(exc))
        except KeyboardInterrupt:  # Ctrl-C stops this input, not the session
            self._error("interrupted")
        return True

    def _handlers(self) -> dict[str, Callable[[str], None]]:
        return {
            "tables": self._tables,
            "describe": self._describe,
            "sql": self._sql,
            "explain": self._explain,
            "history": self._history,
            "role": self._role,
            "help": self._help,
        }

    def _error(self, message: str) -> None:
        from avl.cli._render import style_for

        self.failures += 1
        style = style_for(self.out)
        self.out.write(f"{style('error:', 'red', 'bold')} {message}\n")

    def _ask(self, question: str) -> None:
        answer = self._session.ask(question.rstrip().rstrip(";").strip())
        if answer.error or (answer.verdict is not None and not answer.verdict.allowed):
            self.failures += 1
        print_answer(answer, self.out)

    def _tables(self, arg: str) -> None:
        from avl.cli._render import render_table

        tables, columns = self.names()
        rows = [(t, len(columns[t])) for t in sorted(tables, key=str.lower)]
        render_table(["table", "columns"], rows, self.out)

    def _describe(self, arg: str) -> None:
        from avl.cli._render import render_table
        from avl.mcp.tools import describe_table

        if not arg:
            raise UsageError("\\describe TABLE")
        info = describe_table(self.console, self.caller, arg.rstrip(";").strip())
        note = " (rows filtered for you)" if info["row_filtered"] else ""
        self.out.write(f"{info['name']}{note}\n")
        render_table(
            ["column", "type"], [(c["name"], c["type"] or "") for c in info["columns"]], self.out
        )

    @staticmethod
    def _sql_text(arg: str) -> str:
        sql = arg.strip()
        while sql.endswith(";"):
            sql = sql[:-1].rstrip()
        if not sql:
            raise UsageError("give the SQL after the command, e.g. \\sql SELECT 1")
        return sql

    def _sql(self, arg: str) -> None:
        from avl.cli._render import render_table, style_for
        from avl.errors import UnsafeQueryError
        from avl.mcp.tools import run_sql

        style = style_for(self.out)
        try:
            result = run_sql(self.console, self.caller, self._sql_text(arg))
        except UnsafeQueryError as exc:
            self._refused(exc)
            return
        self.out.write(f"verdict: {style('allowed', 'green')}\n")
        self.out.write(f"{style('SQL:', 'bold')} {result['verdict']['sql']}\n")
        render_table(result["columns"], result["rows"], self.out)
        if result["truncated"]:
            self.out.write(style("(the row cap cut the result)", "dim") + "\n")

    def _refused(self, exc: Any) -> None:
        """SafeQuery's refusal: the verdict and each broken rule."""
        from avl.cli._render import style_for
        from avl.typing import violation_code

        self.failures += 1
        style = style_for(self.out)
        self.out.write(f"verdict: {style('REJECTED', 'red', 'bold')}\n")
        for v in exc.violations:
            self.out.write(f"  {style(violation_code(v), 'yellow')}: {v.message}\n")

    def _explain(self, arg: str) -> None:
        from avl.errors import UnsafeQueryError
        from avl.mcp.tools import explain

        try:
            result = explain(self.console, self.caller, self._sql_text(arg))
        except UnsafeQueryError as exc:
            self._refused(exc)
            return
        self.out.write(f"SQL: {result['sql']}\n")
        for line in result["plan"]:
            self.out.write(f"  {line}\n")
        if result["full_scans"]:
            self.out.write(f"full scans: {', '.join(result['full_scans'])}\n")
        for s in result["suggestions"]:
            self.out.write(f"suggested: {s}\n")

    def _history(self, arg: str) -> None:
        from avl.cli._render import render_table
        from avl.mcp.tools import search_history

        got = search_history(self.console, self.caller, text=arg, limit=40)
        rows = [
            (
                e["seq"],
                (e["time"] or "")[:19].replace("T", " "),
                e["outcome"],
                e["question"] or e["sql"],
            )
            for e in got["entries"]
            if e["outcome"] != "pending"  # the intent a finished question's entry follows
        ][:20]
        render_table(["seq", "time", "outcome", "question or SQL"], rows, self.out)

    def _role(self, arg: str) -> None:
        import attrs

        role = arg.strip() or None
        if role is None:
            self.out.write(f"role: {self.caller.role or 'default'}\n")
            return
        self.console.policy_for(role)  # UnknownRoleError: the old role stays
        self.caller = attrs.evolve(self.caller, role=role)
        self._names = None
        self._new_session()
        self.out.write(f"role: {role}\n")

    def _help(self, arg: str) -> None:
        lines = [f"  \\{name} {a}".ljust(22) + h for name, (a, h) in COMMANDS.items()]
        self.out.write(
            "Type a question (it ends at ? or ; or a blank line); later questions are "
            "follow-ups.\n" + "\n".join(lines) + "\n"
        )


# ------------------------------------------------------------------ the loops
def read_inputs(lines: Iterable[str]) -> Iterable[str]:
    """Join raw lines into whole inputs by :func:`is_complete` (the rest at the end)."""
    buf: list[str] = []
    for line in lines:
        line = line.rstrip("\r\n")
        if not buf and not line.strip():
            continue
        buf.append(line)
        text = "\n".join(buf)
        if not line.strip() or is_complete(text):
            yield text.strip()
            buf = []
    if buf and "\n".join(buf).strip():
        yield "\n".join(buf).strip()


def _plain_loop(shell: Shell, stdin: TextIO) -> None:
    for text in read_inputs(stdin):
        if not shell.handle(text):
            return


def _readline_loop(shell: Shell, history: ShellHistory) -> None:
    try:
        import readline
    except ImportError:
        readline = None  # type: ignore[assignment]
    if readline is not None:
        for item in history.load():
            readline.add_history(item)
        matches: list[str] = []

        def complete(text: str, state: int) -> str | None:
            # readline's word (``text``) ends at white space, commas and brackets, as
            # the shell's: each completion replaces it whole
            if state == 0:
                before = readline.get_line_buffer()[: readline.get_endidx()]
                matches[:] = [m for m in shell.completions(before) if m.startswith(text)]
            return matches[state] if state < len(matches) else None

        readline.set_completer_delims(" \t\n,()")
        readline.set_completer(complete)
        readline.parse_and_bind("tab: complete")
    buf: list[str] = []
    while True:
        try:
            line = input(_prompt(shell) if not buf else "...> ")
        except EOFError:
            shell.out.write("\n")
            return
        except KeyboardInterrupt:
            shell.out.write("\n")
            buf = []
            continue
        buf.append(line)
        text = "\n".join(buf)
        if line.strip() and not is_complete(text):
            continue
        buf = []
        if text.strip():
            history.append(text.strip())
            if not shell.handle(text):
                return


def _prompt(shell: Shell) -> str:
    return f"avl ({shell.caller.role or 'default'})> "


def prompt_session(shell: Shell, history: ShellHistory, **kwargs: Any) -> Any:
    """A prompt_toolkit ``PromptSession`` for ``shell``: completion, the history file,
    and Enter that submits a complete input and starts a new line otherwise.

    ``kwargs`` go to ``PromptSession`` (tests pass ``input=`` and ``output=``).
    """
    from prompt_toolkit import PromptSession
    from prompt_toolkit.completion import Completer, Completion
    from prompt_toolkit.history import History as PTHistory
    from prompt_toolkit.key_binding import KeyBindings

    class _History(PTHistory):
        def load_history_strings(self) -> Iterable[str]:
            return list(reversed(history.load()))  # newest first, as prompt_toolkit wants

        def store_string(self, string: str) -> None:
            history.append(string)

    class _Completer(Completer):
        def get_completions(self, document: Any, complete_event: Any) -> Iterable[Any]:
            before = document.text_before_cursor
            m = re.search(r"\\?[\w.]*$", before)
            word = m.group() if m else ""
            for c in shell.completions(before):
                yield Completion(c, start_position=-len(word))

    keys = KeyBindings()

    @keys.add("enter")
    def _enter(event: Any) -> None:
        buf = event.current_buffer
        if is_complete(buf.text):
            buf.validate_and_handle()
        else:
            buf.insert_text("\n")

    return PromptSession(
        history=_History(),
        completer=_Completer(),
        complete_while_typing=False,
        multiline=True,
        key_bindings=keys,
        prompt_continuation="...> ",
        **kwargs,
    )


async def prompt_loop(shell: Shell, session: Any) -> None:
    """Read inputs with a prompt_toolkit ``session`` until ``\\quit`` or Ctrl-D
    (Ctrl-C drops the input being typed)."""
    while True:
        try:
            text = await session.prompt_async(_prompt(shell))
        except EOFError:
            return
        except KeyboardInterrupt:
            continue
        if text.strip() and not shell.handle(text):
            return


def _cmd_shell(args: argparse.Namespace, out: TextIO) -> int:
    from avl.errors import UnknownRoleError

    console = console_from_args(args)
    try:
        load_training(console.assistant, Path(args.training))
        try:
            shell = Shell(
                console, out, user=args.user, role=args.role, context=context_of(args.context)
            )
        except UnknownRoleError as exc:
            raise UsageError(str(exc)) from exc
        history = ShellHistory(history_path(args.history_file))
        stdin = sys.stdin
        if not (stdin.isatty() and out.isatty()):
            _plain_loop(shell, stdin)
            return EXIT_REJECTED if shell.failures else EXIT_OK
        out.write("avl shell: type a question, or \\help for the commands; Ctrl-D leaves\n")
        if not args.plain:
            try:
                import prompt_toolkit  # noqa: F401
            except ImportError:
                pass
            else:
                import asyncio

                asyncio.run(prompt_loop(shell, prompt_session(shell, history)))
                return EXIT_OK
        _readline_loop(shell, history)
        return EXIT_OK
    finally:
        console.close()
