"""Virtuozzo Application Management ⇄ CloudBlue Connect connector.

Runbook: shared/seeds/cloudblue-connect.txt ("Enabling CloudBlue Connect Integration"),
on the AlmaLinux 9 host where the connector package is installed.
Where CloudRig departs from it, and why:

- config.json is not copied from config.json.example and edited by hand: CloudRig
  renders the keys it manages (templates/cloudblue/config.json.j2) and lays them over
  the existing config.json — or, on the first write, over the example — so keys it
  does not manage, and their order, stay. The previous file is backed up.
- The runbook's example apiEndpoint (`https://api.clarocloud.com.co/public/v1`) is a
  reseller's own Connect; the default here is Connect's documented public endpoint,
  `https://api.connect.cloudblue.com/public/v1`. Its example also turns testMode on
  with a test marketplace; here test mode is off by default (the runbook's own stated
  default), and test mode without a test marketplace is refused, because the runbook
  says the connector then processes every marketplace's requests anyway.
- testMarketplaceId is left out of config.json when not answered ("if not set");
  an example value inherited from config.json.example is removed.
- The runbook never checks the ids it asks for. CloudRig reads each product, its
  templates and the test marketplace from Connect (read-only, also in plan and
  --dry-run) — before writing any file, so a wrong id changes nothing on disk. That
  is why validation is the second step, not after the configuration files. Ids are
  checked for what they are, not only that they exist: a grant or revoke template
  must be an asset-scope `fulfillment` template (Connect's Templates API: `scope`
  asset/tier1/tier2, asset templates `type` fulfillment/pending/inquire), and a
  report_usage product must have pay-as-you-go on (`capabilities.ppu` not null);
  sources: connect-cli tests/fixtures/{product,templates}_response.json and
  connect/cli/plugins/product/sync/capabilities.py.
- `cloudblue-password-manager` is driven as the runbook says, but on a
  pseudo-terminal that is its controlling terminal (a prompt that reads /dev/tty, as
  getpass does first, gets it; tui/prompts.py): it asks with a prompt, and the tokens
  never go on a command line or into a log. It runs when passwords_db.sqlite3 is
  absent, or when the step is named (`--step tokens`, e.g. after rotating a token),
  and says for each token
  whether the store changed; a store left as it was (the value was already there)
  is not a failure.
- One form of the Connect key: it is accepted with or without its `ApiKey ` prefix
  and becomes `ApiKey SU-…:…` everywhere — CloudRig's own calls and what it types
  into the password manager — because Connect refuses the bare `SU-…:…` and its
  clients send the stored key verbatim (connect-openapi-client `get_headers`). The
  runbook's "exactly as given" would store a bare key the connector cannot use.
- Services: `systemctl enable --now` per unit instead of `enable` then `start`
  (the same, in one command). The smoke runs the runbook suggests happen before the
  services start, and only while the services are not already running (they would
  do the same work twice otherwise).
- Admin-panel quotas: no documented Application Management API sets a group's
  quotas (procedure-apis.md §6 found none), so this is a manual step showing the
  exact values; the operator's `cloudrig confirm cloudblue quotas` is recorded with
  its time and the dashboard shows "manual — confirmed <date>".
- The runbook's note on rotating the Application Management token is an action,
  `cloudrig action cloudblue rotate-vap-token` (asks first; --yes without a terminal):
  it deletes connector.pem, so the connector generates a new key and token, then sets
  vap_token again through cloudblue-password-manager's prompt, as the tokens step does.
  Under --root the key is deleted in the staged tree and the password manager (which
  writes the host's real store) is listed as skipped.
- Teardown stops and disables the three services; config files stay (they are the
  operator's). `teardown --restore` puts back config.json and config-logging.json as
  they were before CloudRig's first write (the oldest backup, mode and owner kept);
  without --restore, teardown names that backup.
"""

from __future__ import annotations

from tui import probes
from tui.model import Page, Procedure

from .answers import CloudBlueAnswers
from .steps import ACTIONS, CONNECT, STEPS

PAGES = (
    Page("Connector", "Where the connector is installed, and the platform it serves.",
         ("config_dir", "vap_infra_domain", "vap_user_group")),
    Page("Connector behaviour", "The misc block of config.json.",
         ("hide_passwords_in_log", "test_mode", "test_marketplace_id",
          "billing_stat_delay_hours")),
    Page("CloudBlue Connect", "The Connect API, the products the connector serves and "
         "their templates.",
         ("api_endpoint", "products", "report_usage", "templates")),
    Page("Tokens", "Typed into cloudblue-password-manager; never written to answers files.",
         ("cloudblue_token", "vap_token"), probe=probes.connect),
)

PROCEDURE = Procedure(
    id="cloudblue",
    title="CloudBlue Connect connector",
    summary=(
        "Configure the Application Management connector for CloudBlue Connect: config.json,"
        " tokens, services, group quotas"
    ),
    runbook="cloudblue-connect.txt",
    answers_model=CloudBlueAnswers,
    pages=PAGES,
    steps=STEPS,
    actions=ACTIONS,
    remotes=(CONNECT,),
)

__all__ = ["PROCEDURE", "CloudBlueAnswers"]
