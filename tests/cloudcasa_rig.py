"""Fixtures for the cloudcasa tests: a fake CloudCasa, moto's CloudFormation and S3
as a real HTTP server (the CLI runs in a subprocess), and a stand-in `kubectl` on
PATH that does what `kubectl apply -f URL` does first: fetch the URL."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fakes.cloudcasa import TEMPLATE_URL, FakeCloudCasa
from private_cli import ProcedureRig

REGION = "us-east-1"
TEMPLATE = """\
AWSTemplateFormatVersion: '2010-09-09'
Description: CloudCasa cross-account role (test copy)
Parameters:
  CCAccountId: {Type: String}
  EKS: {Type: String, Default: 'true', AllowedValues: ['true', 'false']}
  EBSVolumeSnapshot: {Type: String, Default: 'true', AllowedValues: ['true', 'false']}
  RDS: {Type: String, Default: 'true', AllowedValues: ['true', 'false']}
  SecurityScan: {Type: String, Default: 'true', AllowedValues: ['true', 'false']}
Resources:
  CloudCasaRole:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: '2012-10-17'
        Statement:
          - Effect: Allow
            Principal: {AWS: 'arn:aws:iam::727923484692:root'}
            Action: sts:AssumeRole
            Condition: {StringEquals: {'sts:ExternalId': !Ref CCAccountId}}
"""
KUBECTL = """#!@PYTHON@
import os, sys, urllib.request
with open(os.environ["KUBECTL_LOG"], "a") as log:
    log.write(" ".join(sys.argv[1:]) + "\\n")
args = sys.argv[1:]
if "apply" not in args or "-f" not in args:
    sys.exit("kubectl stand-in: only `apply -f URL` is known")
if "--context" in args and args[args.index("--context") + 1] == "missing":
    sys.exit('error: context "missing" does not exist')
url = args[args.index("-f") + 1]
with urllib.request.urlopen(url, timeout=10) as reply:
    reply.read()
print("namespace/cloudcasa-io created")
"""


@pytest.fixture(scope="session")
def moto_server():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def aws_env(endpoint: str) -> dict[str, str]:
    return {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}


def boto(endpoint: str, service: str) -> Any:
    import boto3

    return boto3.client(service, endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def stacks(endpoint: str) -> list[dict[str, Any]]:
    found = boto(endpoint, "cloudformation").describe_stacks()["Stacks"]
    return [{"name": s["StackName"], "status": s["StackStatus"],
             "params": {p["ParameterKey"]: p["ParameterValue"] for p in s.get("Parameters", [])},
             "capabilities": s.get("Capabilities", [])}
            for s in found if s["StackStatus"] != "DELETE_COMPLETE"]


@dataclass(kw_only=True)
class Rig(ProcedureRig):
    casa: FakeCloudCasa
    aws: str

    @property
    def kubectl_log(self) -> Path:
        return self.tmp / "kubectl.log"

    def answers_file(self) -> Path:
        return self.write_answers()

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in super().env().items() if not k.startswith("AWS_")}
        env.update(KUBECTL_LOG=str(self.kubectl_log),
                   PATH=f"{self.tmp / 'bin'}:{env['PATH']}", **aws_env(self.aws))
        return env

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "tui", *args]

    def apply(self, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.cli("apply", "cloudcasa", "--answers", str(self.answers_file()), "--yes",
                        *extra)

    def popen_apply(self) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv("apply", "cloudcasa", "--answers", str(self.answers_file()), "--yes"),
            env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            stdin=subprocess.DEVNULL, cwd=Path(__file__).resolve().parents[1])

    def teardown(self) -> subprocess.CompletedProcess[str]:
        return self.cli("teardown", "cloudcasa", "--answers", str(self.answers_file()),
                        "--yes")

    def run_state(self) -> dict[str, Any]:
        return json.loads((self.state / "cloudcasa.json").read_text())

    def posts(self, since: int = 0) -> list[str]:
        return [r.path for r in self.casa.log[since:] if r.method == "POST"]

    def changes(self, since: int = 0) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.casa.log[since:]
                if r.method in ("POST", "PATCH", "PUT", "DELETE")]


@pytest.fixture
def rig(tmp_path, moto_server):
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset",
                                                  method="POST")).read()
    s3 = boto(moto_server, "s3")
    s3.create_bucket(Bucket="cloudcasa-cf")
    s3.put_object(Bucket="cloudcasa-cf", Key=TEMPLATE_URL.rsplit("/", 1)[1],
                  Body=TEMPLATE.encode())
    fake = FakeCloudCasa(stack_params=lambda: stacks(moto_server)).start()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(KUBECTL.replace("@PYTHON@", sys.executable))
    kubectl.chmod(kubectl.stat().st_mode | stat.S_IEXEC)
    rig = Rig(tmp=tmp_path, casa=fake, aws=moto_server)
    rig.answers = {"api_url": fake.url + "/api/v1", "account_name": "prod-aws",
                   "description": "Created by CloudRig tests", "tags": {"team": "platform"},
                   "stack_name": "cloudcasa", "aws_region": REGION, "kube_context": "test-ctx",
                   "poll_interval": 0.05, "poll_timeout": 60}
    rig.secrets = {"api_key": fake.api_key}
    yield rig
    fake.stop()
