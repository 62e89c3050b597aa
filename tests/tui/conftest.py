"""The TUI layer: every test here runs the app (pilot, a real terminal, a browser) with
a private state dir and fixed colours (`state_dir`, from tui_helpers, which the kit's
procedure test shares)."""

from collections.abc import Iterator

import pytest
from tui_helpers import state_dir

__all__ = ["state_dir"]


@pytest.fixture(autouse=True)
def cheap_store_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The secret file's Argon2id at its least work (1 pass over 64 KiB, not 15 over
    64 MiB: about 2 s a derivation on a loaded 2-core host, several per unlock). The
    screens' flows through the store are what these tests exercise, not the key
    derivation's cost; the crypto, the file and the code path stay upstream's
    (keyrings.cryptfile reads the cost from these class attributes; it writes no cost
    into the file). tests/reliability/test_secrets.py keeps the real cost."""
    from keyrings.cryptfile.cryptfile import CryptFileKeyring

    monkeypatch.setattr(CryptFileKeyring, "time_cost", 1)
    monkeypatch.setattr(CryptFileKeyring, "memory_cost", 64)
    yield
