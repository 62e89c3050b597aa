"""The procedures CloudRig knows, readable without importing any of them.

`cloudrig list` and the home screen read this; a procedure module is imported only
when it is used. Adding a runbook = one module in tui/procedures/ plus one entry here.
What this repeats of a procedure (title, summary, its own commands) is checked against
the module when it is loaded (`get_procedure`).
"""

from __future__ import annotations

import sys

from tui.errors import ProcedureInvalid, UsageError

TYPE_CHECKING = False  # `typing` costs `cloudrig list` time (see tui/cli.py)
if TYPE_CHECKING:
    from tui.model import Procedure


class ProcedureInfo:
    """One procedure's id, title, one-line summary and module (not imported here), and
    the commands only it has (`Procedure.cli_verbs`: name → its one-line help), so
    `cloudrig --help` lists them without importing the module.

    A plain class: typing.NamedTuple would import `typing`, a measurable share of
    `cloudrig list`'s whole run (bench/run_all.py)."""

    __slots__ = ("id", "module", "summary", "title", "verbs")
    LISTED = ("id", "module", "summary", "title")
    """What `cloudrig list --json` shows of it."""

    def __init__(self, id: str, title: str, summary: str, module: str,
                 verbs: dict[str, str] | None = None) -> None:
        self.id, self.title, self.summary, self.module = id, title, summary, module
        self.verbs = verbs or {}

    def as_dict(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in self.LISTED}

    def __repr__(self) -> str:
        return f"ProcedureInfo({self.id!r})"


REGISTRY: dict[str, ProcedureInfo] = {
    info.id: info
    for info in (
        ProcedureInfo(
            "carbonio",
            "Carbonio Mesh terminating gateway",
            "Route Carbonio Files to an external PostgreSQL through a Consul terminating "
            "gateway",
            "tui.procedures.carbonio",
        ),
        ProcedureInfo(
            "cloudblue",
            "CloudBlue Connect connector",
            "Configure the Application Management connector for CloudBlue Connect: "
            "config.json, tokens, services, group quotas",
            "tui.procedures.cloudblue",
        ),
        ProcedureInfo(
            "cloudstack",
            "CloudStack user data and config drive",
            "Set an instance's user data through the signed API, or build a config drive ISO",
            "tui.procedures.cloudstack",
            {"metadata": "inside a CloudStack instance: the user data and metadata it sees "
                         "(virtual router or config drive)"},
        ),
        ProcedureInfo(
            "atmosphere",
            "CyVerse Atmosphere ⇄ OpenStack",
            "Connect Atmosphere to an OSA cloud: endpoint/TLS audit, user variables, Keystone "
            "account, provider, DNS names, atmosphere-ansible hosts",
            "tui.procedures.atmosphere",
        ),
        ProcedureInfo(
            "cloudcasa",
            "CloudCasa cloud accounts",
            "Register an AWS account with CloudCasa: CloudFormation stack, discovered "
            "clusters' agents, inventory",
            "tui.procedures.cloudcasa",
        ),
    )
}


def get_procedure(procedure_id: str) -> Procedure:
    """Load a registered procedure module and return its PROCEDURE."""
    info = REGISTRY.get(procedure_id)
    if info is None:
        known = ", ".join(REGISTRY)
        raise UsageError(f"unknown procedure {procedure_id!r}; known procedures: {known}")
    __import__(info.module)  # not importlib: importing it costs `cloudrig list` time
    procedure: Procedure = sys.modules[info.module].PROCEDURE
    listed = (info.id, info.title, info.summary, info.verbs)
    built = (procedure.id, procedure.title, procedure.summary,
             {verb.name: verb.help for verb in procedure.cli_verbs})
    if listed != built:
        what = ("id", "title", "summary", "commands")
        problems = [f"{name} {mine!r} in {info.module} but {theirs!r} in tui/registry.py "
                    "(they must be equal)"
                    for name, theirs, mine in zip(what, listed, built, strict=True)
                    if theirs != mine]
        raise ProcedureInvalid(procedure_id, "; ".join(problems))
    return procedure
