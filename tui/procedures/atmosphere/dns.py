"""Checking that every floating IP's name resolves to it (dnspython).

The check asks the resolvers of this host, or the name server given as
`dns_server` (e.g. the zone's primary, before the records have propagated), and
reports missing and wrong records as counts plus the first few, never as a list
of hundreds of lines.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import dns.exception
import dns.resolver

from tui.model import CheckResult, Status

SHOWN = 3


def make_resolver(server: str | None) -> dns.resolver.Resolver:
    if server is None:
        resolver = dns.resolver.Resolver()
    else:
        resolver = dns.resolver.Resolver(configure=False)
        host, _, port = server.rpartition(":") if server.count(":") == 1 else (server, "", "")
        resolver.nameservers = [host]
        if port:
            resolver.port = int(port)
    resolver.lifetime = 3.0
    return resolver


def lookup(resolver: dns.resolver.Resolver, name: str, ip: str) -> str | None:
    """None when `name` has exactly the address `ip`, else what is wrong."""
    kind = "AAAA" if ":" in ip else "A"
    try:
        answer = resolver.resolve(name + ".", kind)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return f"{name} missing"
    except dns.exception.Timeout:
        return f"{name}: no answer from the name server"
    except dns.exception.DNSException as exc:
        return f"{name}: {exc}"
    found = sorted(r.to_text() for r in answer)
    if found != [ip]:
        return f"{name} is {', '.join(found)}, not {ip}"
    return None


def check_names(records: list[tuple[str, str]], server: str | None = None) -> CheckResult:
    resolver = make_resolver(server)
    with ThreadPoolExecutor(max_workers=8) as pool:
        problems = [p for p in pool.map(lambda r: lookup(resolver, *r), records) if p]
    if not problems:
        return CheckResult(status=Status.DONE, detail=f"all {len(records)} names resolve")
    missing = sum(1 for p in problems if p.endswith(" missing"))
    wrong = len(problems) - missing
    first = "; ".join(problems[:SHOWN])
    return CheckResult(status=Status.PENDING if wrong == 0 else Status.DRIFTED,
                       detail=f"{missing} of {len(records)} names missing, {wrong} wrong "
                              f"(first: {first})")
