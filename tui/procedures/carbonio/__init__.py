"""Carbonio Mesh terminating gateway to an external PostgreSQL.

Runbook: shared/seeds/carbonio-mesh-gateway.txt ("Integration of External Services").
Where CloudRig departs from it, and why:

- Consul is driven through its HTTP API, not the `consul` CLI, and every change is
  create-or-update: a second apply creates nothing (the policy is compared by rules,
  the gateway token in `<config_dir>/token` is reused while Consul still accepts it).
- Step 2 of the runbook creates the policy before a token exists to create it with;
  the management token is obtained first here (step order of the runbook's intent).
- The runbook says to register the external service "by sending a curl request" and
  never shows it: CloudRig sends `PUT /v1/catalog/register` with the JSON file.
- `<service>-external.json`: the runbook sets `Service.ID` to the gateway's name,
  yet its own teardown deregisters the ID `carbonio-files-db`; the ID here is the
  service name, which is also Consul's default.
- `gateway-config.hcl`: the runbook never shows the file's content; it is the
  terminating-gateway config entry from Consul's documentation, with CAFile and SNI
  only when given (the runbook calls both optional).
- The unit uses `Wants=network-online.target` (with `After=`), as systemd.special(7)
  recommends; the runbook's `Requires=` stops the gateway whenever that target is
  restarted. The runbook also never says `daemon-reload` / `enable --now` as commands.
- The runbook's SQL grants SUPERUSER and uses two different passwords
  (`ScrtPsw9872` in the text, `ScrtPsw987^2` in the SQL). CloudRig creates a LOGIN
  role owning its database (least privilege) with the one `db_password` that also
  goes to Consul KV, sent as a SCRAM verifier so the clear password never reaches
  the server's statement log.
- Teardown: `systemctl stop`/`disable` (the runbook says `systemd stop`), and the
  external service is removed with `PUT /v1/catalog/deregister` (it was registered
  through the catalog, so the runbook's agent call cannot remove it). `--purge`
  also removes the KV keys, the gateway token and the policy.
"""

from __future__ import annotations

from tui import probes
from tui.procedure import Page, Procedure

from .answers import CarbonioAnswers
from .steps import STEPS

PAGES = (
    Page("Consul access", "The local Carbonio Mesh agent and the token that may configure it.",
         ("consul_url", "consul_ca_file", "consul_token", "cluster_password"),
         probe=probes.consul),
    Page("Gateway name and directory", "The gateway's name is its service, user, group and "
         "policy; its configuration directory holds its files and token.",
         ("gateway_name", "config_dir")),
    Page("The external service", "Where the database lives, as Consul's catalog will know it.",
         ("service_name", "external_address", "external_node", "external_port")),
    Page("TLS to the database", "Optional TLS settings from the gateway to the database.",
         ("ca_file", "sni")),
    Page("systemd service", "The unit that runs the gateway.", ("unit_dir",)),
    Page("Database", "Credentials Carbonio Files reads from Consul KV, and the role on the "
         "database host.",
         ("kv_prefix", "db_name", "db_username", "db_password", "create_database",
          "db_admin_user", "db_admin_password")),
)

PROCEDURE = Procedure(
    id="carbonio",
    runbook="carbonio-mesh-gateway.txt",
    answers_model=CarbonioAnswers,
    pages=PAGES,
    steps=STEPS,
)

__all__ = ["PROCEDURE", "CarbonioAnswers"]
