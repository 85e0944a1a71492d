"""A fresh internal CA over a temporary SQLite inventory for each test (a CA is made in milliseconds)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tlsward.ca.authority import CertificateAuthority
from tlsward.storage import Store, open_store

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
PASSPHRASE = b"intermediate secret"
ROOT_PASSPHRASE = b"root secret"


@pytest.fixture
def ca_store(tmp_path: Path) -> Iterator[Store]:
    with open_store(f"sqlite:///{tmp_path / 'inventory.db'}") as store:
        yield store


@pytest.fixture
def ca(tmp_path: Path, ca_store: Store) -> CertificateAuthority:
    return CertificateAuthority.init(tmp_path / "ca", ca_store, name="Unit Test", passphrase=PASSPHRASE,
                                     root_passphrase=ROOT_PASSPHRASE, crl_url="http://127.0.0.1:9/ca/crl",
                                     ocsp_url="http://127.0.0.1:9/ca/ocsp", now=NOW)


@pytest.fixture(scope="session")
def leaf_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())
