"""add_new_provider.py as each Atmosphere release asks it: the prompts of tag 17-y-y-3
(old: "Name of new provider: ", a platform prompt) and of v37-5 (since commit
6a5dcab4, tag 17-z-z: "What is the name of your new provider? : ", no platform
prompt), from stubs that ask exactly upstream's prompts in upstream's order
(tests/fixtures/atmosphere/add_new_provider_<tag>.py, source in each header)."""

from __future__ import annotations

import json
import sys

import pytest
from atmosphere_rig import ATMO_PASSWORD, PROVIDER_SECRET, Cli, base_answers, make_atmosphere

from tui.answers import validate
from tui.commands import CommandRunner
from tui.procedures.atmosphere import AtmosphereAnswers
from tui.procedures.atmosphere.steps import Provider
from tui.secrets import SecretSource

VERSIONS = ["17-y-y-3", "v37-5"]
ASKED = {"17-y-y-3": ["Select a platform type ([1]/2): ",
                      "default_security_rules for provider: (Should be a list)",
                      "Does everything above look correct? [Yes]/No"],
         "v37-5": ["default_security_rules for provider: (Should be a list)",
                   "Does everything above look correct? [Yes]/No"]}


def answers_for(tmp_path, atmo):
    return base_answers(tmp_path, host_role="atmosphere", atmosphere_dir=str(atmo),
                        atmosphere_python=sys.executable,
                        admin_url="https://cloud.example.org:5000", user_role="member")


@pytest.mark.parametrize("version", VERSIONS)
def test_each_release_adds_the_provider_with_its_name_from_the_json(tmp_path, version):
    atmo = tmp_path / "atmosphere"
    make_atmosphere(atmo, version)
    cli = Cli(tmp_path, secrets={"atmo_admin_password": ATMO_PASSWORD,
                                 "provider_secret": PROVIDER_SECRET})
    result = cli("apply", "atmosphere", "--answers", str(cli.write(answers_for(tmp_path, atmo))),
                 "--yes", "--step", "provider-json", "--step", "provider")
    assert result.returncode == 0, result.stderr
    assert "provider my-awesome-cloud has id 4" in result.stderr
    db = json.loads((atmo / "db.json").read_text())
    provider = db["providers"]["my-awesome-cloud"]
    assert provider["secret"] == PROVIDER_SECRET and provider["platform"] == "KVM"
    # The name came from the JSON: the release asked only what the JSON cannot say.
    asked = (atmo / "prompts.log").read_text().splitlines()
    assert asked == ASKED[version]


@pytest.mark.parametrize("version", VERSIONS)
def test_a_json_without_the_name_is_answered_by_either_release_s_prompt(tmp_path, version):
    """A provider JSON from before CloudRig wrote the name: each release's own name
    prompt is recognised and answered (the old pattern alone waited 600 s at v37-5's)."""
    atmo = tmp_path / "atmosphere"
    make_atmosphere(atmo, version)
    a = validate(AtmosphereAnswers, answers_for(tmp_path, atmo))
    path = tmp_path / "provider" / "my-awesome-cloud.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({
        "admin": {"username": "atmoadmin", "password": ATMO_PASSWORD, "tenant": "atmoadmin"},
        "credential": {"admin_url": "https://cloud.example.org:5000",
                       "auth_url": "https://cloud.example.org:5000",
                       "public_routers": "public_router", "network_name": "selfservice",
                       "region_name": "RegionOne", "ex_force_auth_version": "3.x_password"},
        "provider": {"public": True},
        "cloud_config": {"network": {"dns_nameservers": ["8.8.8.8"],
                                     "topology": "External Router Topology"},
                         "user": {"admin_role_name": "admin", "user_role_name": "member",
                                  "domain": "default", "secret": "short"},
                         "deploy": {"hostname_format": "vm%(four)s.cloud.example.org"}}}))
    add = Provider().commands(a, None)[0].model_copy(update={"timeout": 60})
    secrets = SecretSource("atmosphere", ["provider_secret"],
                           overrides={"provider_secret": PROVIDER_SECRET}, interactive=False)
    result = CommandRunner().run(add, secrets)
    assert result.returncode == 0, result.stdout
    db = json.loads((atmo / "db.json").read_text())
    # The name prompt got provider_name; the short secret's prompt got provider_secret.
    assert db["providers"]["my-awesome-cloud"]["secret"] == PROVIDER_SECRET
    name_prompt = {"17-y-y-3": "Name of new provider: ",
                   "v37-5": "What is the name of your new provider? : "}[version]
    assert (atmo / "prompts.log").read_text().splitlines()[0] == name_prompt
    assert PROVIDER_SECRET not in result.stdout  # the echoed secret is masked


@pytest.mark.parametrize("version", VERSIONS)
def test_a_prompt_cloudrig_does_not_know_ends_the_step_at_once_quoting_it(tmp_path, version):
    """A provider JSON without deploy.hostname_format (edited by hand): each release then
    asks "hostname_format for the provider …", which CloudRig has no answer for. The step
    ends at once with the prompt quoted — not after the command's 600 s timeout (the
    CLI run here would be cut off after 180 s)."""
    atmo = tmp_path / "atmosphere"
    make_atmosphere(atmo, version)
    cli = Cli(tmp_path, secrets={"atmo_admin_password": ATMO_PASSWORD,
                                 "provider_secret": PROVIDER_SECRET})
    answers = str(cli.write(answers_for(tmp_path, atmo)))
    assert cli("apply", "atmosphere", "--answers", answers, "--yes",
               "--step", "provider-json").returncode == 0
    path = tmp_path / "provider" / "my-awesome-cloud.json"
    data = json.loads(path.read_text())
    del data["cloud_config"]["deploy"]["hostname_format"]
    path.write_text(json.dumps(data))
    result = cli("apply", "atmosphere", "--answers", answers, "--yes", "--step", "provider")
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("provider: `env DJANGO_SETTINGS_MODULE=atmosphere.settings")
    assert ('asked "hostname_format for the provider (Default: <Use IP Address>):", a prompt '
            "CloudRig has no answer for") in line
    assert "did not finish within" not in result.stderr
    assert not (atmo / "db.json").exists()  # nothing was added
