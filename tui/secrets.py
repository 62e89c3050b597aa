"""Secrets: where they come from and where they are kept.

A secret field's value comes from, in order: the environment variable
`CLOUDRIG_SECRET_<FIELD>`, a value typed in the wizard this session, the secret
store, and an interactive prompt (only on a terminal). The store is the system
keyring when a real backend exists; on a headless host (no Secret Service over
SSH, keyring#280) it is an encrypted file (keyrings.cryptfile's Argon2 + AES-GCM,
written atomically under a lock by tui/secretfile.py) unlocked by a passphrase from
`CLOUDRIG_SECRETS_PASSPHRASE` or a prompt.
Every value resolved is registered for redaction.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from tui import redact
from tui.atomic import atomic_write, make_dirs
from tui.errors import OperatorError, SecretMissing
from tui.runlock import brief_lock

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend

ENV_PREFIX = "CLOUDRIG_SECRET_"
PASSPHRASE_ENV = "CLOUDRIG_SECRETS_PASSPHRASE"
BACKEND_ENV = "CLOUDRIG_SECRETS_BACKEND"
SERVICE = "cloudrig"


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


class SecretStore(Protocol):
    description: str

    def get(self, key: str) -> str | None: ...
    def set(self, key: str, value: str) -> None: ...
    def delete(self, key: str) -> bool: ...
    def names(self) -> list[str]: ...


class _Index:
    """Names (never values) of the keys CloudRig stored in a system keyring, which
    cannot list them. (The encrypted file store lists its own: tui/secretfile.py.)"""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> list[str]:
        try:
            return sorted(json.loads(self.path.read_text()))
        except (FileNotFoundError, ValueError):
            return []

    def write(self, names: Iterable[str]) -> None:
        make_dirs(self.path.parent, 0o700)  # modes set explicitly, whatever the umask
        atomic_write(self.path, json.dumps(sorted(set(names))).encode(), 0o600)

    def add(self, key: str) -> None:
        self.write([*self.read(), key])

    def remove(self, key: str) -> None:
        self.write([k for k in self.read() if k != key])


class _BackendStore:
    """A store over a system keyring backend, with the key index beside it."""

    def __init__(self, backend: KeyringBackend, index: _Index, description: str) -> None:
        self.backend = backend
        self.index = index
        self.description = description

    def get(self, key: str) -> str | None:
        return self.backend.get_password(SERVICE, key)

    def _writing(self) -> contextlib.AbstractContextManager[None]:
        """The store's brief lock: `secrets set` and a run keeping a bootstrap token
        never rewrite the store (or its index) at the same moment."""
        return brief_lock(self.index.path.parent, "secrets")

    def set(self, key: str, value: str) -> None:
        with self._writing():
            self.backend.set_password(SERVICE, key, value)
            self.index.add(key)

    def delete(self, key: str) -> bool:
        import keyring.errors  # deferred: start-up (keyring)

        with self._writing():
            try:
                self.backend.delete_password(SERVICE, key)
            except keyring.errors.PasswordDeleteError:
                self.index.remove(key)
                return False
            self.index.remove(key)
            return True

    def names(self) -> list[str]:
        return self.index.read()


def system_keyring() -> KeyringBackend | None:
    """The best real keyring backend, or None on a headless host.

    File-based backends (keyrings.alt, keyrings.cryptfile) and the fail/null/chainer
    placeholders do not count: CloudRig chooses its own encrypted file instead.
    """
    import keyring.backend  # deferred: start-up (keyring)

    if os.environ.get(BACKEND_ENV) == "file":
        return None
    real = [
        backend
        for backend in keyring.backend.get_all_keyring()
        if not type(backend).__module__.startswith(("keyrings.", "keyring.backends.fail",
                                                    "keyring.backends.null",
                                                    "keyring.backends.chainer"))
    ]
    real.sort(key=lambda b: getattr(b, "priority", 0), reverse=True)
    return real[0] if real else None


_ASKING = threading.Lock()
_TYPED: dict[Path, str] = {}  # passphrases typed at the prompt in this process, by store file


def known_passphrase(state_dir: Path) -> str | None:
    """The file store's passphrase as this process has it (the environment, or typed at
    the prompt), for a detached run that cannot ask (it gets it through a pipe)."""
    return os.environ.get(PASSPHRASE_ENV) or _TYPED.get(state_dir / "secrets.cfg")


def open_store(state_dir: Path, interactive: bool,
               passphrase: str | None = None) -> SecretStore:
    """Open the secret store; raises SecretMissing when the file store has no passphrase,
    UsageError when the passphrase does not open it, StoreDamaged (OperatorError) when
    its file is not a whole store. PASSPHRASE: before the environment, one given by the
    process that started this one (a detached run's launcher, through a pipe) or one a
    front asked for itself (the TUI, which owns the terminal)."""
    backend = system_keyring()
    if backend is not None and os.environ.get(BACKEND_ENV) != "file":
        index = _Index(state_dir / "secret-keys.json")
        return _BackendStore(backend, index, f"system keyring ({type(backend).__name__})")
    path = state_dir / "secrets.cfg"
    passphrase = passphrase or os.environ.get(PASSPHRASE_ENV)
    if not passphrase:
        if not interactive:
            raise SecretMissing(
                f"the encrypted secret store needs its passphrase: set {PASSPHRASE_ENV} "
                "(no system keyring backend on this host, and no terminal to ask on)"
            )
        # `status` checks every procedure at once, each opening the store: one prompt.
        with _ASKING:
            passphrase = _TYPED.get(path) or getpass.getpass("CloudRig secret store passphrase: ")
            _TYPED[path] = passphrase
    make_dirs(state_dir, 0o700)  # modes set explicitly, whatever the umask
    from tui.secretfile import FileStore  # deferred: start-up (keyrings)

    return FileStore(path, passphrase, service=SERVICE, passphrase_env=PASSPHRASE_ENV)


class SecretLookup(Protocol):
    """What running a command asks of a secret source, a value by name: a SecretSource,
    or a step's stand-in (cloudblue's CanonicalSecrets, the Connect key in the form the
    password manager is given)."""

    def get(self, name: str) -> str: ...


class SecretSupply(SecretLookup, Protocol):
    """What a step's context asks of its secrets (`Context.secrets`, and so what
    `missing_secrets` is given): a value by name; whether one is at hand without asking
    anyone (plan reads a remote, and a front asks for a secret, only then); and keeping
    one CloudRig obtained (a bootstrap token, a generated secret). A SecretSource is the
    real one; the wizard asks what apply will need with a stand-in that knows only what
    is at hand and gives no value (screens/form.py)."""

    def available(self, name: str) -> bool: ...

    def remember(self, name: str, value: str) -> str: ...


class SecretSource:
    """Resolves a procedure's secret fields; never writes a value anywhere but the store."""

    def __init__(
        self,
        procedure_id: str,
        fields: Iterable[str],
        open_store: Callable[[], SecretStore] | None = None,
        overrides: dict[str, str] | None = None,
        interactive: bool | None = None,
    ) -> None:
        self.procedure_id = procedure_id
        self.fields = set(fields)
        self._open_store = open_store
        self._store: SecretStore | None = None
        self._store_error: str | None = None
        self.overrides = dict(overrides or {})
        self.interactive = sys.stdin.isatty() if interactive is None else interactive
        self._cache: dict[str, str] = {}
        for value in self.overrides.values():
            redact.register(value)

    def _lookup_store(self, name: str) -> str | None:
        if self._open_store is None or self._store_error is not None:
            return None
        if self._store is None:
            try:
                self._store = self._open_store()
            except OperatorError as exc:  # no passphrase, a wrong one, a damaged file
                self._store_error = exc.sentence
                return None
        return self._store.get(f"{self.procedure_id}.{name}") or self._store.get(name)

    def resolved(self) -> dict[str, str]:
        """Every secret field this source has without asking anyone (resolved already,
        the environment, the wizard, or the store when the run's secrets opened it), with
        its value: for a detached run, which gets them through a pipe and has no one to
        ask. The store is not opened here: a passphrase is asked only when a secret the
        run needs is there."""
        found = {}
        for name in sorted(self.fields):
            value = (self._cache.get(name) or os.environ.get(env_name(name))
                     or self.overrides.get(name))
            if not value and self._store is not None:
                value = (self._store.get(f"{self.procedure_id}.{name}")
                         or self._store.get(name))
            if value:
                redact.register(value)
                found[name] = value
        return found

    @property
    def store_problem(self) -> str | None:
        """Why the secret store could not be opened (e.g. locked), once it was tried."""
        return self._store_error

    def available(self, name: str) -> bool:
        """Whether `name` can be had without asking anyone (for read-only planning)."""
        if name in self._cache or os.environ.get(env_name(name)) or name in self.overrides:
            return True
        return self._lookup_store(name) is not None

    def remember(self, name: str, value: str) -> str:
        """Keep a secret CloudRig obtained (e.g. a bootstrap token): in the store when
        it can be opened, and in memory for this run either way. Returns where it went."""
        redact.register(value)
        self._cache[name] = value
        self._lookup_store(name)  # opens the store if it can be
        if self._store is None:
            return "memory only (no secret store could be opened)"
        self._store.set(f"{self.procedure_id}.{name}", value)
        return self._store.description

    def get(self, name: str) -> str:
        if name not in self.fields:
            raise KeyError(f"{name} is not a secret field of {self.procedure_id}")
        if name in self._cache:
            return self._cache[name]
        value = os.environ.get(env_name(name)) or self.overrides.get(name)
        if not value:
            value = self._lookup_store(name)
        if not value and self.interactive:
            value = getpass.getpass(f"{name} (secret, not echoed): ")
        if not value:
            where = f"; the secret store said: {self._store_error}" if self._store_error else ""
            raise SecretMissing(
                f"secret {name} is needed: set {env_name(name)} or run "
                f"`cloudrig secrets set {name}`{where}",
                secret=name, store_problem=self._store_error,
            )
        redact.register(value)
        self._cache[name] = value
        return value
