"""Every CloudRig benchmark in one run, as ratios against baselines measured in that run.

    python bench/run_all.py [--runs 9] [--write bench/RESULTS.md]

| measure            | CloudRig                                   | baseline                     |
| first screen       | spawn → first painted home screen (80×24)  | a bare Textual "hello" app   |
| cloudrig list      | `cloudrig list`                            | `python -c pass`             |
| render             | every file of every procedure, from answers | as many trivial renders |
| ISO 32 KB / 1 MB   | cloudstack.configdrive.build_iso           | genisoimage, same tree       |
| dashboard refresh  | all checks of five procedures at once      | the slowest single check     |
| TUI peak RSS       | the app through home and a dashboard       | (absolute, MB)               |

Timings are medians of --runs runs with CloudRig and its baseline interleaved, so both
see the same machine; a ratio only means something within one run. The dashboard
measure runs five carbonio gateways (five procedures' worth of steps) against the
test suite's fake Consul with a fixed 50 ms round trip per request, in process, through
`tui.engine.check_sessions` — what `cloudrig status` uses for a fleet. Timed
children import the CloudRig this script imports, byte-compiled as `pip install` leaves
it, from a neutral working directory (startup.installed_copy): a source checkout run
with PYTHONDONTWRITEBYTECODE is not timed compiling.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# startup.py, configdrive.py; the fakes and rigs, in tests/support once the suite is
# split into layer folders, in tests/ before.
TEST_PATHS = [str(REPO / "tests" / "support"), str(REPO / "tests")]
sys.path[:0] = [str(HERE), *TEST_PATHS]

import configdrive  # noqa: E402
import startup  # noqa: E402


@dataclass
class Row:
    measure: str
    value: float
    baseline: float | None
    unit: str
    target: float | None  # the highest acceptable ratio (or value, without a baseline)
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return self.value / self.baseline if self.baseline else None

    @property
    def verdict(self) -> str:
        if self.target is None:
            return "—"
        figure = self.ratio if self.baseline else self.value
        return "pass" if figure is not None and figure <= self.target else "FAIL"


def _medians(runs: int, ours: Callable[[], float], base: Callable[[], float]
             ) -> tuple[float, float]:
    return startup.interleaved(runs, ours, base)  # ms, ms


# ---------------------------------------------------------------- measures


def first_screen(runs: int, env: dict[str, str]) -> Row:
    ours, base = _medians(runs, lambda: startup.time_until_painted("tui.app:CloudRigApp", env),
                          lambda: startup.time_until_painted("hello", env))
    return Row("first screen (home)", ours, base, "ms", 1.15,
               "spawn to first frame, headless 80×24, vs a Textual App with one Static")


def cloudrig_list(runs: int, env: dict[str, str]) -> Row:
    command = startup.cloudrig_command()
    ours, base = _medians(runs, lambda: startup.time_command(command, env),
                          lambda: startup.time_command([sys.executable, "-c", "pass"], env))
    return Row("cloudrig list", ours, base, "ms", 2.2, "vs python -c pass")


def render_all(runs: int, loops: int, work: Path) -> Row:
    import jinja2

    from tui.answers import validate
    from tui.cli import make_session
    from tui.registry import get_procedure

    sessions, names = [], []
    for procedure_id, answers in _render_answers(work).items():
        procedure = get_procedure(procedure_id)
        session = make_session(procedure, validate(procedure.answers_model, answers, "bench"),
                               quiet=True)
        sessions.append((session, session.active_steps()))
        names.append(procedure_id)

    def every_file() -> int:
        return sum(len(step.files(session.ctx)) for session, steps in sessions
                   for step in steps)

    files = every_file()
    trivial = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string("{{ x }}\n")

    def ours() -> float:
        start = time.perf_counter()
        for _ in range(loops):
            every_file()
        return time.perf_counter() - start

    def base() -> float:
        start = time.perf_counter()
        for _ in range(loops * files):
            trivial.render(x="hello")
        return time.perf_counter() - start

    value, baseline = _medians(runs, ours, base)
    return Row("render every procedure's files", value / loops, baseline / loops, "ms", None,
               f"{files} files of {', '.join(names)} (answers → templates → FileWrite) "
               f"vs {files} renders of '{{{{ x }}}}'")


def _render_answers(work: Path) -> dict[str, dict[str, object]]:
    """Answers for each procedure whose files render without a remote API."""
    import yaml
    from atmosphere_rig import base_answers

    carbonio = yaml.safe_load((REPO / "assets" / "examples" / "carbonio.yaml").read_text())
    return {
        "carbonio": {**carbonio, "ca_file": "/etc/ssl/files-db-ca.pem",
                     "sni": "db.example.com"},
        "cloudblue": {
            "vap_infra_domain": "paas.example.com", "vap_user_group": "connect users",
            "test_mode": True, "test_marketplace_id": "MP-43209",
            "api_endpoint": "https://api.connect.cloudblue.com/public/v1",
            "products": ["PRD-576-330-536", "PRD-276-377-545"],
            "report_usage": ["PRD-276-377-545"],
            "templates": {"PRD-576-330-536": {"grant": "TL-757-345-804",
                                              "revoke": "Access to {{ product }} revoked."},
                          "PRD-276-377-545": {"grant": "TL-551-876-782",
                                              "revoke": "TL-551-876-782"}}},
        "atmosphere": base_answers(work / "atmosphere"),
    }


def iso(repeat: int, size: int, label: str) -> Row:
    import shutil
    from functools import partial

    tool = shutil.which("genisoimage") or shutil.which("mkisofs")
    if tool is None:
        raise RuntimeError("genisoimage is not installed (apt-get install genisoimage)")
    data = configdrive.drive(size)
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        configdrive.write_tree(data, tree)
        argv = [tool, "-o", str(Path(tmp) / "g.iso"), *configdrive.GENISOIMAGE, str(tree)]
        theirs = configdrive.best(partial(subprocess.run, argv, check=True,
                                          stderr=subprocess.DEVNULL), repeat)
        ours = configdrive.best(partial(configdrive.build_iso, data), repeat)
    return Row(f"config drive ISO, {label} user data", ours * 1000, theirs * 1000, "ms", None,
               "pycdlib in memory vs genisoimage on the same tree (best of runs)")


CONSUL_PROCESS = r"""
import sys
sys.path[:0] = sys.argv[1:]
from fakes.consul import FakeConsul

consul = FakeConsul().start()
print(consul.url, consul.management_token, flush=True)
for line in sys.stdin:  # each line: the round-trip latency to apply from now on
    consul.latency = float(line)
    print("ok", flush=True)
"""


def dashboard(runs: int, work: Path, latency: float = 0.05) -> Row:
    """Five carbonio gateways applied against the test suite's fake Consul — in its own
    process, as a remote API is, so its work does not share this interpreter's GIL —
    with a round-trip latency; then every step check of all five at once vs the slowest
    single step check."""
    from tui.answers import validate
    from tui.cli import make_session
    from tui.engine import check_sessions
    from tui.registry import get_procedure

    procedure = get_procedure("carbonio")
    server = subprocess.Popen([sys.executable, "-c", CONSUL_PROCESS, *TEST_PATHS],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert server.stdin is not None and server.stdout is not None
    url, token = server.stdout.readline().split()
    os.environ["CLOUDRIG_SECRET_CONSUL_TOKEN"] = token
    os.environ["CLOUDRIG_SECRET_DB_PASSWORD"] = "bench db password"
    try:
        sessions = []
        for number in range(5):
            answers = validate(procedure.answers_model, {
                "consul_url": url, "gateway_name": f"gw-{number}",
                "external_address": "db.example.com", "external_port": 5432,
                "db_name": "carbonio-files-adm", "db_username": "carbonio-files-adm",
                "kv_prefix": f"carbonio-bench-{number}"}, "bench")
            root = work / f"gw-{number}"
            result = make_session(procedure, answers, root=root, quiet=True).apply()
            if result.outcome != "done":
                raise RuntimeError(f"setting up gateway {number}: {result.message}")
            sessions.append(make_session(procedure, answers, root=root, quiet=True))
        server.stdin.write(f"{latency}\n")
        server.stdin.flush()
        server.stdout.readline()

        def one_step(session, step) -> float:  # type: ignore[no-untyped-def]
            start = time.perf_counter()
            session.check_step(step)
            return time.perf_counter() - start

        slowest = max(statistics.median(one_step(s, step) for _ in range(runs))
                      for s in sessions[:1] for step in s.active_steps())

        def refresh() -> float:
            start = time.perf_counter()
            results = check_sessions(sessions)
            # staged: complete under --root, the host's part left to its operator
            bad = [c for checks in results for c in checks
                   if c.status.value not in ("done", "manual", "staged")]
            assert not bad, f"checks not done: {[(c.step, c.detail) for c in bad][:3]}"
            return time.perf_counter() - start

        refresh()  # connections and caches warm, as on a dashboard already open
        times = [refresh() for _ in range(runs)]
        steps = sum(len(s.active_steps()) for s in sessions)
        return Row("dashboard refresh, 5 procedures", statistics.median(times) * 1000,
                   slowest * 1000, "ms", 1.1,
                   f"{steps} step checks at once vs the slowest single check; fake Consul "
                   f"in its own process, {latency * 1000:.0f} ms per request")
    finally:
        server.kill()
        server.wait()


RSS_CHILD = r"""
import sys
from tui.app import CloudRigApp

class Measured(CloudRigApp):
    def on_ready(self) -> None:
        self.call_after_refresh(self.screen.action_dashboard)
        self.set_timer(1.5, self.exit)

Measured().run(headless=True, size=(80, 24))
# VmHWM: this process's own peak. ru_maxrss would also count the parent's memory at
# fork, which Linux carries across exec.
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        print(line.split()[1])
"""


def tui_rss(env: dict[str, str]) -> Row:
    peaks = []
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", RSS_CHILD], env=env, capture_output=True,
                             cwd=startup.NEUTRAL_CWD,
                             text=True, timeout=120, stdin=subprocess.DEVNULL)
        if out.returncode != 0:
            raise RuntimeError(out.stderr.strip().splitlines()[-1])
        peaks.append(int(out.stdout.split()[-1]) / 1024)  # KiB → MiB (Linux)
    return Row("TUI peak RSS", max(peaks), None, "MiB", 80,
               "peak resident memory (VmHWM) of the app through home and a dashboard "
               "(worst of 3)")


# ---------------------------------------------------------------- report


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    os_name = platform.platform()
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    from importlib.metadata import version

    return (f"{cpu}, {os.cpu_count()} cores, {os_name}, Linux {platform.release()}, "
            f"Python {platform.python_version()}, Textual {version('textual')}")


def table(rows: list[Row]) -> str:
    lines = ["| measure | CloudRig | baseline | ratio | target | result |",
             "| --- | ---: | ---: | ---: | ---: | --- |"]
    for row in rows:
        base = f"{row.baseline:.1f} {row.unit}" if row.baseline else "—"
        ratio = f"{row.ratio:.2f}×" if row.ratio is not None else "—"
        if row.target is None:
            target = "—"
        else:
            target = f"≤ {row.target}×" if row.baseline else f"< {row.target:g} {row.unit}"
        lines.append(f"| {row.measure} | {row.value:.1f} {row.unit} | {base} | {ratio} | "
                     f"{target} | {row.verdict} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9, help="runs per median (default 9)")
    parser.add_argument("--write", metavar="FILE", help="also write the table as Markdown")
    args = parser.parse_args(argv)

    rows: list[Row] = []
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="cloudrig-bench-") as tmp:
        work = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CLOUDRIG_", "TEXTUAL"))}
        env.update(CLOUDRIG_STATE_DIR=str(work / "state"), CLOUDRIG_SECRETS_BACKEND="file",
                   HOME=str(work / "home"))
        env = startup.installed_copy(env)
        os.environ.update(CLOUDRIG_STATE_DIR=str(work / "state"),
                          CLOUDRIG_SECRETS_BACKEND="file")
        measures: list[tuple[str, Callable[[], Row]]] = [
            ("first screen", lambda: first_screen(args.runs, env)),
            ("cloudrig list", lambda: cloudrig_list(args.runs, env)),
            ("render", lambda: render_all(args.runs, 50, work)),
            ("ISO 32 KB", lambda: iso(args.runs, 32 * 1024, "32 KB")),
            ("ISO 1 MB", lambda: iso(args.runs, 1024 * 1024, "1 MB")),
            ("dashboard", lambda: dashboard(args.runs, work)),
            ("RSS", lambda: tui_rss(env)),
        ]
        for name, measure in measures:
            try:
                row = measure()
            except Exception as exc:  # a benchmark, not a test: say why, go on
                problems.append(f"{name}: unavailable ({exc})")
                continue
            rows.append(row)
            print(f"{row.measure}: {row.value:.1f} {row.unit}"
                  + (f" vs {row.baseline:.1f} → {row.ratio:.2f}×" if row.baseline else "")
                  + f" [{row.verdict}]", flush=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = table(rows)
    print()
    print(text)
    for problem in problems:
        print(problem, file=sys.stderr)
    if args.write:
        notes = "\n".join(f"- **{r.measure}**: {r.note}" for r in rows if r.note)
        Path(args.write).write_text(
            f"# CloudRig benchmarks\n\n`python bench/run_all.py --runs {args.runs}`, {stamp}.\n\n"
            f"Machine: {machine()}.\n\n{text}\n\n{notes}\n\n"
            "Ratios compare CloudRig with a baseline measured in the same run, interleaved; "
            "absolute times depend on the machine and what else it was doing.\n"
            + ("".join(f"\nNot measured: {p}\n" for p in problems)), encoding="utf-8")
    failed = [r.measure for r in rows if r.verdict == "FAIL"]
    return 1 if problems or failed else 0


if __name__ == "__main__":
    sys.exit(main())
