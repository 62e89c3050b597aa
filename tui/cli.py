"""`cloudrig`: the command-line contract of DESIGN.md — the command line itself, and
`cloudrig list`.

Non-TUI commands never import Textual, and `cloudrig list` (and `--help`) import
nothing heavy: this module imports the standard library's argparse, os and sys and
CloudRig's light modules (errors, registry, cli_output). Every other command lives in
tui/cli_commands.py (pydantic, the engine), loaded only for that command: argparse
builds the options of the one command chosen.
Exit codes: 0 done, 1 a step failed, 2 bad usage or answers, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys

from tui import __version__
from tui.cli_output import paint
from tui.errors import OperatorError
from tui.registry import REGISTRY, get_procedure

# `typing` is not imported at run time: it costs `cloudrig list` about 5 ms of a run
# that bench/run_all.py holds to 2.2x `python -c pass`. Annotations are strings here.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType
    from typing import Any

    from tui.model import CliVerb


# ---------------------------------------------------------------- parser


def _columns() -> int:
    """The width --help wraps to, found as shutil.get_terminal_size finds it (COLUMNS,
    then the terminal, else 80) without importing shutil — and with it bz2 and lzma —
    on every run: argparse builds a help formatter for each argument it adds."""
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    stdout = sys.__stdout__
    if stdout is None:  # started without a standard output
        return 80
    try:
        return os.get_terminal_size(stdout.fileno()).columns
    except (AttributeError, ValueError, OSError):
        return 80


class _Formatter(argparse.HelpFormatter):
    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position, width or _columns() - 2)


class _Parser(argparse.ArgumentParser):
    """ArgumentParser (and, as their class, its subparsers) with `_Formatter`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)


BUILT_IN: dict[str, str] = {
    "list": "procedure ids, titles and purpose",
    "init": "write a commented example answers file",
    "wizard": "the TUI, straight into a procedure's wizard",
    "plan": "everything apply would do: diffs, commands, API calls",
    "render": "only the files, written under DIR",
    "apply": "apply a procedure",
    "attach": ("follow a running (or the last) apply; exits with its code (Ctrl+C leaves "
               "it running)"),
    "cancel": ("stop a running apply at its next safe point (it records interrupted, exit "
               "130; a rerun resumes)"),
    "status": "the dashboard as text: every step's check",
    "teardown": "undo what apply did",
    "export": "a procedure for other tools: an Ansible playbook + role",
    "action": ("a procedure's operator actions (e.g. rotate a token); without ACTION, list "
               "them"),
    "confirm": "record that a manual step was done by hand",
    "secrets": "the secret store (values are never printed)",
    "serve": "the TUI in a browser (textual-serve)",
}
"""CloudRig's own commands and the one-line help of each."""


def commands() -> dict[str, str]:
    """Every command and its one-line help, in `cloudrig --help`'s order: the commands
    procedures contribute (`Procedure.cli_verbs`) come from the registry, as it is now,
    so `--help` imports no procedure, before `serve`."""
    verbs = {name: help for info in REGISTRY.values() for name, help in info.verbs.items()}
    *first, last = BUILT_IN.items()
    return {**dict(first), **verbs, **dict([last])}


def _commands() -> ModuleType:
    """tui/cli_commands.py: every command but `list`, with the options of each."""
    from tui import cli_commands  # deferred: start-up (pydantic)

    return cli_commands


def _args_list(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)


def cmd_list(args: argparse.Namespace) -> int:
    if args.json:
        return int(_commands().cmd_list_json(args))
    width = max(len(i) for i in REGISTRY)
    for info in REGISTRY.values():
        print(f"{paint(info.id.ljust(width), '1')}  {info.title}")
        print(f"{' ' * width}  {info.summary}")
    return 0


def _verb_options(verb: CliVerb) -> Callable[[argparse.ArgumentParser], None]:
    def configure(p: argparse.ArgumentParser) -> None:
        verb.arguments(p)
        p.set_defaults(func=verb.run)
    return configure


def _args_wizard(p: argparse.ArgumentParser) -> None:
    p.add_argument("procedure")
    p.add_argument("--answers", help="prefill from this answers file")
    p.add_argument("--root", help="stage files under DIR")
    p.set_defaults(func=cmd_tui)


def cmd_tui(args: argparse.Namespace) -> int:
    """The TUI (no command, or `wizard PROC`): here, not in tui/cli_commands.py, so the
    first paint waits for no engine; answers given are loaded there (pydantic)."""
    answers = raw = None
    if getattr(args, "answers", None):
        answers, raw = _commands().wizard_answers(args.procedure, args.answers)
    from tui.app import run_app  # deferred: start-up (textual)

    return int(run_app(procedure_id=getattr(args, "procedure", None), answers=answers,
                       root=getattr(args, "root", None), raw_answers=raw))


def _options(name: str) -> Callable[[argparse.ArgumentParser], None]:
    """What adds command NAME's options and its `func`: `list` and `wizard` here; a
    procedure's own command from its procedure (loading it); every other from
    tui/cli_commands.py."""
    if name == "list":
        return _args_list
    if name == "wizard":
        return _args_wizard
    for info in REGISTRY.values():
        if name in info.verbs:
            return _verb_options(get_procedure(info.id).cli_verb(name))
    options: Callable[[argparse.ArgumentParser], None] = _commands().ARGUMENTS[name]
    return options


def _wanted(args: list[str]) -> tuple[list[str], bool]:
    """The commands whose parsers ARGS needs, and whether with their options: the one
    it names, with them; none to open the TUI (no command, no --help); every one,
    without options, for the top-level help or an unknown command's error. Each parser
    argparse builds costs `cloudrig list` time (gettext looks up its headings'
    translations on disk)."""
    chosen = next((arg for arg in args if not arg.startswith("-")), None)
    known = commands()
    if chosen in known:
        return [chosen], True
    if chosen is None and not {"-h", "--help"} & set(args):
        return [], False
    return list(known), False


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The command line, with the parser of the command ARGV chooses and its options,
    or every command's name and help when it chooses none known (`_wanted`); without
    ARGV, every command with its options."""
    parser = _Parser(
        prog="cloudrig",
        description="Cloud-integration runbooks as guided, validated, repeatable procedures. "
        "Without a command, opens the terminal UI.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--version", action="version", version=f"cloudrig {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    known = commands()
    names, with_options = (list(known), True) if argv is None else _wanted(argv)
    for name in names:
        p = sub.add_parser(name, help=known[name])
        if with_options:
            _options(name)(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    try:
        func = getattr(args, "func", cmd_tui)
        return int(func(args))
    except OperatorError as exc:
        if args.debug:
            raise
        return int(_commands().report_error(exc, args))
    except KeyboardInterrupt:
        print("cloudrig: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away: stop quietly, as Unix tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def __getattr__(name: str) -> Any:
    """The commands' functions (`make_session`, `cmd_tui`, `progress_printer`…) under
    their old address, loaded on first use."""
    if name.startswith("__"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(_commands(), name)


if __name__ == "__main__":
    sys.exit(main())
