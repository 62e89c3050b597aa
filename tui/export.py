"""Steps for another host: their plan, turned into files and a script to copy there.

A procedure that spans machines names the host each step runs on (`Step.host`) and
the answer field saying which host this is (`Procedure.host_field`). A step for
another host is not run here: its files are written under
`<export_dir>/<host>/files/<absolute path>`, and its commands, in order, into
`<export_dir>/<host>/<step>.sh`, which installs those files with their modes and
runs the exact argv the step would have run. The operator copies the directory to
that host and runs the script there — or runs CloudRig there with the same answers.
Secrets never enter the script: prompts a command answers on a pseudo-terminal are
listed as comments naming the answer, and a file that holds a secret is exported
0600 as it would be written.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from tui.files import exists, read_path
from tui.model import ApiCall, Command, FileRemove, FileWrite, Manual, PlanItem


def script_path(export_dir: str, host: str, step_id: str) -> str:
    return f"{export_dir.rstrip('/')}/{host}/{step_id}.sh"


def staged_path(export_dir: str, host: str, path: str) -> str:
    return f"{export_dir.rstrip('/')}/{host}/files/{path.lstrip('/')}"


_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _double_quoted(arg: str, variables: set[str]) -> str:
    """`arg` in double quotes where only `${NAME}` of a known variable expands."""
    out, last = [], 0
    for match in _REFERENCE.finditer(arg):
        out.append(_escape(arg[last:match.start()]))
        name = match.group(1)
        out.append(match.group(0) if name in variables else _escape(match.group(0)))
        last = match.end()
    out.append(_escape(arg[last:]))
    return '"' + "".join(out) + '"'


def _escape(text: str) -> str:
    return "".join("\\" + ch if ch in '\\"$`' else ch for ch in text)


def _argv_text(argv: list[str], variables: set[str]) -> str:
    """shlex-quoted argv; an item using `${NAME}` set by an earlier command is
    double-quoted so that (and only that) expands."""
    parts = []
    for arg in argv:
        uses = {m.group(1) for m in _REFERENCE.finditer(arg)} & variables
        parts.append(_double_quoted(arg, variables) if uses else shlex.quote(arg))
    return " ".join(parts)


def _command_lines(command: Command, variables: set[str]) -> list[str]:
    lines = [f"# {command.description}"] if command.description else []
    for prompt, name in command.pty_answers:
        lines.append(f"#   at the prompt /{prompt}/ type the secret {name}")
    for prompt, text in command.pty_replies:
        lines.append(f"#   at the prompt /{prompt}/ type: {text}")
    if command.pty_secret_input:
        lines.append(f"#   when it waits for input (it shows no prompt) type the secret "
                     f"{command.pty_secret_input}")
    text = _argv_text(command.argv, variables)
    if command.stdin_secret:
        lines.append(f"#   (reads the secret {command.stdin_secret} on its standard input)")
    if command.sets:
        lines.append(f"{command.sets}=\"$({text} | sed -n 's/^{command.sets}=//p' | tail -n 1)\"")
        lines.append(f'[ -n "${command.sets}" ] || {{ echo "no {command.sets} printed" >&2; '
                     "exit 1; }")
        variables.add(command.sets)
    else:
        lines.append(text)
    return lines


def export_items(step_id: str, title: str, host: str, items: list[PlanItem],
                 export_dir: str) -> list[PlanItem]:
    """The plan items that export `items` (a step's plan for `host`) from this host."""
    out: list[PlanItem] = []
    base = f"{export_dir.rstrip('/')}/{host}"
    script = [
        "#!/bin/sh",
        f"# CloudRig: step {step_id} ({title}), to run on {host}.",
        f"# Copy {base}/ to {host} and run this script there from that directory.",
        "set -eu",
        'cd "$(dirname "$0")"',
    ]
    variables: set[str] = set()
    for item in items:
        match item:
            case FileWrite():
                staged = staged_path(export_dir, host, item.path)
                out.append(item.model_copy(update={
                    "path": staged, "owner": None, "group": None, "dir_mode": 0o700,
                    "description": f"for {host}: {item.path}"}))
                owner = (f" -o {shlex.quote(item.owner)} -g {shlex.quote(item.group or item.owner)}"
                         if item.owner else "")
                relative = staged.removeprefix(base + "/")
                script.append(f"install -D -m {item.mode:04o}{owner} {shlex.quote(relative)} "
                              f"{shlex.quote(item.path)}")
            case Command():
                script.extend(_command_lines(item, variables))
            case FileRemove():
                script.append(f"rm -f {shlex.quote(item.path)}")
            case ApiCall() | Manual():
                out.append(item)  # remote APIs are reached from here; manual stays manual
    path = script_path(export_dir, host, step_id)
    out.append(FileWrite(path=path, content="\n".join(script) + "\n", mode=0o700,
                         dir_mode=0o700, description=f"the commands of {step_id} for {host}"))
    return out


def export_note(host: str, export_dir: str, step_id: str) -> str:
    """The one line the plan and the dashboard show for a step exported to `host`."""
    return f"to run on {host}: sh {script_path(export_dir, host, step_id)}"


def export_undo(procedure_id: str, step_id: str, host: str, export_dir: str,
                root: Path | None) -> list[PlanItem]:
    """Teardown of a step exported to `host`: the copies staged here (read from the
    script's `install` lines, so no secret is needed to find them: a staged provider
    file may hold one) and the script go; undoing the step itself is done on `host`.
    Empty once they are gone, so a second teardown does nothing."""
    script = script_path(export_dir, host, step_id)
    text = read_path(script, root)  # never through a link
    if text is None:
        return []
    base = f"{export_dir.rstrip('/')}/{host}"
    items: list[PlanItem] = []
    for line in text.decode("utf-8", errors="replace").splitlines():
        if not line.startswith("install -D "):
            continue
        relative = shlex.split(line)[-2]
        staged = f"{base}/{relative}"
        if exists(staged, root):
            items.append(FileRemove(path=staged, description=f"exported copy for {host}"))
    items.append(FileRemove(path=script, description=f"the exported commands for {host}"))
    items.append(Manual(text=f"on {host}, undo step {step_id} with `cloudrig teardown "
                             f"{procedure_id}` there (same answers, this host's role set to "
                             f"{host})"))
    return items
