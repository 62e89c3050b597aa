"""Non-TUI commands never import Textual (DESIGN.md: only tui/app.py and screens/ do)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

NO_TEXTUAL = (
    "import sys\n"
    "from tui.cli import main\n"
    "code = main({argv!r})\n"
    "loaded = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
    "assert not loaded, f'textual imported: {{loaded[:5]}}'\n"
    "print('exit', code)\n"
)


def run_python(cli, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=cli.cwd, env=cli.env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "argv",
    [
        ["list"],
        ["list", "--json"],
        ["plan", "carbonio", "--answers", "{answers}"],
        ["plan", "carbonio", "--answers", "{answers}", "--json"],
        ["status", "--json"],
        ["init", "carbonio"],
        ["action", "cloudblue"],
        ["export", "ansible", "carbonio", "--answers", "{answers}", "-o", "fleet"],
    ],
    ids=lambda argv: " ".join(argv).replace("{answers}", "FILE"),
)
def test_command_does_not_import_textual(cli, answers_file: Path, argv: list[str]) -> None:
    argv = [a.replace("{answers}", str(answers_file)) for a in argv]
    proc = run_python(cli, "-c", NO_TEXTUAL.format(argv=argv))
    assert proc.returncode == 0, proc.stderr
    expected = 1 if argv[0] == "status" else 0  # status: nothing applied yet is not done
    assert proc.stdout.strip().splitlines()[-1] == f"exit {expected}"


def test_cloudrig_list_import_trace_has_no_textual(cli) -> None:
    """The same through the real entry point, from the interpreter's own import trace."""
    proc = run_python(cli, "-X", "importtime", "-m", "tui", "list")
    assert proc.returncode == 0, proc.stderr
    assert "carbonio" in proc.stdout
    imported = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()
                if line.startswith("import time:")]
    assert "tui.cli" in imported  # the trace is real
    assert not [m for m in imported if m == "textual" or m.startswith("textual.")]


def test_help_lists_every_command_of_the_contract(cli) -> None:
    result = cli("--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: cloudrig")
    for command in ("list", "init", "wizard", "plan", "render", "apply", "status",
                    "teardown", "action", "confirm", "export", "metadata", "secrets", "serve"):
        assert command in result.stdout


def test_console_script_help_and_list(cli) -> None:
    script = Path(sys.executable).parent / "cloudrig"
    if not script.exists():
        pytest.skip("the cloudrig console script is not installed beside this interpreter")
    for args in (["--help"], ["list"]):
        proc = subprocess.run([str(script), *args], cwd=cli.cwd, env=cli.env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=60)
        assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[0] == "carbonio"


LIST_LOADS = (
    "import sys\n"
    "from tui.cli import main\n"
    "code = main(['list'])\n"
    "print(code, ' '.join(sorted(sys.modules)))\n"
)


def test_cloudrig_list_loads_only_what_it_prints(cli) -> None:
    """`cloudrig list` imports argparse and CloudRig's light modules only — not the
    other commands (tui.cli_commands), pydantic, httpx, jinja2, yaml, platformdirs, nor
    json or pathlib (with urllib.parse and ipaddress): bench/run_all.py holds it to
    2.2× `python -c pass`."""
    proc = run_python(cli, "-c", LIST_LOADS)
    assert proc.returncode == 0, proc.stderr
    code, *modules = proc.stdout.strip().splitlines()[-1].split()
    assert code == "0"
    assert "tui.registry" in modules  # what it prints from
    heavy = {"tui.cli_commands", "tui.statefile", "pydantic", "httpx", "jinja2", "yaml",
             "platformdirs", "json", "pathlib", "textual"}
    assert sorted(heavy & {m.split(".")[0] if m.split(".")[0] != "tui" else m
                           for m in modules}) == []


def test_the_parser_builds_only_the_command_chosen() -> None:
    """argparse builds a parser per command (gettext reads the disk for each): `cloudrig
    list` builds its own; `--help` and an unknown command list every command, without
    their options; no command (the TUI) needs none."""
    from tui.cli import build_parser, commands

    def built(argv: list[str]) -> list[str]:
        chosen = next(a for a in build_parser(argv)._actions if a.dest == "command")
        return list(chosen.choices or ())

    assert built(["list"]) == ["list"]
    assert built(["--debug", "plan", "carbonio"]) == ["plan"]
    assert built(["--help"]) == built(["nonsense"]) == list(commands())
    assert built([]) == []
    assert list(commands())[-2:] == ["metadata", "serve"]  # a procedure's, from the registry
    assert build_parser(["plan"]).parse_args(
        ["plan", "carbonio", "--answers", "a.yaml"]).answers == "a.yaml"


TUI_LOADS = (
    "import sys\n"
    "import tui.app\n"
    "def painted(**options):\n"
    "    print(' '.join(sorted(sys.modules)))\n"
    "    return 0\n"
    "tui.app.run_app = painted\n"
    "from tui.cli import main\n"
    "print('exit', main({argv!r}))\n"
)


@pytest.mark.parametrize("argv", [[], ["wizard", "carbonio"]], ids=["cloudrig", "wizard"])
def test_the_tui_starts_without_the_engine_or_pydantic(cli, argv: list[str]) -> None:
    """`cloudrig` (and `cloudrig wizard PROC` without answers) reach the TUI with neither
    the other commands (tui/cli_commands.py, the engine) nor pydantic loaded: the home
    screen's first paint waits for none of them (bench/run_all.py: first screen), nor for
    `cloudrig serve`'s gate (tui/serve.py: hmac, secrets, ipaddress)."""
    proc = run_python(cli, "-c", TUI_LOADS.format(argv=argv))
    assert proc.returncode == 0, proc.stderr
    modules, code = proc.stdout.strip().splitlines()[-2:]
    assert code == "exit 0"
    assert "textual" in modules.split()  # the real app module was imported
    assert not {"tui.cli_commands", "tui.engine", "pydantic", "httpx",
                "tui.serve"} & set(modules.split())
