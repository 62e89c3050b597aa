"""CyVerse Atmosphere ⇄ OpenStack (OpenStack-Ansible): endpoints, Keystone, provider.

Runbook: shared/seeds/atmosphere-openstack.txt ("Connecting a Cloud Provider to
Atmosphere"). It spans three machines, so each step names its host (`osa-deploy`,
`atmosphere` or `any`) and `host_role` says which one this is; steps for another host
are exported under `export_dir` as files plus a script (see tui/export.py).
Where CloudRig departs from the runbook, and why:

- user_variables: OSA reads every `user_*.yml` in /etc/openstack_deploy, so CloudRig
  writes `user_variables_atmosphere.yml` instead of editing the operator's
  `user_variables.yml`, and warns when another user_*.yml defines the same keys.
- HAProxy: the runbook (written for OSA Newton/Ocata) copies `haproxy_default_services`
  whole and changes keystone_admin. CloudRig reads the OSA release from the deployment
  host's checkout (`openstack_release` in its group_vars up to 18, OSA_VERSION in
  /usr/local/bin/openstack-ansible from 19) or the answer `osa_release`, and does what
  that release has (osa.py, with the openstack-ansible tags and commits): OSA 14
  copies the list (hash_behaviour=replace) with keystone_admin's whitelist and
  `haproxy_ssl` changed; OSA 15-18 set only `haproxy_keystone_admin_whitelist_networks`
  (so the other services keep following OSA); from 19 there is no keystone_admin
  service and no port 35357, so nothing is whitelisted. On a workstation nothing from
  the OSA host is read when `osa_release` is answered (OSA 14 needs a copy of its
  HAProxy file: `osa_haproxy_config`).
- `keystone_user_ssl_ca_cert` is the certificate itself in the runbook (a copy-paste
  slip); CloudRig gives every service the CA file (`tls_ca`).
- `gnocchi_service_publicurl` / `magnum_service_publicurl` are typos for OSA's
  `*_service_publicuri`; the runbook's other expressions (ceilometer/aodh `_proto`,
  swift `swift_proxy_port`, magnum `magnum_bind_port`) are kept as written. Every
  `{{ … }}` stays literal for OSA to evaluate.
- Endpoints: instead of reading `openstack endpoint list` by eye, CloudRig audits the
  catalog (https, host name, answering, certificate trusted for that name, days to
  expiry) and prints `openstack endpoint set --url …` for each bad one (the runbook
  says "delete and create"; `set` keeps the endpoint id). Findings are warnings
  unless `audit_strict`.
- Keystone: `openstack project/user create` are not idempotent (409 on a rerun);
  CloudRig looks each up first (GET before POST) and grants the role only when the
  HEAD check says it is missing. The runbook's `--password` on the command line
  would land in shell history; the password comes from the secret store.
- atmoadmin goes to Keystone's default domain whatever the admin's domain is:
  Atmosphere logs its admin in with user and project domain 'default'
  (cyverse/atmosphere service/accounts/openstack_manager.py), and `domain`
  (cloud_config.user.domain) must name that domain. The admin's token is scoped with
  OS_PROJECT_DOMAIN_NAME/ID (answers os_project_domain(_id), read from openrc).
- `user_role`: the runbook's `_member_` does not exist on current Keystone (bootstrap
  creates admin, member, reader, and from 24.0.0 manager and service); CloudRig checks
  the answered role exists and, unanswered, takes `member`, else `_member_`.
- No lockouts: a check never logs in as atmoadmin (Keystone counts failed logins with
  `lockout_failure_attempts`); apply verifies its password with one login and, when
  it fails, sets it with the admin's token (with `enabled: true`, which clears a
  lockout).
- openrc: the runbook says to "look for" it; CloudRig reads its `export` lines
  without executing it (Horizon's runs `read -sr`).
- Provider JSON: the runbook's example has `#` comments, which JSON forbids
  (json.loads fails); CloudRig writes valid JSON with the comments' content in the
  answers' help. It holds atmo_admin's password and the secret, so it is 0600.
  `auth_url`/`admin_url` are written without `/v3`, as in the runbook's example,
  and come from Keystone's catalog (the identity admin endpoint, or the public one
  where there is none, as from OSA 19), not from a host name and port: Atmosphere
  authenticates with them. Answered ones must agree with the catalog, else the step
  stops with a sentence (rerun the OSA playbooks first if the endpoints are to change).
  The JSON's `provider` section carries the name, so no version of add_new_provider.py
  asks for it.
- The runbook's transcript uses the password `changeme` and a 52-character secret
  of `!`s; provider_secret must have ≥ 32 characters and is generated (48 random
  URL-safe characters) when not given, then kept in the secret store.
- add_new_provider.py: its interactive mode is broken (the runbook); CloudRig runs
  `--from-json` and answers the remaining prompts on a pseudo-terminal, by the wording
  of both the old script (tag 17-y-y-3: "Name of new provider: ", a platform prompt)
  and the current one (commit 6a5dcab4, tag 17-z-z on: "What is the name of your new
  provider? : ", no platform prompt); the JSON carries the name, so neither asks it.
  A prompt CloudRig does not know ends the step at once, quoted. The
  runbook's `source activate; cd; export …` lines become one `env
  DJANGO_SETTINGS_MODULE=… PYTHONPATH=… <venv python> …` argv (no shell).
- The provider id: the runbook says "typically 4" in one place and uses 8 in
  another. CloudRig never guesses: it asks Django (`manage.py shell -c`) for the
  provider by name and parses `PROVIDER_ID=<n>` from the output.
- Staff/superuser and `set_password` in the Django REPL are outside "connecting a
  provider" (the runbook says so) and are not automated.
- atmosphere-ansible: the runbook names the group `atmosphere-mytestcloud` but the
  group_vars file `name-of-your-cloud`; group_vars only apply to a group of the
  same name, so both are `atmosphere-<provider_name>`, as upstream names them
  (cyverse/clank dist_files/hosts.dist, group_vars/atmosphere-provider1). The group_vars
  hold what atmosphere-ansible's roles read, as its examples set them: NTP_SERVERS,
  F2B_IGNOREIP, TIMEZONE, SSH_ALLOW_GROUPS, SSHKEYS (and `ansible_port: 22`). The hosts
  entries are kept in a marked block so the operator's other entries stay; a group_vars
  file an earlier CloudRig wrote under the bare provider name is removed.
  `hostname_format` may use `%(domain)s` (Atmosphere's INSTANCE_HOSTNAMING_DOMAIN),
  rendered as dns_zone.
- DNS: "probably optional" in the runbook; CloudRig writes a BIND zone fragment and
  the dashboard resolves every name, reporting counts plus the first few problems.
- Allocation strategy: the runbook gives only Django admin clicks (no script, no API),
  so CloudRig shows them and the operator confirms with `cloudrig confirm atmosphere
  allocation-strategy` (`--undo` withdraws it); the dashboard then says "manual —
  confirmed <time>" (the shared `tui.steps.ManualStep`, as cloudblue's quotas).

Teardown (the runbook has no removal path; CloudRig's, in reverse step order):
- atmosphere-ansible: CloudRig's marked block leaves `ansible/hosts` byte for byte
  (the file goes only when nothing else was in it); `group_vars/<provider>` is removed
  if CloudRig created it, and put back from its first backup if it replaced the
  operator's file (the ownership record says which).
- allocation-strategy: when confirmed, the Django admin page where it is deleted; the
  confirmation is withdrawn (the engine does so for any step it undoes).
- provider: Atmosphere has no removal script and deleting the row cascades into
  identities and history, so teardown prints the exact `manage.py shell -c` that
  end-dates it (active=False, end_date=now: "Offline"); CloudRig never runs it.
- dns: the zone fragment goes; removing records from the zone is the operator's.
- provider-json: the 0600 file goes; provider_secret stays in the secret store (the
  provider, if kept, still salts its users' passwords with it).
- keystone: only with `--purge` (as carbonio's tokens), and only what CloudRig created:
  the project and user ids its ownership record names (they also carry a "(CloudRig)"
  description, but a description is not proof); the grant is revoked, then user,
  then project deleted. An account the operator made is named with its
  `openstack … delete`, never deleted.
  Teardown asks for os_admin_password only when purging (`Step.undo_secrets`).
- endpoint-audit reads only. user-variables: CloudRig's own user_variables_atmosphere.yml
  goes, with the reminder to rerun the OSA playbooks; the operator's user_variables.yml
  was never written. A step exported to another host is undone on that host (teardown
  there with the same answers, as a manual line says); here its exported script and
  staged copies go (found from the script's `install` lines, so the 0600 provider JSON
  copy goes even when no password is at hand).
"""

from __future__ import annotations

from tui import probes
from tui.model import Page, Procedure

from .answers import AtmosphereAnswers
from .steps import KEYSTONE, STEPS

PAGES = (
    Page("This host", "The runbook spans the OSA deployment host, Keystone and the "
         "Atmosphere server: which one is this?", ("host_role", "export_dir", "openrc")),
    Page("OpenStack APIs and TLS", "Public endpoints by name over https; the keystone admin "
         "API opened to Atmosphere.",
         ("cloud_fqdn", "tls_cert", "tls_key", "tls_ca", "keystone_admin_port",
          "atmosphere_networks", "public_services", "osa_config_dir", "osa_dir", "osa_release",
          "osa_haproxy_config")),
    Page("Keystone", "The admin credentials CloudRig calls Keystone with, and the account it "
         "creates for Atmosphere.",
         ("auth_url", "admin_url", "region_name", "os_admin_user", "os_admin_project",
          "os_user_domain", "os_project_domain", "os_project_domain_id", "os_ca_file",
          "os_admin_password", "audit_strict", "atmo_admin", "atmo_admin_password",
          "admin_role", "user_role", "domain"),
         probe=probes.keystone),
    Page("Provider", "What add_new_provider.py --from-json is given.",
         ("provider_name", "platform", "public_router", "network_name", "dns_nameservers",
          "topology", "provider_secret", "provider_json", "atmosphere_users",
          "atmosphere_url", "atmosphere_dir", "atmosphere_python")),
    Page("Instance names", "A DNS name for every floating IP, and atmosphere-ansible's "
         "inventory.",
         ("dns_zone", "floating_ip_range", "hostname_format", "dns_server",
          "atmosphere_ansible_dir")),
    Page("Instance settings", "What atmosphere-ansible's roles set up on every instance "
         "(its group_vars).",
         ("ntp_servers", "f2b_ignoreip", "timezone", "ssh_allow_groups", "ssh_keys")),
)

PROCEDURE = Procedure(
    id="atmosphere",
    title="CyVerse Atmosphere ⇄ OpenStack",
    summary=(
        "Connect Atmosphere to an OSA cloud: endpoint/TLS audit, user variables, Keystone "
        "account, provider, DNS names, atmosphere-ansible hosts"
    ),
    runbook="atmosphere-openstack.txt",
    answers_model=AtmosphereAnswers,
    pages=PAGES,
    steps=STEPS,
    host_field="host_role",
    export_field="export_dir",
    remotes=(KEYSTONE,),
)

__all__ = ["PROCEDURE", "AtmosphereAnswers"]
