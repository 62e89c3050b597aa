"""Fixtures for the cloudcasa tests: a fake CloudCasa, moto's CloudFormation and S3
as a real HTTP server (the CLI runs in a subprocess) made as strict as AWS on
parameters and rollbacks (fakes/cloudformation.py), and a stand-in `kubectl` on PATH
with a kubeconfig of contexts, each reaching one cluster: `apply -f URL` fetches the
manifest and installs that agent in the context's cluster, `delete -f URL` removes
it; an unknown context fails as kubectl does."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fakes.cloudcasa import TEMPLATE_URL, FakeCloudCasa
from fakes.cloudformation import Strictness, strict_cloudformation
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
# An older template version for the parameter tests: the runbook shows both
# cloudcasa_014.yml and cloudcasa_015.yml; the real 014 is not reachable, so this one
# is the test copy without SecurityScan.
TEMPLATE_014_URL = "https://s3.amazonaws.com/cloudcasa-cf/cloudcasa_014.yml"
TEMPLATE_014 = TEMPLATE.replace(
    "  SecurityScan: {Type: String, Default: 'true', AllowedValues: ['true', 'false']}\n", "")
ARN = "arn:aws:eks:us-east-1:727923484692:cluster/{}"  # the fake's awsekscluster_arn
KUBECTL = """#!@PYTHON@
import json, os, re, sys, urllib.request
with open(os.environ["KUBECTL_LOG"], "a") as log:
    log.write(" ".join(sys.argv[1:]) + "\\n")
args = sys.argv[1:]
contexts = json.loads(os.environ["KUBECTL_CONTEXTS"])  # context -> the cluster it reaches
context = (args[args.index("--context") + 1] if "--context" in args
           else os.environ.get("KUBECTL_CURRENT_CONTEXT"))
if not context:
    sys.exit("error: current-context is not set")
if context not in contexts:
    sys.exit('error: context "%s" does not exist' % context)
verb = next((v for v in ("apply", "delete") if v in args), None)
if verb is None or "-f" not in args:
    sys.exit("kubectl stand-in: only `apply -f URL` and `delete -f URL` are known")
url = args[args.index("-f") + 1]
with urllib.request.urlopen(url, timeout=10) as reply:
    manifest = reply.read().decode()
agent = re.search(r"^    cluster: (\\S+)$", manifest, re.M).group(1)
path = os.environ["KUBE_STATE"]
state = json.load(open(path)) if os.path.exists(path) else {}
cluster = contexts[context]
if verb == "apply":
    state[cluster] = agent  # one cloudcasa-io namespace per cluster: the last one wins
    print("namespace/cloudcasa-io configured")
elif cluster in state:
    del state[cluster]
    print('namespace "cloudcasa-io" deleted')
elif "--ignore-not-found" not in args:
    sys.exit('Error from server (NotFound): namespaces "cloudcasa-io" not found')
with open(path + ".tmp", "w") as out:
    json.dump(state, out)
os.replace(path + ".tmp", path)
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
             "capabilities": s.get("Capabilities", []),
             "tags": {t["Key"]: t["Value"] for t in s.get("Tags", [])}}
            for s in found if s["StackStatus"] != "DELETE_COMPLETE"]


@dataclass(kw_only=True)
class Rig(ProcedureRig):
    casa: FakeCloudCasa
    aws: str
    strict: Strictness
    contexts: dict[str, str] = field(default_factory=lambda: {
        ARN.format("prod-eks"): "prod-eks", ARN.format("dev-eks"): "dev-eks",
        "prod": "prod-eks"})

    @property
    def kubectl_log(self) -> Path:
        return self.tmp / "kubectl.log"

    @property
    def kube_state(self) -> Path:
        return self.tmp / "kube-state.json"

    def running_agents(self) -> dict[str, str]:
        """cluster → the agent running in it (what the stand-in kubectl installed)."""
        return json.loads(self.kube_state.read_text()) if self.kube_state.exists() else {}

    def kube_env(self) -> dict[str, str]:
        return {"KUBECTL_LOG": str(self.kubectl_log), "KUBE_STATE": str(self.kube_state),
                "KUBECTL_CONTEXTS": json.dumps(self.contexts)}

    def answers_file(self) -> Path:
        return self.write_answers()

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in super().env().items() if not k.startswith("AWS_")}
        env.update(PATH=f"{self.tmp / 'bin'}:{env['PATH']}", **self.kube_env(),
                   **aws_env(self.aws))
        return env

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "tui", *args]

    def apply(self, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.cli("apply", "cloudcasa", "--answers", str(self.answers_file()), "--yes",
                        *extra)

    def popen_apply(self) -> subprocess.Popen[str]:
        """The apply as a process through the real entry point, for the tests that stop
        it with a signal (SIGKILL, SIGINT) mid-poll: a signal needs a process."""
        return subprocess.Popen(
            self.argv("apply", "cloudcasa", "--answers", str(self.answers_file()), "--yes"),
            env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            stdin=subprocess.DEVNULL, cwd=Path(__file__).resolve().parents[2])

    def teardown(self, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.cli("teardown", "cloudcasa", "--answers", str(self.answers_file()),
                        "--yes", *extra)

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
    s3.put_object(Bucket="cloudcasa-cf", Key=TEMPLATE_014_URL.rsplit("/", 1)[1],
                  Body=TEMPLATE_014.encode())
    state = tmp_path / "kube-state.json"
    fake = FakeCloudCasa(stack_params=lambda: stacks(moto_server),
                         agents=lambda: json.loads(state.read_text()) if state.exists()
                         else {}).start()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(KUBECTL.replace("@PYTHON@", sys.executable))
    kubectl.chmod(kubectl.stat().st_mode | stat.S_IEXEC)
    with strict_cloudformation() as strict:
        rig = Rig(tmp=tmp_path, casa=fake, aws=moto_server, strict=strict)
        rig.answers = {"api_url": fake.url + "/api/v1", "account_name": "prod-aws",
                       "description": "Created by CloudRig tests", "tags": {"team": "platform"},
                       "stack_name": "cloudcasa", "aws_region": REGION,
                       "poll_interval": 0.05, "poll_timeout": 60}
        rig.secrets = {"api_key": fake.api_key}
        yield rig
        fake.stop()
