"""Fixtures shared by the system tests."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest

from tests.support.generated_clients import generated_clients


@pytest.fixture(scope="session")
def client_packages() -> Iterator[dict[str, ModuleType]]:
    """The five services' Python clients generated from docs/openapi/ (once per session, and
    reused across sessions while the documents are unchanged: tests/support/generated_clients.py)."""
    with generated_clients() as packages:
        yield packages
