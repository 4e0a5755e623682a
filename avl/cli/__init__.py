"""The ``avl`` command line.

Subcommands::

    avl demo                       sample database, offline model: SQL, verdicts, rows
    avl check [SQL] [--dialect D] [--max-rows N] [--allow-table T]...
                                   SafeQuery verdict; exit 0 allowed, 1 rejected, 2 error
    avl ask QUESTION --db URL      answer one question
    avl train --db URL --question Q --sql S | --ddl FILE | --documentation TEXT
                                   append to the training file used by ``avl ask``
    avl history --history URL      recent questions from a History
    avl eval QUESTIONS.jsonl --db URL
                                   execution accuracy on your own question set
    avl serve / avl openapi        the web adapter (``avl.web``)
    avl keys create|list|revoke    the API keys ``avl serve`` accepts
    avl shell [--db URL]           an interactive session: questions, follow-ups, \\sql...

``ask``, ``train`` and ``eval`` read ``--config FILE.toml`` and the ``AVL_*``
environment variables (see :mod:`avl.console`). Training is kept in a JSON-lines
file (``--training``, default ``avl_training.jsonl``) that ``ask`` loads.

Each command group lives in its own module under ``avl/cli/`` with a
``register(subparsers)`` function, listed once in :data:`_COMMANDS`; a command
imports what it needs when it runs, so ``avl --help`` stays fast. ``avl CMD ...``
builds the parser of ``CMD``'s module alone (:data:`_MODULE_OF`), so ``avl check``
never imports the other commands; ``avl --version`` builds no parser at all.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from avl.cli._common import EXIT_ERROR, EXIT_OK, UsageError
from avl.errors import AvlError

if TYPE_CHECKING:
    import argparse

__all__ = ["build_parser", "main"]

# the command modules, in the order ``avl --help`` lists them
_COMMANDS = (
    "avl.cli._demo",
    "avl.cli._check",
    "avl.cli._ask",
    "avl.cli._history",
    "avl.cli._vectors",
    "avl.cli._costs",
    "avl.cli._audit",
    "avl.cli._web",
    "avl.cli._keys",
    "avl.cli._mcp",
    "avl.cli._shell",
    "avl.cli._init",
    "avl.cli._completion",
)

# the module that registers each command: ``avl CMD`` imports only that one. A
# command missing here still works (the whole parser is built); a test keeps the two
# lists in step.
_MODULE_OF = {
    "demo": "avl.cli._demo",
    "check": "avl.cli._check",
    "ask": "avl.cli._ask",
    "train": "avl.cli._ask",
    "eval": "avl.cli._ask",
    "history": "avl.cli._history",
    "vectors": "avl.cli._vectors",
    "costs": "avl.cli._costs",
    "audit": "avl.cli._audit",
    "serve": "avl.cli._web",
    "openapi": "avl.cli._web",
    "keys": "avl.cli._keys",
    "mcp": "avl.cli._mcp",
    "shell": "avl.cli._shell",
    "init": "avl.cli._init",
    "completion": "avl.cli._completion",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of ``avl`` (for documentation and tests).

    Args:
        command: build only the subcommands of the module that registers this
            command (what ``avl COMMAND ...`` needs); ``None`` or an unknown name
            builds them all.
    """
    import argparse
    import importlib

    from avl import __version__

    ap = argparse.ArgumentParser(
        prog="avl",
        description="Ask a database safely: SafeQuery, the Assistant, history, the web console.",
        epilog="Run 'avl COMMAND --help' for a command's options and examples.",
    )
    ap.add_argument("--version", action="version", version=f"avl {__version__}")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    only = _MODULE_OF.get(command) if command is not None else None
    for name in (only,) if only is not None else _COMMANDS:
        importlib.import_module(name).register(sub)
    return ap


def main(
    argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Run the ``avl`` command line.

    Args:
        argv: the arguments (default ``sys.argv[1:]``).
        out: where to print results (default stdout).
        err: where to print errors (default stderr).

    Returns:
        The exit code: 0 success/allowed, 1 rejected, 2 error.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    from avl.cli import _common

    _common.WHOLE_PROCESS = argv is None  # the process's own command line: one-shot
    argv = list(argv) if argv is not None else sys.argv[1:]
    if argv == ["--version"]:  # the fast path: no parser, no command module
        from avl import __version__

        out.write(f"avl {__version__}\n")
        return 0
    # ``avl CMD ...``: CMD's parser alone (an option first, ``avl -h ask``, needs them all)
    parser = build_parser(argv[0] if argv else None)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0) if exc.code in (0, None) else EXIT_ERROR
    try:
        code: int = args.func(args, out)
        return code
    except BrokenPipeError:  # the reader went away (``avl history | head``): stop quietly
        if out is sys.stdout:
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except (AvlError, UsageError, OSError) as exc:
        err.write(f"avl {args.command}: error: {exc}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        err.write("interrupted\n")
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
