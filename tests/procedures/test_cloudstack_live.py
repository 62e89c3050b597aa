"""cloudstack end to end through the CLI against the fake CloudStack API."""

from __future__ import annotations

import base64
import json
import re
import subprocess
from dataclasses import dataclass

import pytest
from fakes.cloudstack import FakeCloudStack
from private_cli import ProcedureRig

USER_DATA = "#cloud-config\nhostname: web-1\npackages: [nginx]\n"
PASSWORD = "Vm-Pa55word-xyzzy"


@dataclass(kw_only=True)
class Rig(ProcedureRig):
    fake: FakeCloudStack

    def apply(self, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.cli("apply", "cloudstack", "--answers", str(self.write_answers()),
                        "--yes", *extra)

    def user_data(self, vm: dict) -> str:
        return base64.b64decode(vm["_userdata"]).decode() if vm["_userdata"] else ""


@pytest.fixture
def rig(tmp_path):
    fake = FakeCloudStack(job_polls=3).start()
    net = fake.add_network("guest-net", "VirtualRouter")
    fake.vm = fake.add_vm("web-1", [net])
    rig = Rig(tmp=tmp_path, fake=fake)
    rig.answers = {"api_url": fake.url + "/client/api", "api_key": fake.api_key,
                   "vm": "web-1", "user_data": USER_DATA}
    rig.secrets = {"secret_key": fake.secret_key}
    yield rig
    fake.stop()


def _verified(fake: FakeCloudStack) -> None:
    assert fake.log, "no request reached the API"
    assert all(r.arg("signature") or b"signature=" in r.body for r in fake.log)


def test_apply_sets_user_data_with_jobs_and_a_second_apply_changes_nothing(rig):
    rig.answers["restart"] = True
    result = rig.apply()
    assert result.returncode == 0, result.stderr
    fake = rig.fake
    assert fake.changes() == ["stopVirtualMachine", "updateVirtualMachine",
                              "startVirtualMachine"]
    assert rig.user_data(fake.vm) == USER_DATA
    assert fake.vm["state"] == "Running"
    # every job followed to its end by the shared poll(), its waits on stderr
    for command in ("stopVirtualMachine", "startVirtualMachine"):
        assert f"{command}: job" in result.stderr
        assert re.search(rf"waiting for CloudStack job \S+ \({command}\): pending",
                         result.stderr)
        assert re.search(rf"CloudStack job \S+ \({command}\): succeeded", result.stderr)
    _verified(fake)
    assert not [r for r in fake.log if r.arg("command") == "queryAsyncJobResult"
                and r.method != "GET"]

    before = len(fake.log)
    again = rig.apply()
    assert again.returncode == 0, again.stderr
    assert fake.changes(before) == []
    assert "nothing to change" in again.stderr

    status = rig.cli("status", "cloudstack", "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    report = json.loads(status.stdout)
    detail = {s["step"]: s["detail"] for s in report["steps"]}
    assert "user data matches" in detail["userdata"]
    assert "provider VirtualRouter" in detail["userdata"]
    assert "last job startVirtualMachine" in detail["userdata"] and "succeeded" in \
        detail["userdata"]


def test_running_instance_without_restart_is_updated_and_warned(rig):
    result = rig.apply()
    assert result.returncode == 0, result.stderr
    assert rig.fake.changes() == ["updateVirtualMachine"]
    assert "next restart" in result.stderr


def test_large_user_data_goes_by_post(rig):
    big = "#cloud-config\nwrite_files:\n- path: /etc/big\n  content: " + "x" * 6000 + "\n"
    rig.answers["user_data"] = big
    result = rig.apply()
    assert result.returncode == 0, result.stderr
    update = [r for r in rig.fake.log if b"command=updateVirtualMachine" in r.body]
    assert update and update[0].method == "POST"
    assert rig.user_data(rig.fake.vm) == big


def test_user_data_over_the_clouds_limit_fails_before_any_change(rig):
    rig.fake.config["vm.userdata.max.length"] = "40"
    result = rig.apply()
    assert result.returncode == 1
    assert "over this cloud's limit of 40 (vm.userdata.max.length)" in result.stderr
    assert rig.fake.changes() == []


def test_unreadable_limit_falls_back_to_32k(rig):
    rig.fake.config_readable = False
    rig.answers["user_data"] = "#cloud-config\nbootcmd: ['" + "y" * 30000 + "']\n"
    result = rig.apply()
    assert result.returncode == 1
    assert "limit of 32768 (the default (setting unreadable))" in result.stderr
    assert rig.fake.changes() == []


def test_invalid_cloud_config_is_exit_2_with_the_line_and_no_request(rig, tmp_path):
    bad = tmp_path / "ud.yaml"
    bad.write_text("#cloud-config\nhostname: web-1\npackages: [nginx\nruncmd: []\n")
    rig.answers.pop("user_data")
    rig.answers["user_data_file"] = str(bad)
    result = rig.apply()
    assert result.returncode == 2
    assert "user_data_file" in result.stderr and "not valid YAML at line" in result.stderr
    assert "for example" in result.stderr
    assert rig.fake.log == []
    assert not rig.state.exists() or not list(rig.state.glob("*.json"))


def test_network_without_userdata_provider_is_exit_1_without_change(rig):
    net = rig.fake.add_network("l2-net", None)
    rig.fake.add_vm("bare", [net])
    rig.answers["vm"] = "bare"
    result = rig.apply()
    assert result.returncode == 1
    assert "network l2-net offers no UserData service" in result.stderr  # one: singular
    assert rig.fake.changes() == []


def test_vm_on_a_vpc_tier_gets_its_user_data_from_the_vpc_router(rig):
    """VPC tiers serve UserData through VpcVirtualRouter (CloudStack's Network.Provider)."""
    tier = rig.fake.add_network("web-tier", "VpcVirtualRouter", vpc="vpc-1")
    vm = rig.fake.add_vm("vpc-web", [tier])
    rig.answers["vm"] = "vpc-web"
    result = rig.apply()
    assert result.returncode == 0, result.stderr
    assert rig.fake.changes() == ["updateVirtualMachine"]
    assert rig.user_data(vm) == USER_DATA
    assert "user data served by VpcVirtualRouter on web-tier" in result.stderr
    report = json.loads(rig.cli("status", "cloudstack", "--json").stdout)
    detail = {s["step"]: s["detail"] for s in report["steps"]}
    assert "user data by VpcVirtualRouter" in detail["instance"]


def test_the_fake_offers_userdata_only_through_providers_cloudstack_has():
    fake = FakeCloudStack()
    with pytest.raises(ValueError, match="doesn't support service UserData"):
        fake.add_network("srx", "JuniperSRX")
    with pytest.raises(ValueError, match="VpcVirtualRouter"):
        fake.add_network("tier", "VirtualRouter", vpc="vpc-1")
    tier = fake.add_network("tier", "VpcVirtualRouter", vpc="vpc-1")
    assert {p["name"] for s in tier["service"] for p in s["provider"]} == {"VpcVirtualRouter"}
    assert tier["vpcname"] == "vpc-1"


def test_restart_leaves_a_stopped_instance_stopped(rig):
    rig.fake.vm["state"] = "Stopped"
    rig.answers["restart"] = True
    result = rig.apply()
    assert result.returncode == 0, result.stderr
    assert rig.fake.changes() == ["updateVirtualMachine"]
    assert rig.fake.vm["state"] == "Stopped"
    assert rig.user_data(rig.fake.vm) == USER_DATA
    assert "web-1 is Stopped: user data set, and it stays that way" in result.stderr


def test_empty_user_data_is_refused_before_any_request(rig, tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    del rig.answers["user_data"]
    rig.answers["user_data_file"] = str(empty)
    result = rig.apply()
    assert result.returncode == 2
    assert f"user_data_file: {empty} is empty" in result.stderr
    assert "User data is too short" in result.stderr
    rig.answers.pop("user_data_file")
    rig.answers["user_data"] = ""  # an empty answer is "not given": refused as well
    assert rig.apply().returncode == 2
    assert rig.fake.log == []


def test_the_fake_refuses_empty_user_data_as_cloudstack_does(rig):
    from tui.clients.cloudstack import CloudStackClient
    from tui.errors import OperatorError

    api = CloudStackClient(rig.fake.url + "/client/api", rig.fake.api_key,
                           rig.fake.secret_key)
    try:
        with pytest.raises(OperatorError, match="User data is too short"):
            api.call("updateVirtualMachine", {"id": rig.fake.vm["id"], "userdata": ""},
                     changes=True)
    finally:
        api.close()


def test_plan_and_apply_say_what_cloud_init_will_not_run_again(rig):
    """runcmd and write_files run once per instance: the plan and the message after
    apply say so, and name the ways that work."""
    rig.answers["user_data"] = ("#cloud-config\nbootcmd: [echo boot]\nruncmd: [touch /x]\n"
                                "write_files:\n- path: /etc/y\n  content: y\n")
    rig.answers["restart"] = True
    plan = rig.cli("plan", "cloudstack", "--answers", str(rig.write_answers()))
    assert plan.returncode == 0, plan.stderr
    flat = " ".join(plan.stdout.split())
    assert "runs runcmd, write_files once per instance" in flat
    assert "cloud-init clean --reboot" in flat and "bootcmd" in flat
    assert "bootcmd," not in flat.split("runs ", 1)[1].split(" once")[0]
    result = rig.apply()
    assert result.returncode == 0, result.stderr
    assert "runs runcmd, write_files once per instance" in result.stderr
    assert "text/x-shellscript-per-boot" in result.stderr


def test_failed_job_is_exit_1_naming_the_job(rig):
    rig.answers["restart"] = True
    rig.fake.fail_jobs.append("stopVirtualMachine")
    result = rig.apply()
    assert result.returncode == 1
    jobid = next(iter(rig.fake.jobs))
    assert jobid in result.stderr and "insufficient capacity" in result.stderr
    assert "Traceback" not in result.stderr
    assert rig.fake.changes() == ["stopVirtualMachine"]


def test_wrong_secret_key_is_one_sentence(rig):
    rig.secrets["secret_key"] = "not-the-key-123"
    result = rig.apply()
    assert result.returncode == 1
    assert "unable to verify user credentials and/or request signature" in result.stderr
    assert "Traceback" not in result.stderr
    assert rig.fake.changes() == []


@pytest.mark.parametrize("status,body", [(530, ""), (503, "busy"), (200, "<html>")])
def test_remote_failures_are_one_sentence(rig, status, body):
    rig.fake.fail(status, body, times=10)
    result = rig.apply()
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert rig.fake.changes() == []


def test_iso_mode_writes_a_drive_once_and_no_secret_leaks(rig, tmp_path):
    iso = tmp_path / "out" / "web-1.iso"
    rig.answers = {"mode": "iso", "iso_path": str(iso), "user_data": USER_DATA,
                   "vm_id": "6b2e8f1c-1d2f-4c7a-9a55-0a1b2c3d4e5f", "instance_id": "i-2-5-VM",
                   "local_hostname": "web-1", "availability_zone": "zone-1",
                   "service_offering": "Small Instance",
                   "public_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGk7 op@host"]}
    rig.secrets = {"vm_password": PASSWORD}
    plan = rig.cli("plan", "cloudstack", "--answers", str(rig.write_answers()), "--json")
    assert plan.returncode == 0, plan.stderr
    first = rig.apply()
    assert first.returncode == 0, first.stderr
    image = iso.read_bytes()
    assert PASSWORD.encode() in image
    assert oct(iso.stat().st_mode & 0o777) == "0o600"
    again = rig.apply()
    assert again.returncode == 0 and iso.read_bytes() == image
    assert "unchanged" in again.stderr
    status = rig.cli("status", "cloudstack")
    assert status.returncode == 0, status.stdout
    _no_secret_anywhere(rig, [PASSWORD])


def test_secret_key_never_appears_in_output_state_or_log(rig):
    rig.answers["restart"] = True
    rig.cli("plan", "cloudstack", "--answers", str(rig.write_answers()), "--json")
    assert rig.apply().returncode == 0
    rig.cli("status", "cloudstack", "--json")
    rig.secrets["secret_key"] = rig.fake.secret_key + "x"
    rig.apply()  # a failing run must not leak either
    _no_secret_anywhere(rig, [rig.fake.secret_key])


def test_secret_in_the_answers_file_is_refused(rig):
    rig.answers["secret_key"] = rig.fake.secret_key
    result = rig.apply()
    assert result.returncode == 2
    assert "secrets never go in answers files" in result.stderr
    assert rig.fake.log == []


def test_iso_mode_without_vm_id_is_exit_2_and_writes_nothing(rig, tmp_path):
    iso = tmp_path / "x.iso"
    rig.answers = {"mode": "iso", "iso_path": str(iso), "user_data": USER_DATA}
    result = rig.apply()
    assert result.returncode == 2
    assert "vm_id: is required when mode is iso" in result.stderr
    assert "for example: vm_id: 6b2e8f1c" in result.stderr
    assert not iso.exists()


def _no_secret_anywhere(rig: Rig, secrets: list[str]) -> None:
    texts = list(rig.outputs)
    for path in rig.state.rglob("*"):
        if path.is_file():
            texts.append(path.read_bytes().decode("utf-8", errors="replace"))
    assert texts
    for secret in secrets:
        forms = {secret, base64.b64encode(secret.encode()).decode()}
        for text in texts:
            for form in forms:
                assert form not in text


def test_cancel_while_a_job_runs_stops_with_its_id_and_leaves_it(rig, tmp_path):
    import threading
    import time

    from tui.engine import Session
    from tui.registry import get_procedure
    from tui.secrets import SecretSource
    from tui.state import StateStore

    rig.fake.job_polls = 10_000
    procedure = get_procedure("cloudstack")
    answers = procedure.answers_model.model_validate({**rig.answers, "restart": True})
    secrets = SecretSource("cloudstack", ["secret_key", "vm_password"],
                           overrides={"secret_key": rig.fake.secret_key}, interactive=False)
    events: list[str] = []
    session = Session(procedure, answers, secrets, StateStore(tmp_path / "state"),
                      on_event=lambda e: events.append(e.message))

    def cancel_when_pending() -> None:
        deadline = time.monotonic() + 30
        while not any("pending" in e for e in events) and time.monotonic() < deadline:
            time.sleep(0.05)
        session.ctx.cancel.set()

    threading.Thread(target=cancel_when_pending, daemon=True).start()
    result = session.apply()
    assert result.outcome == "interrupted" and result.exit_code == 130
    jobid = next(iter(rig.fake.jobs))
    assert jobid in (result.message or "") and "still running" in (result.message or "")
    assert rig.fake.changes() == ["stopVirtualMachine"]
    assert rig.fake.vm["state"] == "Running"


def test_server_refusal_431_is_one_sentence_with_cloudstacks_text(rig):
    # the limit cannot be read, so the 32 KB default lets it through; the cloud refuses
    rig.fake.config_readable = False
    rig.fake.config["vm.userdata.max.length"] = "40"
    result = rig.apply()
    assert result.returncode == 1
    assert ("refused updateVirtualMachine (431: User data has exceeded configurable max "
            "length : 40); a parameter was refused") in result.stderr
    assert "Traceback" not in result.stderr
    assert rig.user_data(rig.fake.vm) == ""


def test_job_waits_are_the_shared_poll(rig, tmp_path):
    """stop and start are waited for by tui.poll.poll like every other wait: a live
    "poll" event after each pending queryAsyncJobResult, a progress line when the
    state changes, the elapsed time in both."""
    from tui.engine import Session
    from tui.registry import get_procedure
    from tui.secrets import SecretSource
    from tui.state import StateStore

    rig.fake.job_polls = 3
    procedure = get_procedure("cloudstack")
    answers = procedure.answers_model.model_validate({**rig.answers, "restart": True})
    secrets = SecretSource("cloudstack", ["secret_key", "vm_password"],
                           overrides={"secret_key": rig.fake.secret_key}, interactive=False)
    events = []
    session = Session(procedure, answers, secrets, StateStore(tmp_path / "state"),
                      on_event=events.append)
    assert session.apply().exit_code == 0
    for command in ("stopVirtualMachine", "startVirtualMachine"):
        waits = [e for e in events if f"({command})" in e.message]
        assert [e.kind for e in waits if "pending" in e.message] == [
            "info", "poll", "poll"], [e.message for e in waits]
        assert all("poll" not in e.kind or " · poll " in e.message for e in waits)
        assert "succeeded (after " in waits[-1].message
