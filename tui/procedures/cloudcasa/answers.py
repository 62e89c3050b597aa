"""The cloudcasa answers: the keys of its answers files (a public contract)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import SecretStr, field_validator

from tui.answers import AbsPath, Answers, ask, check_host, matches

FEATURES = ("EKS", "EBSVolumeSnapshot", "RDS", "SecurityScan")
Feature = Literal["EKS", "EBSVolumeSnapshot", "RDS", "SecurityScan"]

AccountName = Annotated[str, matches(
    r"[A-Za-z0-9][A-Za-z0-9 _.@-]{0,99}",
    "CloudCasa account name (letters, digits, space, '_', '.', '@', '-'; at most 100, "
    "starting with a letter or digit)")]
StackName = Annotated[str, matches(
    r"[A-Za-z][A-Za-z0-9-]{0,127}",
    "CloudFormation stack name (a letter, then letters, digits and '-'; at most 128)")]
ClusterName = Annotated[str, matches(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", "cluster name")]
KubeContext = Annotated[str, matches(r"[^\s]{1,253}", "kubectl context name (no spaces)")]
Region = Annotated[str, matches(r"[a-z]{2}(-gov)?-[a-z]+-\d", "AWS region")]
TAG_KEY = re.compile(r"[^=\s][^=]{0,127}")


def _tags(value: Any) -> Any:
    """Tags as a mapping (answers files) or `key=value` lines/items (wizard, lists)."""
    if isinstance(value, str):
        value = [line for line in re.split(r"[\n,]", value) if line.strip()]
    if isinstance(value, list):
        tags: dict[str, str] = {}
        for item in value:
            key, sep, val = str(item).partition("=")
            if not sep or not key.strip():
                raise ValueError(f"{item!r} is not key=value")
            tags[key.strip()] = val.strip()
        return tags
    return value


class CloudCasaAnswers(Answers):
    """What the cloudcasa runbook asks of the operator (keys are the answers contract)."""

    api_url: str = ask(
        "https://api.cloudcasa.io/api/v1", title="CloudCasa API URL",
        help="The CloudCasa API base (SaaS https://api.cloudcasa.io/api/v1; a self-hosted "
             "server is https://<server>/api/v1).", example="https://api.cloudcasa.io/api/v1")
    api_ca_file: AbsPath | None = ask(
        None, title="API CA bundle",
        help="PEM file to verify a self-hosted CloudCasa's TLS certificate.",
        example="/etc/ssl/certs/cloudcasa-ca.pem")
    api_key: SecretStr | None = ask(
        title="CloudCasa API key", secret=True,
        help="An API key from CloudCasa → Settings → API Keys (shown once when created). "
             "Never written to answers files.", example="the key CloudCasa showed")
    account_name: AccountName = ask(
        title="Cloud account name", help="The name of the cloud account in CloudCasa; an "
        "account with this name is reused, never created twice.", example="prod-aws")
    description: str = ask(
        "", title="Description", help="Free text shown in CloudCasa.",
        example="Created by CloudRig", max_length=500)
    tags: dict[str, str] = ask(
        {}, title="Tags", help="Key/value labels on the account: a mapping in the answers "
        "file (or `key=value` lines); in the wizard, a key and its value per row.",
        example={"team": "platform"})
    provider_type: Literal["aws", "azure"] = ask(
        "aws", title="Cloud provider", help="aws or azure (the runbook documents the "
        "registration steps for AWS; for Azure CloudRig waits while you finish in CloudCasa).",
        example="aws")
    features: list[Feature] = ask(
        list(FEATURES), title="Features",
        help="What CloudCasa may do in the AWS account (CloudFormation parameters): EKS, "
             "EBSVolumeSnapshot, RDS, SecurityScan. All on by default, as the runbook says; "
             "leave one out to turn it off.", example=["EKS", "EBSVolumeSnapshot"])
    stack_name: StackName = ask(
        "cloudcasa", title="CloudFormation stack name",
        help="The stack that gives CloudCasa its IAM role in your AWS account.",
        example="cloudcasa")
    cloudformation: Literal["boto3", "browser"] = ask(
        "boto3", title="How to create the stack",
        help="boto3: CloudRig creates it with your AWS credentials (needs `cloudrig[aws]`). "
             "browser: CloudRig shows the launch URL (and a QR code) to open where you are "
             "signed in to AWS, and waits.", example="boto3")
    aws_region: Region | None = ask(
        None, title="AWS region", help="Region for the stack (empty: your AWS configuration's "
        "default, e.g. AWS_REGION or the profile).", example="us-east-1")
    install_agents: bool = ask(
        True, title="Install cluster agents",
        help="Run `kubectl apply -f <agentURL>` for each chosen discovered cluster and wait "
             "for it to become ACTIVE.", example=True)
    clusters: list[ClusterName] = ask(
        [], title="Clusters", help="Discovered clusters to install agents on (empty: every "
        "cluster discovered in this account). Named clusters are waited for.",
        example=["prod-eks"])
    kube_context: KubeContext | None = ask(
        None, title="kubectl context", help="The kubeconfig context of the one cluster that "
        "gets an agent (several clusters: kube_contexts, or each EKS cluster's ARN, the "
        "context `aws eks update-kubeconfig` creates).", example="arn:aws:eks:us-east-1:"
        "123456789012:cluster/prod-eks")
    kube_contexts: dict[ClusterName, KubeContext] = ask(
        {}, title="kubectl context per cluster",
        help="cluster name → the kubeconfig context that reaches it (`cluster: context`, "
             "one per line). Unnamed EKS clusters use their ARN, the context name `aws eks "
             "update-kubeconfig` gives them.",
        example={"prod-eks": "prod"})
    poll_interval: float = ask(
        5.0, title="Poll interval (seconds)", help="How often CloudRig asks CloudCasa and AWS "
        "while waiting.", example=5, ge=0.01, le=300)
    poll_timeout: int = ask(
        1800, title="Wait limit (seconds)", help="How long one wait may last before CloudRig "
        "stops; a rerun resumes the wait.", example=1800, ge=1, le=86400)

    @field_validator("api_url")
    @classmethod
    def _url(cls, value: str) -> str:
        match = re.fullmatch(r"(https?)://([^/\s:]+|\[[0-9a-fA-F:]+\])(:\d{1,5})?(/[^\s?#]*)?",
                             value)
        if not match:
            raise ValueError(f"{value!r} is not an http(s) URL of the CloudCasa API")
        check_host(match.group(2).strip("[]"))
        return value.rstrip("/")

    @field_validator("tags", mode="before")
    @classmethod
    def _tag_pairs(cls, value: Any) -> Any:
        value = _tags(value)
        if isinstance(value, dict):
            for key in value:
                if not isinstance(key, str) or not TAG_KEY.fullmatch(key):
                    raise ValueError(f"tag key {key!r} must be text without '='")
            return {k: "" if v is None else str(v) for k, v in value.items()}
        return value

    @field_validator("kube_contexts", mode="before")
    @classmethod
    def _context_pairs(cls, value: Any) -> Any:
        return _tags(value)

    @field_validator("features", "clusters")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))
