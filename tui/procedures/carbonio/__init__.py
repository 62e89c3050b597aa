"""Carbonio Mesh terminating gateway to an external PostgreSQL.

Runbook: shared/seeds/carbonio-mesh-gateway.txt ("Integration of External Services").
Where CloudRig departs from it, and why:

- Consul is driven through its HTTP API, not the `consul` CLI, and every change is
  create-or-update: a second apply creates nothing (the policy is compared by rules,
  the gateway token in `<config_dir>/token` is reused while Consul still accepts it).
- The runbook's `export CONSUL_HTTP_TOKEN=$(service-discover bootstrap-token --setup)`
  has the operator type the cluster password. service-discover reads it from a
  terminal only — a pipe is refused ("the provided file descriptor (0) is not a
  terminal", zextras/service-discover pkg/term/term_unix.go) — and `--setup` prints
  no prompt, so CloudRig runs it on a pseudo-terminal and types the password when
  the tool turns echo off (raw mode, Enter as CR for Go's x/term); the token it
  prints goes to the secret store, never to the environment or a file.
- Step 2 of the runbook creates the policy before a token exists to create it with;
  here the management token is the first step: obtained and verified (it must carry
  global-management) before anything is written on this host or in Consul.
- The gateway's policy adds what Consul's terminating-gateway token documentation
  requires beyond the runbook's rules (developer.hashicorp.com/consul/docs/secure/acl/
  token/terminating-gateway): `service_prefix "" read` (discover and route to
  services), and `agent_prefix "" read` — `consul connect envoy` calls
  `/v1/agent/self` and fails without it (hashicorp/consul command/connect/envoy/
  envoy.go `generateConfig` @0009e068), so the runbook's policy leaves the unit in a
  restart loop on current Consul. Write stays exactly where the runbook has it: the
  gateway's own service and the linked service; node and key reads as the runbook.
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
  Its ExecStart follows the answers: `-http-addr` when consul_url is not the local
  default (http://127.0.0.1:8500) and `-ca-file` with consul_ca_file, so Envoy's
  registration talks to the agent CloudRig configured (the runbook's line would use
  the default address whatever the agent listens on).
- The unit step is done only when the gateway works as Consul sees it, not when
  systemd says "active": `<gateway>` registered with its check passing
  (`/v1/health/service/<gateway>`) and `/v1/catalog/gateway-services/<gateway>`
  listing the external service with its CAFile/SNI. apply waits for that (a unit
  systemd reports failed ends the wait with its journal); the dashboard shows it.
- The runbook's SQL grants SUPERUSER and uses two different passwords
  (`ScrtPsw9872` in the text, `ScrtPsw987^2` in the SQL). CloudRig creates a LOGIN
  role owning its database (least privilege) with the one `db_password` that also
  goes to Consul KV, sent as a SCRAM verifier so the clear password never reaches
  the server's statement log.
- The runbook's `chown -R carbonio-gateway /etc/carbonio/gateway` is not run: a
  service user who owns the configuration directory can plant links in it that the
  next root apply would follow. CloudRig gives the gateway user exactly the file it
  reads, the token (0600, owner set on the file as it is written); the directories
  stay root's (0755, set explicitly whatever the umask).
- Teardown: `systemctl stop`/`disable` (the runbook says `systemd stop`), and the
  external service is removed with `PUT /v1/catalog/deregister` (it was registered
  through the catalog, so the runbook's agent call cannot remove it). `--purge`
  also removes the KV keys, the gateway token and the policy. Only what CloudRig
  created goes (the ownership record in the state directory: the policy's ID, the
  token's AccessorID, the KV keys, the catalog registration and config entry it
  made, the files it created): another team's policy of the same name, a key that
  existed before, a unit file that was there first (put back from its backup) all
  stay, each named; `--purge` without a record refuses.
"""

from __future__ import annotations

from tui import probes
from tui.model import Page, Procedure

from .answers import CarbonioAnswers
from .steps import CONSUL, STEPS

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
    title="Carbonio Mesh terminating gateway",
    summary=(
        "Route Carbonio Files to an external PostgreSQL through a Consul terminating "
        "gateway"
    ),
    runbook="carbonio-mesh-gateway.txt",
    answers_model=CarbonioAnswers,
    pages=PAGES,
    steps=STEPS,
    remotes=(CONSUL,),
)

__all__ = ["PROCEDURE", "CarbonioAnswers"]
