"""cloudcasa end to end from the CLI against a fake CloudCasa, moto and a fake kubectl."""

from __future__ import annotations

import json
import re
import shutil
import signal
import time

import pytest
from cloudcasa_rig import stacks
from fakes.cloudcasa import TEMPLATE_URL


def test_aws_path_end_to_end_then_a_second_apply_creates_nothing(rig):
    # The preview: what will be created, with the runbook's parameters and capability
    # (moto does not record Capabilities, so the plan is where they are checked).
    plan = rig.cli("plan", "cloudcasa", "--answers", str(rig.answers_file()), "--json")
    assert plan.returncode == 0, plan.stderr
    planned = {s["step"]: s for s in json.loads(plan.stdout)["steps"]}
    [create] = planned["account"]["items"]
    assert (create["method"], json.loads(create["body"])) == ("POST", {
        "name": "prod-aws", "description": "Created by CloudRig tests",
        "tags": {"team": "platform"}, "provider_type": "aws"})
    [stack_call] = planned["cloudformation"]["items"]
    body = json.loads(stack_call["body"])
    assert stack_call["method"] == "CreateStack" and body["Capabilities"] == ["CAPABILITY_IAM"]
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in body["Parameters"]}
    assert parameters["RDS"] == "true" and body["StackName"] == "cloudcasa"
    assert rig.changes() == []

    result = rig.apply()
    assert result.returncode == 0, result.stderr
    casa = rig.casa
    account = casa.account_named("prod-aws")
    assert account["status"]["state"] == "ACTIVE"
    assert account["tags"] == {"team": "platform"} and account["provider_type"] == "aws"
    [stack] = stacks(rig.aws)
    assert stack["name"] == "cloudcasa" and stack["status"] == "CREATE_COMPLETE"
    assert stack["params"] == {"CCAccountId": account["_id"], "EKS": "true",
                               "EBSVolumeSnapshot": "true", "RDS": "true",
                               "SecurityScan": "true"}
    clusters = {c["name"]: c for c in casa.clusters_of(account["_id"])}
    assert {n: c["status"]["state"] for n, c in clusters.items()} == {
        "prod-eks": "ACTIVE", "dev-eks": "ACTIVE"}
    # Each agent through its own cluster's context (its ARN), and running there.
    calls = rig.kubectl_log.read_text().splitlines()
    assert sorted(calls) == sorted(
        f"--context {c['status']['awsekscluster_arn']} apply -f {c['status']['agentURL']}"
        for c in clusters.values())
    assert rig.running_agents() == {"prod-eks": "prod-eks", "dev-eks": "dev-eks"}
    assert sorted(casa.agents_fetched) == ["dev-eks", "prod-eks"]
    # The one started at ACTIVE (the clusters step's request joined it; the inventory
    # step asks for no second one in the same run).
    assert casa.inventories[account["_id"]] == 1
    # Every wait shows its progress with the elapsed time.
    err = result.stderr
    for what in ("cloud account prod-aws to reach PENDING", "stack cloudcasa to be created",
                 "cloud account prod-aws to become ACTIVE", "cluster prod-eks to become ACTIVE",
                 "cluster dev-eks to become ACTIVE"):
        assert f"waiting for {what}: " in err or f"{what}: " in err, what
        assert f"{what}: " in err and "(after " in err
    assert "waiting for cloud account prod-aws to reach PENDING: no status yet (elapsed" in err

    status = rig.cli("status", "cloudcasa", "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    steps = {s["step"]: s for s in json.loads(status.stdout)["steps"]}
    assert all(s["status"] == "done" for s in steps.values()), steps
    assert "ACTIVE" in steps["account"]["detail"]
    assert "prod-eks ACTIVE (agent running)" in steps["clusters"]["detail"]
    assert "last inventory requested" in steps["inventory"]["detail"]

    before = len(casa.log)
    again = rig.apply()
    assert again.returncode == 0, again.stderr
    assert rig.posts(before) == [f"/api/v1/cloudaccounts/{account['_id']}/action/inventory"]
    assert len(stacks(rig.aws)) == 1 and len(casa.docs["cloudaccounts"]) == 1
    assert len(rig.kubectl_log.read_text().splitlines()) == 2
    # CloudCasa and AWS are the truth: with the state directory gone, still nothing new.
    shutil.rmtree(rig.state)
    before = len(casa.log)
    assert rig.apply().returncode == 0
    assert [p for p in rig.posts(before) if not p.endswith("/action/inventory")] == []
    assert len(stacks(rig.aws)) == 1 and len(casa.docs["cloudaccounts"]) == 1


def _wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the apply never reached the poll"
        time.sleep(0.05)


def _polling_for_active(rig) -> bool:
    account = rig.casa.account_named("prod-aws")
    if account is None or account.get("status", {}).get("state") != "PENDING":
        return False
    if not stacks(rig.aws):
        return False
    # A few more reads of the account after the stack exists: the ACTIVE poll is on.
    path = f"/api/v1/cloudaccounts/{account['_id']}"
    return sum(1 for r in rig.casa.log if r.path == path) >= rig.casa.pending_after + 6


@pytest.mark.parametrize("how", ["SIGKILL", "SIGINT"])
def test_a_run_stopped_during_a_poll_resumes_at_that_poll(rig, how):
    rig.casa.hold_active = True  # CloudCasa is slow to see the stack
    proc = rig.popen_apply()
    try:
        _wait_for(lambda: _polling_for_active(rig))
        proc.send_signal(getattr(signal, how))
        _out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    state = rig.run_state()
    assert state["last_run"]["completed"] == ["account", "registered", "cloudformation"]
    if how == "SIGKILL":
        assert proc.returncode == -signal.SIGKILL
        assert state["last_run"]["outcome"] == "running"  # it never recorded its end
    else:
        assert proc.returncode == 130
        assert state["last_run"]["outcome"] == "interrupted"
        assert "interrupted" in err and "Traceback" not in err

    rig.casa.hold_active = False
    before = len(rig.casa.log)
    resumed = rig.apply()
    assert resumed.returncode == 0, resumed.stderr
    err = resumed.stderr
    for title in ("Cloud account", "Registration started (PENDING)", "CloudFormation stack"):
        assert f"{title}: done in the interrupted run" in err
    assert "cloud account prod-aws to become ACTIVE: ACTIVE" in err
    assert "/api/v1/cloudaccounts" not in rig.posts(before)
    assert "created stack" not in err
    assert len(stacks(rig.aws)) == 1 and len(rig.casa.docs["cloudaccounts"]) == 1


def test_a_wait_that_times_out_says_so_and_the_browser_path_resumes(rig):
    rig.answers.update(cloudformation="browser", poll_timeout=1)
    first = rig.apply()
    assert first.returncode == 1
    err = first.stderr
    assert "Traceback" not in err
    assert "open in a browser signed in to AWS: https://console.aws.amazon.com/cloudformation/" \
           "home#/stacks/create/review?templateURL=" in err
    assert "▀" in err or "█" in err  # the QR code, for a phone over SSH
    # How long the wait lasted depends on the machine's load (the last poll may end
    # after the limit): only its form is checked, never the seconds.
    assert re.search(r"active: gave up waiting for cloud account prod-aws to become ACTIVE "
                     r"after \d+s \(last seen: PENDING\); nothing is lost: rerun apply to "
                     r"resume waiting", err), err
    assert stacks(rig.aws) == []  # CloudRig never touched AWS
    state = rig.run_state()
    assert state["steps"]["cloudformation"]["status"] == "manual"

    # The operator opens the link: AWS creates the stack CloudCasa's URL describes.
    account = rig.casa.account_named("prod-aws")
    from cloudcasa_rig import boto

    boto(rig.aws, "cloudformation").create_stack(
        StackName="cloudcasa-v015", TemplateURL=TEMPLATE_URL, Capabilities=["CAPABILITY_IAM"],
        Parameters=[{"ParameterKey": "CCAccountId", "ParameterValue": account["_id"]}])
    before = len(rig.casa.log)
    second = rig.apply()
    assert second.returncode == 0, second.stderr
    assert "Cloud account: done in the interrupted run" in second.stderr
    assert "/api/v1/cloudaccounts" not in rig.posts(before)
    assert rig.casa.account_named("prod-aws")["status"]["state"] == "ACTIVE"


def _one_sentence(stderr: str) -> str:
    """The failure line the CLI ends with (progress lines come before it)."""
    assert "Traceback" not in stderr
    return stderr.strip().splitlines()[-1]


def test_a_refused_api_key_is_one_sentence(rig):
    rig.secrets["api_key"] = "cc-not-the-right-key-0123456789"
    result = rig.apply()
    assert result.returncode == 1
    line = _one_sentence(result.stderr)
    assert line.startswith("account: CloudCasa at ")
    assert "refused the API key (401 (Please provide proper credentials))" in line
    assert "cc-not-the-right-key" not in result.stdout + result.stderr
    assert rig.changes() == []


def test_an_api_url_without_the_api_is_a_404_sentence(rig):
    rig.answers["api_url"] = rig.casa.url + "/api/v2"
    result = rig.apply()
    assert result.returncode == 1
    line = _one_sentence(result.stderr)
    assert "/api/v2 has no /cloudaccounts endpoint (404): check the API URL" in line


def test_teardown_in_use_names_what_uses_the_account(rig):
    assert rig.apply().returncode == 0
    refused = rig.teardown()
    assert refused.returncode == 1
    line = _one_sentence(refused.stderr)
    assert ("cannot delete cloud account 'prod-aws': CloudCasa says it is in use (409: Cloud "
            "account is in use by 2 cluster(s)); it is used by kubeclusters prod-eks "
            "(ACTIVE), dev-eks (ACTIVE)") in line
    assert "then rerun teardown" in line
    assert rig.casa.account_named("prod-aws") is not None
    # What stays is said: the agents, and the stack with CloudCasa's IAM role.
    assert "the CloudCasa agents stay on prod-eks (context arn:aws:eks:us-east-1:" \
           "727923484692:cluster/prod-eks)" in refused.stderr
    assert "`cloudrig teardown cloudcasa --purge` uninstalls them" in refused.stderr
    assert ("the CloudFormation stack cloudcasa stays in AWS with CloudCasa's cross-account "
            "IAM role; delete it with `aws cloudformation delete-stack --stack-name cloudcasa "
            "--region us-east-1` or `cloudrig teardown cloudcasa --purge`") in refused.stderr
    assert rig.running_agents() and len(stacks(rig.aws)) == 1


def test_the_api_key_never_appears_in_output_state_or_logs(rig):
    key = rig.casa.api_key
    answers = str(rig.answers_file())
    assert rig.cli("plan", "cloudcasa", "--answers", answers).returncode == 0
    assert rig.apply().returncode == 0
    assert rig.cli("status", "cloudcasa", "--json").returncode == 0
    assert rig.cli("status", "cloudcasa").returncode == 0
    assert rig.teardown().returncode == 1  # in use: its sentence is scanned too
    rig.casa.fail(500, f'{{"_status": "ERR", "_error": {{"message": "echo {key}"}}}}',
                  times=10, path_prefix="/api/v1/cloudaccounts", method="GET")
    assert rig.apply("--debug").returncode != 0  # the server echoes the key back
    import base64
    from urllib.parse import quote

    forms = {key, quote(key, safe=""), base64.b64encode(key.encode()).decode()}
    files = [p for p in rig.tmp.rglob("*") if p.is_file() and "bin" not in p.parts]
    assert any(p.name == "cloudcasa.json" for p in files)
    assert any(p.name == "cloudrig.log" for p in files)
    for path in files:
        text = path.read_bytes().decode(errors="replace")
        for form in forms:
            assert form not in text, f"API key in {path}"
    assert len(rig.outputs) == 6
    for output in rig.outputs:
        for form in forms:
            assert form not in output
    # It did go where it belongs: every request to CloudCasa carried it.
    assert all(r.headers.get("authorization") == f"Bearer {key}" for r in rig.casa.log
               if r.path.startswith("/api/"))


def test_bad_answers_name_the_field_and_change_nothing(rig):
    rig.answers.update(features=["EKS", "Backups"], stack_name="9lives", provider_type="gcp",
                       tags="team")
    result = rig.apply()
    assert result.returncode == 2
    err = result.stderr
    assert ("features.1: Input should be 'EKS', 'EBSVolumeSnapshot', 'RDS' or 'SecurityScan' "
            "(got 'Backups')") in err and "(for example: features: [EKS, EBSVolumeSnapshot])" in err
    assert "stack_name: '9lives' is not a valid CloudFormation stack name" in err
    assert "(for example: stack_name: cloudcasa)" in err
    assert "provider_type: Input should be 'aws' or 'azure' (got 'gcp')" in err
    assert "tags: 'team' is not key=value" in err
    assert rig.casa.log == [] and stacks(rig.aws) == []
    assert not (rig.state / "cloudcasa.json").exists()


def test_dry_run_reads_but_changes_nothing(rig):
    result = rig.apply("--dry-run")
    assert result.returncode == 0, result.stderr
    assert "skipped (dry run): POST" in result.stderr
    assert rig.changes() == [] and stacks(rig.aws) == []
    assert not rig.kubectl_log.exists()


def test_azure_account_waits_for_the_operator_then_reports_active(rig):
    rig.answers.update(provider_type="azure", install_agents=False, poll_timeout=1)
    first = rig.apply()
    assert first.returncode == 1
    assert "finish the Azure registration of this account in CloudCasa" in first.stderr
    assert "gave up waiting for cloud account prod-aws to become ACTIVE" in first.stderr
    assert stacks(rig.aws) == []
    account = rig.casa.account_named("prod-aws")
    assert account["provider_type"] == "azure"
    account["status"] = {"state": "ACTIVE"}  # the operator finished it in CloudCasa
    second = rig.apply()
    assert second.returncode == 0, second.stderr
    assert len(rig.casa.docs["cloudaccounts"]) == 1


def test_changed_description_is_patched_with_its_etag_and_412_is_one_sentence(rig):
    assert rig.apply().returncode == 0
    account = rig.casa.account_named("prod-aws")
    rig.answers["description"] = "owned by the platform team"
    # Someone edits the account between CloudRig's read and its PATCH.
    original = rig.casa.handle

    def racing(request):
        if request.method == "PATCH":
            rig.casa.touch("cloudaccounts", account["_id"])
        return original(request)

    rig.casa.handle = racing
    stale = rig.apply("--step", "account")
    assert stale.returncode == 1
    line = _one_sentence(stale.stderr)
    assert "was refused because the document changed since CloudRig read it (412 stale etag " \
           "(Client and server etags don't match)); someone else edited it: rerun" in line
    rig.casa.handle = original
    before = len(rig.casa.log)
    fixed = rig.apply("--step", "account")
    assert fixed.returncode == 0, fixed.stderr
    assert rig.changes(before) == [f"PATCH /api/v1/cloudaccounts/{account['_id']}"]
    assert rig.casa.log[-1].headers["if-match"]
    assert rig.casa.account_named("prod-aws")["description"] == "owned by the platform team"


def test_a_failing_kubectl_is_one_sentence_and_the_rerun_installs_the_agents(rig):
    rig.answers["kube_contexts"] = {"prod-eks": "missing"}
    failed = rig.apply()
    assert failed.returncode == 1
    line = failed.stderr.strip().splitlines()
    assert "Traceback" not in failed.stderr, failed.stderr
    # The agent URL is shown with its token masked (hence shell-quoted).
    assert any(ln.startswith("agents: `kubectl --context missing apply -f 'http://") and
               "exited with status 1; last output:" in ln for ln in line), failed.stderr
    assert 'error: context "missing" does not exist' in failed.stderr
    rig.answers["kube_contexts"] = {"prod-eks": "prod"}
    before = len(rig.casa.log)
    fixed = rig.apply()
    assert fixed.returncode == 0, fixed.stderr
    assert "/api/v1/cloudaccounts" not in rig.posts(before) and len(stacks(rig.aws)) == 1
    assert sorted(rig.casa.agents_fetched) == ["dev-eks", "prod-eks"]
