"""The atmosphere answers: the keys of its answers files (a public contract)."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from tui.answers import AbsPath, Answers, ask, check_host, is_hostname, matches

from .openrc import prefill

HostRole = Literal["osa-deploy", "atmosphere", "workstation"]

# A service whose public URI CloudRig can override: the keys of PUBLIC_SERVICES, in its
# order (the wizard's choices), written out so a type checker knows them.
ServiceName = Literal[
    "glance", "nova", "cinder", "keystone", "neutron", "ceilometer", "sahara", "gnocchi", "aodh",
    "heat", "heat_cfn", "ironic", "swift", "magnum",
]
# The runbook's `*_service_publicuri` overrides: service → (variable, proto var, port var).
# Kept as the runbook writes them except `gnocchi`/`magnum`, whose `_publicurl` is a
# typo for OSA's `_service_publicuri` (module docstring).
PUBLIC_SERVICES: dict[ServiceName, tuple[str, str, str]] = {
    "glance": ("glance_service_publicuri", "glance_service_publicuri_proto",
               "glance_service_port"),
    "nova": ("nova_service_publicuri", "nova_service_publicuri_proto", "nova_service_port"),
    "cinder": ("cinder_service_publicuri", "cinder_service_publicuri_proto",
               "cinder_service_port"),
    "keystone": ("keystone_service_publicuri", "keystone_service_publicuri_proto",
                 "keystone_service_port"),
    "neutron": ("neutron_service_publicuri", "neutron_service_publicuri_proto",
                "neutron_service_port"),
    "ceilometer": ("ceilometer_service_publicuri", "ceilometer_service_proto",
                   "ceilometer_service_port"),
    "sahara": ("sahara_service_publicuri", "sahara_service_publicuri_proto",
               "sahara_service_port"),
    "gnocchi": ("gnocchi_service_publicuri", "gnocchi_service_publicuri_proto",
                "gnocchi_service_port"),
    "aodh": ("aodh_service_publicuri", "aodh_service_proto", "aodh_service_port"),
    "heat": ("heat_service_publicuri", "heat_service_publicuri_proto", "heat_service_port"),
    "heat_cfn": ("heat_cfn_service_publicuri", "heat_cfn_service_publicuri_proto",
                 "heat_cfn_service_port"),
    "ironic": ("ironic_service_publicuri", "ironic_service_publicuri_proto",
               "ironic_service_port"),
    "swift": ("swift_service_publicuri", "swift_service_publicuri_proto", "swift_proxy_port"),
    "magnum": ("magnum_service_publicuri", "magnum_service_publicuri_proto",
               "magnum_bind_port"),
}

MAX_RANGE = 65536
PROVIDER_SECRET_MIN = 32


def check_fqdn(value: str) -> str:
    value = value.strip().rstrip(".").lower()
    try:
        ipaddress.ip_address(value)
    except ValueError:
        pass
    else:
        raise ValueError(f"{value!r} is an IP address; TLS certificates and the endpoints "
                         "need a fully qualified host name")
    if not is_hostname(value) or "." not in value:
        raise ValueError(f"{value!r} is not a fully qualified domain name")
    return value


def check_network(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value.strip(), strict=True))
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a network in CIDR form ({exc})") from None


def check_ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address") from None


def check_url(value: str) -> str:
    value = value.strip()
    match = re.fullmatch(r"(https?)://([^/\s:]+|\[[0-9a-fA-F:]+\])(:\d{1,5})?(/\S*)?", value)
    if not match:
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value.rstrip("/")


def floating_ips(spec: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The addresses of `start-end`, the runbook's short `1.2.3.2-62`, or a CIDR (its
    usable hosts). Raises ValueError with the reason."""
    spec = spec.strip()
    if "/" in spec:
        network = ipaddress.ip_network(spec, strict=True)
        if network.num_addresses > MAX_RANGE:
            raise ValueError(f"{spec} has {network.num_addresses} addresses; at most {MAX_RANGE}")
        hosts: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = list(network.hosts())
        if not hosts:
            raise ValueError(f"{spec} has no usable host address")
        return hosts
    start_text, sep, end_text = spec.partition("-")
    if not sep:
        raise ValueError("give a range as start-end (1.2.3.2-1.2.3.62 or 1.2.3.2-62) or a CIDR")
    start = ipaddress.ip_address(start_text.strip())
    end_text = end_text.strip()
    if end_text.isdigit() and start.version == 4:
        end = ipaddress.ip_address(".".join([*str(start).split(".")[:3], end_text]))
    else:
        end = ipaddress.ip_address(end_text)
    if end.version != start.version or int(end) < int(start):
        raise ValueError(f"the range ends ({end}) before it starts ({start})")
    if int(end) - int(start) + 1 > MAX_RANGE:
        raise ValueError(f"the range has more than {MAX_RANGE} addresses")
    return [ipaddress.ip_address(n) for n in range(int(start), int(end) + 1)]


def _check_range(value: str) -> str:
    floating_ips(value)
    return value.strip()


def render_hostname(fmt: str, ip: Any, domain: str) -> str:
    """Atmosphere's `hostname_format` for one address: `%(one)s` … `%(four)s` are its
    octets and `%(domain)s` is settings.INSTANCE_HOSTNAMING_DOMAIN (cyverse/atmosphere
    service/deploy.py `create_hostnaming_map`, tag v37-5), which CloudRig takes to be
    `domain` (dns_zone: set INSTANCE_HOSTNAMING_DOMAIN to it)."""
    octets = str(ip).split(".")
    if len(octets) != 4:
        raise ValueError("hostname_format needs IPv4 floating addresses")
    return fmt % {**dict(zip(("one", "two", "three", "four"), octets, strict=True)),
                  "domain": domain}


def _check_secret_length(value: SecretStr | None) -> SecretStr | None:
    if value is not None and len(value.get_secret_value()) < PROVIDER_SECRET_MIN:
        raise ValueError(f"must be at least {PROVIDER_SECRET_MIN} characters (it has "
                         f"{len(value.get_secret_value())}); leave it unset to have CloudRig "
                         "generate a strong one")
    return value


Fqdn = Annotated[str, AfterValidator(check_fqdn)]
Cidr = Annotated[str, AfterValidator(check_network)]
IpAddress = Annotated[str, AfterValidator(check_ip)]
Url = Annotated[str, AfterValidator(check_url)]
IpRange = Annotated[str, AfterValidator(_check_range)]
OsName = Annotated[str, matches(r"[^\s/][^/\x00-\x1f]{0,63}",
                                "OpenStack name (no '/', no line breaks, at most 64 characters)")]
ProviderName = Annotated[str, matches(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}",
                                      "provider name (letters, digits, '.', '_', '-')")]
UserName = Annotated[str, matches(r"[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}", "Atmosphere user name")]


def _f2b_address(value: str) -> str:
    """An IP, a network (fail2ban's ignoreip takes `127.0.0.1/8`: host bits allowed) or a
    host name."""
    value = value.strip()
    try:
        ipaddress.ip_network(value, strict=False)
        return value
    except ValueError:
        pass
    if is_hostname(value):
        return value
    raise ValueError(f"{value!r} is not an IP address, a network (CIDR) or a host name")


def _ssh_key(value: str) -> str:
    value = value.strip()
    if not re.fullmatch(r"(ssh-(rsa|dss|ed25519)|ecdsa-sha2-nistp(256|384|521)|"
                        r"sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) "
                        r"[A-Za-z0-9+/]+={0,3}( [^\n]*)?", value):
        raise ValueError("is not an OpenSSH public key line (type, base64 key, comment)")
    return value


HostOrIp = Annotated[str, AfterValidator(check_host)]
F2bAddress = Annotated[str, AfterValidator(_f2b_address)]
SshKey = Annotated[str, AfterValidator(_ssh_key)]
GroupNames = Annotated[str, matches(
    r"[A-Za-z0-9_][A-Za-z0-9_.-]*( [A-Za-z0-9_][A-Za-z0-9_.-]*)*",
    "list of group names separated by spaces")]
Timezone = Annotated[str, matches(r"[A-Za-z0-9_+/.-]{1,128}",
                                  "time zone (a zoneinfo path or name)")]


class AtmosphereAnswers(Answers):
    """What the atmosphere runbook asks of the operator (keys are the answers contract)."""

    host_role: HostRole = ask(
        "workstation", title="This host",
        help="Which machine CloudRig runs on: the OSA deployment host, the Atmosphere "
             "server, or a workstation. Steps for another machine are exported as files "
             "and a script to run there.", example="osa-deploy")
    export_dir: AbsPath = ask(
        "/var/lib/cloudrig/export/atmosphere", title="Export directory",
        help="Where steps for another host are written (files + a script per step).",
        example="/var/lib/cloudrig/export/atmosphere")
    openrc: AbsPath | None = ask(
        None, title="openrc file",
        help="An openrc file to prefill auth_url, region_name, os_admin_project, "
             "os_user_domain, os_project_domain(_id) and os_admin_user from (read, never "
             "executed).",
        example="/root/openrc")
    cloud_fqdn: Fqdn = ask(
        title="Cloud API host name",
        help="The DNS name (not an IP) of the OpenStack APIs; the TLS certificate is for it.",
        example="cloud.example.org")
    tls_cert: AbsPath = ask(
        title="TLS certificate", help="Certificate for cloud_fqdn, on the OSA deployment host.",
        example="/etc/ssl/mycert.crt")
    tls_key: AbsPath = ask(
        title="TLS private key", help="Its private key, on the OSA deployment host.",
        example="/etc/ssl/private/mycert.key")
    tls_ca: AbsPath = ask(
        title="TLS CA certificate", help="The CA chain of the certificate, on the OSA host.",
        example="/etc/ssl/mycert-ca.crt")
    keystone_admin_port: int | None = ask(
        None, title="Keystone admin port",
        help="Only to build admin_url by hand (https://cloud_fqdn:PORT) when it is not "
             "given; normally admin_url comes from Keystone's catalog. OSA used 35357 up "
             "to 17 (Queens) and 5000 from 18 (Rocky).", example=5000, ge=1, le=65535)
    atmosphere_networks: list[Cidr] = ask(
        ["192.168.0.0/16", "172.16.0.0/12", "10.0.0.0/8"], title="Networks allowed to "
        "Keystone admin", help="CIDRs HAProxy lets reach the Keystone admin API: add the "
        "network of the Atmosphere server.", example=["10.0.0.0/8", "128.196.0.0/16"],
        min_length=1)
    public_services: list[ServiceName] = ask(
        list(PUBLIC_SERVICES), title="Public URI overrides",
        help="Services whose *_service_publicuri is set to https://cloud_fqdn.",
        example=["keystone", "nova", "glance"])
    osa_config_dir: AbsPath = ask(
        "/etc/openstack_deploy", title="OSA configuration directory",
        help="OSA reads every user_*.yml here; CloudRig writes user_variables_atmosphere.yml.",
        example="/etc/openstack_deploy")
    osa_dir: AbsPath = ask(
        "/opt/openstack-ansible", title="OSA checkout",
        help="The openstack-ansible checkout on the deployment host; its release says how "
             "the Keystone admin API is opened (read when this host has it).",
        example="/opt/openstack-ansible")
    osa_release: int | None = ask(
        None, title="OSA release",
        help="The major version of OpenStack-Ansible on the deployment host (14 Newton, "
             "15 Ocata, …, 18 Rocky, 19 Stein, …); empty: read from osa_dir. Needed on a "
             "workstation without a copy of the checkout.", example=19, ge=14, le=99)
    osa_haproxy_config: AbsPath | None = ask(
        None, title="OSA HAProxy settings file",
        help="Only for OSA 14 (Newton), where haproxy_default_services is copied whole: a "
             "copy of the release's file to read instead of the one in osa_dir.",
        example="/opt/openstack-ansible/playbooks/vars/configs/haproxy_config.yml")
    auth_url: Url = ask(
        title="Keystone auth URL", help="The public identity endpoint (OS_AUTH_URL).",
        example="https://cloud.example.org:5000/v3")
    admin_url: Url | None = ask(
        None, title="Keystone admin URL",
        help="The Keystone admin endpoint Atmosphere authenticates with; default: the "
             "identity admin endpoint in Keystone's catalog (the public one where there is "
             "none). When given, it must agree with the catalog.",
        example="https://cloud.example.org:5000")
    region_name: OsName = ask("RegionOne", title="Region", help="OS_REGION_NAME.",
                              example="RegionOne")
    os_admin_user: OsName = ask("admin", title="OpenStack admin user",
                                help="The user CloudRig calls Keystone as.", example="admin")
    os_admin_project: OsName = ask("admin", title="Admin project",
                                   help="The project that user's token is scoped to.",
                                   example="admin")
    os_user_domain: OsName = ask("Default", title="User domain",
                                 help="The admin user's domain name (OS_USER_DOMAIN_NAME).",
                                 example="Default")
    os_project_domain: OsName | None = ask(
        None, title="Admin project's domain",
        help="The domain name of os_admin_project (OS_PROJECT_DOMAIN_NAME); empty: the user "
             "domain.", example="Default")
    os_project_domain_id: OsName | None = ask(
        None, title="Admin project's domain ID",
        help="The domain ID of os_admin_project (OS_PROJECT_DOMAIN_ID); wins over the name.",
        example="default")
    os_ca_file: AbsPath | None = ask(
        None, title="CA bundle for Keystone", help="Optional PEM bundle to verify Keystone's "
        "certificate (default: the system trust store).", example="/etc/ssl/certs/ca.pem")
    os_admin_password: SecretStr | None = ask(
        title="OpenStack admin password", secret=True,
        help="To call Keystone as os_admin_user; never written to answers files.",
        example="the admin password")
    audit_strict: bool = ask(
        False, title="Strict endpoint audit",
        help="Stop apply when an endpoint is plain http, an IP, or has a bad certificate.",
        example=False)
    atmo_admin: OsName = ask(
        "atmoadmin", title="Atmosphere admin account",
        help="Keystone project and user Atmosphere uses (admin role on that project).",
        example="atmoadmin")
    atmo_admin_password: SecretStr | None = ask(
        title="atmo_admin password", secret=True,
        help="The Keystone password of atmo_admin; also in the provider JSON (0600).",
        example="a long passphrase")
    public_router: OsName = ask("public_router", title="Public router",
                                help="credential.public_routers.", example="public_router")
    network_name: OsName = ask("selfservice", title="Network name",
                               help="credential.network_name.", example="selfservice")
    dns_nameservers: list[IpAddress] = ask(
        ["8.8.8.8", "8.8.4.4"], title="DNS servers for instances",
        help="cloud_config.network.dns_nameservers.", example=["8.8.8.8", "8.8.4.4"],
        min_length=1)
    topology: Literal["External Router Topology", "External Network Topology"] = ask(
        "External Router Topology", title="Network topology",
        help="cloud_config.network.topology.", example="External Router Topology")
    admin_role: OsName = ask("admin", title="Admin role", help="Keystone's admin role name.",
                             example="admin")
    user_role: OsName | None = ask(
        None, title="User role",
        help="Role of the users Atmosphere creates (cloud_config.user.user_role_name); must "
             "exist in Keystone. Empty: `member` (Keystone's bootstrap role since Rocky), "
             "else `_member_` on older clouds.", example="member")
    domain: OsName = ask("default", title="Atmosphere user domain",
                         help="cloud_config.user.domain: Keystone's default domain, where "
                              "Atmosphere logs its admin in and atmo_admin is created.",
                         example="default")
    dns_zone: Fqdn = ask(title="Instance DNS zone",
                         help="The zone holding a name for each floating IP.",
                         example="cloud.example.org")
    floating_ip_range: IpRange = ask(
        title="Floating IP range", help="start-end (1.2.3.2-62 or 1.2.3.2-1.2.3.62) or a CIDR.",
        example="192.0.2.2-62")
    hostname_format: str = ask(
        title="Instance host name format",
        help="Atmosphere's deploy.hostname_format: %(one)s…%(four)s are the IP's octets, "
             "%(domain)s is INSTANCE_HOSTNAMING_DOMAIN (taken to be dns_zone); must give "
             "names in dns_zone.", example="vm%(four)s.cloud.example.org")
    provider_name: ProviderName = ask(title="Provider name",
                                      help="The provider's name in Atmosphere.",
                                      example="my-awesome-cloud")
    platform: Literal["KVM", "Xen"] = ask("KVM", title="Platform", help="Hypervisor type.",
                                          example="KVM")
    provider_secret: SecretStr | None = ask(
        title="Provider secret", secret=True,
        help=f"Salt for auto-generated OpenStack passwords (≥ {PROVIDER_SECRET_MIN} "
             "characters); generated strongly when unset and kept in the secret store.",
        example="a-random-string-of-at-least-32-characters")
    atmosphere_users: list[UserName] = ask(
        title="Atmosphere users", help="Users given an identity on the new cloud.",
        example=["cmart"], min_length=1)
    atmosphere_dir: AbsPath = ask("/opt/dev/atmosphere", title="Atmosphere checkout",
                                  help="Where manage.py and scripts/ are.",
                                  example="/opt/dev/atmosphere")
    atmosphere_python: AbsPath = ask(
        "/opt/env/atmo/bin/python", title="Atmosphere's Python",
        help="The virtualenv's python (the runbook's /opt/env/atmo).",
        example="/opt/env/atmo/bin/python")
    atmosphere_url: Url | None = ask(
        None, title="Atmosphere URL", help="The Atmosphere web server, for the Django admin "
        "link of the allocation strategy step.", example="https://atmosphere.example.org")
    provider_json: AbsPath | None = ask(
        None, title="Provider JSON path",
        help="Where the provider JSON (0600) is written on the Atmosphere server; default "
             "/etc/cloudrig/atmosphere/<provider_name>.json.",
        example="/etc/cloudrig/atmosphere/my-awesome-cloud.json")
    dns_server: str | None = ask(
        None, title="DNS server to check",
        help="IP[:port] of the name server the DNS check asks (default: this host's "
             "resolvers).", example="192.0.2.53")
    atmosphere_ansible_dir: AbsPath = ask(
        "/opt/dev/atmosphere-ansible", title="atmosphere-ansible checkout",
        help="ansible/hosts and ansible/group_vars/atmosphere-<provider_name> are written "
             "under it.", example="/opt/dev/atmosphere-ansible")
    # What atmosphere-ansible's roles read, as its group_vars examples set them
    # (cyverse/atmosphere-ansible ansible/group_vars/atmosphere-example @6aaa7da; cyverse/clank
    # dist_files/group_vars/atmosphere-provider1): atmo-ntp, atmo-fail2ban, atmo-common,
    # atmo-ssh-setup.
    ntp_servers: list[HostOrIp] = ask(
        ["0.ubuntu.pool.ntp.org", "1.ubuntu.pool.ntp.org", "2.ubuntu.pool.ntp.org"],
        title="NTP servers (instances)", help="NTP_SERVERS: the atmo-ntp role writes a "
        "`server` line for each.", example=["0.ubuntu.pool.ntp.org", "1.ubuntu.pool.ntp.org"],
        min_length=1)
    f2b_ignoreip: list[F2bAddress] = ask(
        ["127.0.0.1/8"], title="fail2ban ignore list",
        help="F2B_IGNOREIP: addresses or networks fail2ban never bans on the instances (add "
             "the Atmosphere server's).", example=["127.0.0.1/8", "128.196.0.0/16"],
        min_length=1)
    timezone: Timezone = ask(
        "/usr/share/zoneinfo/US/Central", title="Instance time zone",
        help="TIMEZONE: written to /etc/timezone by the atmo-common role (its examples give "
             "a zoneinfo path).", example="/usr/share/zoneinfo/UTC")
    ssh_allow_groups: GroupNames = ask(
        "users root", title="SSH AllowGroups",
        help="SSH_ALLOW_GROUPS: sshd's AllowGroups on the instances (atmo-ssh-setup).",
        example="users root")
    ssh_keys: list[SshKey] = ask(
        [], title="Administrators' SSH keys",
        help="SSHKEYS: public keys atmo-ssh-setup adds to root's authorized_keys on every "
             "instance (none when empty).", example=["ssh-ed25519 AAAAC3Nza… admin@site"])

    @field_validator("provider_secret")
    @classmethod
    def _provider_secret(cls, value: SecretStr | None) -> SecretStr | None:
        return _check_secret_length(value)

    @field_validator("hostname_format")
    @classmethod
    def _hostnames(cls, value: str, info: ValidationInfo) -> str:
        """Rendered for the first and last floating IP, both must be names in dns_zone."""
        zone, spec = info.data.get("dns_zone"), info.data.get("floating_ip_range")
        if zone is None or spec is None:
            return value  # their own errors are reported
        ips = floating_ips(spec)
        for ip in (ips[0], ips[-1]):
            try:
                name = render_hostname(value, ip, zone)
            except (KeyError, ValueError, TypeError) as exc:
                raise ValueError(f"{value!r} cannot be rendered for {ip} ({exc!s}); use "
                                 "%(one)s, %(two)s, %(three)s, %(four)s for the octets and "
                                 "%(domain)s for dns_zone") from None
            if not is_hostname(name) or not name.lower().endswith("." + zone):
                raise ValueError(f"{value!r} gives {name!r} for {ip}, which is not a valid "
                                 f"host name in {zone}")
        return value

    @field_validator("dns_server")
    @classmethod
    def _dns_server(cls, value: str | None) -> str | None:
        if value is None:
            return None
        host, _, port = value.rpartition(":") if value.count(":") == 1 else (value, "", "")
        check_ip(host)
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise ValueError(f"{port!r} is not a port number")
        return value

    @model_validator(mode="before")
    @classmethod
    def _from_openrc(cls, data: Any) -> Any:
        """Answers the openrc file gives fill those not given (explicit answers win)."""
        if not isinstance(data, dict) or not data.get("openrc"):
            return data
        path = Path(str(data["openrc"]))
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise ValueError(f"openrc: cannot read {path}: {exc.strerror}") from None
        return {**prefill(text), **{k: v for k, v in data.items() if v not in (None, "")}}

    # ------------------------------------------------------------ derived

    def floating(self) -> list[Any]:
        return floating_ips(self.floating_ip_range)

    def hostnames(self) -> list[tuple[str, str]]:
        """(host name, IP) for every floating IP."""
        return [(render_hostname(self.hostname_format, ip, self.dns_zone), str(ip))
                for ip in self.floating()]

    @property
    def ansible_group(self) -> str:
        """The provider's group in atmosphere-ansible's inventory and its group_vars file,
        named as upstream names them (`atmosphere-<provider>`: the runbook's
        `atmosphere-mytestcloud`, cyverse/clank dist_files/hosts.dist)."""
        return f"atmosphere-{self.provider_name}"
