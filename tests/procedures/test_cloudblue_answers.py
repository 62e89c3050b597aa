"""cloudblue answers and config.json: runbook structure, cross-field rules, round-trips."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from cloudblue_rig import REVOKE, RUNBOOK
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from in_process import run_in_process

from tui.answers import AnswersError, validate
from tui.procedures.cloudblue.answers import CloudBlueAnswers

# The runbook's config.json, as printed in it.
RUNBOOK_CONFIG = {
    "vap_infra_domain": "virtuozzo.com",
    "vap_user_group": "beta",
    "misc": {"hidePasswordsInLog": True, "testMarketplaceId": "MP-43209", "testMode": True,
             "billingStatDelayInHours": 1},
    "apiEndpoint": "https://api.clarocloud.com.co/public/v1",
    "products": ["PRD-576-330-536"],
    "report_usage": ["PRD-576-330-536"],
    "templates": {"PRD-576-330-536": {"grant": "TL-757-345-804", "revoke": REVOKE}},
}


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDRIG_")}
    env.update(CLOUDRIG_STATE_DIR=str(tmp_path / "state"), NO_COLOR="1")
    return run_in_process(env, args)


def _problems(**changes: object) -> str:
    with pytest.raises(AnswersError) as err:
        validate(CloudBlueAnswers, {**RUNBOOK, **changes})
    return str(err.value)


def test_render_matches_the_runbooks_config_json(tmp_path):
    answers = tmp_path / "answers.yaml"
    answers.write_text(json.dumps(RUNBOOK))
    result = _cli(tmp_path, "render", "cloudblue", "--answers", str(answers),
                  "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    written = tmp_path / "out/etc/cloudblue-connector/config.json"
    data = json.loads(written.read_text())
    assert data == RUNBOOK_CONFIG
    assert list(data) == list(RUNBOOK_CONFIG)  # the runbook's key order
    assert list(data["misc"]) == list(RUNBOOK_CONFIG["misc"])


def _render_config(data: dict) -> dict:
    from tui.render import render
    from tui.steps import template_values

    answers = validate(CloudBlueAnswers, data)
    return json.loads(render("cloudblue/config.json.j2", **template_values(answers)))


NASTY = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1).filter(
    lambda s: s.strip() and not s.upper().startswith("TL-"))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(group=NASTY, revoke=NASTY)
def test_any_text_round_trips_through_config_json(group, revoke):
    data = {**RUNBOOK, "vap_user_group": group,
            "templates": {"PRD-576-330-536": {"grant": "TL-757-345-804", "revoke": revoke}}}
    config = _render_config(data)
    assert config["vap_user_group"] == group
    assert config["templates"]["PRD-576-330-536"]["revoke"] == revoke


@pytest.mark.parametrize("text", ['quote " back\\slash', "line\nbreak ${x} {{ y }} %s",
                                  "ünïcødé 🎉 \u2028", "TL message without an id"])
def test_revoke_message_edge_cases_round_trip(text):
    data = {**RUNBOOK, "templates": {"PRD-576-330-536": {"grant": "TL-757-345-804",
                                                         "revoke": text}}}
    assert _render_config(data)["templates"]["PRD-576-330-536"]["revoke"] == text


def test_test_marketplace_is_left_out_when_not_answered():
    config = _render_config({**RUNBOOK, "test_mode": False, "test_marketplace_id": None})
    assert "testMarketplaceId" not in config["misc"]
    assert config["misc"]["testMode"] is False


def test_invalid_product_id_names_field_and_good_example():
    text = _problems(products=["PRD-12"])
    assert "products.0: 'PRD-12' is not a valid Connect product id" in text
    assert "PRD-576-330-536" in text


def test_invalid_template_id_names_field_and_good_example():
    text = _problems(templates={"PRD-576-330-536": {"grant": "TL-abc", "revoke": REVOKE}})
    assert "templates.PRD-576-330-536.grant: 'TL-abc' is not a valid Connect template id" in text
    assert "TL-757-345-804" in text
    text = _problems(templates={"PRD-576-330-536": {"grant": "TL-757-345-804",
                                                    "revoke": "TL-12"}})
    assert "revoke: 'TL-12' looks like a template id but is not one" in text


def test_report_usage_must_be_a_subset_of_products():
    text = _problems(report_usage=["PRD-576-330-536", "PRD-111-222-333"])
    assert "report_usage: PRD-111-222-333 not in products" in text
    assert "for example: report_usage: [PRD-576-330-536]" in text


def test_every_product_needs_templates_and_no_stray_ones():
    text = _problems(products=["PRD-576-330-536", "PRD-111-222-333"])
    assert "templates: has no entry for PRD-111-222-333" in text
    text = _problems(templates={**RUNBOOK["templates"],
                                "PRD-999-999-999": {"grant": "TL-757-345-804", "revoke": "x"}})
    assert "templates: has an entry for PRD-999-999-999, which is not in products" in text


def test_test_mode_without_test_marketplace_is_explained():
    text = _problems(test_marketplace_id=None)
    assert "test_marketplace_id: is not set while test_mode is true" in text
    assert "all marketplaces" in text and "MP-43209" in text
    validate(CloudBlueAnswers, {**RUNBOOK, "test_mode": False, "test_marketplace_id": None})


@pytest.mark.parametrize("field, value, words", [
    ("products", [], "products"), ("api_endpoint", "http://api.example.com", "https URL"),
    ("vap_infra_domain", "1.2.3.4", "not a DNS name"),
    ("billing_stat_delay_hours", -1, "greater than or equal to 0"),
    ("test_marketplace_id", "MP-abc", "marketplace id"), ("vap_user_group", "", "empty"),
    ("products", ["PRD-576-330-536", "PRD-576-330-536"], "more than once"),
])
def test_single_field_problems(field, value, words):
    text = _problems(**{field: value})
    assert f"  {field}" in text and words in text and "for example" in text


def test_invalid_answers_exit_2_and_write_nothing(tmp_path):
    answers = tmp_path / "answers.yaml"
    answers.write_text(json.dumps({**RUNBOOK, "products": ["PRD-12"]}))
    root = tmp_path / "root"
    result = _cli(tmp_path, "apply", "cloudblue", "--answers", str(answers), "--root",
                  str(root), "--yes")
    assert result.returncode == 2
    assert "products.0" in result.stderr and "PRD-576-330-536" in result.stderr
    assert not root.exists()
    assert not (tmp_path / "state" / "cloudblue.json").exists()


def test_a_token_in_the_answers_file_is_refused(tmp_path):
    answers = tmp_path / "answers.yaml"
    answers.write_text(json.dumps({**RUNBOOK, "cloudblue_token": "ApiKey SU-1-2-3:abc"}))
    result = _cli(tmp_path, "plan", "cloudblue", "--answers", str(answers))
    assert result.returncode == 2
    assert "CLOUDRIG_SECRET_CLOUDBLUE_TOKEN" in result.stderr
    assert "SU-1-2-3:abc" not in result.stderr + result.stdout
