"""cloudcasa answers: defaults from the runbook, forms of tags, and errors naming the field."""

from __future__ import annotations

import pytest
import yaml

from tui.answers import AnswersError, example_yaml, field_spec, from_mapping
from tui.clients.cloudcasa import Document
from tui.errors import UsageError
from tui.procedures.cloudcasa import CloudCasaAnswers
from tui.procedures.cloudcasa.steps import launch_parameters, stack_parameters


def _load(**data):
    return from_mapping(CloudCasaAnswers, {"account_name": "prod-aws", **data}, "answers.yaml")


def test_runbook_defaults():
    a = _load()
    assert a.api_url == "https://api.cloudcasa.io/api/v1"
    assert a.features == ["EKS", "EBSVolumeSnapshot", "RDS", "SecurityScan"]
    assert (a.provider_type, a.cloudformation, a.install_agents) == ("aws", "boto3", True)
    assert stack_parameters(a, "60214c31bb86d8108fcff9e8") == ({
        "CCAccountId": "60214c31bb86d8108fcff9e8", "EKS": "true", "EBSVolumeSnapshot": "true",
        "RDS": "true", "SecurityScan": "true"}, [])
    off = _load(features=["EKS", "EKS", "EBSVolumeSnapshot"])
    assert off.features == ["EKS", "EBSVolumeSnapshot"]
    assert stack_parameters(off, "x")[0]["RDS"] == "false"
    # Only what the template declares is sent; a feature it lacks is named, not sent.
    params, left_out = stack_parameters(a, "x", ["CCAccountId", "EKS", "RDS"])
    assert params == {"CCAccountId": "x", "EKS": "true", "RDS": "true"}
    assert left_out == ["EBSVolumeSnapshot", "SecurityScan"]


@pytest.mark.parametrize("tags", [{"team": "platform", "env": "prod"},
                                  "team=platform\nenv=prod", ["team=platform", "env = prod"]])
def test_tags_as_mapping_or_key_value_lines(tags):
    assert _load(tags=tags).tags == {"team": "platform", "env": "prod"}


@pytest.mark.parametrize(("data", "words"), [
    ({"api_url": "api.cloudcasa.io"}, "api_url: 'api.cloudcasa.io' is not an http(s) URL"),
    ({"account_name": ""}, "account_name: '' is not a valid CloudCasa account name"),
    ({"aws_region": "Virginia"}, "aws_region: 'Virginia' is not a valid AWS region"),
    ({"poll_interval": 0}, "poll_interval: Input should be greater than or equal to 0.01"),
    ({"cloudformation": "console"}, "cloudformation: Input should be 'boto3' or 'browser'"),
    ({"kube_context": "my ctx"}, "kube_context: 'my ctx' is not a valid kubectl context"),
])
def test_bad_values_name_the_field_and_give_an_example(data, words):
    with pytest.raises(AnswersError) as caught:
        _load(**data)
    assert words in caught.value.sentence
    assert "(for example: " in caught.value.sentence


def test_the_api_key_is_refused_in_an_answers_file():
    with pytest.raises(UsageError, match="CLOUDRIG_SECRET_API_KEY"):
        _load(api_key="cc-123456")


def test_the_example_file_loads_once_the_name_is_filled():
    text = example_yaml(CloudCasaAnswers, "cloudcasa", "CloudCasa cloud accounts")
    data = yaml.safe_load(text.replace("account_name:   #", "account_name: prod-aws  #"))
    assert _load(**data).account_name == "prod-aws"
    assert field_spec(CloudCasaAnswers, "api_key").kind == "secret"
    assert field_spec(CloudCasaAnswers, "features").kind == "list"


def test_launch_url_is_read_as_the_runbook_says():
    doc = Document.model_validate({"_id": "60214c31bb86d8108fcff9e8", "aws": {"awsaccount": {
        "status": {"cfLaunchURL": "https://console.aws.amazon.com/cloudformation/home#/stacks/"
                   "create/review?templateURL=https://s3.amazonaws.com/cloudcasa-cf/"
                   "cloudcasa_014.yml&stackName=cloudcasa-v015&param_CCAccountId=60214c"}}}})
    launch = launch_parameters(doc)
    assert launch is not None
    assert launch["template_url"] == "https://s3.amazonaws.com/cloudcasa-cf/cloudcasa_014.yml"
    assert launch["stack_name"] == "cloudcasa-v015"
    assert launch_parameters(Document.model_validate({"_id": "x"})) is None
