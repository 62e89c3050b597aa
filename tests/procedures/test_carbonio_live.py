"""carbonio end to end against the fake Consul (and a real PostgreSQL)."""

from __future__ import annotations

import base64
import json
import shutil
import socket
import stat
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from fakes.consul import FakeConsul
from pg_server import pg_server  # noqa: F401  (fixture)
from private_cli import ProcedureRig
from psycopg import connect

from tui import http_wire
from tui.engine import checking

CONFIG = "etc/carbonio/gateway/service-discover"
DB_PASSWORD = "pa'ss \"$word\\ ${x}"
RULES = {
    "key_prefix": [{"carbonio-gateway/": {"policy": "read"}}],
    "node_prefix": [{"": {"policy": "read"}}],
    "service": [{"carbonio-gateway": {"policy": "write"},
                 "carbonio-files-db": {"policy": "write"}}],
    # Beyond the runbook: Consul's terminating-gateway token documentation.
    "service_prefix": [{"": {"policy": "read"}}],
    "agent_prefix": [{"": {"policy": "read"}}],
}


@dataclass(kw_only=True)
class Rig(ProcedureRig):
    consul: FakeConsul

    def apply(self, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.cli("apply", "carbonio", "--answers", str(self.write_answers()),
                        "--root", str(self.root), "--yes", *extra)


@pytest.fixture
def rig(tmp_path):
    fake = FakeConsul().start()
    rig = Rig(tmp=tmp_path, consul=fake)
    rig.answers = {"consul_url": fake.url, "external_address": "127.0.0.1",
                   "external_port": _closed_port(), "db_name": "carbonio-files-adm",
                   "db_username": "carbonio-files-adm"}
    rig.secrets = {"consul_token": fake.management_token, "db_password": DB_PASSWORD}
    yield rig
    fake.stop()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _mutations(fake: FakeConsul, since: int) -> list[str]:
    return [f"{r.method} {r.path}" for r in fake.log[since:] if r.method in ("PUT", "DELETE")]


def test_apply_creates_exactly_and_twice_creates_nothing(rig):
    result = rig.apply()
    assert result.returncode == 0, result.stderr
    fake = rig.consul
    policies = [p for p in fake.policies.values() if p["Name"] != "global-management"]
    assert [p["Name"] for p in policies] == ["carbonio-gateway-policy"]
    assert json.loads(policies[0]["Rules"]) == RULES
    tokens = [t for t in fake.tokens.values() if t["SecretID"] != fake.management_token]
    assert len(tokens) == 1
    assert tokens[0]["Policies"] == [{"ID": policies[0]["ID"], "Name": "carbonio-gateway-policy"}]
    token_file = rig.root / CONFIG / "token"
    assert token_file.read_text() == tokens[0]["SecretID"] + "\n"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    node = fake.nodes["external-files-db-node"]
    assert node["Address"] == "127.0.0.1"
    assert node["NodeMeta"] == {"external-node": "true", "external-probe": "true"}
    assert node["services"]["carbonio-files-db"]["Port"] == rig.answers["external_port"]
    entry = fake.config[("terminating-gateway", "carbonio-gateway")]
    assert entry["Services"] == [{"Name": "carbonio-files-db"}]
    assert fake.kv == {"carbonio-files/db-name": b"carbonio-files-adm",
                       "carbonio-files/db-username": b"carbonio-files-adm",
                       "carbonio-files/db-password": DB_PASSWORD.encode()}

    before = len(fake.log)
    again = rig.apply()
    assert again.returncode == 0, again.stderr
    assert _mutations(fake, before) == []
    # Consul and the host are the truth: a wiped state directory changes nothing.
    shutil.rmtree(rig.state)
    before = len(fake.log)
    assert rig.apply().returncode == 0
    assert _mutations(fake, before) == []
    assert len(fake.tokens) == 2
    gateway_token = tokens[0]["SecretID"]
    for path in rig.root.rglob("*"):
        if path.is_file() and path != token_file:
            assert gateway_token not in path.read_text(errors="replace"), path


def test_secrets_appear_nowhere(rig):
    rig.answers["create_database"] = False
    assert rig.apply().returncode == 0
    status = rig.cli("status", "carbonio", "--json")  # its output is scanned below
    assert json.loads(status.stdout)["procedure"] == "carbonio"
    assert rig.cli("plan", "carbonio", "--answers", str(rig.tmp / "answers.yaml"),
                   "--root", str(rig.root)).returncode == 0
    secrets = [rig.consul.management_token, DB_PASSWORD]
    forms = [f for s in secrets for f in (s, base64.b64encode(s.encode()).decode(),
                                          json.dumps(s)[1:-1])]
    scanned = [p for d in (rig.root, rig.state) for p in d.rglob("*") if p.is_file()]
    assert scanned
    for path in scanned:
        text = path.read_bytes().decode(errors="replace")
        for form in forms:
            assert form not in text, f"secret found in {path}"
    for output in rig.outputs:
        for form in forms:
            assert form not in output


def test_forbidden_token_is_one_sentence(rig):
    rig.secrets["consul_token"] = "00000000-0000-0000-0000-00000000dead"
    result = rig.apply()
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "ACL not found" in result.stderr and "token" in result.stderr
    state = json.loads((rig.state / "carbonio.json").read_text())
    assert state["last_run"]["outcome"] == "failed"
    assert state["last_run"]["failed_step"] == "management-token"


def test_a_token_without_global_management_stops_before_anything_is_written(rig):
    """The management token is obtained and verified first: a valid token that may
    not manage ACLs changes nothing, on this host or in Consul."""
    fake = rig.consul
    fake.policies["reader"] = fake._policy_record("reader", "reader", "", '{"node_prefix": '
                                                  '[{"": {"policy": "read"}}]}')
    weak = fake._add_token("11111111-2222-3333-4444-555555555555",
                           [{"ID": "reader", "Name": "reader"}], "operator's own token")
    rig.secrets["consul_token"] = weak["SecretID"]
    result = rig.apply()
    assert result.returncode == 1
    assert "lacks the global-management policy" in result.stderr
    state = json.loads((rig.state / "carbonio.json").read_text())
    assert state["last_run"]["failed_step"] == "management-token"
    assert _mutations(fake, 0) == []
    assert not rig.root.exists()


def test_the_gateway_token_may_do_what_consul_connect_envoy_does(rig):
    """The token CloudRig writes, used as the unit uses it: `consul connect envoy
    -register` (the stand-in making the real command's calls) against the fake's ACLs."""
    from fakes.consul_envoy import main as consul

    assert rig.apply().returncode == 0
    token_file = rig.root / CONFIG / "token"
    argv = ["connect", "envoy", "-token-file", str(token_file), "-http-addr",
            rig.consul.url, "-admin-bind", "localhost:0", "-gateway=terminating",
            "-register", "-service", "carbonio-gateway"]
    assert consul(argv) == 0
    assert rig.consul.agent_services["carbonio-gateway"]["Kind"] == "terminating-gateway"
    # With the runbook's rules alone, the real command stops at /v1/agent/self.
    policy = rig.consul.policy_named("carbonio-gateway-policy")
    runbook = {k: v for k, v in RULES.items() if k in ("key_prefix", "node_prefix", "service")}
    policy["Rules"] = json.dumps(runbook)
    assert consul(argv) == 1


def test_two_500s_then_success(rig):
    rig.consul.fail(500, "rpc error making call: EOF", times=2,
                    path_prefix="/v1/acl/policy/name/")
    result = rig.apply()
    assert result.returncode == 0, result.stderr


def test_connection_refused_names_the_url_and_rerun_resumes(rig):
    good_url = rig.answers["consul_url"]
    dead = f"http://127.0.0.1:{_closed_port()}"
    rig.answers["consul_url"] = dead
    result = rig.apply()
    assert result.returncode == 1
    assert dead in result.stderr and "cannot connect" in result.stderr
    assert "Traceback" not in result.stderr
    rig.answers["consul_url"] = good_url
    assert rig.apply().returncode == 0


def test_interrupted_run_resumes_from_the_failed_step(rig):
    rig.consul.fail(503, "No cluster leader", times=20, path_prefix="/v1/catalog/register")
    failed = rig.apply()
    assert failed.returncode == 1
    state = json.loads((rig.state / "carbonio.json").read_text())
    assert state["last_run"]["failed_step"] == "external-service"
    assert (rig.root / CONFIG / "policies.json").exists()
    rig.consul.faults.clear()
    before = len(rig.consul.log)
    resumed = rig.apply()
    assert resumed.returncode == 0, resumed.stderr
    assert "done in the interrupted run" in resumed.stderr
    assert "PUT /v1/acl/policy" not in _mutations(rig.consul, before)


def test_teardown_removes_and_twice_is_a_noop(rig):
    assert rig.apply().returncode == 0
    # What `consul connect envoy -register` does when the unit runs.
    rig.consul.agent_services["carbonio-gateway"] = {"ID": "carbonio-gateway",
                                                     "Service": "carbonio-gateway"}
    answers = str(rig.tmp / "answers.yaml")
    result = rig.cli("teardown", "carbonio", "--answers", answers, "--root", str(rig.root),
                     "--yes", "--purge")
    assert result.returncode == 0, result.stderr
    fake = rig.consul
    assert fake.kv == {}
    assert fake.config == {}
    assert fake.nodes == {}
    assert fake.agent_services == {}
    assert [p["Name"] for p in fake.policies.values()] == ["global-management"]
    assert len(fake.tokens) == 1
    assert not (rig.root / "lib/systemd/system/carbonio-gateway.service").exists()
    assert not (rig.root / CONFIG / "token").exists()
    before = len(fake.log)
    second = rig.cli("teardown", "carbonio", "--answers", answers, "--root", str(rig.root),
                     "--yes", "--purge")
    assert second.returncode == 0, second.stderr
    assert _mutations(fake, before) == []


def test_teardown_without_purge_keeps_token_policy_and_kv(rig):
    assert rig.apply().returncode == 0
    result = rig.cli("teardown", "carbonio", "--answers", str(rig.tmp / "answers.yaml"),
                     "--root", str(rig.root), "--yes")
    assert result.returncode == 0, result.stderr
    assert rig.consul.config == {}
    assert len(rig.consul.kv) == 3
    assert rig.consul.policy_named("carbonio-gateway-policy") is not None
    assert (rig.root / CONFIG / "token").exists()


def test_status_uses_saved_answers_and_reports_drift(rig):
    assert rig.apply().returncode == 0
    report = json.loads(rig.cli("status", "carbonio", "--json").stdout)
    steps = {s["step"]: s["status"] for s in report["steps"]}
    assert steps["policy"] == steps["kv"] == "done"
    assert steps["gateway-token"] == "staged"  # its chown is not run under --root
    policy = rig.consul.policy_named("carbonio-gateway-policy")
    policy["Rules"] = '{"service": []}'
    rig.consul.kv["carbonio-files/db-password"] = b"changed behind our back"
    result = rig.cli("status", "carbonio", "--json")
    assert result.returncode == 1
    steps = {s["step"]: s for s in json.loads(result.stdout)["steps"]}
    assert steps["policy"]["status"] == "drifted"
    assert steps["kv"]["status"] == "drifted"
    assert "changed behind" not in result.stdout
    assert DB_PASSWORD not in result.stdout
    # The next apply puts both back.
    assert rig.apply().returncode == 0
    assert json.loads(rig.consul.policy_named("carbonio-gateway-policy")["Rules"]) == RULES
    assert rig.consul.kv["carbonio-files/db-password"] == DB_PASSWORD.encode()


def test_missing_secret_without_tty_exits_2_before_changing_anything(rig):
    del rig.secrets["db_password"]
    result = rig.apply()
    assert result.returncode == 2
    assert "CLOUDRIG_SECRET_DB_PASSWORD" in result.stderr
    assert not rig.root.exists()
    assert _mutations(rig.consul, 0) == []


def test_database_role_against_real_postgresql(rig, pg_server):  # noqa: F811
    rig.answers.update(create_database=True, external_address=pg_server.host,
                       external_port=pg_server.port, db_admin_user=pg_server.admin)
    rig.secrets["db_admin_password"] = pg_server.admin_password
    first = rig.apply("--step", "database")
    assert first.returncode == 0, first.stderr
    assert "created role carbonio-files-adm" in first.stderr
    with connect(host=pg_server.host, port=pg_server.port, user="carbonio-files-adm",
                 password=DB_PASSWORD, dbname="carbonio-files-adm") as conn:
        owner = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database "
                             "WHERE datname = current_database()").fetchone()[0]
        assert owner == "carbonio-files-adm"
    again = rig.apply("--step", "database")
    assert again.returncode == 0
    assert "role and database already as wanted" in again.stderr
    rig.secrets["db_password"] = "n3w 'pass' $$"
    changed = rig.apply("--step", "database")
    assert "updated the password of role carbonio-files-adm" in changed.stderr
    with connect(host=pg_server.host, port=pg_server.port, user="carbonio-files-adm",
                 password="n3w 'pass' $$", dbname="carbonio-files-adm"):
        pass
    for output in rig.outputs:
        assert pg_server.admin_password not in output
        assert DB_PASSWORD not in output


def test_manual_steps_are_done_once_the_operator_confirms(rig):
    """The database script run by hand and pending-setups: the operator's word, dated."""
    assert rig.apply().returncode == 0
    status = json.loads(rig.cli("status", "carbonio", "--json").stdout)
    steps = {s["step"]: s for s in status["steps"]}
    assert steps["database"]["status"] == "manual"
    assert "cloudrig confirm carbonio database" in steps["database"]["detail"]
    for step in ("database", "pending-setups"):
        assert rig.cli("confirm", "carbonio", step).returncode == 0
    status = json.loads(rig.cli("status", "carbonio", "--json").stdout)
    steps = {s["step"]: s for s in status["steps"]}
    for step in ("database", "pending-setups"):
        assert steps[step]["status"] == "done"
        assert steps[step]["detail"].startswith("manual — confirmed ")


def _reads(fake: FakeConsul, since: int) -> list[str]:
    return sorted(f"{r.method} {r.path}" + ("?recurse" if "recurse" in r.query else "")
                  for r in fake.log[since:])


def test_a_status_check_asks_consul_each_thing_once(rig):
    """One check of every step (what `status` and a dashboard refresh run): the
    management token read once for the two steps that need it, the three KV keys in
    one recursive read. A key missing is read alone (so a missing key and a denied
    one stay apart), and the check says which."""
    assert rig.apply().returncode == 0
    before = len(rig.consul.log)
    steps = {s["step"]: s for s in json.loads(
        rig.cli("status", "carbonio", "--json").stdout)["steps"]}
    assert steps["kv"]["status"] == "done"
    assert _reads(rig.consul, before) == sorted([
        "GET /v1/acl/token/self",  # the management token (management-token, policy)
        "GET /v1/acl/token/self",  # the gateway's token, from its file (gateway-token)
        "GET /v1/acl/policy/name/carbonio-gateway-policy",
        "GET /v1/catalog/service/carbonio-files-db",
        "GET /v1/config/terminating-gateway/carbonio-gateway",
        "GET /v1/kv/carbonio-files/db-?recurse"])
    del rig.consul.kv["carbonio-files/db-username"]
    before = len(rig.consul.log)
    steps = {s["step"]: s for s in json.loads(
        rig.cli("status", "carbonio", "--json").stdout)["steps"]}
    assert (steps["kv"]["status"], steps["kv"]["detail"]) == (
        "pending", "carbonio-files/db-username missing")
    kv_reads = [r for r in _reads(rig.consul, before) if "/v1/kv/" in r]
    assert kv_reads == ["GET /v1/kv/carbonio-files/db-?recurse",
                        "GET /v1/kv/carbonio-files/db-username"]


def test_a_refresh_asks_on_the_connections_the_last_one_opened(rig, monkeypatch):
    """A dashboard refreshes again and again, its checks' clients made anew each time:
    the second refresh asks Consul on the connection the first one opened, not on new
    ones (the checks one at a time here, so that how many connections a refresh needs
    does not depend on how its threads interleave)."""
    assert rig.apply().returncode == 0
    one_at_a_time = ThreadPoolExecutor(1)
    monkeypatch.setattr(checking, "_check_pool", lambda: one_at_a_time)
    monkeypatch.setattr(http_wire, "KEEPALIVE", 3600.0)  # none expires between the two
    opened, asked = rig.consul.connections, len(rig.consul.log)
    rig.cli("status", "carbonio")
    assert len(rig.consul.log) - asked == 6 and rig.consul.connections - opened == 1
    rig.cli("status", "carbonio")
    assert len(rig.consul.log) - asked == 12 and rig.consul.connections - opened == 1
    one_at_a_time.shutdown()


def test_a_status_check_renders_each_file_once(rig, monkeypatch):
    """Each check renders its step's files once (the policy check compares the same
    rendered policies.json with Consul's rules and with the file on disk)."""
    import tui.procedures.carbonio.steps
    import tui.steps

    rendered: list[str] = []

    def counting(render):  # type: ignore[no-untyped-def]
        def wrapped(template, **values):  # type: ignore[no-untyped-def]
            rendered.append(template)
            return render(template, **values)
        return wrapped

    assert rig.apply().returncode == 0
    for module in (tui.steps, tui.procedures.carbonio.steps):
        monkeypatch.setattr(module, "render", counting(module.render))
    status = json.loads(rig.cli("status", "carbonio", "--json").stdout)
    assert {s["step"]: s["status"] for s in status["steps"]}["policy"] == "done"
    assert sorted(rendered) == ["carbonio/external-service.json.j2",
                                "carbonio/gateway-config.hcl.j2",
                                "carbonio/gateway.service.j2", "carbonio/policies.json.j2"]
