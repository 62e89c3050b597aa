"""cloudcasa against the real services' rules: several EKS clusters each reached through
its own kube context, a discovery that comes after ACTIVE, the stack's life through
teardown and a recreated account, CloudFormation that refuses undeclared parameters and
rolls back, REVIEW_IN_PROGRESS, an account in a state the runbook does not describe, and
the agent URL's token kept out of every output (fakes: fakes/cloudcasa.py,
fakes/cloudformation.py, the stand-in kubectl of cloudcasa_rig)."""

from __future__ import annotations

import base64

import pytest
from cloudcasa_rig import ARN, TEMPLATE, TEMPLATE_014_URL, boto, stacks
from fakes.cloudcasa import TEMPLATE_URL

PROD, DEV = ARN.format("prod-eks"), ARN.format("dev-eks")


def last_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    return stderr.strip().splitlines()[-1]


# ---------------------------------------------------------------- clusters and agents


def test_each_cluster_gets_its_agent_through_its_own_context(rig):
    rig.answers["kube_contexts"] = {"dev-eks": "dev"}
    rig.contexts["dev"] = "dev-eks"
    result = rig.apply()
    assert result.returncode == 0, result.stderr
    calls = sorted(line.split(" apply ")[0] for line in rig.kubectl_log.read_text().splitlines())
    assert calls == sorted(["--context dev", f"--context {PROD}"])
    # Every cluster runs its own agent (one namespace per cluster: a wrong context
    # would have replaced another cluster's agent).
    assert rig.running_agents() == {"prod-eks": "prod-eks", "dev-eks": "dev-eks"}
    account = rig.casa.account_named("prod-aws")
    assert {c["name"]: c["status"]["state"] for c in rig.casa.clusters_of(account["_id"])} \
        == {"prod-eks": "ACTIVE", "dev-eks": "ACTIVE"}


def test_one_kube_context_for_several_clusters_is_refused(rig):
    rig.answers["kube_context"] = "prod"
    result = rig.apply()
    assert result.returncode == 1
    assert ("agents: kube_context names one context but 2 clusters get agents (prod-eks, "
            "dev-eks): map each in kube_contexts") in last_line(result.stderr)
    assert not rig.kubectl_log.exists()  # refused before any agent went anywhere
    # Naming one cluster makes kube_context its context.
    rig.answers["clusters"] = ["prod-eks"]
    assert rig.apply().returncode == 0
    assert rig.kubectl_log.read_text().startswith("--context prod apply -f ")
    assert rig.running_agents() == {"prod-eks": "prod-eks"}


def test_a_cluster_without_an_arn_or_mapping_is_a_sentence(rig):
    rig.casa.discoverable = ["prod-eks", "onprem"]
    original = rig.casa._discover

    def discover(account_id: str) -> None:
        original(account_id)
        for cluster in rig.casa.clusters_of(account_id):
            if cluster["name"] == "onprem":
                del cluster["status"]["awsekscluster_arn"]

    rig.casa._discover = discover
    result = rig.apply()
    assert result.returncode == 1
    assert ("agents: cluster onprem has no kube context: CloudCasa gives no "
            "status.awsekscluster_arn for it; map it in kube_contexts") \
        in last_line(result.stderr)
    assert not rig.kubectl_log.exists()


def test_discovery_after_active_is_waited_for(rig):
    """The inventory runs after ACTIVE, asynchronously: with `clusters: []` apply waits
    for it (and asks for it), then installs every discovered cluster's agent."""
    rig.casa.discover_after = 5
    result = rig.apply()
    assert result.returncode == 0, result.stderr
    assert "inventory job requested: CloudCasa discovers the clusters with it" in result.stderr
    assert "waiting for the inventory to discover the account's clusters: 0 found" \
        in result.stderr
    assert "the inventory to discover the account's clusters: 2 found (after " in result.stderr
    assert rig.running_agents() == {"prod-eks": "prod-eks", "dev-eks": "dev-eks"}


# ---------------------------------------------------------------- the stack's life


def test_teardown_says_the_stack_stays_and_the_next_apply_updates_it(rig):
    rig.answers["install_agents"] = False
    assert rig.apply().returncode == 0
    old = rig.casa.account_named("prod-aws")["_id"]
    [stack] = stacks(rig.aws)
    assert stack["tags"] == {"cloudrig:procedure": "cloudcasa", "cloudrig:account": "prod-aws"}
    down = rig.teardown()
    assert down.returncode == 0, down.stderr
    assert rig.casa.account_named("prod-aws") is None
    assert ("the CloudFormation stack cloudcasa stays in AWS with CloudCasa's cross-account "
            "IAM role; delete it with `aws cloudformation delete-stack --stack-name cloudcasa "
            "--region us-east-1`") in down.stderr
    assert len(stacks(rig.aws)) == 1
    # A new account: the stack is updated to trust it, not refused as another account's.
    again = rig.apply()
    assert again.returncode == 0, again.stderr
    new = rig.casa.account_named("prod-aws")
    assert new["_id"] != old and new["status"]["state"] == "ACTIVE"
    [stack] = stacks(rig.aws)
    assert stack["params"]["CCAccountId"] == new["_id"]
    assert stack["status"] == "UPDATE_COMPLETE"
    assert f"updating stack cloudcasa for cloud account {new['_id']}" in again.stderr


def test_teardown_purge_uninstalls_the_agents_and_deletes_the_stack(rig):
    assert rig.apply().returncode == 0
    before = len(rig.kubectl_log.read_text().splitlines())
    gone = rig.teardown("--purge")
    assert gone.returncode == 0, gone.stderr
    deletes = rig.kubectl_log.read_text().splitlines()[before:]
    assert sorted(d.split(" delete ")[0] for d in deletes) == [f"--context {DEV}",
                                                              f"--context {PROD}"]
    assert all(d.endswith(" --ignore-not-found") for d in deletes)
    assert rig.running_agents() == {}
    assert stacks(rig.aws) == []
    assert rig.casa.account_named("prod-aws") is None
    assert "delete stack cloudcasa (CloudCasa's IAM role)" in gone.stderr
    before = len(rig.casa.log)
    again = rig.teardown("--purge")
    assert again.returncode == 0 and rig.changes(before) == []


def test_purge_keeps_a_stack_cloudrig_did_not_create(rig):
    rig.answers["install_agents"] = False
    assert rig.apply().returncode == 0
    account = rig.casa.account_named("prod-aws")
    cfn = boto(rig.aws, "cloudformation")
    cfn.delete_stack(StackName="cloudcasa")
    cfn.create_stack(StackName="cloudcasa", TemplateURL=TEMPLATE_URL,
                     Capabilities=["CAPABILITY_IAM"],
                     Parameters=[{"ParameterKey": "CCAccountId",
                                  "ParameterValue": account["_id"]}])
    result = rig.teardown("--purge")
    assert result.returncode == 0, result.stderr
    assert ("the CloudFormation stack cloudcasa, which CloudRig did not create (no "
            "cloudrig:procedure tag, or not in its ownership record), stays in AWS"
            ) in result.stderr
    assert len(stacks(rig.aws)) == 1


# ---------------------------------------------------------------- parameters and failures


def test_only_the_template_s_parameters_are_sent(rig):
    from botocore.exceptions import ClientError

    # The test side refuses what AWS refuses (moto alone would create this stack).
    with pytest.raises(ClientError, match=r"Parameters: \[SecurityScan\] do not exist in "
                                          "the template"):
        boto(rig.aws, "cloudformation").create_stack(
            StackName="probe", TemplateURL=TEMPLATE_014_URL,
            Parameters=[{"ParameterKey": "CCAccountId", "ParameterValue": "x"},
                        {"ParameterKey": "SecurityScan", "ParameterValue": "true"}])
    rig.casa.template_url = TEMPLATE_014_URL  # an account given the older template
    rig.answers["install_agents"] = False
    result = rig.apply()
    assert result.returncode == 0, result.stderr
    [stack] = stacks(rig.aws)
    assert set(stack["params"]) == {"CCAccountId", "EKS", "EBSVolumeSnapshot", "RDS"}
    assert (f"warning: the template {TEMPLATE_014_URL} has no SecurityScan parameter, so it "
            "is not sent") in result.stderr
    assert "SecurityScan" not in "".join(rig.strict.refused[1:])


def test_a_rolled_back_stack_quotes_the_resource_that_failed(rig):
    reason = ("API: iam:CreateRole User: arn:aws:iam::123456789012:user/ops is not authorized "
              "to perform: iam:CreateRole on resource: arn:aws:iam::123456789012:role/"
              "cloudcasa-CloudCasaRole because no identity-based policy allows the "
              "iam:CreateRole action")
    rig.strict.roll_back("cloudcasa", "CloudCasaRole", reason)
    result = rig.apply()
    assert result.returncode == 1
    line = last_line(result.stderr)
    assert ("stack cloudcasa is ROLLBACK_COMPLETE (first failure: CloudCasaRole "
            f"(AWS::IAM::Role) CREATE_FAILED: {reason}); a stack in that state can only be "
            "deleted: aws cloudformation delete-stack --stack-name cloudcasa --region "
            "us-east-1, then rerun") in line
    status = rig.cli("status", "cloudcasa", "--json")
    assert "first failure: CloudCasaRole" in status.stdout


def test_review_in_progress_ends_at_once_with_a_sentence(rig):
    rig.answers.update(install_agents=False, poll_timeout=20)
    rig.answers["stack_name"] = "cloudcasa"
    # Someone opened the launch URL: the console made a change set, never executed.
    boto(rig.aws, "cloudformation").create_change_set(
        StackName="cloudcasa", ChangeSetName="console", ChangeSetType="CREATE",
        TemplateBody=TEMPLATE, Capabilities=["CAPABILITY_IAM"],
        Parameters=[{"ParameterKey": "CCAccountId", "ParameterValue": "pending"}])
    result = rig.apply()
    assert result.returncode == 1
    line = last_line(result.stderr)
    assert ("stack cloudcasa is REVIEW_IN_PROGRESS: a change set was created (the launch URL "
            "opened in a browser?) but never executed") in line
    assert "gave up waiting" not in result.stderr


def test_an_account_in_an_undescribed_state_ends_the_wait_at_once(rig):
    rig.answers["poll_timeout"] = 20
    original = rig.casa._advance_account

    def broken(doc):
        original(doc)
        if doc.get("status", {}).get("state") == "PENDING":
            doc["status"] = {"state": "ERROR", "message": "AssumeRole failed"}

    rig.casa._advance_account = broken
    result = rig.apply()
    assert result.returncode == 1
    assert ('cloud account prod-aws is in state ERROR ({"message": "AssumeRole failed"}), not '
            "one the runbook waits through") in last_line(result.stderr)
    assert "gave up waiting" not in result.stderr


def test_the_agent_url_token_is_in_no_output_state_or_log(rig):
    assert rig.cli("plan", "cloudcasa", "--answers", str(rig.answers_file())).returncode == 0
    assert rig.apply().returncode == 0
    assert rig.cli("plan", "cloudcasa", "--answers", str(rig.answers_file())).returncode == 0
    rig.cli("status", "cloudcasa", "--json")
    rig.teardown()  # in use: its sentences and manual lines are scanned too
    account = rig.casa.account_named("prod-aws")
    tokens = [c["status"]["agentURL"].rsplit("/", 1)[1].removesuffix(".yaml")
              for c in rig.casa.clusters_of(account["_id"])]
    assert len(tokens) == 2
    forms = {f for t in tokens for f in (t, base64.b64encode(t.encode()).decode())}
    own = {rig.kubectl_log, rig.kube_state}  # the stand-in kubectl's own files
    files = [p for p in rig.tmp.rglob("*") if p.is_file() and "bin" not in p.parts
             and p not in own]
    assert any(p.name == "cloudrig.log" for p in files)
    for path in files:
        text = path.read_bytes().decode(errors="replace")
        assert not any(f in text for f in forms), f"agent token in {path}"
    for output in rig.outputs:
        assert not any(f in output for f in forms)
    assert "kubeclusteragents/" in "".join(rig.outputs)  # the URL is shown, masked
