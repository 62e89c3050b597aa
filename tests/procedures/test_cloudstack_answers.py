"""cloudstack answers: per-mode requirements, user-data checks, the init template."""

from __future__ import annotations

import pytest
import yaml

from tui.answers import AnswersError, example_yaml, field_spec, from_mapping
from tui.procedures.cloudstack import CloudStackAnswers

BASE = {"api_url": "https://cloud.example.com/client/api", "api_key": "k-1", "vm": "web-1",
        "user_data": "#cloud-config\nhostname: web-1\n"}


def problems(data: dict) -> dict[str, str]:
    with pytest.raises(AnswersError) as info:
        from_mapping(CloudStackAnswers, data, "answers.yaml")
    return {p.field: p.sentence() for p in info.value.problems}


def test_update_needs_api_vm_and_user_data():
    found = problems({})
    assert set(found) == {"api_url", "api_key", "vm", "user_data_file"}
    assert found["vm"].startswith("vm: is required when mode is update")
    assert "(for example: vm: web-1)" in found["vm"]
    assert "give user_data_file or user_data" in found["user_data_file"]


def test_iso_needs_iso_path_and_vm_id_but_no_api():
    found = problems({"mode": "iso"})
    assert set(found) == {"iso_path", "vm_id"}
    assert "cloud-init refuses a drive without its uuid" in found["vm_id"]


def test_broken_cloud_config_names_the_line():
    found = problems({**BASE, "user_data": "#cloud-config\na: 1\nb: [x\nc: 2\n"})
    assert "user_data: is #cloud-config but not valid YAML at line" in found["user_data"]
    assert 'for example: user_data: "#cloud-config\\nhostname: web-1\\n"' in found["user_data"]


def test_user_data_file_checks(tmp_path):
    good = tmp_path / "ud.yaml"
    good.write_text("#!/bin/sh\necho hi\n")
    answers = from_mapping(CloudStackAnswers, {**BASE, "user_data": None,
                                               "user_data_file": str(good)}, "a")
    assert answers.user_data_text() == "#!/bin/sh\necho hi\n"
    both = problems({**BASE, "user_data_file": str(good)})
    assert "not both" in both["user_data_file"]
    missing = problems({**BASE, "user_data": None, "user_data_file": str(tmp_path / "no")})
    assert "does not exist" in missing["user_data_file"]
    huge = tmp_path / "huge"
    huge.write_text("x" * 800_000)
    too_big = problems({**BASE, "user_data": None, "user_data_file": str(huge)})
    assert "CloudStack refuses 1048576 or more even by POST" in too_big["user_data_file"]


def test_bad_values_name_the_field():
    found = problems({**BASE, "api_url": "cloud.example.com", "mode": "other",
                      "public_keys": ["not-a-key"], "job_timeout": 1})
    assert set(found) >= {"mode", "public_keys", "job_timeout"}
    assert "not one OpenSSH public key line" in found["public_keys"]


def test_init_template_is_yaml_and_fills_into_valid_answers():
    text = example_yaml(CloudStackAnswers, "cloudstack", "CloudStack")
    data = yaml.safe_load(text)
    assert data == {"mode": "update", "restart": False, "job_timeout": 600,
                    "public_keys": [], "vendor_data": "empty"}
    assert from_mapping(CloudStackAnswers, {**data, **BASE}, "a").vm == "web-1"


def test_wizard_field_kinds():
    kinds = {n: field_spec(CloudStackAnswers, n).kind for n in CloudStackAnswers.model_fields}
    assert kinds["mode"] == "choice" and kinds["vendor_data"] == "choice"
    assert kinds["secret_key"] == "secret" and kinds["vm_password"] == "secret"
    assert kinds["public_keys"] == "list" and kinds["restart"] == "bool"


def test_every_answer_is_on_a_wizard_page():
    from tui.procedures.cloudstack import PROCEDURE

    on_pages = [name for page in PROCEDURE.pages for name in page.fields]
    assert sorted(on_pages) == sorted(CloudStackAnswers.model_fields)


def test_guest_text_matches_cloud_inits_own_module_frequencies():
    """What the help, plan and messages say cloud-init runs once per instance (or at
    every boot) is read back from cloud-init's own modules, so the text stays honest."""
    from cloudinit_reader import module_frequencies

    from tui.procedures.cloudstack import guest

    once = sorted({*guest.ONCE_PER_INSTANCE.values(), guest.SCRIPT_MODULE})
    every = sorted(guest.EVERY_BOOT.values())
    seen = module_frequencies(*once, *every)
    for module in once:
        assert seen[module]["frequency"] == "once-per-instance", module
    for module in every:
        assert seen[module]["frequency"] == "always", module
    for key, module in {**guest.ONCE_PER_INSTANCE, **guest.EVERY_BOOT}.items():
        keys = seen[module]["keys"]
        assert not keys or key in keys, f"{key} does not activate {module}: {keys}"
    assert guest.PER_BOOT_PART in seen["mime"]["types"]
    help_text = field_spec(CloudStackAnswers, "restart").help
    assert "once per instance" in help_text and "cloud-init clean --reboot" in help_text
    assert "a stopped instance is left stopped" in help_text


def test_guest_note_names_only_the_once_per_instance_parts():
    from tui.procedures.cloudstack import guest

    assert guest.once_only("#cloud-config\nbootcmd: [x]\nruncmd: [y]\nusers: []\n") == [
        "runcmd", "users"]
    assert guest.once_only("#!/bin/sh\necho hi\n") == ["its #! script"]
    assert guest.once_only("#cloud-config\nbootcmd: [x]\n") == []
    assert guest.note("#cloud-config\nbootcmd: [x]\n") is None


def test_empty_user_data_is_refused_naming_cloudstacks_answer(tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    found = problems({**BASE, "user_data": None, "user_data_file": str(empty)})
    assert f"{empty} is empty" in found["user_data_file"]
    assert "User data is too short" in found["user_data_file"]
    from tui.procedures.cloudstack.answers import user_data_problem

    assert "User data is too short" in (user_data_problem("") or "")
