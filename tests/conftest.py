"""Fixtures shared by the integration and e2e tests: one built-in lab per session, on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tlsward.lab import LabState, running_lab


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabState]:
    """The built-in lab on a thread of this process, on a free block of loopback ports."""
    with running_lab(tmp_path_factory.mktemp("lab")) as state:
        assert state.host == "127.0.0.1", "tests only ever talk to loopback"
        yield state
