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
