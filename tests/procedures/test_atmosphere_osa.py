"""atmosphere across OpenStack-Ansible releases: the release is read from the deployment
host's checkout (or the answer osa_release) and the Keystone admin API is opened the way
that release has it. Each release is tested with the abridged upstream files of its tag
(tests/fixtures/osa/<major>/, source in each file's header)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from atmosphere_rig import (
    ATMO_PASSWORD,
    OSA_FIXTURES,
    PROVIDER_SECRET,
    Cli,
    base_answers,
    osa_checkout,
    stage_osa,
)

from tui.answers import validate
from tui.engine import Session
from tui.procedures.atmosphere import AtmosphereAnswers
from tui.registry import get_procedure
from tui.secrets import SecretSource
from tui.state import StateStore

PROC = get_procedure("atmosphere")
NETWORKS = ["192.168.0.0/16", "10.0.0.0/8", "128.196.0.0/16"]


def session(tmp: Path, answers: dict, root: Path | None = None) -> Session:
    secrets = SecretSource("atmosphere", ["atmo_admin_password", "provider_secret",
                                          "os_admin_password"],
                           overrides={"atmo_admin_password": ATMO_PASSWORD,
                                      "provider_secret": PROVIDER_SECRET}, interactive=False)
    return Session(procedure=PROC, answers=validate(AtmosphereAnswers, answers),
                   secrets=secrets, store=StateStore(tmp / "state"), root=root)


def user_variables(s: Session) -> tuple[dict, list[str], str]:
    """(parsed file, manual lines, the file item's description) of the step's plan."""
    [plan] = s.plan(["user-variables"])
    assert plan.error is None, plan.error
    [item] = [i for i in plan.items if i.kind == "file"
              and i.path.endswith("/user_variables_atmosphere.yml")]
    manual = [i.text for i in plan.items if i.kind == "manual"]
    return yaml.safe_load(item.content), manual, item.description


def upstream_services(major: int) -> list[dict]:
    """haproxy_default_services of the fixture, as OSA has it at that tag."""
    relative = {14: "playbooks/vars/configs/haproxy_config.yml"}[major]
    text = (OSA_FIXTURES / str(major) / "opt/openstack-ansible" / relative).read_text()
    return yaml.safe_load(text)["haproxy_default_services"]


@pytest.mark.parametrize(("major", "mode", "series"), [
    (14, "copy", "Newton"), (15, "variable", "Ocata"), (16, "variable", "Pike"),
    (18, "variable", "Rocky"), (19, "none", "Stein"),
])
def test_each_release_opens_keystone_admin_its_own_way(tmp_path, major, mode, series):
    """Read from the checkout as the deployment host has it (staged under --root):
    14 copies the services list, 15-18 set the one whitelist variable, 19 has no
    keystone_admin service at all."""
    root = tmp_path / "root"
    stage_osa(root, major)
    answers = base_answers(tmp_path, atmosphere_networks=NETWORKS)
    answers["osa_dir"] = "/opt/openstack-ansible"
    data, manual, description = user_variables(session(tmp_path, answers, root=root))
    where = ("OSA_VERSION in /usr/local/bin/openstack-ansible" if major == 19 else
             "openstack_release in /opt/openstack-ansible/")
    assert f"OSA {major} ({series}), from {where}" in description
    if mode == "copy":
        assert "haproxy_keystone_admin_whitelist_networks" not in data
        ours, theirs = data["haproxy_default_services"], upstream_services(major)
        assert len(ours) == len(theirs)
        for mine, upstream in zip(ours, theirs, strict=True):
            if upstream["service"]["haproxy_service_name"] != "keystone_admin":
                assert mine == upstream
                continue
            changed = {k for k in mine["service"]
                       if mine["service"].get(k) != upstream["service"].get(k)}
            assert changed == {"haproxy_ssl", "haproxy_whitelist_networks"}
            assert mine["service"]["haproxy_ssl"] == "{{ haproxy_ssl }}"
            assert mine["service"]["haproxy_whitelist_networks"] == NETWORKS
    elif mode == "variable":
        assert data["haproxy_keystone_admin_whitelist_networks"] == NETWORKS
        assert "haproxy_default_services" not in data  # never the whole list frozen
    else:
        assert not {"haproxy_default_services",
                    "haproxy_keystone_admin_whitelist_networks"} & set(data)
        assert any("has no separate Keystone admin API" in m and "atmosphere_networks is "
                   "not used" in m for m in manual)
    # The keystone admin URI keeps OSA's own port variable: 35357 up to 17, 5000 after.
    assert data["keystone_service_adminuri"].endswith(":{{ keystone_admin_port }}")


def test_an_answered_release_that_the_checkout_contradicts_is_one_sentence(tmp_path):
    s = session(tmp_path, base_answers(tmp_path, osa=18, osa_release=19))
    [plan] = s.plan(["user-variables"])
    assert "has a keystone_admin service, which OSA 19 (Stein) (the answer osa_release) " \
           "does not have" in plan.error
    s = session(tmp_path, base_answers(tmp_path, osa=14, osa_release=15))
    [plan] = s.plan(["user-variables"])
    assert "does not use haproxy_keystone_admin_whitelist_networks, which OSA 15 (Ocata)" \
           in plan.error


def test_no_checkout_and_no_answer_asks_for_osa_release(tmp_path):
    s = session(tmp_path, base_answers(tmp_path, osa_dir=str(tmp_path / "nothing")))
    [plan] = s.plan(["user-variables"])
    assert plan.error.startswith("cannot tell the OpenStack-Ansible release: no "
                                 f"openstack_release in {tmp_path}/nothing")
    assert "answer osa_release" in plan.error and "osa_release: 19" in plan.error


def test_on_a_workstation_nothing_from_the_osa_host_is_needed(tmp_path):
    """The step is exported for osa-deploy: with osa_release answered, the file is
    written from the answers alone (no checkout, no haproxy file on this host)."""
    answers = base_answers(tmp_path, host_role="workstation", osa_release=16,
                           osa_dir=str(tmp_path / "not-here"), atmosphere_networks=NETWORKS)
    cli = Cli(tmp_path, secrets={"atmo_admin_password": ATMO_PASSWORD,
                                 "provider_secret": PROVIDER_SECRET})
    root = tmp_path / "root"
    result = cli("apply", "atmosphere", "--answers", str(cli.write(answers)), "--root",
                 str(root), "--yes", "--step", "user-variables")
    assert result.returncode == 0, result.stderr
    export = root / str(tmp_path / "export/osa-deploy/files").lstrip("/")
    staged = export / str(tmp_path / "openstack_deploy/user_variables_atmosphere.yml").lstrip("/")
    data = yaml.safe_load(staged.read_text())
    assert data["haproxy_keystone_admin_whitelist_networks"] == NETWORKS
    script = (root / str(tmp_path / "export/osa-deploy/user-variables.sh").lstrip("/")).read_text()
    assert "install -D -m 0644" in script


def test_osa_14_on_a_workstation_says_to_copy_its_haproxy_file(tmp_path):
    answers = base_answers(tmp_path, host_role="workstation", osa_release=14,
                           osa_dir=str(tmp_path / "not-here"))
    [plan] = session(tmp_path, answers).plan(["user-variables"])
    assert (f"{tmp_path}/not-here/playbooks/vars/configs/haproxy_config.yml is not on this "
            "host; on OSA 14 (Newton) CloudRig copies haproxy_default_services from it") \
        in plan.error
    assert "set osa_haproxy_config" in plan.error
    copy = osa_checkout(tmp_path, 14) / "playbooks/vars/configs/haproxy_config.yml"
    answers["osa_haproxy_config"] = str(copy)
    data, _manual, _description = user_variables(session(tmp_path, answers))
    assert len(data["haproxy_default_services"]) == len(upstream_services(14))
