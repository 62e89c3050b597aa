"""`cloudrig`: the command-line contract of DESIGN.md.

Non-TUI commands never import Textual (or anything heavy they do not use): the
imports below are the standard library and CloudRig's light modules (errors, registry,
statefile); each command imports what it needs inside it, tagged `# heavy:`.
Exit codes: 0 done, 1 a step failed, 2 bad usage or answers, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tui import __version__
from tui.errors import OperatorError, UsageError
from tui.registry import REGISTRY, get_procedure
from tui.statefile import peek_last_run, run_sentence, run_word, state_dir

# `typing` is not imported at run time: it costs `cloudrig list` about 5 ms of a run
# that bench/run_all.py holds to 3x `python -c pass`. Annotations are strings here.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from tui.engine import RunResult, Session, StepView
    from tui.engine.reports import ActionView, ProcedureStatus
    from tui.engine.views import ItemView
    from tui.journal import RunEnd
    from tui.model import Event, Procedure

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


# ---------------------------------------------------------------- output


def _color_on(stream: Any) -> bool:
    return "NO_COLOR" not in os.environ and hasattr(stream, "isatty") and stream.isatty()


def paint(text: str, code: str, stream: Any = None) -> str:
    stream = stream or sys.stdout
    return f"\033[{code}m{text}\033[0m" if _color_on(stream) else text


STATUS_COLORS = {"done": "32", "pending": "33", "drifted": "35", "failed": "31", "manual": "36",
                 "staged": "34", "unknown": "33"}
EVENT_COLORS = {"start": "1", "done": "32", "manual": "36", "staged": "34", "failed": "31",
                "skipped": "2", "warning": "33"}


def progress_printer(event: Event) -> None:
    """Progress goes to stderr, one line per event; not one per poll (a log file of a
    long wait would grow by a line every few seconds: waits print on change and at
    least every 15 s)."""
    print_event(event.kind, event.step, event.message)


def print_event(kind: str, step: str | None, message: str) -> None:
    """One progress line on stderr (a poll prints nothing: see `progress_printer`)."""
    if kind == "poll":
        return
    prefix = f"[{step}] " if step else ""
    line = f"{prefix}{message}"
    print(paint(line, EVENT_COLORS.get(kind, "0"), sys.stderr), file=sys.stderr,
          flush=True)


def print_diff(diff: str) -> None:
    for line in diff.splitlines():
        code = "0"
        if line.startswith("+") and not line.startswith("+++"):
            code = "32"
        elif line.startswith("-") and not line.startswith("---"):
            code = "31"
        elif line.startswith("@@"):
            code = "36"
        print("      " + paint(line, code))


def print_plan(views: list[StepView]) -> None:
    for step in views:
        where = paint(f"  ({step.note})", "36") if step.note else ""
        print(paint(f"● {step.title} [{step.step}]", "1") + where)
        if step.error:
            print("    " + paint(f"cannot plan: {step.error}", "31"))
        for item in step.items:
            _print_item(item)
        if not step.items and not step.error:
            print("    nothing to do")


def _print_item(item: ItemView) -> None:
    if item.kind == "file":
        owner = f", owner {item.owner}" if item.owner else ""
        action = {"create": "32", "update": "33", "unchanged": "2"}[item.action]
        print(f"    file {item.path} ({item.mode}{owner}): " + paint(item.action, action))
        if item.mode_drift:
            print("      " + paint(item.mode_drift, "33"))
        if item.diff:
            print_diff(item.diff)
    elif item.kind == "command":
        skipped = paint(f"  (skipped: {item.skipped})", "2") if item.skipped else ""
        print(f"    run  {item.command}{skipped}")
    elif item.kind == "api":
        skipped = paint(f"  (skipped: {item.skipped})", "2") if item.skipped else ""
        print(f"    call {item.method} {item.url}: {item.description}{skipped}")
        if item.body:
            for line in item.body.splitlines():
                print("      " + line)
    elif item.kind == "remove" and item.action in ("keep", "restore"):
        # The ownership record decides: put back what CloudRig replaced, keep the rest.
        print(f"    {item.action} " + paint(item.text, "33"))
    elif item.kind == "remove":
        print(f"    remove {item.path}" + ("" if item.exists else paint("  (absent)", "2")))
    elif item.kind == "restore":
        print("    restore " + paint(item.text, "33" if item.action == "restore" else "2"))
    else:
        print("    " + paint(f"manual: {item.text}", "36"))


def emit_json(data: Any) -> None:
    import json  # heavy: keeps cloudrig list fast

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
    from tui.answers import secret_fields  # heavy: keeps cloudrig list fast
    from tui.engine import Session
    from tui.secrets import SecretSource, open_store
    from tui.state import StateStore

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
    from tui.answers import load_file  # heavy: keeps cloudrig list fast

    return load_file(procedure.answers_model, Path(path))


# ---------------------------------------------------------------- commands


def cmd_list(args: argparse.Namespace) -> int:
    if args.json:
        emit_json([info.as_dict() | {"module": None} for info in REGISTRY.values()])
        return 0
    width = max(len(i) for i in REGISTRY)
    for info in REGISTRY.values():
        print(f"{paint(info.id.ljust(width), '1')}  {info.title}")
        print(f"{' ' * width}  {info.summary}")
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from tui.answers import example_yaml  # heavy: keeps cloudrig list fast

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
    from tui.files import apply_file  # heavy: keeps cloudrig list fast

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
    from tui.runlock import Busy, running  # heavy: keeps cloudrig list fast

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
        from tui.detach import launch, order_for  # heavy: keeps cloudrig list fast

        pid = launch(order_for(session, args.step or ()))
        print(f"applying {procedure.id} as pid {pid}; follow it with: "
              f"cloudrig attach {procedure.id}")
        return 0
    if not args.json:
        return _finish(session.apply(args.step or ()))
    from tui.engine.reports import apply_summary  # heavy: keeps cloudrig list fast

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
    from tui.engine.reports import action_views  # heavy: keeps cloudrig list fast
    from tui.state import StateStore

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


def _status_one(procedure_id: str, args: argparse.Namespace
                ) -> Callable[[], ProcedureStatus]:
    """What `status` needs for one procedure, as a function to run: reading state and
    answers here, the checks (which may wait on remote APIs) when it is called."""
    from tui.answers import validate  # heavy: keeps cloudrig list fast
    from tui.engine.reports import AppliedReport, last_run_view, unapplied_report
    from tui.state import StateStore

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
        report = unapplied_report(procedure, actions_report(procedure))
        return lambda: report
    session = make_session(procedure, answers, root=root, debug=args.debug, quiet=True)
    last = last_run_view(state.last_run if state else None)

    def checked() -> AppliedReport:
        return AppliedReport(procedure=procedure_id, title=procedure.title,
                             root=str(session.root) if session.root else None,
                             last_run=last, steps=session.check(),
                             actions=actions_report(procedure))
    return checked


RUN_COLORS = {"running": "36", "done": "32", "failed": "31", "interrupted": "33"}


def cmd_export(args: argparse.Namespace) -> int:
    """`export ansible`: a playbook + role running PROC with these answers on a fleet."""
    from tui.export_ansible import export  # heavy: keeps cloudrig list fast

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
    from tui.engine import run_concurrently  # heavy: keeps cloudrig list fast
    from tui.engine.reports import AppliedReport

    ids = [args.procedure] if args.procedure else list(REGISTRY)
    # Every procedure's checks at once (each procedure's steps are concurrent too): a
    # fleet's status takes about as long as its slowest check, not their sum.
    reports = run_concurrently([_status_one(pid, args) for pid in ids])
    if args.format == "prometheus":
        import time  # heavy: keeps cloudrig list fast

        from tui.metrics import prometheus  # heavy: keeps cloudrig list fast

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
    from tui.engine import confirm_step  # heavy: keeps cloudrig list fast
    from tui.state import StateStore

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
    from tui.secrets import open_store  # heavy: keeps cloudrig list fast
    from tui.state import StateStore

    store = open_store(StateStore().directory, _interactive())
    if args.action == "list":
        for key in store.names():
            print(key)
        print(f"({store.description})", file=sys.stderr)
        return 0
    if not args.key:
        raise UsageError(f"`cloudrig secrets {args.action}` needs a KEY, e.g. consul_token")
    if args.action == "delete":
        removed = store.delete(args.key)
        print(f"{args.key}: {'deleted' if removed else 'was not stored'}", file=sys.stderr)
        return 0
    if _interactive():
        import getpass  # heavy: keeps cloudrig list fast

        value = getpass.getpass(f"{args.key} (not echoed): ")
        if getpass.getpass("again: ") != value:
            raise UsageError("the two entries differ; nothing stored")
    else:
        value = sys.stdin.read().rstrip("\n")
    if not value:
        raise UsageError(f"an empty value for {args.key}; nothing stored")
    store.set(args.key, value)
    print(f"{args.key}: stored in the {store.description}", file=sys.stderr)
    return 0


def _attach_target(args: argparse.Namespace, directory: Path) -> str:
    """PROC, or the one procedure running now, or the one that ran last."""
    from tui.journal import journal_path  # heavy: keeps cloudrig list fast
    from tui.runlock import running

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
    from tui.journal import (  # heavy: keeps cloudrig list fast
        RunEnd,
        RunStart,
        follow,
        journal_path,
    )
    from tui.runlock import clock

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
    from tui.detach import cancel  # heavy: keeps cloudrig list fast

    procedure = load_procedure(args.procedure)
    holder = cancel(state_dir(), procedure.id)
    if holder is None:
        raise OperatorError(f"no {procedure.id} run is going on here; `cloudrig status "
                            f"{procedure.id}` says how the last one ended")
    print(f"asked the {procedure.id} run (pid {holder.pid}, started {holder.since()}) to "
          f"stop at its next safe point; `cloudrig attach {procedure.id}` shows when it has",
          file=sys.stderr)
    return 0


def cmd_tui(args: argparse.Namespace) -> int:
    """The TUI. `wizard PROC --answers FILE` with answers that do not validate opens the
    wizard with them and each problem marked on its field (a file that cannot be read,
    or holds a secret, still exits 2 before any screen)."""
    from tui.answers import AnswersError  # heavy: textual: only for the TUI
    from tui.app import run_app

    answers = raw = None
    if getattr(args, "answers", None):
        procedure = load_procedure(args.procedure)
        try:
            answers = load_answers(procedure, args.answers)
        except AnswersError as exc:
            raw = _raw_answers(Path(args.answers), exc)
            if raw is None:  # not a mapping of answers at all: nothing to mark
                raise
    return run_app(procedure_id=getattr(args, "procedure", None), answers=answers,
                   root=getattr(args, "root", None), raw_answers=raw)


def _raw_answers(path: Path, exc: Any) -> tuple[dict[str, Any], list[Any]] | None:
    """The answers a file gave, with what is wrong with them, when every problem is an
    answer's own (the wizard marks them); None when the file itself is unreadable."""
    from tui.answers import read_yaml  # heavy: keeps cloudrig list fast

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
    import shlex  # heavy: keeps cloudrig list fast

    if not 1 <= args.port <= 65535:
        raise UsageError(f"--port {args.port} is not a TCP port: use 1-65535, e.g. --port 8000")
    if args.host not in LOOPBACK and not args.public:
        raise UsageError(
            f"refusing to serve on {args.host}: whoever opens the page runs CloudRig as "
            f"{_user()} on this host, and its token would cross the network in clear. Keep "
            "127.0.0.1 and use an SSH tunnel (ssh -L 8000:127.0.0.1:8000 HOST), or pass "
            "--public behind a proxy that authenticates and speaks TLS")
    from tui.serve import new_token, scrubbed_names  # heavy: keeps cloudrig list fast

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
    from tui.app import serve_in_browser  # heavy: textual: only for the TUI

    print(f"serving CloudRig on {url}/?token={token} (Ctrl+C stops)", file=sys.stderr,
          flush=True)
    try:
        serve_in_browser(f"{shlex.quote(sys.executable)} -m tui", args.host, args.port, token)
    except OSError as exc:
        raise OperatorError(
            f"cannot listen on {args.host}:{args.port} ({exc.strerror or exc}): choose a free "
            "port with --port, e.g. --port 8001, or a local address with --host") from exc
    return 0


def _user() -> str:
    """The account the served app runs as (named in the --public warning)."""
    import getpass  # heavy: keeps cloudrig list fast

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


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


def add_procedure_verbs(sub: Any, argv: list[str] | None) -> None:
    """The commands procedures contribute (`Procedure.cli_verbs`), listed from the
    registry so `cloudrig --help` imports no procedure: only the command ARGV chooses
    loads its procedure, which adds the command's options and runs it."""
    args = sys.argv[1:] if argv is None else argv
    chosen = next((arg for arg in args if not arg.startswith("-")), None)
    for info in REGISTRY.values():
        for name, help in info.verbs.items():
            p = sub.add_parser(name, help=help)
            if name == chosen:
                verb = get_procedure(info.id).cli_verb(name)
                verb.arguments(p)
                p.set_defaults(func=verb.run)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The command line; ARGV (default: this process's) says which procedure command,
    if any, needs its options (`add_procedure_verbs`)."""
    parser = _Parser(
        prog="cloudrig",
        description="Cloud-integration runbooks as guided, validated, repeatable procedures. "
        "Without a command, opens the terminal UI.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--version", action="version", version=f"cloudrig {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("list", help="procedure ids, titles and purpose")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("init", help="write a commented example answers file")
    p.add_argument("procedure")
    p.add_argument("-o", "--output", help="file to write (default: stdout)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("wizard", help="the TUI, straight into a procedure's wizard")
    p.add_argument("procedure")
    p.add_argument("--answers", help="prefill from this answers file")
    p.add_argument("--root", type=Path, help="stage files under DIR")
    p.set_defaults(func=cmd_tui)

    def add_run_args(p: argparse.ArgumentParser, answers_required: bool = True) -> None:
        p.add_argument("procedure")
        p.add_argument("--answers", required=answers_required, metavar="FILE")
        p.add_argument("--root", type=Path, metavar="DIR",
                       help="write files under DIR; host-changing commands are skipped")

    p = sub.add_parser("plan", help="everything apply would do: diffs, commands, API calls")
    add_run_args(p)
    p.add_argument("--json", action="store_true")
    p.add_argument("--step", action="append", metavar="ID", help="only this step (repeatable)")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("render", help="only the files, written under DIR")
    p.add_argument("procedure")
    p.add_argument("--answers", required=True, metavar="FILE")
    p.add_argument("--out", required=True, type=Path, metavar="DIR")
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("apply", help="apply a procedure")
    add_run_args(p)
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

    p = sub.add_parser("attach", help="follow a running (or the last) apply; exits with "
                       "its code (Ctrl+C leaves it running)")
    p.add_argument("procedure", nargs="?",
                   help="default: the one procedure running now (or the last to run)")
    p.set_defaults(func=cmd_attach)

    p = sub.add_parser("cancel", help="stop a running apply at its next safe point "
                       "(it records interrupted, exit 130; a rerun resumes)")
    p.add_argument("procedure")
    p.set_defaults(func=cmd_cancel)

    p = sub.add_parser("status", help="the dashboard as text: every step's check")
    p.add_argument("procedure", nargs="?")
    p.add_argument("--json", action="store_true", help="the same as --format json")
    p.add_argument("--format", choices=("text", "json", "prometheus"), default="text",
                   help="prometheus: node_exporter textfile-collector metrics")
    p.add_argument("--answers", metavar="FILE", help="check these answers instead of the saved")
    p.add_argument("--root", type=Path, metavar="DIR")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("teardown", help="undo what apply did")
    add_run_args(p)
    p.add_argument("--purge", action="store_true",
                   help="also remove what the runbook keeps (tokens, policies, KV keys)")
    p.add_argument("--restore", action="store_true",
                   help="also put back the files the procedure marks restorable as they were "
                        "before CloudRig's first write (its oldest backup)")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--yes", action="store_true")
    p.set_defaults(func=cmd_teardown)

    p = sub.add_parser("export", help="a procedure for other tools: an Ansible playbook + role")
    p.add_argument("format", choices=["ansible"])
    p.add_argument("procedure")
    p.add_argument("--answers", required=True, metavar="FILE",
                   help="the base answers (per-host ones go in host_vars)")
    p.add_argument("-o", "--output", required=True, metavar="DIR")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("action", help="a procedure's operator actions (e.g. rotate a token); "
                       "without ACTION, list them")
    p.add_argument("procedure")
    p.add_argument("action", nargs="?")
    p.add_argument("--answers", metavar="FILE", help="needed to run an action")
    p.add_argument("--root", type=Path, metavar="DIR",
                   help="files under DIR; host-changing commands are skipped")
    p.add_argument("--dry-run", action="store_true", help="show what it would do; change nothing")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--json", action="store_true", help="the list as JSON")
    p.set_defaults(func=cmd_action)

    p = sub.add_parser("confirm", help="record that a manual step was done by hand")
    p.add_argument("procedure")
    p.add_argument("step", help="the manual step's id, e.g. quotas")
    p.add_argument("--undo", action="store_true", help="withdraw the confirmation")
    p.set_defaults(func=cmd_confirm)

    p = sub.add_parser("secrets", help="the secret store (values are never printed)")
    p.add_argument("action", choices=["set", "list", "delete"])
    p.add_argument("key", nargs="?")
    p.set_defaults(func=cmd_secrets)

    add_procedure_verbs(sub, argv)

    p = sub.add_parser("serve", help="the TUI in a browser (textual-serve)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--public", action="store_true",
                   help="allow a non-loopback --host (behind an authenticating TLS proxy; "
                        "the token is still required)")
    p.set_defaults(func=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    func = getattr(args, "func", cmd_tui)

    try:
        return func(args)
    except OperatorError as exc:
        if args.debug:
            raise
        from tui.redact import redact  # heavy: keeps cloudrig list fast

        if getattr(args, "json", False) and hasattr(exc, "as_json"):
            emit_json(exc.as_json())  # invalid answers: the same messages, as data
        print(paint(f"cloudrig: {redact(exc.sentence)}", "31", sys.stderr), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("cloudrig: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away: stop quietly, as Unix tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
