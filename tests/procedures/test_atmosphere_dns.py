"""The DNS check against a name server on 127.0.0.1 (dnspython on both sides): missing
and wrong records are counted, the first few named; a complete zone is done."""

from __future__ import annotations

import json
import socket
import threading

import dns.message
import dns.rcode
import dns.rrset
import pytest
from atmosphere_rig import Cli, base_answers

from tui.answers import validate
from tui.model import Status
from tui.procedures.atmosphere import AtmosphereAnswers
from tui.procedures.atmosphere.dns import check_names


class NameServer:
    """Answers A queries from `records` (name → IP); NXDOMAIN for the rest."""

    def __init__(self, records: dict[str, str]) -> None:
        self.records = records
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.sock.getsockname()[1]}"

    def serve(self) -> None:
        while not self.stopped.is_set():
            try:
                wire, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            query = dns.message.from_wire(wire)
            response = dns.message.make_response(query)
            name = query.question[0].name.to_text().rstrip(".")
            if name in self.records:
                response.answer.append(dns.rrset.from_text(name + ".", 300, "IN", "A",
                                                           self.records[name]))
            else:
                response.set_rcode(dns.rcode.NXDOMAIN)
            self.sock.sendto(response.to_wire(), peer)

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=2)
        self.sock.close()


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
