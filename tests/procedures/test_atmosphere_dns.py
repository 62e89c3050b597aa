"""The DNS check against a name server on 127.0.0.1 (dnspython on both sides): missing
and wrong records are counted, the first few named; a complete zone is done."""

from __future__ import annotations

import json

import pytest
from atmosphere_rig import Cli, base_answers
from fakes.nameserver import NameServer

from tui.answers import validate
from tui.model import Status
from tui.procedures.atmosphere import AtmosphereAnswers
from tui.procedures.atmosphere.dns import check_names


@pytest.fixture
def answers(tmp_path):
    return validate(AtmosphereAnswers, base_answers(tmp_path, floating_ip_range="192.0.2.2-11"))


def test_complete_zone_is_done(answers):
    server = NameServer(dict(answers.hostnames()))
    try:
        result = check_names(answers.hostnames(), server.address)
    finally:
        server.stop()
    assert result.status is Status.DONE and result.detail == "all 10 names resolve"


def test_missing_and_wrong_records_are_counted_with_the_first_few(answers):
    records = dict(answers.hostnames())
    for name in ("vm3.cloud.example.org", "vm4.cloud.example.org", "vm5.cloud.example.org",
                 "vm6.cloud.example.org"):
        del records[name]
    records["vm9.cloud.example.org"] = "198.51.100.9"
    server = NameServer(records)
    try:
        result = check_names(answers.hostnames(), server.address)
    finally:
        server.stop()
    assert result.status is Status.DRIFTED
    assert result.detail == ("4 of 10 names missing, 1 wrong (first: vm3.cloud.example.org "
                             "missing; vm4.cloud.example.org missing; vm5.cloud.example.org "
                             "missing)")


def test_status_shows_the_dns_check(tmp_path):
    data = base_answers(tmp_path, floating_ip_range="192.0.2.2-4", host_role="atmosphere")
    hostnames = validate(AtmosphereAnswers, data).hostnames()
    server = NameServer(dict(hostnames[:1]))
    cli = Cli(tmp_path)
    try:
        data["dns_server"] = server.address
        path = str(cli.write(data))
        assert cli("apply", "atmosphere", "--answers", path, "--root", str(tmp_path / "r"),
                   "--yes", "--step", "dns").returncode == 0
        status = json.loads(cli("status", "atmosphere", "--json").stdout)
    finally:
        server.stop()
    dns_step = next(s for s in status["steps"] if s["step"] == "dns")
    assert dns_step["status"] == "pending"
    assert dns_step["detail"].startswith("2 of 3 names missing, 0 wrong (first: "
                                         "vm3.cloud.example.org missing")
