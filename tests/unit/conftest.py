"""The unit layer: one module at a time, each API client against its fake (the suite's
`consul` from tests/conftest.py; `connect` and `casa` here), http, files, commands, the
import layers and types. No test here runs a procedure end to end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fakes.cloudcasa import FakeCloudCasa
from fakes.connect import FakeConnect


@pytest.fixture
def connect() -> Iterator[FakeConnect]:
    """The fake CloudBlue Connect API with one product (its template) and a marketplace."""
    fake = FakeConnect().start()
    fake.add_product("PRD-276-377-545", "TL-551-876-782")
    fake.add_marketplace("MP-05011")
    yield fake
    fake.stop()


@pytest.fixture
def casa() -> Iterator[FakeCloudCasa]:
    """The fake CloudCasa API, empty."""
    fake = FakeCloudCasa().start()
    yield fake
    fake.stop()
