"""CloudStack client: signing (against exoscale/cs and the documented vectors), the
fake's verification, error sentences, paging and async jobs."""

from __future__ import annotations

import random

import pytest
from cs.client import CloudStack
from fakes.cloudstack import AUTH_ERROR, FakeCloudStack

from tui.clients.cloudstack import CloudStackClient, JobFailed, sign, string_to_sign
from tui.context import Context
from tui.errors import Interrupted
from tui.http import RemoteError
from tui.model import Event
from tui.poll import PollTimeout
from tui.procedures.cloudstack.steps import follow_job

ALPHABET = "aZ09 +*=&/%?~-._!'()@#$,;:[]{}\"\\éü漢\n\t"


def test_documented_vectors():
    params = {"apiKey": "foo", "command": "listVirtualMachines", "listall": "true",
              "response": "json"}
    assert string_to_sign(params) == \
        "apikey=foo&command=listvirtualmachines&listall=true&response=json"
    assert sign(params, "bar") == "B0d6hBsZTcFVCiioSxzwKA9Pke8="
    empty = {"apiKey": "foo", "command": "createNetwork", "name": "", "display_text": "",
             "response": "json"}
    assert sign(empty, "bar") == "CistTEiPt/4Rv1v4qSyILvPbhmg="


def test_signature_equals_cs_for_random_parameter_sets():
    rng = random.Random(6)
    cs = CloudStack(endpoint="http://127.0.0.1/client/api", key="k", secret="s3cr+t/=")
    for _ in range(300):
        params = {"apiKey": "k", "command": "updateVirtualMachine", "response": "json"}
        for _ in range(rng.randint(1, 6)):
            name = "".join(rng.choice("abcdefghij") for _ in range(rng.randint(1, 8)))
            value = "".join(rng.choice(ALPHABET.replace("~", ""))
                            for _ in range(rng.randint(0, 20)))
            params[name] = value
        theirs = dict(params)
        cs._sign(theirs)
        assert sign(params, "s3cr+t/=") == theirs["signature"], params


def test_tilde_is_encoded_as_the_server_does_not_as_cs():
    # Java's URLEncoder escapes '~'; Python's quote (and so exoscale/cs) does not.
    params = {"apiKey": "k", "command": "listZones", "name": "a~b"}
    assert "name=a%7eb" in string_to_sign(params)


@pytest.fixture
def fake():
    service = FakeCloudStack().start()
    yield service
    service.stop()


def client(fake: FakeCloudStack, secret: str | None = None, **kw) -> CloudStackClient:
    return CloudStackClient(fake.url + "/client/api", fake.api_key,
                            secret or fake.secret_key, backoff=0.01, poll_interval=0.01, **kw)


def test_fake_accepts_signed_get_and_post_with_awkward_values(fake):
    net = fake.add_network("n1", "VirtualRouter")
    vm = fake.add_vm("web 1*~+=", [net])
    with client(fake) as c:
        assert c.capabilities()["cloudstackversion"] == fake.version
        assert [v["id"] for v in c.find_vm("web 1*~+=")] == [vm["id"]]
        data = c.call("updateVirtualMachine", {"id": vm["id"], "userdata": "YWJj+/=="},
                      post=True, changes=True)
    assert data["virtualmachine"]["id"] == vm["id"]
    assert fake.log[-1].method == "POST"


def test_bad_secret_is_one_sentence_with_cloudstacks_401(fake):
    with client(fake, secret="wrong") as c, pytest.raises(RemoteError) as info:
        c.capabilities()
    message = str(info.value)
    assert AUTH_ERROR in message and "401" in message and "secret key" in message
    assert "wrong" not in message
    assert fake.log[-1].path == "/client/api"


@pytest.mark.parametrize("status,body,expect", [
    (530, '{"listcapabilitiesresponse":{"errorcode":530,"errortext":"db down"}}', "db down"),
    (503, "upstream unavailable", "answered 503"),
    (200, "<html>login</html>", "not JSON"),
    (404, "", "answered 404"),
    (403, "", "answered 403"),
    (431, '{"listcapabilitiesresponse":{"uuidList":[],"errorcode":431,"cserrorcode":4350,'
          '"errortext":"Unable to execute API command due to invalid value"}}',
     "431: Unable to execute API command due to invalid value"),
    (200, '{"listcapabilitiesresponse": [1, 2]}', "where an object was expected"),
    (200, '{"a": {}, "b": {}}', "not a single `<command>response` object"),
])
def test_remote_failures_are_sentences(fake, status, body, expect):
    fake.fail(status, body, times=5)
    with client(fake) as c, pytest.raises(RemoteError) as info:
        c.capabilities()
    assert expect in str(info.value)
    assert "\n" not in str(info.value)


def test_timeout_is_a_sentence(fake):
    fake.slow(1.0, times=5)
    c = CloudStackClient(fake.url + "/client/api", fake.api_key, fake.secret_key,
                         backoff=0.01)
    import httpx

    c.http.timeout = httpx.Timeout(0.2)
    with c, pytest.raises(RemoteError) as info:
        c.capabilities()
    assert "timed out" in str(info.value)


def test_list_all_follows_pages(fake):
    net = fake.add_network("n1", "VirtualRouter")
    for i in range(7):
        fake.add_vm(f"vm{i}", [net])
    with client(fake) as c:
        vms = c.list_all("listVirtualMachines", "virtualmachine", page_size=3)
    assert sorted(v["name"] for v in vms) == [f"vm{i}" for i in range(7)]
    pages = [r.arg("page") for r in fake.log if r.arg("command") == "listVirtualMachines"]
    assert pages == ["1", "2", "3"]


def _ctx(events: list[Event]) -> Context:
    return Context(procedure=None, answers=None, secrets=None, runner=None,  # type: ignore[arg-type]
                   on_event=events.append, step_id="userdata")


def _start(c: CloudStackClient, command: str, vm: dict) -> dict:
    return c.send(c.command(command, {"id": vm["id"]}, changes=True))


def test_async_job_is_followed_by_the_shared_poll_from_pending_to_success(fake):
    fake.job_polls = 3
    vm = fake.add_vm("a", [fake.add_network("n", "ConfigDrive")])
    events: list[Event] = []
    with client(fake) as c:
        job = follow_job(_ctx(events), c, "stopVirtualMachine",
                         _start(c, "stopVirtualMachine", vm))
    assert job.status == 1
    assert vm["state"] == "Stopped"
    assert events[0].message.endswith("started") and "succeeded" in events[-1].message
    # poll(): one progress line while pending, and a "poll" event after each pending poll
    assert [e.kind for e in events if "pending" in e.message] == ["info", "poll", "poll"]
    polls = [r for r in fake.log if r.arg("command") == "queryAsyncJobResult"]
    assert len(polls) == 3


def test_async_job_failure_names_the_job_and_reason(fake):
    vm = fake.add_vm("a", [fake.add_network("n", "ConfigDrive")])
    fake.fail_jobs.append("startVirtualMachine")
    with client(fake) as c, pytest.raises(JobFailed) as info:
        follow_job(_ctx([]), c, "startVirtualMachine", _start(c, "startVirtualMachine", vm))
    assert info.value.job.jobid in str(info.value)
    assert "insufficient capacity" in str(info.value)


def test_async_job_timeout_and_cancel_leave_the_job_and_say_its_id(fake):
    fake.job_polls = 10_000
    vm = fake.add_vm("a", [fake.add_network("n", "ConfigDrive")])
    with client(fake, job_timeout=0.05) as c, pytest.raises(PollTimeout) as info:
        follow_job(_ctx([]), c, "stopVirtualMachine", _start(c, "stopVirtualMachine", vm))
    jobid = next(iter(fake.jobs))
    assert jobid in str(info.value) and "still running" in str(info.value)
    ctx = _ctx([])
    ctx.cancel.set()
    with client(fake) as c, pytest.raises(Interrupted) as stopped:
        follow_job(ctx, c, "stopVirtualMachine", _start(c, "stopVirtualMachine", vm))
    assert "still running" in str(stopped.value)
    assert vm["state"] == "Running"
