"""Secrets: never in answers files, state, logs or output; env first, then the store."""

from __future__ import annotations

import base64
import io
import json
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from cli_rig import Cli, files_under, write_answers
from fakes.consul import FakeConsul

from tui import redact
from tui.errors import SecretMissing, UsageError
from tui.secrets import SecretSource, env_name

SECRETS = {
    "consul_token": 'c0nsul "token" $HOME ${X}',
    "db_password": "pa'ss\"wo$rd%s \\n",
    "db_admin_password": "adm1n-σεκρετ-$$-{{x}}",
}
PASSPHRASE = "correct horse battery staple"


@pytest.fixture
def consul() -> Iterator[FakeConsul]:
    """The fake Consul whose management token is the test's awkward consul_token."""
    fake = FakeConsul(management_token=SECRETS["consul_token"]).start()
    yield fake
    fake.stop()


def secret_env(**extra: str) -> dict[str, str]:
    return {env_name(k): v for k, v in SECRETS.items()} | extra


def leaked_forms(value: str) -> set[str]:
    """How a secret could leak: as is, JSON-escaped, URL-encoded, base64."""
    return {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1],
            quote(value, safe=""), quote(value), quote(value.encode(), safe=""),
            base64.b64encode(value.encode()).decode(),
            base64.urlsafe_b64encode(value.encode()).decode()}


def assert_no_secret_in(texts: dict[str, str], values: list[str]) -> None:
    for where, text in texts.items():
        for value in values:
            for form in leaked_forms(value):
                assert form not in text, f"secret leaked into {where} as {form!r}"


def scan_files(*directories: Path) -> dict[str, str]:
    return {str(p): p.read_bytes().decode("utf-8", errors="replace")
            for d in directories for p in files_under(d)}


# ---------------------------------------------------------------- headless, env only


def test_env_secrets_headless_no_keyring_asks_nothing(cli, answers_file: Path,
                                                      tmp_path: Path) -> None:
    """Every secret in CLOUDRIG_SECRET_*, the file backend and no passphrase, no TTY."""
    root = tmp_path / "root"
    env = secret_env()
    runs = [
        cli("plan", "carbonio", "--answers", answers_file, "--root", root, env=env),
        cli("plan", "carbonio", "--answers", answers_file, "--json", env=env),
        cli("apply", "carbonio", "--answers", answers_file, "--root", root, "--yes", env=env),
        cli("status", "carbonio", "--json", env=env),
        cli("status", env=env),
    ]
    for result in runs:
        # status exits 1: carbonio's manual steps under --root (conftest.CARBONIO_MANUAL)
        assert result.returncode == (1 if result.args[0] == "status" else 0), (
            result.args, result.stderr)
        assert "passphrase" not in result.output.lower()
        assert "Traceback" not in result.output
    assert not (cli.state / "secrets.cfg").exists()  # the store was never opened


def test_cli_session_resolves_env_secrets_without_opening_the_store(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_redact) -> None:
    """The CLI's own wiring (make_session): env wins, the store and the prompt are unused."""
    import getpass

    from tui import cli as cli_module
    from tui.procedures.carbonio import CarbonioAnswers
    from tui.registry import get_procedure

    monkeypatch.setenv("CLOUDRIG_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CLOUDRIG_SECRETS_BACKEND", "file")
    monkeypatch.delenv("CLOUDRIG_SECRETS_PASSPHRASE", raising=False)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    monkeypatch.setattr(getpass, "getpass", lambda *a, **k: pytest.fail("prompted"))
    for key, value in secret_env().items():
        monkeypatch.setenv(key, value)
    answers = CarbonioAnswers(external_address="db.example.com", db_name="d", db_username="u")
    session = cli_module.make_session(get_procedure("carbonio"), answers, quiet=True)
    for name, value in SECRETS.items():
        assert session.ctx.secret(name) == value
        assert redact.redact(f"x {value} y") == f"x {redact.MASK} y"
    assert not (tmp_path / "state").exists()

    monkeypatch.delenv(env_name("db_password"))
    fresh = cli_module.make_session(get_procedure("carbonio"), answers, quiet=True)
    with pytest.raises(SecretMissing) as missing:
        fresh.ctx.secret("db_password")
    assert "CLOUDRIG_SECRET_DB_PASSWORD" in missing.value.sentence
    assert "CLOUDRIG_SECRETS_PASSPHRASE" in missing.value.sentence


# ---------------------------------------------------------------- answers files


@pytest.mark.parametrize("field", sorted(SECRETS))
def test_secret_in_answers_file_is_refused(cli, tmp_path: Path, field: str) -> None:
    path = write_answers(tmp_path / "a.yaml", **{field: "x"})
    for args in (["plan", "carbonio", "--answers", path],
                 ["apply", "carbonio", "--answers", path, "--root", tmp_path / "r", "--yes"]):
        result = cli(*args)
        assert result.returncode == 2
        assert "secrets never go in answers files" in result.stderr
        assert "cloudrig secrets set" in result.stderr
        assert env_name(field) in result.stderr
        assert not (tmp_path / "r").exists()


def test_secret_value_in_answers_file_is_not_echoed(cli, tmp_path: Path) -> None:
    path = write_answers(tmp_path / "a.yaml", consul_token=SECRETS["consul_token"])
    result = cli("plan", "carbonio", "--answers", path)
    assert result.returncode == 2
    assert_no_secret_in({"output": result.output}, [SECRETS["consul_token"]])


# ---------------------------------------------------------------- the encrypted file store


def test_secrets_set_list_delete_with_the_file_store(cli) -> None:
    env = {"CLOUDRIG_SECRETS_PASSPHRASE": PASSPHRASE}
    value = SECRETS["consul_token"]
    result = cli("secrets", "set", "consul_token", input=value + "\n", env=env)
    assert result.returncode == 0, result.stderr
    assert "stored in the encrypted file" in result.stderr

    listed = cli("secrets", "list", env=env)
    assert listed.returncode == 0
    assert listed.stdout.splitlines() == ["consul_token"]

    store = cli.state / "secrets.cfg"
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert_no_secret_in({str(store): store.read_text()}, [value])
    assert_no_secret_in(scan_files(cli.state), [value, PASSPHRASE])
    assert_no_secret_in({"output": result.output + listed.output}, [value, PASSPHRASE])

    deleted = cli("secrets", "delete", "consul_token", env=env)
    assert deleted.returncode == 0 and "deleted" in deleted.stderr
    assert cli("secrets", "list", env=env).stdout == ""
    again = cli("secrets", "delete", "consul_token", env=env)
    assert again.returncode == 0 and "was not stored" in again.stderr


def test_wrong_passphrase_is_one_sentence(cli) -> None:
    store = _store_with(cli, "db_password")
    for args in (("secrets", "list"), ("secrets", "set", "x")):
        result = cli(*args, input="v", env={"CLOUDRIG_SECRETS_PASSPHRASE": "wrong"})
        assert result.returncode == 2
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert "passphrase does not open the secret store" in result.stderr
        assert "CLOUDRIG_SECRETS_PASSPHRASE" in result.stderr
    assert store.read_bytes() == _STORES[("db_password",)]  # refused: nothing written


def test_no_passphrase_and_no_tty_says_what_to_set(cli) -> None:
    result = cli("secrets", "list")
    assert result.returncode == 2
    assert "CLOUDRIG_SECRETS_PASSPHRASE" in result.stderr
    assert "Traceback" not in result.stderr


def test_secrets_set_refuses_empty_value_and_missing_key(cli) -> None:
    env = {"CLOUDRIG_SECRETS_PASSPHRASE": PASSPHRASE}
    assert cli("secrets", "set", "db_password", input="\n", env=env).returncode == 2
    assert cli("secrets", "set", input="value", env=env).returncode == 2
    # refused before the store is opened: no key derived, no new store on disk
    assert not (cli.state / "secrets.cfg").exists()
    assert cli("secrets", "list", env=env).stdout == ""


# ---------------------------------------------------------------- a damaged store


# Each store the damage tests start from, made once per worker: every `secrets set`
# derives two Argon2 keys (keyrings.cryptfile's own cost, kept), and a store is a file.
_STORES: dict[tuple[str, ...], bytes] = {}


def _store_with(cli, *keys: str) -> Path:
    """The encrypted file store holding KEYS (`value-of-KEY`, each set through the CLI
    in this order), put in CLI's state dir: a copy of the one made for these KEYS."""
    store = cli.state / "secrets.cfg"
    if keys not in _STORES:
        state = cli.state.with_name(f"{cli.state.name}-made")
        made = Cli(home=cli.home, state=state, cwd=cli.cwd,
                   env={**cli.env, "CLOUDRIG_STATE_DIR": str(state)})
        env = {"CLOUDRIG_SECRETS_PASSPHRASE": PASSPHRASE}
        for key in keys:
            assert made("secrets", "set", key, input=f"value-of-{key}",
                        env=env).returncode == 0
        _STORES[keys] = (made.state / "secrets.cfg").read_bytes()
    store.parent.mkdir(mode=0o700, exist_ok=True)
    store.touch(mode=0o600)
    store.write_bytes(_STORES[keys])
    return store


def assert_damaged(result, store: Path, problem: str, kept: bytes) -> None:
    """One sentence naming the store and its problem, a copy of what was there kept
    beside it (0600), exit 1; never a traceback, never "wrong passphrase"."""
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert f"the secret store {store} is damaged: {problem}" in result.stderr
    assert "passphrase does not open" not in result.stderr
    copies = sorted(store.parent.glob("secrets.cfg.damaged-*"))
    assert [c.read_bytes() for c in copies] == [kept]
    assert f"a copy kept at {copies[0]}" in result.stderr
    assert stat.S_IMODE(copies[0].stat().st_mode) == 0o600


def test_an_empty_store_is_damaged_not_rekeyed_to_any_passphrase(cli) -> None:
    """A crash of an in-place rewrite leaves the file empty; keyrings.cryptfile then took
    it for a new store and re-keyed it to whatever passphrase came next."""
    store = _store_with(cli, "db_password")
    store.write_bytes(b"")
    result = cli("secrets", "set", "consul_token", input="new-value",
                 env={"CLOUDRIG_SECRETS_PASSPHRASE": "any other passphrase"})
    assert_damaged(result, store, "it is empty", b"")
    assert store.read_bytes() == b""  # refused: not re-keyed, not written


def test_a_store_cut_short_is_damaged_and_list_reads_the_store(cli) -> None:
    """A truncated store lost its last secret while `secrets list` (a separate index)
    still showed it: the store itself is read, and found damaged."""
    store = _store_with(cli, "consul_token", "db_password")
    whole = store.read_bytes()
    cut = whole[: whole.rindex(b"=") - 20]  # inside the last entry's payload
    store.write_bytes(cut)
    result = cli("secrets", "list", env={"CLOUDRIG_SECRETS_PASSPHRASE": PASSPHRASE})
    assert result.stdout == ""
    assert_damaged(result, store, "its contents do not match their checksum", cut)


@pytest.mark.parametrize("garble", ["flip a byte", "junk line"])
def test_a_garbled_store_is_not_a_wrong_passphrase(cli, garble: str) -> None:
    store = _store_with(cli, "db_password")
    text = store.read_text()
    if garble == "flip a byte":  # still well-formed base64 and JSON: only the MAC fails
        at = text.index("eyJzYWx0IjogI") + 20
        text = text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1:]
    else:
        text = text.replace("[cloudrig]", "[cloudrig]\n\x00\x01 garbage")
    store.write_text(text)
    result = cli("secrets", "list", env={"CLOUDRIG_SECRETS_PASSPHRASE": PASSPHRASE})
    problem = ("its contents do not match their checksum" if garble == "flip a byte"
               else "it cannot be parsed")
    assert_damaged(result, store, problem, text.encode())


def test_secrets_list_shows_what_the_store_holds(cli) -> None:
    """The store put back from an older copy holds one secret: list says one, as `get`
    would find (a separate index of names said two)."""
    older = _store_with(cli, "consul_token").read_bytes()
    store = _store_with(cli, "consul_token", "db_password")  # db_password set since
    assert store.read_bytes() != older
    store.write_bytes(older)
    listed = cli("secrets", "list", env={"CLOUDRIG_SECRETS_PASSPHRASE": PASSPHRASE})
    assert listed.returncode == 0 and listed.stdout.splitlines() == ["consul_token"]


def _open(state: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    from tui.secrets import open_store

    monkeypatch.setenv("CLOUDRIG_SECRETS_BACKEND", "file")
    monkeypatch.setenv("CLOUDRIG_SECRETS_PASSPHRASE", PASSPHRASE)
    return open_store(state, False)


def test_a_write_that_fails_midway_leaves_the_store_whole(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    """The disk fills while the store is written: the store is as it was, every secret
    still readable (it was rewritten in place: left half written)."""
    import configparser

    store = _open(tmp_path, monkeypatch)
    store.set("consul_token", "first-value")
    before = (tmp_path / "secrets.cfg").read_bytes()
    real_write = configparser.RawConfigParser.write

    def disk_full(self, handle, *args, **kwargs):  # type: ignore[no-untyped-def]
        whole = io.StringIO()
        real_write(self, whole, *args, **kwargs)
        handle.write(whole.getvalue()[: len(whole.getvalue()) // 2])  # half of it fits
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(configparser.RawConfigParser, "write", disk_full)
    with pytest.raises(OSError):
        store.set("db_password", "second-value")
    monkeypatch.setattr(configparser.RawConfigParser, "write", real_write)
    assert (tmp_path / "secrets.cfg").read_bytes() == before
    assert _open(tmp_path, monkeypatch).get("consul_token") == "first-value"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_two_writers_at_once_lose_nothing(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Writer A is held in the middle of writing the store; writer B starts. B must wait
    for A (the lock), then both secrets are there. Deterministic: A is released only
    once B is either waiting for the lock or writing itself (which loses A's update)."""
    import configparser
    import fcntl
    import threading

    first, second = _open(tmp_path, monkeypatch), _open(tmp_path, monkeypatch)
    a_writing, release_a, b_moved = threading.Event(), threading.Event(), threading.Event()
    real_write, real_flock = configparser.RawConfigParser.write, fcntl.flock
    writer_a: list[threading.Thread] = []

    def write(self, handle, *args, **kwargs):  # type: ignore[no-untyped-def]
        if threading.current_thread() is writer_a[0]:
            a_writing.set()
            assert release_a.wait(60), "writer A was never released"
        else:
            b_moved.set()  # B writes while A is mid-write: no lock kept it out
        return real_write(self, handle, *args, **kwargs)

    def flock(fd, operation):  # type: ignore[no-untyped-def]
        if threading.current_thread() is not writer_a[0] and operation == fcntl.LOCK_EX:
            b_moved.set()  # B is about to wait for A's lock
        return real_flock(fd, operation)

    monkeypatch.setattr(configparser.RawConfigParser, "write", write)
    monkeypatch.setattr(fcntl, "flock", flock)
    errors: list[BaseException] = []

    def run(store, key: str) -> None:  # type: ignore[no-untyped-def]
        try:
            store.set(key, f"value-of-{key}")
        except BaseException as exc:
            errors.append(exc)

    writer_a.append(threading.Thread(target=run, args=(first, "consul_token")))
    writer_b = threading.Thread(target=run, args=(second, "db_password"))
    writer_a[0].start()
    assert a_writing.wait(60), "writer A never wrote"
    writer_b.start()
    assert b_moved.wait(60), "writer B neither waited for the lock nor wrote"
    release_a.set()
    writer_a[0].join(60)
    writer_b.join(60)
    assert errors == []
    monkeypatch.setattr(configparser.RawConfigParser, "write", real_write)
    reopened = _open(tmp_path, monkeypatch)
    assert reopened.names() == ["consul_token", "db_password"]
    assert reopened.get("consul_token") == "value-of-consul_token"
    assert reopened.get("db_password") == "value-of-db_password"


# ---------------------------------------------------------------- SecretSource order


class MemoryStore:
    description = "memory"

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.opened = 0

    def get(self, key: str) -> str | None:
        return self.values.get(key)

    def set(self, key: str, value: str) -> None:
        self.values[key] = value

    def delete(self, key: str) -> bool:
        return self.values.pop(key, None) is not None

    def names(self) -> list[str]:
        return sorted(self.values)


def make_source(store: MemoryStore | None, **kwargs) -> SecretSource:
    def opener() -> MemoryStore:
        assert store is not None
        store.opened += 1
        return store

    return SecretSource("carbonio", SECRETS, open_store=opener if store else None,
                        interactive=False, **kwargs)


def test_env_beats_store_beats_nothing(monkeypatch: pytest.MonkeyPatch, clean_redact) -> None:
    store = MemoryStore({"carbonio.consul_token": "from-store-scoped",
                         "db_password": "from-store-global"})
    monkeypatch.setenv(env_name("consul_token"), "from-env")
    monkeypatch.delenv(env_name("db_password"), raising=False)
    monkeypatch.delenv(env_name("db_admin_password"), raising=False)
    source = make_source(store)
    assert source.get("consul_token") == "from-env"
    assert store.opened == 0  # env answered: the store was not even opened
    assert source.get("db_password") == "from-store-global"
    with pytest.raises(SecretMissing) as missing:
        source.get("db_admin_password")
    assert "CLOUDRIG_SECRET_DB_ADMIN_PASSWORD" in missing.value.sentence
    with pytest.raises(KeyError):
        source.get("not_a_secret")

    monkeypatch.delenv(env_name("consul_token"))
    assert make_source(store).get("consul_token") == "from-store-scoped"


def test_real_file_store_is_beaten_by_env(cli, monkeypatch: pytest.MonkeyPatch,
                                          clean_redact) -> None:
    from tui.secrets import open_store

    env = {"CLOUDRIG_SECRETS_PASSPHRASE": PASSPHRASE}
    assert cli("secrets", "set", "consul_token", input="stored-value",
               env=env).returncode == 0
    monkeypatch.setenv("CLOUDRIG_SECRETS_BACKEND", "file")
    monkeypatch.setenv("CLOUDRIG_SECRETS_PASSPHRASE", PASSPHRASE)
    source = SecretSource("carbonio", SECRETS, interactive=False,
                          open_store=lambda: open_store(cli.state, False))
    monkeypatch.delenv(env_name("consul_token"), raising=False)
    assert source.get("consul_token") == "stored-value"
    monkeypatch.setenv(env_name("consul_token"), "env-value")
    assert SecretSource("carbonio", SECRETS, interactive=False,
                        open_store=lambda: open_store(cli.state, False)).get(
                            "consul_token") == "env-value"


def test_a_broken_store_is_reported_with_the_missing_secret(clean_redact,
                                                           monkeypatch) -> None:
    monkeypatch.delenv(env_name("db_password"), raising=False)

    def broken() -> MemoryStore:
        raise UsageError("the passphrase does not open the secret store")

    source = SecretSource("carbonio", SECRETS, open_store=broken, interactive=False)
    with pytest.raises(SecretMissing) as missing:
        source.get("db_password")
    assert "the secret store said: the passphrase does not open" in missing.value.sentence


# ---------------------------------------------------------------- nothing leaks


def test_no_secret_in_state_logs_files_or_output(cli, answers_file: Path,
                                                 tmp_path: Path) -> None:
    root = tmp_path / "root"
    env = {"CLOUDRIG_SECRETS_PASSPHRASE": PASSPHRASE}
    stored = "st0red'\"$secret%value"
    assert cli("secrets", "set", "db_admin_password", input=stored, env=env).returncode == 0
    env |= secret_env()
    env.pop(env_name("db_admin_password"))
    for args in (
        ("plan", "carbonio", "--answers", answers_file, "--root", root),
        ("plan", "carbonio", "--answers", answers_file, "--root", root, "--json"),
        ("apply", "carbonio", "--answers", answers_file, "--root", root, "--yes"),
        ("apply", "carbonio", "--answers", answers_file, "--root", root, "--dry-run"),
        ("status", "carbonio", "--json"),
        ("status",),
        ("render", "carbonio", "--answers", answers_file, "--out", tmp_path / "out"),
        ("secrets", "list"),
    ):
        result = cli(*args, env=env)
        assert result.returncode == (1 if args[0] == "status" else 0), (args, result.stderr)
    outputs = {f"{' '.join(r.args)} ({i})": r.output for i, r in enumerate(cli.runs)}
    secrets = [*SECRETS.values(), stored, PASSPHRASE]
    assert_no_secret_in(outputs, secrets)
    assert_no_secret_in(scan_files(cli.state, root, tmp_path / "out", cli.home), secrets)
    assert (cli.state / "cloudrig.log").exists() and (cli.state / "carbonio.json").exists()


# ---------------------------------------------------------------- tui.redact


def test_redact_masks_a_value_and_its_encodings(clean_redact) -> None:
    value = 'p@ss "wörd"/+=$'
    redact.register(value)
    for form in (value, json.dumps(value)[1:-1], quote(value, safe=""), quote(value),
                 base64.b64encode(value.encode()).decode()):
        assert redact.redact(f"before {form} after") == f"before {redact.MASK} after"
    assert redact.redact("nothing secret here") == "nothing secret here"


def test_redact_longest_value_first_and_forget(clean_redact) -> None:
    redact.register("secret")
    redact.register("secret-and-more")
    assert redact.redact("x secret-and-more y secret") == f"x {redact.MASK} y {redact.MASK}"
    redact.forget_all()
    assert redact.redact("secret") == "secret"


def test_redact_ignores_values_too_short_to_mask(clean_redact) -> None:
    redact.register("")
    redact.register("abc")
    assert redact.redact("abc abcdef") == "abc abcdef"


def test_secret_source_registers_values_for_redaction(monkeypatch, clean_redact) -> None:
    monkeypatch.setenv(env_name("consul_token"), "token-value-123")
    source = make_source(None, overrides={"db_password": "override-value-456"})
    assert redact.redact("override-value-456") == redact.MASK  # overrides: at once
    assert redact.redact("token-value-123") == "token-value-123"  # env: when resolved
    source.get("consul_token")
    assert redact.redact("token-value-123") == redact.MASK
