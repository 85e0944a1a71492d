"""Integration fixtures: one built-in lab for the whole session, on a free block of loopback ports."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tlsward.lab import LabState, running_lab

# Real peers we did not write. They are required: a missing tool is a failure, never a skip.
REAL_CLIENTS = ("openssl", "curl", "nmap")


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabState]:
    missing = [tool for tool in REAL_CLIENTS if shutil.which(tool) is None]
    assert not missing, f"integration tests need {missing} installed (`make test` installs them)"
    with running_lab(tmp_path_factory.mktemp("lab")) as state:
        assert state.host == "127.0.0.1", "integration tests only ever talk to loopback"
        yield state
