"""atmosphere against the fake Keystone v3: the account steps are idempotent (a second
apply POSTs nothing but its token request), failures are one sentence, and no secret
appears in state, logs, previews or output."""

from __future__ import annotations

import base64
import json

import pytest
from atmosphere_rig import ADMIN_PASSWORD, ATMO_PASSWORD, PROVIDER_SECRET, Cli, base_answers
from fakes.keystone import FakeKeystone


@pytest.fixture
def rig(tmp_path):
    fake = FakeKeystone(admin_password=ADMIN_PASSWORD).start()
    port = fake.url.rsplit(":", 1)[1]
    fake.add_endpoint("keystone", "identity", "public", f"{fake.url}/v3")
    fake.add_endpoint("keystone", "identity", "admin", f"http://127.0.0.1:{port}/v3")
    fake.add_endpoint("nova", "compute", "internal", "http://10.0.0.5:8774/v2.1")
    cli = Cli(tmp_path, secrets={"os_admin_password": ADMIN_PASSWORD,
                                 "atmo_admin_password": ATMO_PASSWORD,
                                 "provider_secret": PROVIDER_SECRET})
    answers = base_answers(tmp_path, host_role="workstation", auth_url=f"{fake.url}/v3")
    yield fake, cli, answers, tmp_path
    fake.stop()


def _changes(fake: FakeKeystone, since: int) -> list[str]:
    return [f"{r.method} {r.path}" for r in fake.log[since:]
            if r.method in ("POST", "PUT", "PATCH", "DELETE") and r.path != "/v3/auth/tokens"]


def test_keystone_account_created_once_then_nothing(rig):
    fake, cli, answers, tmp = rig
    path = str(cli.write(answers))
    first = cli("apply", "atmosphere", "--answers", path, "--root", str(tmp / "root"), "--yes",
                "--step", "keystone")
    assert first.returncode == 0, first.stderr
    project, user = fake.project_named("atmoadmin"), fake.user_named("atmoadmin")
    assert project and user and fake.passwords[user["id"]] == ATMO_PASSWORD
    assert user["default_project_id"] == project["id"]
    assert (project["id"], user["id"], fake.role_named("admin")["id"]) in fake.grants
    assert _changes(fake, 0) == ["POST /v3/projects", "POST /v3/users",
                                 "PUT /v3/projects/{}/users/{}/roles/{}".format(
                                     project["id"], user["id"], fake.role_named("admin")["id"])]
    # Every admin call used the scoped token from X-Subject-Token.
    tokens = {r.headers.get("x-auth-token") for r in fake.log if r.path != "/v3/auth/tokens"}
    assert tokens and tokens <= set(fake.tokens)

    before = len(fake.log)
    again = cli("apply", "atmosphere", "--answers", path, "--root", str(tmp / "root"), "--yes",
                "--step", "keystone")
    assert again.returncode == 0, again.stderr
    assert _changes(fake, before) == []
    posts = [r.path for r in fake.log[before:] if r.method == "POST"]
    assert set(posts) == {"/v3/auth/tokens"}
    status = json.loads(cli("status", "atmosphere", "--json").stdout)
    keystone = next(s for s in status["steps"] if s["step"] == "keystone")
    assert keystone["status"] == "done", keystone


def test_existing_user_with_another_password_is_updated_not_recreated(rig):
    fake, cli, answers, tmp = rig
    project = fake.add_project("atmoadmin")
    user = fake.add_user("atmoadmin", "old password")
    fake.grants.add((project["id"], user["id"], fake.role_named("admin")["id"]))
    result = cli("apply", "atmosphere", "--answers", str(cli.write(answers)), "--yes",
                 "--root", str(tmp / "root"), "--step", "keystone")
    assert result.returncode == 0, result.stderr
    assert _changes(fake, 0) == [f"PATCH /v3/users/{user['id']}"]
    assert fake.passwords[user["id"]] == ATMO_PASSWORD


def test_wrong_admin_password_is_one_sentence_with_keystones_message(rig):
    fake, cli, answers, tmp = rig
    cli.secrets["os_admin_password"] = "wrong"
    result = cli("apply", "atmosphere", "--answers", str(cli.write(answers)), "--yes",
                 "--root", str(tmp / "root"), "--step", "keystone")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert ("Keystone refused to issue a token for admin on project admin" in result.stderr
            and "401 Unauthorized: The request you have made requires authentication"
            in result.stderr and "check os_admin_user, os_user_domain and os_admin_password"
            in result.stderr)
    assert _changes(fake, 0) == []


def test_admin_without_the_admin_role_gets_403_sentence(rig):
    fake, cli, answers, tmp = rig
    project = fake.project_named("admin")
    weak = fake.add_user("weak", "weak password")
    fake.grants.add((project["id"], weak["id"], fake.role_named("member")["id"]))
    cli.secrets["os_admin_password"] = "weak password"
    answers["os_admin_user"] = "weak"
    result = cli("apply", "atmosphere", "--answers", str(cli.write(answers)), "--yes",
                 "--root", str(tmp / "root"), "--step", "keystone")
    assert result.returncode == 1
    assert "403 Forbidden: You are not authorized to perform the requested action: " \
           "identity:get_domain" in result.stderr
    assert "needs the admin role" in result.stderr


def test_audit_warns_and_only_strict_stops_apply(rig):
    fake, cli, answers, tmp = rig
    path = str(cli.write(answers))
    result = cli("apply", "atmosphere", "--answers", path, "--yes", "--root", str(tmp / "root"),
                 "--step", "endpoint-audit")
    assert result.returncode == 0, result.stderr
    assert f"keystone public endpoint {fake.url}/v3 uses plain http, not https" in result.stderr
    assert "uses the IP address 127.0.0.1, not a host name" in result.stderr
    assert "openstack endpoint set --url 'https://cloud.example.org:" in result.stderr
    assert "10.0.0.5" not in result.stderr  # internal endpoints are not the runbook's concern
    plan = json.loads(cli("plan", "atmosphere", "--answers", path, "--json",
                          "--step", "endpoint-audit").stdout)
    texts = [i.get("text", "") for i in plan["steps"][0]["items"]]
    assert sum(t.startswith("warning: ") for t in texts) == 4  # 2 endpoints x (http, IP)
    status = json.loads(cli("status", "atmosphere", "--json").stdout)
    audit = next(s for s in status["steps"] if s["step"] == "endpoint-audit")
    assert audit["status"] == "drifted" and audit["detail"].startswith("warning: 4 findings")

    answers["audit_strict"] = True
    strict = cli("apply", "atmosphere", "--answers", str(cli.write(answers)), "--yes",
                 "--root", str(tmp / "root"), "--step", "endpoint-audit")
    assert strict.returncode == 1
    assert "the endpoint audit found 4 problems and audit_strict is on" in strict.stderr


def test_secrets_appear_nowhere_but_their_0600_file(rig):
    _fake, cli, answers, tmp = rig
    path = str(cli.write(answers))
    root = tmp / "root"
    assert cli("apply", "atmosphere", "--answers", path, "--root", str(root), "--yes",
               "--step", "keystone", "--step", "endpoint-audit",
               "--step", "provider-json").returncode == 0
    cli("plan", "atmosphere", "--answers", path, "--root", str(root))
    cli("status", "atmosphere", "--json")
    secrets = [ADMIN_PASSWORD, ATMO_PASSWORD, PROVIDER_SECRET]
    forms = [f for s in secrets for f in (s, base64.b64encode(s.encode()).decode(),
                                          json.dumps(s)[1:-1])]
    holder = f"export/atmosphere/files{tmp}/provider/my-awesome-cloud.json"
    scanned = [p for d in (root, tmp / "state") for p in d.rglob("*") if p.is_file()]
    assert any(str(p).endswith(holder) for p in scanned)
    for p in scanned:
        if str(p).endswith(holder):
            assert oct(p.stat().st_mode & 0o777) == "0o600"
            continue
        if p.name == "secrets.cfg":  # the encrypted store
            continue
        text = p.read_bytes().decode(errors="replace")
        for form in forms:
            assert form not in text, f"secret in {p}"
    for output in cli.outputs:
        for form in forms:
            assert form not in output


def test_a_503_on_create_is_not_retried_and_is_one_sentence(rig):
    fake, cli, answers, tmp = rig
    fake.fail(503, '{"error": {"code": 503, "title": "Service Unavailable", "message": '
                   '"The server is currently unavailable."}}', path_prefix="/v3/projects",
              method="POST")
    result = cli("apply", "atmosphere", "--answers", str(cli.write(answers)), "--yes",
                 "--root", str(tmp / "root"), "--step", "keystone")
    assert result.returncode == 1
    assert "Keystone refused to create project atmoadmin (503 Service Unavailable: The server "\
           "is currently unavailable.)" in result.stderr
    assert "Traceback" not in result.stderr
    assert [r.path for r in fake.log if r.method == "POST"].count("/v3/projects") == 1
    # The rerun creates it (the fault is spent) and nothing twice.
    again = cli("apply", "atmosphere", "--answers", str(cli.write(answers)), "--yes",
                "--root", str(tmp / "root"), "--step", "keystone")
    assert again.returncode == 0, again.stderr
    assert [p["name"] for p in fake.projects.values()].count("atmoadmin") == 1


def test_unreachable_keystone_is_one_sentence(rig):
    _fake, cli, answers, tmp = rig
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    answers["auth_url"] = f"http://127.0.0.1:{dead}/v3"
    result = cli("apply", "atmosphere", "--answers", str(cli.write(answers)), "--yes",
                 "--root", str(tmp / "root"), "--step", "keystone")
    assert result.returncode == 1
    assert f"cannot connect to POST http://127.0.0.1:{dead}/v3/auth/tokens" in result.stderr
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------- the real Keystone's rules


def provider_json(cli: Cli, answers: dict, tmp) -> tuple[object, dict | None]:
    """Apply provider-json (exported for the Atmosphere server) and read the JSON."""
    root = tmp / "root"
    result = cli("apply", "atmosphere", "--answers", str(cli.write(answers)), "--root",
                 str(root), "--yes", "--step", "provider-json")
    staged = (root / str(tmp / "export/atmosphere/files").lstrip("/")
              / str(tmp / "provider/my-awesome-cloud.json").lstrip("/"))
    return result, json.loads(staged.read_text()) if staged.exists() else None


def test_atmoadmin_is_created_in_the_domain_atmosphere_logs_in_with(rig):
    """The admin is in domain Corp (openrc with OS_PROJECT_DOMAIN_NAME): atmoadmin still
    goes to the default domain, where Atmosphere's openstack_manager logs it in."""
    fake, cli, answers, tmp = rig
    corp = fake.add_domain("Corp")
    project = fake.add_project("cloudops", corp["id"])
    admin = fake.add_user("corp-admin", ADMIN_PASSWORD, corp["id"])
    fake.grants.add((project["id"], admin["id"], fake.role_named("admin")["id"]))
    openrc = tmp / "openrc"
    openrc.write_text(f"export OS_AUTH_URL={fake.url}/v3\nexport OS_USERNAME=corp-admin\n"
                      "export OS_PROJECT_NAME=cloudops\nexport OS_USER_DOMAIN_NAME=Corp\n"
                      "export OS_PROJECT_DOMAIN_NAME=Corp\n")
    for key in ("auth_url", "os_admin_user", "os_admin_project"):
        answers.pop(key, None)
    answers["openrc"] = str(openrc)
    result = cli("apply", "atmosphere", "--answers", str(cli.write(answers)), "--root",
                 str(tmp / "root"), "--yes", "--step", "keystone")
    assert result.returncode == 0, result.stderr
    assert fake.user_named("atmoadmin")["domain_id"] == "default"
    assert fake.project_named("atmoadmin")["domain_id"] == "default"
    token = next(r.json() for r in fake.log if r.path == "/v3/auth/tokens")
    assert token["auth"]["scope"]["project"] == {"name": "cloudops",
                                                 "domain": {"name": "Corp"}}
    # A `domain` Atmosphere would not log in with is refused before anything is made.
    answers["domain"] = "Corp"
    before = len(fake.log)
    refused = cli("apply", "atmosphere", "--answers", str(cli.write(answers)), "--root",
                  str(tmp / "root"), "--yes", "--step", "keystone")
    assert refused.returncode == 1
    assert (f"domain 'Corp' is Keystone domain {corp['id']}, not the default domain: "
            "Atmosphere logs its admin in with user and project domain 'default'") \
        in refused.stderr
    assert _changes(fake, before) == []


def test_project_domain_id_from_openrc_scopes_the_admin_token(rig):
    fake, cli, answers, tmp = rig
    openrc = tmp / "openrc"
    openrc.write_text("export OS_PROJECT_DOMAIN_ID=default\n")
    answers["openrc"] = str(openrc)
    result = cli("apply", "atmosphere", "--answers", str(cli.write(answers)), "--root",
                 str(tmp / "root"), "--yes", "--step", "keystone")
    assert result.returncode == 0, result.stderr
    token = next(r.json() for r in fake.log if r.path == "/v3/auth/tokens")
    assert token["auth"]["scope"]["project"]["domain"] == {"id": "default"}


def test_user_role_is_the_member_role_keystone_has_and_an_unknown_one_is_refused(rig):
    fake, cli, answers, tmp = rig
    # Keystone 30's bootstrap roles (the fake's): `member`, no `_member_`.
    result, provider = provider_json(cli, answers, tmp)
    assert result.returncode == 0, result.stderr
    assert provider["cloud_config"]["user"]["user_role_name"] == "member"
    answers["user_role"] = "_member_"
    refused = cli("apply", "atmosphere", "--answers", str(cli.write(answers)), "--root",
                  str(tmp / "root"), "--yes", "--step", "keystone")
    assert refused.returncode == 1
    assert ("Keystone has no role named '_member_' (user_role); it has admin, manager, member, "
            "reader, service") in refused.stderr
    assert _changes(fake, 0) == []


def test_an_older_keystone_without_member_gets_its_member_role(tmp_path):
    fake = FakeKeystone(admin_password=ADMIN_PASSWORD, roles=("admin", "_member_")).start()
    try:
        fake.add_endpoint("keystone", "identity", "public", f"{fake.url}/v3")
        cli = Cli(tmp_path, secrets={"os_admin_password": ADMIN_PASSWORD,
                                     "atmo_admin_password": ATMO_PASSWORD,
                                     "provider_secret": PROVIDER_SECRET})
        answers = base_answers(tmp_path, host_role="workstation", auth_url=f"{fake.url}/v3")
        result, provider = provider_json(cli, answers, tmp_path)
        assert result.returncode == 0, result.stderr
        assert provider["cloud_config"]["user"]["user_role_name"] == "_member_"
    finally:
        fake.stop()


def test_provider_urls_come_from_the_catalog_and_must_agree_with_it(rig):
    fake, cli, answers, tmp = rig
    port = fake.url.rsplit(":", 1)[1]
    result, provider = provider_json(cli, answers, tmp)
    assert result.returncode == 0, result.stderr
    # The identity admin endpoint of the catalog (the rig's), without /v3 as the runbook.
    assert provider["credential"]["admin_url"] == f"http://127.0.0.1:{port}"
    assert provider["credential"]["auth_url"] == fake.url
    # An answered admin_url that the catalog contradicts is a sentence, not a JSON.
    answers["admin_url"] = "https://cloud.example.org:35357"
    refused, _ = provider_json(cli, answers, tmp)
    assert refused.returncode == 1
    assert (f"admin_url https://cloud.example.org:35357 is not Keystone's identity admin "
            f"endpoint in RegionOne (http://127.0.0.1:{port}/v3), and Atmosphere "
            "authenticates with it") in refused.stderr
    # The public identity endpoint moved (the playbooks were rerun): auth_url disagrees.
    del answers["admin_url"]
    public = next(e for e in fake.endpoints.values() if e["interface"] == "public")
    public["url"] = "https://cloud.example.org:5000/v3"
    refused, _ = provider_json(cli, answers, tmp)
    assert refused.returncode == 1
    assert (f"auth_url {fake.url}/v3 is not Keystone's public identity endpoint in RegionOne "
            "(https://cloud.example.org:5000/v3)") in refused.stderr


def test_checks_never_log_in_as_atmoadmin_and_apply_logs_in_once(tmp_path):
    """With lockout_failure_attempts=2, status and plan (any number) make no failed login;
    apply makes exactly one, then sets the password with the admin's token."""
    fake = FakeKeystone(admin_password=ADMIN_PASSWORD, lockout=2).start()
    try:
        fake.add_endpoint("keystone", "identity", "public", f"{fake.url}/v3")
        project = fake.add_project("atmoadmin")
        user = fake.add_user("atmoadmin", "an older password")
        fake.grants.add((project["id"], user["id"], fake.role_named("admin")["id"]))
        cli = Cli(tmp_path, secrets={"os_admin_password": ADMIN_PASSWORD,
                                     "atmo_admin_password": ATMO_PASSWORD,
                                     "provider_secret": PROVIDER_SECRET})
        answers = base_answers(tmp_path, host_role="workstation", auth_url=f"{fake.url}/v3")
        path = str(cli.write(answers))
        root = str(tmp_path / "root")
        for _ in range(3):
            status = json.loads(cli("status", "atmosphere", "--answers", path, "--json").stdout)
            keystone = next(s for s in status["steps"] if s["step"] == "keystone")
            assert keystone["status"] == "done", keystone
            assert "never by a check" in keystone["detail"]
        assert cli("plan", "atmosphere", "--answers", path, "--step", "keystone").returncode == 0
        assert fake.failed_logins == []
        result = cli("apply", "atmosphere", "--answers", path, "--root", root, "--yes",
                     "--step", "keystone")
        assert result.returncode == 0, result.stderr
        assert fake.failed_logins == [user["id"]]
        assert "atmoadmin's password differed from atmo_admin_password; set it" in result.stderr
        assert fake.passwords[user["id"]] == ATMO_PASSWORD and user["id"] not in fake.failed
        # Already locked (by someone else's tries): the PATCH enables it again.
        fake.passwords[user["id"]] = "changed behind CloudRig's back"
        fake.failed[user["id"]] = 2
        again = cli("apply", "atmosphere", "--answers", path, "--root", root, "--yes",
                    "--step", "keystone")
        assert again.returncode == 0, again.stderr
        assert user["id"] not in fake.failed and fake.passwords[user["id"]] == ATMO_PASSWORD
    finally:
        fake.stop()
