"""A name server on 127.0.0.1 (dnspython on both sides): A records from a dict,
NXDOMAIN for every other name, as an authoritative server answers for names its zone
does not hold (RFC 1035 4.1.1, RCODE 3)."""

from __future__ import annotations

import socket
import threading

import dns.message
import dns.rcode
import dns.rrset


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
