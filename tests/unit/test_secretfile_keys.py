"""The encrypted file store derives each entry's Argon2id key once per process: reads
of an entry it already opened cost no key derivation (about a second each at
upstream's cost), while a wrong passphrase is still refused and the file stays the one
upstream keyrings.cryptfile reads."""

from __future__ import annotations

from pathlib import Path

import argon2.low_level
import pytest
from keyrings.cryptfile.cryptfile import CryptFileKeyring

from tui import secretfile
from tui.errors import UsageError
from tui.secretfile import FileStore

SERVICE = "cloudrig"


@pytest.fixture
def derivations(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The salt of every Argon2 key derivation made while the test runs."""
    salts: list[bytes] = []
    real = argon2.low_level.hash_secret_raw

    def counted(**kwargs: object) -> bytes:
        salts.append(kwargs["salt"])  # type: ignore[arg-type]
        return real(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(argon2.low_level, "hash_secret_raw", counted)  # upstream's
    monkeypatch.setattr(secretfile, "hash_secret_raw", counted, raising=False)  # ours
    return salts


def _open(path: Path, passphrase: str) -> FileStore:
    return FileStore(path, passphrase, service=SERVICE, passphrase_env="TEST_PASSPHRASE")


def test_reading_an_entry_again_derives_no_key(tmp_path: Path, derivations: list[bytes]
                                               ) -> None:
    path = tmp_path / "secrets.cfg"
    _open(path, "pass one").set("db_password", "s3cret")
    made = len(derivations)
    assert made >= 2  # the new store's reference and the entry, each its own salt
    for _ in range(3):  # as three checks of a TUI session or three runs would
        assert _open(path, "pass one").get("db_password") == "s3cret"
    assert len(derivations) == made


def test_a_wrong_passphrase_is_still_refused_after_the_right_one(
        tmp_path: Path, derivations: list[bytes]) -> None:
    path = tmp_path / "secrets.cfg"
    _open(path, "pass one").set("db_password", "s3cret")
    before = len(derivations)
    with pytest.raises(UsageError, match="the passphrase does not open the secret store"):
        _open(path, "pass two")
    assert len(derivations) > before  # its own key, derived, never a cached one


def test_upstream_keyrings_cryptfile_reads_the_store(tmp_path: Path) -> None:
    """The key is upstream's (same Argon2id parameters): keyrings.cryptfile itself
    opens the file CloudRig wrote and reads the secret."""
    path = tmp_path / "secrets.cfg"
    _open(path, "pass one").set("db_password", "s3cret")
    upstream = CryptFileKeyring()
    upstream.file_path = str(path)
    upstream.keyring_key = "pass one"
    assert upstream.get_password(SERVICE, "db_password") == "s3cret"
