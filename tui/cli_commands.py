"""The commands of `cloudrig` other than `list`: what each does once the command line
(tui/cli.py) has chosen it, and the options each takes.

tui/cli.py imports this module only for a command that needs it, so `cloudrig list`
and `cloudrig --help` load neither pydantic nor the engine; everything here is
imported at the top, except Textual (`tui.app`), which only the TUI commands load.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui.answers import AnswersError, example_yaml, load_file, read_yaml, secret_fields, validate
from tui.cli_output import STATUS_COLORS, paint, print_event, print_plan, progress_printer
from tui.detach import cancel, launch, order_for
from tui.engine import RunResult, Session, StepCheck, check_sessions, confirm_step
from tui.engine.reports import (
    ActionView,
    AppliedReport,
    ProcedureStatus,
    action_views,
    apply_summary,
    last_run_view,
    unapplied_report,
)
from tui.errors import OperatorError, UsageError
from tui.export_ansible import export
from tui.files import apply_file
from tui.journal import RunEnd, RunStart, follow, journal_path
from tui.metrics import prometheus
from tui.model import Procedure
from tui.redact import redact
from tui.registry import REGISTRY, get_procedure
from tui.runlock import Busy, clock, running
from tui.secrets import SecretSource, open_store
from tui.serve import gate, new_token, scrub_environment, scrubbed_names
from tui.state import StateStore
from tui.statefile import peek_last_run, run_sentence, run_word, state_dir

LOOPBACK = {"127.0.0.1", "localhost", "::1"}

def emit_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


# ---------------------------------------------------------------- building sessions


def _interactive() -> bool:
    return sys.stdin.isatty()


def load_procedure(procedure_id: str) -> Procedure:
    return get_procedure(procedure_id)


def make_session(
    procedure: Procedure,
    answers: Any,
    root: Path | None = None,
    dry_run: bool = False,
    debug: bool = False,
    quiet: bool = False,
    purge: bool = False,
    restore: bool = False,
) -> Session:
    store = StateStore()
    secrets = SecretSource(
        procedure.id,
        secret_fields(procedure.answers_model),
        open_store=lambda: open_store(store.directory, _interactive()),
    )
    return Session(
        procedure=procedure, answers=answers, secrets=secrets, store=store,
        root=root.resolve() if root else None, dry_run=dry_run, debug=debug, purge=purge,
        restore=restore,
        on_event=(lambda e: None) if quiet else progress_printer,
    )


def load_answers(procedure: Procedure, path: str) -> Any:
    return load_file(procedure.answers_model, Path(path))


def cmd_init(args: argparse.Namespace) -> int:
    procedure = load_procedure(args.procedure)
    text = example_yaml(procedure.answers_model, procedure.id, procedure.title)
    if args.output in (None, "-"):
        sys.stdout.write(text)
        return 0
    target = Path(args.output)
    if target.exists() and not args.force:
        raise UsageError(f"{target} already exists; use --force to overwrite it")
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target}: fill in the required answers, then "
          f"`cloudrig plan {procedure.id} --answers {target}`", file=sys.stderr)
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    procedure = load_procedure(args.procedure)
    answers = load_answers(procedure, args.answers)
    session = make_session(procedure, answers, root=args.root, dry_run=True,
                           debug=args.debug, quiet=True)
    views = session.plan_view(session.plan(args.step or ()), for_apply=True)
    if args.json:
        emit_json({"procedure": procedure.id, "root": str(session.root) if session.root else None,
                   "steps": [view.model_dump(mode="json") for view in views]})
    else:
        print_plan(views)
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    procedure = load_procedure(args.procedure)
    answers = load_answers(procedure, args.answers)
    session = make_session(procedure, answers, root=args.out, debug=args.debug, quiet=True)
    out = Path(args.out)
    for step in session.active_steps():
        for item in step.files(session.context(step)):
            if item.secret:
                print(f"{item.path}: not rendered (holds a secret; written by apply)",
                      file=sys.stderr)
                continue
            outcome = apply_file(item, root=out.resolve())
            print(f"{outcome.path}: {outcome.action}", file=sys.stderr)
    return 0


def _confirm(prompt: str) -> bool:
    try:
        return input(f"{prompt} [y/N] ").strip().lower() in ("y", "yes")
    except EOFError:
        return False


def _require_confirmation(args: argparse.Namespace, what: str, question: str,
                          show: Callable[[], None] | None = None) -> bool:
    """--yes or --dry-run go ahead; on a terminal `show` what will happen and ask;
    with no terminal to ask on, refuse (exit 2) saying to pass --yes."""
    if args.yes or args.dry_run:
        return True
    if not _interactive():
        raise UsageError(f"{what} changes this host; rerun with --yes to confirm "
                         "(no terminal to ask on), or --dry-run to see what it would do")
    if show is not None:
        show()
    return _confirm(question)


def _finish(result: RunResult | RunEnd) -> int:
    """How the run ended, as its last line on stderr (scripts read the last line)."""
    staged = [step for step, word in result.steps.items() if word == "staged"]
    if staged:
        print(paint(f"staged (host commands not run under --root): {', '.join(staged)}",
                    "34", sys.stderr), file=sys.stderr)
    if result.outcome != "done":
        print(paint(f"{result.failed_step}: {result.message}", "31", sys.stderr),
              file=sys.stderr)
    elif result.waiting:
        print(paint(f"done; waiting for the operator: {', '.join(result.waiting)} "
                    "(the manual lines above say what to do)", "36", sys.stderr),
              file=sys.stderr)
    return result.exit_code


def _refuse_if_running(session: Session) -> None:
    """Exit 1 at once, before planning or asking anything, when another CloudRig runs
    this procedure (the engine's lock refuses it anyway; this only saves the wait)."""
    if session.dry_run:
        return
    holder = running(session.store.directory, session.procedure.id)
    if holder is not None and holder.pid != os.getpid():
        raise Busy(holder, session.procedure.id)


def cmd_apply(args: argparse.Namespace) -> int:
    procedure = load_procedure(args.procedure)
    if args.detach and (args.dry_run or args.json):
        raise UsageError(f"--detach runs the apply in the background: drop "
                         f"{'--dry-run' if args.dry_run else '--json'} "
                         f"(`cloudrig attach {procedure.id}` shows how the run ends)")
    answers = load_answers(procedure, args.answers)
    session = make_session(procedure, answers, root=args.root, dry_run=args.dry_run,
                           debug=args.debug)
    _refuse_if_running(session)
    if not _require_confirmation(
            args, "apply", f"Apply {procedure.id} now?",
            lambda: print_plan(session.plan_view(session.plan(args.step or ())))):
        print("nothing applied", file=sys.stderr)
        return 1
    if args.detach:
        pid = launch(order_for(session, args.step or ()))
        print(f"applying {procedure.id} as pid {pid}; follow it with: "
              f"cloudrig attach {procedure.id}")
        return 0
    if not args.json:
        return _finish(session.apply(args.step or ()))
    before = _check_statuses(procedure, answers, args)
    code = _finish(result := session.apply(args.step or ()))
    after = before if args.dry_run else _check_statuses(procedure, answers, args)
    emit_json(apply_summary(procedure.id, result, before, after).model_dump(mode="json"))
    return code


def _check_statuses(procedure: Procedure, answers: Any, args: argparse.Namespace
                    ) -> dict[str, str]:
    """step id → check status, from a fresh session (what `status` would say now)."""
    session = make_session(procedure, answers, root=args.root, debug=args.debug, quiet=True)
    return {c.step: c.status.value for c in session.check()}


def cmd_teardown(args: argparse.Namespace) -> int:
    procedure = load_procedure(args.procedure)
    answers = load_answers(procedure, args.answers)
    session = make_session(procedure, answers, root=args.root, dry_run=args.dry_run,
                           debug=args.debug, purge=args.purge, restore=args.restore)
    _refuse_if_running(session)

    def show() -> None:
        print_plan(session.plan_view(session.teardown_plan()))

    if args.dry_run or args.restore:  # what --restore puts back is shown before it runs
        show()
    if not _require_confirmation(args, "teardown", f"Teardown {procedure.id} now?",
                                 None if args.restore else show):
        print("nothing removed", file=sys.stderr)
        return 1
    return _finish(session.teardown())


def actions_report(procedure: Procedure) -> list[ActionView]:
    """Each action with how and when it last ran, as the state file says now."""
    return action_views(procedure, StateStore().load(procedure.id))


def cmd_action(args: argparse.Namespace) -> int:
    procedure = load_procedure(args.procedure)
    if args.action is None:
        report = actions_report(procedure)
        if args.json:
            emit_json([entry.model_dump(mode="json") for entry in report])
        elif not report:
            print(f"{procedure.id} has no actions", file=sys.stderr)
        for entry in [] if args.json else report:
            print(f"{paint(entry.action, '1')}  {entry.title} ({entry.ran()})")
            print(f"    {entry.help}")
        return 0
    action = procedure.action(args.action)
    if not args.answers:
        raise UsageError(f"`cloudrig action {procedure.id} {action.id}` needs --answers FILE, "
                         f"e.g. --answers {procedure.id}.yaml (the answers apply used)")
    answers = load_answers(procedure, args.answers)
    session = make_session(procedure, answers, root=args.root, dry_run=args.dry_run,
                           debug=args.debug)
    _refuse_if_running(session)
    planned = session.action_plan(action)
    print_plan(session.plan_view([planned]))
    if planned.error:
        return 1
    if args.dry_run:
        print(f"dry run: {action.id} not run, nothing changed", file=sys.stderr)
        return 0
    if not _require_confirmation(args, f"action {action.id}",
                                 action.confirmation(session.context(action))):
        print(f"{action.id} not run", file=sys.stderr)
        return 1
    return _finish(session.run_action(action))


@dataclass(frozen=True)
class _ToCheck:
    """A procedure `status` checks: its session, and its report once the checks ran."""

    session: Session
    report: Callable[[list[StepCheck]], AppliedReport]


def _status_one(procedure_id: str, args: argparse.Namespace) -> ProcedureStatus | _ToCheck:
    """What `status` needs for one procedure: its report when there is nothing to check
    (never applied, no answers), else its session and how its report is made once the
    checks (which may wait on remote APIs) ran."""
    procedure = load_procedure(procedure_id)
    state = StateStore().load(procedure_id)
    root = args.root
    if args.answers:
        answers = load_answers(procedure, args.answers)
    elif state is not None and state.answers:
        answers = validate(procedure.answers_model, state.answers, "saved answers")
        if root is None and state.root:
            root = Path(state.root)
    else:
        return unapplied_report(procedure, actions_report(procedure))
    session = make_session(procedure, answers, root=root, debug=args.debug, quiet=True)
    last = last_run_view(state.last_run if state else None)

    def checked(steps: list[StepCheck]) -> AppliedReport:
        return AppliedReport(procedure=procedure_id, title=procedure.title,
                             root=str(session.root) if session.root else None,
                             last_run=last, steps=steps, actions=actions_report(procedure))
    return _ToCheck(session, checked)


def status_reports(ids: list[str], args: argparse.Namespace) -> list[ProcedureStatus]:
    """Each of IDS's status report. Every procedure's checks run at once, as one refresh
    (tui.engine.check_sessions): a fleet's status takes about as long as its slowest
    check, not their sum."""
    prepared = [_status_one(pid, args) for pid in ids]
    to_check = [p for p in prepared if isinstance(p, _ToCheck)]
    checks = iter(check_sessions([p.session for p in to_check]))
    return [p.report(next(checks)) if isinstance(p, _ToCheck) else p for p in prepared]


RUN_COLORS = {"running": "36", "done": "32", "failed": "31", "interrupted": "33"}


def cmd_export(args: argparse.Namespace) -> int:
    """`export ansible`: a playbook + role running PROC with these answers on a fleet."""
    procedure = load_procedure(args.procedure)
    answers = load_answers(procedure, args.answers)
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise UsageError(f"-o {out} is a file; give a directory for the playbook, "
                         "e.g. -o ansible-carbonio")
    written = export(procedure, answers, out)
    print(f"wrote {len(written)} files under {out}: see {out / 'README.md'} "
          "(secrets go in Ansible Vault)", file=sys.stderr)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    ids = [args.procedure] if args.procedure else list(REGISTRY)
    reports = status_reports(ids, args)
    if args.format == "prometheus":
        sys.stdout.write(prometheus(reports, time.time()))
    elif args.json or args.format == "json":
        dumped = [report.model_dump(mode="json") for report in reports]
        emit_json(dumped[0] if args.procedure else dumped)
    else:
        for report in reports:
            print(paint(f"{report.title} ({report.procedure})", "1"))
            last = report.last_run if isinstance(report, AppliedReport) else None
            if last:
                print(f"  {paint('last run'.ljust(8), RUN_COLORS.get(last.outcome, '0'))} "
                      f"{last.detail}")
            for step in report.steps:
                status = step.status.value
                print(f"  {paint(status.ljust(8), STATUS_COLORS.get(status, '0'))} "
                      f"{step.title}: {step.detail}")
            for entry in report.actions:
                print(f"  {paint('action'.ljust(8), '2')} {entry.title}: {entry.ran()}")
    all_done = all(s.status.value == "done" for r in reports for s in r.steps)
    return 0 if all_done else 1


def cmd_confirm(args: argparse.Namespace) -> int:
    procedure = load_procedure(args.procedure)
    state = confirm_step(procedure, StateStore(), args.step, undo=args.undo)
    if args.undo:
        print(f"{procedure.id} {args.step}: confirmation withdrawn", file=sys.stderr)
    else:
        when = state.confirmations[args.step]
        print(f"{procedure.id} {args.step}: confirmed {when:%Y-%m-%d %H:%M} UTC",
              file=sys.stderr)
    return 0


def cmd_secrets(args: argparse.Namespace) -> int:
    # A missing KEY or an empty value is refused before the store is opened: opening
    # it derives a key from the passphrase (Argon2, seconds) and creates a new store.
    if args.action != "list" and not args.key:
        raise UsageError(f"`cloudrig secrets {args.action}` needs a KEY, e.g. consul_token")
    value = _secret_value(args.key) if args.action == "set" else ""
    store = open_store(StateStore().directory, _interactive())
    if args.action == "list":
        for key in store.names():
            print(key)
        print(f"({store.description})", file=sys.stderr)
        return 0
    if args.action == "delete":
        removed = store.delete(args.key)
        print(f"{args.key}: {'deleted' if removed else 'was not stored'}", file=sys.stderr)
        return 0
    store.set(args.key, value)
    print(f"{args.key}: stored in the {store.description}", file=sys.stderr)
    return 0


def _secret_value(key: str) -> str:
    """The value of KEY for `secrets set`: typed twice at a terminal, else stdin."""
    if _interactive():
        value = getpass.getpass(f"{key} (not echoed): ")
        if getpass.getpass("again: ") != value:
            raise UsageError("the two entries differ; nothing stored")
    else:
        value = sys.stdin.read().rstrip("\n")
    if not value:
        raise UsageError(f"an empty value for {key}; nothing stored")
    return value


def _attach_target(args: argparse.Namespace, directory: Path) -> str:
    """PROC, or the one procedure running now, or the one that ran last."""
    if args.procedure:
        return load_procedure(args.procedure).id
    live = [pid for pid in REGISTRY if running(directory, pid)]
    if len(live) > 1:
        raise UsageError(f"{len(live)} runs are going on ({', '.join(live)}): name one, "
                         f"e.g. `cloudrig attach {live[0]}`")
    if live:
        return live[0]
    ran = [(journal_path(directory, pid).stat().st_mtime, pid) for pid in REGISTRY
           if journal_path(directory, pid).exists()]
    if not ran:
        raise OperatorError("no run to attach to: nothing has been applied here yet "
                            "(`cloudrig apply PROC --answers FILE --detach` starts one)")
    return max(ran)[1]


def cmd_attach(args: argparse.Namespace) -> int:
    """Follow a run through its journal: the events so far, then as they come; exit with
    the run's code. Ctrl+C leaves the run going."""
    directory = state_dir()
    procedure = _attach_target(args, directory)
    path = journal_path(directory, procedure)
    if not path.exists():  # a run from before journals: its state says how it ended
        run = peek_last_run(directory, procedure)
        if run is None:
            raise OperatorError(f"{procedure} has not been applied here yet; nothing to "
                                "attach to")
        print(f"{procedure}: last {run_sentence(run)}", file=sys.stderr)
        return {"done": 0, "failed": 1}.get(str(run_word(run)), 130)
    end: dict[str, Any] = {}
    try:
        for record in follow(path):
            kind = record.get("type")
            if kind == "run":
                start = RunStart.from_record(record)
                print(paint(f"{procedure}: {start.run} started {clock(str(start.started))} "
                            f"as pid {start.pid} on {start.host}", "1", sys.stderr),
                      file=sys.stderr, flush=True)
            elif kind == "event":
                step = record.get("step")
                print_event(str(record.get("kind")), str(step) if step else None,
                            str(record.get("message")))
            elif kind == "end":
                end = record
    except KeyboardInterrupt:
        print(f"cloudrig: stopped following; the {procedure} run goes on "
              f"(`cloudrig attach {procedure}` follows it again, `cloudrig cancel "
              f"{procedure}` stops it)", file=sys.stderr)
        return 130
    return _finish(RunEnd.from_record(end, procedure))


def cmd_cancel(args: argparse.Namespace) -> int:
    """Ask the running PROC to stop at its next safe point (it records `interrupted`)."""
    procedure = load_procedure(args.procedure)
    holder = cancel(state_dir(), procedure.id)
    if holder is None:
        raise OperatorError(f"no {procedure.id} run is going on here; `cloudrig status "
                            f"{procedure.id}` says how the last one ended")
    print(f"asked the {procedure.id} run (pid {holder.pid}, started {holder.since()}) to "
          f"stop at its next safe point; `cloudrig attach {procedure.id}` shows when it has",
          file=sys.stderr)
    return 0


def wizard_answers(procedure_id: str, path: str
                   ) -> tuple[Any, tuple[dict[str, Any], list[Any]] | None]:
    """`wizard PROC --answers FILE`: (the answers, None), or (None, the raw answers and
    their problems) when they do not validate, for the wizard to open with each problem
    marked on its field (a file that cannot be read, or holds a secret, still raises:
    exit 2 before any screen)."""
    procedure = load_procedure(procedure_id)
    try:
        return load_answers(procedure, path), None
    except AnswersError as exc:
        raw = _raw_answers(Path(path), exc)
        if raw is None:  # not a mapping of answers at all: nothing to mark
            raise
        return None, raw


def _raw_answers(path: Path, exc: Any) -> tuple[dict[str, Any], list[Any]] | None:
    """The answers a file gave, with what is wrong with them, when every problem is an
    answer's own (the wizard marks them); None when the file itself is unreadable."""
    if any(problem.field == "answers" for problem in exc.problems):
        return None
    try:
        data, _where = read_yaml(path.read_text(encoding="utf-8"))
    except Exception:  # load_answers already said what is wrong
        return None
    return (data, exc.problems) if isinstance(data, dict) else None


def cmd_serve(args: argparse.Namespace) -> int:
    """The TUI in a browser: textual-serve runs `python -m tui` per page over a websocket.

    Anyone who drives the page runs CloudRig as this user: the page and its websocket
    need a token made at each start and printed once, in the URL; Host and Origin must
    be serve's own (tui/serve.py). A non-loopback --host also needs --public, which
    says what it exposes on stderr every time it is used."""
    if not 1 <= args.port <= 65535:
        raise UsageError(f"--port {args.port} is not a TCP port: use 1-65535, e.g. --port 8000")
    if args.host not in LOOPBACK and not args.public:
        raise UsageError(
            f"refusing to serve on {args.host}: whoever opens the page runs CloudRig as "
            f"{_user()} on this host, and its token would cross the network in clear. Keep "
            "127.0.0.1 and use an SSH tunnel (ssh -L 8000:127.0.0.1:8000 HOST), or pass "
            "--public behind a proxy that authenticates and speaks TLS")

    token = new_token()
    url = f"http://{f'[{args.host}]' if ':' in args.host else args.host}:{args.port}"
    if args.public:
        print(paint(f"cloudrig: warning: --public: anyone who can reach {url} and has the "
                    f"token runs CloudRig as {_user()} on this host, and over plain http the "
                    "token crosses the network in clear; put an authenticating TLS proxy in "
                    "front of it or use an SSH tunnel instead", "33", sys.stderr),
              file=sys.stderr, flush=True)
    withheld = scrubbed_names()
    if withheld:
        print(f"cloudrig: served sessions do not get {', '.join(withheld)} from this "
              "environment; they use the secret store, or ask", file=sys.stderr, flush=True)
    from tui.app import serve_in_browser  # deferred: start-up (textual)

    print(f"serving CloudRig on {url}/?token={token} (Ctrl+C stops)", file=sys.stderr,
          flush=True)
    try:
        # Served sessions inherit this environment (textual-serve copies it) without the
        # secrets: they use the secret store, or ask.
        scrub_environment(os.environ)
        serve_in_browser(f"{shlex.quote(sys.executable)} -m tui", args.host, args.port,
                         gate(token, args.host, args.port))
    except OSError as exc:
        raise OperatorError(
            f"cannot listen on {args.host}:{args.port} ({exc.strerror or exc}): choose a free "
            "port with --port, e.g. --port 8001, or a local address with --host") from exc
    return 0


def _user() -> str:
    """The account the served app runs as (named in the --public warning)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


# ---------------------------------------------------------------- options


def _args_init(p: argparse.ArgumentParser) -> None:
    p.add_argument("procedure")
    p.add_argument("-o", "--output", help="file to write (default: stdout)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(func=cmd_init)


def _run_args(p: argparse.ArgumentParser, answers_required: bool = True) -> None:
    p.add_argument("procedure")
    p.add_argument("--answers", required=answers_required, metavar="FILE")
    p.add_argument("--root", type=Path, metavar="DIR",
                   help="write files under DIR; host-changing commands are skipped")


def _args_plan(p: argparse.ArgumentParser) -> None:
    _run_args(p)
    p.add_argument("--json", action="store_true")
    p.add_argument("--step", action="append", metavar="ID", help="only this step (repeatable)")
    p.set_defaults(func=cmd_plan)


def _args_render(p: argparse.ArgumentParser) -> None:
    p.add_argument("procedure")
    p.add_argument("--answers", required=True, metavar="FILE")
    p.add_argument("--out", required=True, type=Path, metavar="DIR")
    p.set_defaults(func=cmd_render)


def _args_apply(p: argparse.ArgumentParser) -> None:
    _run_args(p)
    p.add_argument("--dry-run", action="store_true", help="run nothing, change nothing")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--step", action="append", metavar="ID", help="only this step (repeatable)")
    p.add_argument("--json", action="store_true",
                   help="print a summary on stdout: outcome, and each step's check before "
                   "and after (changed: whether any differs)")
    p.add_argument("--detach", action="store_true",
                   help="ask everything here, then run in the background, immune to a "
                   "dropped link; `cloudrig attach PROC` follows it")
    p.set_defaults(func=cmd_apply)


def _args_attach(p: argparse.ArgumentParser) -> None:
    p.add_argument("procedure", nargs="?",
                   help="default: the one procedure running now (or the last to run)")
    p.set_defaults(func=cmd_attach)


def _args_cancel(p: argparse.ArgumentParser) -> None:
    p.add_argument("procedure")
    p.set_defaults(func=cmd_cancel)


def _args_status(p: argparse.ArgumentParser) -> None:
    p.add_argument("procedure", nargs="?")
    p.add_argument("--json", action="store_true", help="the same as --format json")
    p.add_argument("--format", choices=("text", "json", "prometheus"), default="text",
                   help="prometheus: node_exporter textfile-collector metrics")
    p.add_argument("--answers", metavar="FILE", help="check these answers instead of the saved")
    p.add_argument("--root", type=Path, metavar="DIR")
    p.set_defaults(func=cmd_status)


def _args_teardown(p: argparse.ArgumentParser) -> None:
    _run_args(p)
    p.add_argument("--purge", action="store_true",
                   help="also remove what the runbook keeps (tokens, policies, KV keys)")
    p.add_argument("--restore", action="store_true",
                   help="also put back the files the procedure marks restorable as they were "
                        "before CloudRig's first write (its oldest backup)")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--yes", action="store_true")
    p.set_defaults(func=cmd_teardown)


def _args_export(p: argparse.ArgumentParser) -> None:
    p.add_argument("format", choices=["ansible"])
    p.add_argument("procedure")
    p.add_argument("--answers", required=True, metavar="FILE",
                   help="the base answers (per-host ones go in host_vars)")
    p.add_argument("-o", "--output", required=True, metavar="DIR")
    p.set_defaults(func=cmd_export)


def _args_action(p: argparse.ArgumentParser) -> None:
    p.add_argument("procedure")
    p.add_argument("action", nargs="?")
    p.add_argument("--answers", metavar="FILE", help="needed to run an action")
    p.add_argument("--root", type=Path, metavar="DIR",
                   help="files under DIR; host-changing commands are skipped")
    p.add_argument("--dry-run", action="store_true", help="show what it would do; change nothing")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--json", action="store_true", help="the list as JSON")
    p.set_defaults(func=cmd_action)


def _args_confirm(p: argparse.ArgumentParser) -> None:
    p.add_argument("procedure")
    p.add_argument("step", help="the manual step's id, e.g. quotas")
    p.add_argument("--undo", action="store_true", help="withdraw the confirmation")
    p.set_defaults(func=cmd_confirm)


def _args_secrets(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["set", "list", "delete"])
    p.add_argument("key", nargs="?")
    p.set_defaults(func=cmd_secrets)


def _args_serve(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--public", action="store_true",
                   help="allow a non-loopback --host (behind an authenticating TLS proxy; "
                        "the token is still required)")
    p.set_defaults(func=cmd_serve)


ARGUMENTS: dict[str, Callable[[argparse.ArgumentParser], None]] = {
    "init": _args_init, "plan": _args_plan, "render": _args_render,
    "apply": _args_apply, "attach": _args_attach, "cancel": _args_cancel,
    "status": _args_status, "teardown": _args_teardown, "export": _args_export,
    "action": _args_action, "confirm": _args_confirm, "secrets": _args_secrets,
    "serve": _args_serve,
}
"""Each command's options (and its `func`); tui/cli.py lists the commands."""


def report_error(exc: OperatorError, args: argparse.Namespace) -> int:
    """An operator error as its one sentence on stderr (secrets masked; with --json,
    invalid answers' messages also as data on stdout); returns its exit code."""
    if getattr(args, "json", False) and hasattr(exc, "as_json"):
        emit_json(exc.as_json())  # invalid answers: the same messages, as data
    print(paint(f"cloudrig: {redact(exc.sentence)}", "31", sys.stderr), file=sys.stderr)
    return exc.exit_code


def cmd_list_json(args: argparse.Namespace) -> int:
    """`cloudrig list --json`."""
    emit_json([info.as_dict() | {"module": None} for info in REGISTRY.values()])
    return 0
