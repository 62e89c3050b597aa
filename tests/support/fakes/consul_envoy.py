"""A stand-in for `consul connect envoy` that makes the Consul API calls the real
command makes before it execs Envoy, so a unit's ExecStart line can be run against
the fake Consul and fail where the real one fails.

Written from hashicorp/consul command/connect/envoy/envoy.go @0009e068 (`run`,
`generateConfig`, `templateArgs`, `xdsAddress`, `lookupXDSPort`) and command/flags/
http.go for the HTTP options:
- `-http-addr` (else CONSUL_HTTP_ADDR, else `127.0.0.1:8500`; an `https://` prefix
  means TLS), `-ca-file` (else CONSUL_CACERT), `-token-file` / `-token` (else
  CONSUL_HTTP_TOKEN); Go's flag syntax, `-name value` or `-name=value`;
- with `-register -gateway=terminating`: `PUT /v1/agent/service/register` with Kind
  `terminating-gateway`, the `-service` name as Name and ID, port 8443 and a TCP
  check "terminating-gateway listening" on 127.0.0.1:8443; an error ends it
  ("Error registering service …");
- `GET /v1/agent/self` to find the xDS port — a 403 "Permission denied" is only a
  warning there —, `GET /v1/acl/token/self`, `GET /v1/agent/service/<id>` (an error
  ends it: "failed fetch proxy config from local agent"), then `GET /v1/agent/self`
  again, whose error now ends it (envoy.go: `info, err := c.client.Agent().Self();
  if err != nil { return nil, err }`), then `GET /v1/config/proxy-defaults/global`
  (status errors tolerated);
- then the real command execs Envoy; the stand-in prints that and exits 0.
Errors read as the Go API client writes them: `Unexpected response code: 403 (…)`.
"""

from __future__ import annotations

import contextlib
import json
import os
import ssl
import sys
import urllib.error
import urllib.request
from typing import Any

BOOL_FLAGS = {"register", "bootstrap", "mesh-gateway", "expose-servers",
              "ignore-envoy-compatibility", "disable-central-config", "omit-deprecated-tags"}


class ApiError(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"Unexpected response code: {status} ({body})")
        self.status = status


def parse_flags(args: list[str]) -> dict[str, str]:
    """Go's flag package: `-x v`, `-x=v`, `--x v`; boolean flags take no value."""
    flags: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("-"):
            raise SystemExit(f"unexpected argument {arg!r}")
        name, sep, value = arg.lstrip("-").partition("=")
        if not sep:
            if name in BOOL_FLAGS:
                value = "true"
            else:
                i += 1
                if i >= len(args):
                    raise SystemExit(f"flag needs an argument: -{name}")
                value = args[i]
        flags[name] = value
        i += 1
    return flags


class Agent:
    def __init__(self, address: str, token: str, ca_file: str | None) -> None:
        scheme = "http"
        if "://" in address:
            scheme, address = address.split("://", 1)
        self.base = f"{scheme}://{address}"
        self.token = token
        self.context = ssl.create_default_context(cafile=ca_file) if scheme == "https" \
            else None

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"X-Consul-Token": self.token})
        try:
            with urllib.request.urlopen(request, timeout=10, context=self.context) as reply:
                text = reply.read().decode()
        except urllib.error.HTTPError as exc:
            raise ApiError(exc.code, exc.read().decode(errors="replace").strip()) from None
        return json.loads(text) if text.strip() else None


def connect_envoy(flags: dict[str, str]) -> int:
    token = flags.get("token") or os.environ.get("CONSUL_HTTP_TOKEN", "")
    if flags.get("token-file"):
        try:
            with open(flags["token-file"]) as handle:
                token = handle.read().strip()
        except OSError as exc:
            print(f"Error loading token file: {exc}", file=sys.stderr)
            return 1
    address = flags.get("http-addr") or os.environ.get("CONSUL_HTTP_ADDR") or "127.0.0.1:8500"
    agent = Agent(address, token, flags.get("ca-file") or os.environ.get("CONSUL_CACERT"))
    if flags.get("gateway") != "terminating":
        print("this stand-in only knows -gateway=terminating", file=sys.stderr)
        return 1
    kind = "terminating-gateway"
    name = flags.get("service") or kind
    try:
        if flags.get("register") == "true":
            registration = {
                "Kind": kind, "Name": name, "ID": name, "Address": "", "Port": 8443,
                "Check": {"Name": f"{kind} listening", "TCP": "127.0.0.1:8443",
                          "Interval": "10s", "DeregisterCriticalServiceAfter": "6h"}}
            try:
                agent.call("PUT", "/v1/agent/service/register", registration)
            except (ApiError, OSError) as exc:
                print(f'Error registering service "{name}": {exc}', file=sys.stderr)
                return 1
            print(f"Registered service: {name}")
        try:
            agent.call("GET", "/v1/agent/self")  # lookupXDSPort
        except ApiError as exc:
            if "Permission denied" not in str(exc):
                raise
        agent.call("GET", "/v1/acl/token/self")
        try:
            agent.call("GET", f"/v1/agent/service/{name}")
        except ApiError as exc:
            print(f"failed fetch proxy config from local agent: {exc}", file=sys.stderr)
            return 1
        agent.call("GET", "/v1/agent/self")  # generateConfig: fatal on error
        with contextlib.suppress(ApiError):
            agent.call("GET", "/v1/config/proxy-defaults/global")
    except (ApiError, OSError) as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print("envoy: started with the bootstrap configuration (stand-in)")
    return 0


def main(argv: list[str]) -> int:
    if argv[:2] != ["connect", "envoy"]:
        print(f"this stand-in only runs `consul connect envoy`, not {argv[:2]}",
              file=sys.stderr)
        return 1
    return connect_envoy(parse_flags(argv[2:]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
