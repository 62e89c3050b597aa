"""The encrypted secret file of headless hosts: keyrings.cryptfile's crypto, CloudRig's I/O.

keyrings.cryptfile (1.3.9, `keyrings/cryptfile/file_base.py`) keeps the store as an
INI file of base64 JSON payloads (salt, data, mac, nonce: Argon2id + AES-GCM) and
rewrites it in place (`open(path, 'w')`) on every change. A crash mid-write leaves it
empty or cut short; it then takes an empty file for a new store and re-keys it to
whatever passphrase comes next, and reports an entry cut short as a wrong passphrase
(its base64/JSON errors are ValueErrors, like a failed MAC).

Here the crypto stays upstream's, the file handling is CloudRig's:
- every change is a read-modify-write under an exclusive lock (`flock` on
  `secrets.cfg.lock` beside the store), so two writers never lose each other's update,
  and is written atomically (temp file, fsync, rename): the store is whole or unchanged;
- a new store is written once, complete (reference, scheme and version together);
- an existing store that is empty, unparsable or holds a garbled entry is damaged:
  refused in one sentence, left as it is and copied beside it, never re-keyed;
- the names of the secrets are read from the store itself.
"""

from __future__ import annotations

import base64
import binascii
import configparser
import contextlib
import fcntl
import hashlib
import io
import json
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from argon2.low_level import Type, hash_secret_raw
from Crypto.Cipher import AES
from keyring.errors import PasswordDeleteError
from keyrings.cryptfile.cryptfile import CryptFileKeyring
from keyrings.cryptfile.escape import escape, unescape

from tui.atomic import atomic_write
from tui.errors import OperatorError, UsageError

SETTINGS = escape("keyring-setting")  # upstream's section of the reference, scheme, version
REFERENCE = escape("password reference")
PAYLOAD_KEYS = {"salt", "data", "mac", "nonce"}
# CloudRig's own section: the checksum of the rest (upstream ignores unknown sections).
INTEGRITY = "cloudrig-integrity"


class StoreDamaged(OperatorError):
    """The store's file is not a whole store: nothing may read secrets from it or write it."""


class _Lock:
    """An exclusive flock on a lock file beside the store; re-entrant within one store
    (flock locks belong to an open file: a second open in this process would deadlock)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._depth = 0

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        if self._depth == 0:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except BaseException:
                os.close(fd)
                raise
            self._fd = fd
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0 and self._fd is not None:
                os.close(self._fd)  # closing the only descriptor releases the lock
                self._fd = None


def _b64(text: str) -> bytes:
    """Strict base64 of text that base64.encodebytes wrapped (every 76 characters)."""
    return base64.b64decode("".join(text.split()).encode("ascii"), validate=True)


def _payload_ok(value: str) -> bool:
    """Whether an entry is a whole upstream payload: base64 of JSON whose four fields
    are base64 (it may still fail to decrypt: a wrong passphrase, or tampering)."""
    try:
        data = json.loads(_b64(value))
        return (isinstance(data, dict) and set(data) == PAYLOAD_KEYS
                and all(isinstance(v, str) and _b64(v) for v in data.values()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return False


def parse(text: str) -> configparser.RawConfigParser:
    config = configparser.RawConfigParser()
    config.read_string(text)
    return config


def checksum(config: configparser.RawConfigParser) -> str:
    """SHA-256 of every entry but the checksum itself, whitespace-blind (configparser
    re-indents multi-line values): a flipped byte that keeps the file well-formed is
    then told apart from a wrong passphrase, which a failed MAC alone cannot do."""
    entries = sorted((section, option, "".join(value.split()))
                     for section in config.sections() if section != INTEGRITY
                     for option, value in config.items(section))
    return hashlib.sha256(json.dumps(entries).encode()).hexdigest()


def damage(path: Path) -> str | None:
    """What is wrong with an existing store file, or None (fine, or absent: a new store)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(info.st_mode):
        return "it is not a regular file"
    raw = path.read_bytes()
    if not raw.strip():
        return "it is empty"
    try:
        config = parse(raw.decode("utf-8"))
    except (UnicodeDecodeError, configparser.Error) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return f"it cannot be parsed ({first})"
    if config.has_option(INTEGRITY, "sha256") and \
            config.get(INTEGRITY, "sha256").strip() != checksum(config):
        return "its contents do not match their checksum (garbled or cut short)"
    if not config.has_option(SETTINGS, REFERENCE):
        return "its passphrase check entry is missing (the file was cut short or replaced)"
    for section in config.sections():
        for option, value in config.items(section):
            if section == INTEGRITY or (
                    section == SETTINGS and option in (escape("scheme"), escape("version"))):
                continue
            if not _payload_ok(value):
                name = "passphrase check" if section == SETTINGS else unescape(option)
                return f"its entry for {name} is garbled (cut short or overwritten)"
    return None


def keep_copy(path: Path) -> Path:
    """A copy of a damaged store beside it (0600), once per distinct content."""
    data = path.read_bytes()
    for existing in sorted(path.parent.glob(f"{path.name}.damaged-*")):
        with contextlib.suppress(OSError):
            if existing.read_bytes() == data:
                return existing
    stamp = time.strftime("%Y%m%dT%H%M%S")
    for attempt in range(100):
        copy = path.with_name(f"{path.name}.damaged-{stamp}" + (f".{attempt}" if attempt else ""))
        try:
            fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            continue
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        return copy
    raise OperatorError(f"cannot keep a copy of the damaged secret store {path}")


def damaged(path: Path, problem: str) -> StoreDamaged:
    copy = keep_copy(path) if path.is_file() else None
    kept = f"it was left as it is and a copy kept at {copy}; " if copy else ""
    return StoreDamaged(
        f"the secret store {path} is damaged: {problem}; {kept}restore it from a backup, or "
        "move it away to start an empty store and set the secrets again with "
        "`cloudrig secrets set KEY`")


# Argon2id keys already derived in this process: (sha256 of the passphrase, salt, cost
# parameters) -> key. Upstream derives one per entry per read (time_cost 15, 64 MiB,
# about a second each), so a long-lived process (the TUI's checks and refreshes, an
# apply reading several secrets) paid it again for every read of the same entry. The
# key is a pure function of these inputs: a wrong passphrase misses and fails the MAC.
_KEYS: dict[tuple[bytes, bytes, int, int, int], bytes] = {}
_KEYS_KEPT = 256  # entries; a store holds a few dozen secrets at most


def _derived_key(backend: CryptFileKeyring, password: str, salt: bytes) -> bytes:
    """upstream's `ArgonAESEncryption._create_cipher` key (keyrings/cryptfile/cryptfile.py,
    1.3.9: hash_secret_raw, Argon2id, hash_len 16), derived once per process."""
    secret = password.encode(backend.password_encoding)
    cost = (backend.time_cost, backend.memory_cost, backend.parallelism)
    index = (hashlib.sha256(secret).digest(), bytes(salt), *cost)
    key = _KEYS.get(index)
    if key is None:
        key = hash_secret_raw(secret=secret, salt=salt, time_cost=cost[0],
                              memory_cost=cost[1], parallelism=cost[2], hash_len=16,
                              type=Type.ID)
        if len(_KEYS) >= _KEYS_KEPT:
            _KEYS.pop(next(iter(_KEYS)))
        _KEYS[index] = key
    return key


class _Backend(CryptFileKeyring):
    """keyrings.cryptfile with its three writers replaced: changes go through `_save`
    under the lock, and a new file is assembled in memory and written once; the
    Argon2id key of each entry is derived once per process (`_derived_key`)."""

    def _create_cipher(self, password: str, salt: bytes, nonce: bytes | None = None) -> Any:
        mode = self._get_mode(self.aesmode)
        if mode is None:
            raise ValueError(f"invalid AES mode: {self.aesmode}")
        return AES.new(_derived_key(self, password, salt), mode, nonce)

    def __init__(self, path: Path, lock: _Lock) -> None:
        super().__init__()
        self.file_path = str(path)
        self._lock = lock
        self._pending: configparser.RawConfigParser | None = None

    def _read(self) -> configparser.RawConfigParser:
        path = Path(self.file_path)
        try:
            return parse(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return configparser.RawConfigParser()
        except (UnicodeDecodeError, configparser.Error) as exc:
            raise damaged(path, f"it cannot be parsed ({type(exc).__name__})") from None

    def _save(self, config: configparser.RawConfigParser) -> None:
        if not config.has_section(INTEGRITY):
            config.add_section(INTEGRITY)
        config.set(INTEGRITY, "sha256", checksum(config))
        text = io.StringIO()
        config.write(text)
        atomic_write(Path(self.file_path), text.getvalue().encode("utf-8"), 0o600)

    def _write_config_value(self, service: str, key: str, value: str) -> None:
        if self._pending is not None:
            config = self._pending
        else:
            with self._lock.held():
                config = self._read()
                self._set(config, service, key, value)
                self._save(config)
            return
        self._set(config, service, key, value)

    @staticmethod
    def _set(config: configparser.RawConfigParser, service: str, key: str, value: str) -> None:
        section = escape(service)
        if not config.has_section(section):
            config.add_section(section)
        config.set(section, escape(key), value)

    def delete_password(self, service: str, username: str) -> None:
        with self._lock.held():
            config = self._read()
            try:
                removed = config.remove_option(escape(service), escape(username))
            except configparser.NoSectionError:
                removed = False
            if not removed:
                raise PasswordDeleteError("Password not found")
            self._save(config)

    def _init_file(self) -> None:
        """A new store: reference, scheme and version in one write. Another process may
        have created it since we looked: then it is unlocked like any existing store."""
        with self._lock.held():
            path = Path(self.file_path)
            if path.exists():
                problem = damage(path)
                if problem:
                    raise damaged(path, problem)
                self._unlock()
                return
            self._pending = configparser.RawConfigParser()
            try:
                super()._init_file()
                config = self._pending
            finally:
                self._pending = None
            self._save(config)


class FileStore:
    """The encrypted file store, opened with its passphrase (checked at once)."""

    def __init__(self, path: Path, passphrase: str, *, service: str,
                 passphrase_env: str) -> None:
        """SERVICE names the store's section; PASSPHRASE_ENV is where the passphrase
        came from, for the error (tui/secrets.py owns both names)."""
        self.path = path
        self.service = service
        self.description = f"encrypted file {path}"
        problem = damage(path)
        if problem:
            raise damaged(path, problem)
        self.backend = _Backend(path, _Lock(path.with_name(path.name + ".lock")))
        try:
            # Setting the key unlocks an existing file (a wrong or blank passphrase fails
            # its reference entry's MAC: ValueError) or creates a new one.
            self.backend.keyring_key = passphrase
        except ValueError:
            raise UsageError(
                f"the passphrase does not open the secret store {path}; check {passphrase_env}"
            ) from None

    def get(self, key: str) -> str | None:
        try:
            return self.backend.get_password(self.service, key)
        except ValueError:
            # The passphrase opened the store's check entry, so this entry is what is wrong.
            raise damaged(self.path, f"its entry for {key} does not decrypt") from None

    def set(self, key: str, value: str) -> None:
        self.backend.set_password(self.service, key, value)

    def delete(self, key: str) -> bool:
        try:
            self.backend.delete_password(self.service, key)
        except PasswordDeleteError:
            return False
        return True

    def names(self) -> list[str]:
        """The keys in the store itself (never a separate list that could disagree)."""
        config = self.backend._read()
        section = escape(self.service)
        if not config.has_section(section):
            return []
        return sorted(unescape(option) for option in config.options(section))
