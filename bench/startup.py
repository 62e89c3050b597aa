"""How fast CloudRig starts, as ratios against baselines measured in the same run.

    python bench/startup.py [--runs 7] [--render-loops 200] [--app tui.app:CloudRigApp]

(a) home_screen/bare_textual: wall time from spawning a Python process to the first
    painted home screen of CloudRig's TUI (headless, 80x24), over the same for a bare
    Textual "hello" app.
(b) cloudrig_list/python_pass: wall time of `cloudrig list` over `python -c pass`.
(c) render_carbonio/trivial_jinja: rendering every carbonio file (the procedure's
    steps' files(), i.e. tui.render with the real templates and filters) over
    rendering a trivial Jinja template ("{{ x }}") the same number of times.

Each figure is the median of --runs runs, CloudRig and baseline interleaved so both
see the same machine. Ratios only mean something within one run; nothing asserts
on them. Exit status 1 when a measurement could not be taken.
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

# Runs in a child process: builds the app, prints PAINTED after the first frame
# (Textual posts Ready once the first screen has been laid out and composited),
# then exits. The parent times spawn -> PAINTED, so interpreter start-up and
# every import count, as they do for an operator.
CHILD = r"""
import importlib, sys
spec = sys.argv[1]
if spec == "hello":
    from textual.app import App, ComposeResult
    from textual.widgets import Static

    class Base(App):
        def compose(self) -> ComposeResult:
            yield Static("hello")
else:
    module, _, name = spec.partition(":")
    Base = getattr(importlib.import_module(module), name)

class Timed(Base):
    def on_ready(self) -> None:
        self.call_after_refresh(self._painted)

    def _painted(self) -> None:
        sys.stdout.write("PAINTED\n")
        sys.stdout.flush()
        self.exit()

Timed().run(headless=True, size=(80, 24))
"""


# Children run here: from a source checkout, `python -c` would import the checkout's
# modules first (sys.path starts with the working directory) and, under
# PYTHONDONTWRITEBYTECODE, compile them on every run — time an operator never pays.
NEUTRAL_CWD = tempfile.gettempdir()


def installed_copy(env: dict[str, str]) -> dict[str, str]:
    """ENV for the timed children, which import the CloudRig this process imports,
    byte-compiled as `pip install` leaves it (a read-only install is fine)."""
    import screens
    import tui

    for package in (tui, screens):
        compileall.compile_dir(str(Path(package.__file__).parent), quiet=2)
    root = str(Path(tui.__file__).resolve().parent.parent)
    rest = env.get("PYTHONPATH")
    return {**env, "PYTHONPATH": f"{root}{os.pathsep}{rest}" if rest else root}


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def time_until_painted(spec: str, env: dict[str, str], timeout: float = 60) -> float:
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, spec],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
        env=env, text=True, cwd=NEUTRAL_CWD,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    elapsed = time.perf_counter() - start
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    if line.strip() != "PAINTED":
        tail = "\n".join(err.strip().splitlines()[-5:])
        raise RuntimeError(f"{spec} never painted (exit {proc.returncode}):\n{tail}")
    return elapsed


def time_command(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                   stdin=subprocess.DEVNULL, env=env, timeout=60, cwd=NEUTRAL_CWD)
    return time.perf_counter() - start


def interleaved(runs: int, measure: Callable[[], float],
                baseline: Callable[[], float]) -> tuple[float, float]:
    ours: list[float] = []
    base: list[float] = []
    measure()  # warm the OS page cache and the .pyc files for both
    baseline()
    for _ in range(runs):
        base.append(baseline())
        ours.append(measure())
    return median_ms(ours), median_ms(base)


def report(name: str, ours: float, base: float, note: str = "") -> None:
    ratio = ours / base if base else float("inf")
    extra = f"  [{note}]" if note else ""
    print(f"{name}: {ratio:.2f}x ({ours:.0f} ms vs {base:.0f} ms){extra}"
          if ours >= 10 else
          f"{name}: {ratio:.2f}x ({ours:.2f} ms vs {base:.2f} ms){extra}", flush=True)


def cloudrig_command() -> list[str]:
    script = shutil.which("cloudrig", path=str(Path(sys.executable).parent))
    return [script, "list"] if script else [sys.executable, "-m", "tui", "list"]


def carbonio_renderer() -> tuple[Callable[[], int], Callable[[int], None]]:
    """(render every carbonio file once -> number of files, render a trivial template n times)."""
    import jinja2

    from tui.answers import validate
    from tui.cli import make_session
    from tui.registry import get_procedure

    procedure = get_procedure("carbonio")
    # Every optional value set, so every branch of every template renders.
    answers = validate(procedure.answers_model, {
        "external_address": "db.example.com", "db_name": "carbonio-files-adm",
        "db_username": "carbonio-files-adm", "ca_file": "/etc/ssl/certs/files-db-ca.pem",
        "sni": "db.example.com", "consul_ca_file": "/etc/carbonio/mesh/ca.pem",
    }, "bench answers")
    session = make_session(procedure, answers, quiet=True)
    steps = session.active_steps()

    def render_all() -> int:
        return sum(len(step.files(session.ctx)) for step in steps)

    trivial = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string("{{ x }}\n")

    def render_trivial(count: int) -> None:
        for _ in range(count):
            trivial.render(x="hello")

    return render_all, render_trivial


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="runs per median (default 7)")
    parser.add_argument("--render-loops", type=int, default=200,
                        help="renders of all carbonio files per run (default 200)")
    parser.add_argument("--app", default="tui.app:CloudRigApp",
                        help="the app whose home screen is timed (MODULE:CLASS)")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.render_loops < 1:
        parser.error("--runs and --render-loops must be at least 1")

    failures = 0
    with tempfile.TemporaryDirectory(prefix="cloudrig-bench-") as state:
        # Measurements never read or write the operator's state or secret store.
        env = {**os.environ, "CLOUDRIG_STATE_DIR": state, "CLOUDRIG_SECRETS_BACKEND": "file"}
        env.pop("TEXTUAL", None)
        env = installed_copy(env)
        os.environ.update(CLOUDRIG_STATE_DIR=state, CLOUDRIG_SECRETS_BACKEND="file")
        print(f"python {sys.version.split()[0]}, median of {args.runs} runs, "
              f"CloudRig and baseline interleaved", flush=True)

        # (a) first painted home screen
        try:
            ours, base = interleaved(
                args.runs,
                lambda: time_until_painted(args.app, env),
                lambda: time_until_painted("hello", env),
            )
            report("home_screen/bare_textual", ours, base,
                   f"{args.app} vs a Textual App with one Static, headless 80x24, "
                   "spawn to first frame")
        except Exception as exc:  # a measurement, not a test: say why and go on
            print(f"home_screen/bare_textual: unavailable ({exc})", flush=True)
            failures += 1

        # (b) `cloudrig list`
        command = cloudrig_command()
        try:
            ours, base = interleaved(
                args.runs,
                lambda: time_command(command, env),
                lambda: time_command([sys.executable, "-c", "pass"], env),
            )
            shown = "cloudrig list" if command[0] != sys.executable else "python -m tui list"
            report("cloudrig_list/python_pass", ours, base, f"{shown} vs python -c pass")
        except Exception as exc:
            print(f"cloudrig_list/python_pass: unavailable ({exc})", flush=True)
            failures += 1

        # (c) rendering every carbonio file
        try:
            render_all, render_trivial = carbonio_renderer()
            files = render_all()  # compiles and caches the templates
            render_trivial(1)
            loops = args.render_loops

            def ours_once() -> float:
                start = time.perf_counter()
                for _ in range(loops):
                    render_all()
                return time.perf_counter() - start

            def base_once() -> float:
                start = time.perf_counter()
                render_trivial(loops * files)
                return time.perf_counter() - start

            ours, base = interleaved(args.runs, ours_once, base_once)
            report("render_carbonio/trivial_jinja", ours, base,
                   f"{files} carbonio files x {loops} (steps' files(): answers -> "
                   f"templates -> FileWrite) vs a trivial '{{{{ x }}}}' template rendered "
                   f"{loops * files} times")
        except Exception as exc:
            print(f"render_carbonio/trivial_jinja: unavailable ({exc})", flush=True)
            failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
