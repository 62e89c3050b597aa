"""`cloudrig export ansible`: a playbook and role that run one procedure on a fleet.

CloudRig stays the engine on every host: the role installs it (unless the wanted
version already answers `--version`), copies the host's answers (the exported base
answers merged with `cloudrig_answers` from host_vars), runs `cloudrig apply --json`
with secrets from Ansible Vault variables as `CLOUDRIG_SECRET_*` environment under
`no_log`, reports `changed` from the summary's before/after checks, and gathers every
host's `cloudrig status --json` into one report on the controller. Only answers
without secrets and the *names* of secrets are written: the exported directory can
be committed to version control.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from tui import __version__
from tui.answers import secret_fields
from tui.atomic import make_dirs
from tui.engine import Session
from tui.model import Procedure
from tui.render import environment
from tui.secrets import SecretSource, env_name
from tui.state import StateStore

TEMPLATES = "ansible"
# Exported file (relative to DIR) → its template under templates/ansible/.
FILES = {
    "site.yml": "site.yml.j2",
    "inventory.example.yml": "inventory.example.yml.j2",
    "group_vars/all/cloudrig.yml": "group_vars.yml.j2",
    "roles/cloudrig/defaults/main.yml": "defaults.yml.j2",
    "roles/cloudrig/tasks/main.yml": "tasks.yml.j2",
    "README.md": "README.md.j2",
}


class _UnsafeDumper(yaml.SafeDumper):
    """Tags every string `!unsafe`: Ansible then never templates an answer's text."""


def _unsafe_mapping(dumper: yaml.SafeDumper, data: dict[Any, Any]) -> yaml.MappingNode:
    """Keys stay plain (Ansible reads tagged keys as objects); values are tagged."""
    pairs = [(dumper.represent_scalar("tag:yaml.org,2002:str", str(key)),
              dumper.represent_data(value)) for key, value in data.items()]
    return yaml.MappingNode("tag:yaml.org,2002:map", pairs, flow_style=False)


_UnsafeDumper.add_representer(
    str, lambda dumper, value: dumper.represent_scalar("!unsafe", value, style='"'))
_UnsafeDumper.add_representer(dict, _unsafe_mapping)


def ansible_yaml(value: Any) -> str:
    """A block YAML mapping for Ansible vars whose strings stay literal."""
    if not value:
        return "{}\n"
    return yaml.dump(value, Dumper=_UnsafeDumper, default_flow_style=False, sort_keys=False,
                     allow_unicode=True, width=float("inf"))


class SecretInfo(BaseModel):
    """One secret the procedure can need: how the fleet passes it (never its value)."""

    field: str
    title: str
    help: str
    needed: bool  # needed by these answers' steps (else: optional or an alternative)
    vault_variable: str
    environment: str


def secret_infos(procedure: Procedure, answers: Any) -> list[SecretInfo]:
    """Every secret field, marked needed when a step these answers enable asks for it
    and no earlier step could obtain it on a host without it."""
    needed = _needed(procedure, answers)
    model = procedure.answers_model
    return [SecretInfo(field=name, title=model.model_fields[name].title or name,
                       help=model.model_fields[name].description or "",
                       needed=name in needed, vault_variable=f"vault_cloudrig_{name}",
                       environment=env_name(name))
            for name in secret_fields(model)]


def _needed(procedure: Procedure, answers: Any) -> set[str]:
    """Secret fields the active steps need, asked of a host with no secrets at all
    (so a bootstrap alternative that itself needs a secret does not count)."""
    class NoSecrets(SecretSource):
        """A host with nothing yet: not even the exporting user's CLOUDRIG_SECRET_*."""

        def available(self, name: str) -> bool:
            return False

    source = NoSecrets(procedure.id, secret_fields(procedure.answers_model),
                       open_store=None, interactive=False)
    session = Session(procedure=procedure, answers=answers, secrets=source,
                      store=StateStore(Path("/nonexistent-cloudrig-export")), dry_run=True,
                      on_event=lambda e: None)
    try:
        needed: set[str] = set()
        for step in session.active_steps():
            needed |= step.needs_secrets(session.context(step))
        return needed
    finally:
        session.close()


def export(procedure: Procedure, answers: Any, out: Path) -> list[Path]:
    """Write the playbook, role, examples and README under `out`; return the files."""
    secrets = secret_infos(procedure, answers)
    context = {
        "procedure": procedure,
        "version": __version__,
        # Only what the answers file set: defaults stay those of the CloudRig on the host.
        "answers": answers.model_dump(mode="json", exclude_unset=True,
                                      exclude=set(secret_fields(type(answers)))),
        "secrets": [s.model_dump() for s in secrets],
    }
    env = environment().overlay()
    env.filters["ansible_yaml"] = ansible_yaml
    rendered = {rel: env.get_template(f"{TEMPLATES}/{name}").render(context)
                for rel, name in FILES.items()}
    written = []
    for rel, text in rendered.items():
        target = out / rel
        make_dirs(target.parent, 0o755)  # modes set explicitly, whatever the umask
        target.write_text(text, encoding="utf-8")
        written.append(target)
    return written
