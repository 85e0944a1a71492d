"""Integration fixtures: the session lab (tests/conftest.py), once the real peers are known to be installed."""

from __future__ import annotations

import shutil

import pytest

from tests.integration.test_notifiers import alertmanager, pki  # noqa: F401 - shared fixtures (the real receivers)
from tlsward.lab import LabState

# Real peers we did not write. They are required: a missing tool is a failure, never a skip.
REAL_CLIENTS = ("openssl", "curl", "nmap")


@pytest.fixture(scope="session")
def lab(lab: LabState) -> LabState:
    """The shared session lab (tests/conftest.py), after checking the real clients are installed."""
    missing = [tool for tool in REAL_CLIENTS if shutil.which(tool) is None]
    assert not missing, f"integration tests need {missing} installed (`make test` installs them)"
    return lab
