"""cloudcasa end to end from the CLI against a fake CloudCasa, moto and a fake kubectl."""

from __future__ import annotations

import json
import shutil

from cloudcasa_rig import REGION, rig, moto_server, stacks  # noqa: F401  (fixtures)


def test_aws_path_end_to_end_then_a_second_apply_creates_nothing(rig):  # noqa: F811
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
    assert body["Parameters"]["RDS"] == "true" and body["StackName"] == "cloudcasa"
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
    calls = rig.kubectl_log.read_text().splitlines()
    assert sorted(calls) == sorted(f"--context test-ctx apply -f {c['status']['agentURL']}"
                                   for c in clusters.values())
    assert sorted(casa.agents_fetched) == ["dev-eks", "prod-eks"]
    assert casa.inventories[account["_id"]] == 2  # the automatic one and the requested one
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
