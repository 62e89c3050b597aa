"""CloudCasa cloud accounts: register an AWS (or Azure) account, finish the
CloudFormation step, install the discovered clusters' agents, run the inventory.

Runbook: shared/seeds/cloudcasa-cloudaccounts.txt ("Cloud Accounts").
Where CloudRig departs from it, and why:

- Create-or-reuse, not create: the account is looked up by name
  (`where={"name": ...}`) before the POST, and again right before it (a POST is
  never retried, as a create that timed out may have happened). A changed
  description or tags is PATCHed with `If-Match` (Eve's rule; the runbook shows no
  update). The stack is looked up by name before `create_stack`; a stack of that
  name made for another account id is refused rather than reused.
- The runbook polls "until status appears"; CloudRig polls until `status.state` is
  PENDING (or already ACTIVE), and every wait — PENDING, the stack's
  CREATE_COMPLETE, ACTIVE, discovery of named clusters, each agent's ACTIVE — has
  a timeout (`poll_timeout`) and shows its elapsed time. A wait that timed out, was
  stopped or was killed resumes at the same wait on the next apply.
- The runbook's boto3 example sends RDS and SecurityScan as "false" while its text
  says every feature is on by default; CloudRig follows the text (`features` lists
  the features that are on) and sends each explicitly — but only those the template
  declares (GetTemplateSummary: CloudFormation refuses an undeclared parameter, and
  the runbook shows two template versions); a feature left out is named.
- The stack also waits for CREATE_COMPLETE in AWS before polling CloudCasa, so a
  rolled-back stack is reported with the failed resource's own event
  (DescribeStackEvents) instead of a silent timeout; a stack left REVIEW_IN_PROGRESS
  (a change set never executed) and an account state the runbook does not describe
  end the wait at once with a sentence. The stack is tagged `cloudrig:procedure`.
- A stack of that name made for another account id (the account was recreated) is
  updated (UpdateStack) to trust the new one.
- `cloudformation: browser` shows the launch URL (and a terminal QR code) and then
  waits for ACTIVE, for operators without AWS credentials on the host.
- Discovery: the inventory runs asynchronously after ACTIVE, so when the clusters
  are not there yet CloudRig requests an inventory and waits for them (the named
  ones, or the first when agents are wanted), instead of listing once.
- Only the clusters named in `clusters` get agents (all discovered ones when it
  is empty), each through its own kubeconfig context: `kube_contexts` maps it, else
  its `status.awsekscluster_arn` (the context `aws eks update-kubeconfig` creates);
  `kube_context` only for a single cluster. The agent URL is read from
  `status.agentURL`, or `agentUrl` (the Terraform provider's spelling); its token is
  masked in every output and log.
- Azure: the runbook documents only AWS's post-registration steps, so for Azure
  CloudRig creates the account and waits for ACTIVE while the operator completes
  the registration in CloudCasa.
- Teardown: `DELETE` with the `_etag` of a fresh read (the runbook shows none;
  Eve answers 428 without it). "In use" is explained with the clusters that use
  the account. The runbook never removes the stack or the agents; teardown says
  that they stay and how to remove them, and with `--purge` uninstalls the agents
  CloudRig installed (`kubectl --context … delete -f <agentURL>`) and deletes the
  stack when it carries CloudRig's tag.
"""

from __future__ import annotations

from tui import probes
from tui.model import Page, Procedure

from .answers import CloudCasaAnswers
from .steps import CASA, STEPS

PAGES = (
    Page("CloudCasa access", "The API and the key CloudRig uses with it.",
         ("api_url", "api_ca_file", "api_key"), probe=probes.cloudcasa),
    Page("Cloud account", "The account as CloudCasa will list it.",
         ("account_name", "description", "tags", "provider_type")),
    Page("CloudFormation", "The stack that gives CloudCasa its role in your AWS account.",
         ("features", "stack_name", "cloudformation", "aws_region")),
    Page("Clusters", "Agents for the Kubernetes clusters CloudCasa discovers.",
         ("install_agents", "clusters", "kube_context", "kube_contexts")),
    Page("Waiting", "How often and how long CloudRig waits for CloudCasa and AWS.",
         ("poll_interval", "poll_timeout")),
)

PROCEDURE = Procedure(
    id="cloudcasa",
    title="CloudCasa cloud accounts",
    summary=(
        "Register an AWS account with CloudCasa: CloudFormation stack, discovered clusters'"
        " agents, inventory"
    ),
    runbook="cloudcasa-cloudaccounts.txt",
    answers_model=CloudCasaAnswers,
    pages=PAGES,
    steps=STEPS,
    remotes=(CASA,),
)

__all__ = ["PROCEDURE", "CloudCasaAnswers"]
