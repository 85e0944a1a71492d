"""The ACME server under test: the real internal CA and the SQL state on a temporary SQLite file, mounted at
``/acme`` like ``tlsward serve`` does, driven in-process through Starlette's TestClient (no sockets). Validation
is switched to always-valid here; real http-01 runs in the certbot and lego integration tests."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

with warnings.catch_warnings():   # Starlette would like httpx2; httpx is what this project has
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from tlsward.acme.server import IdentifierPolicy, ValidationSettings
from tlsward.ca.authority import CertificateAuthority
from tlsward.lifecycle.acme_service import create_acme_service
from tlsward.storage import Store, open_store

POLICY = IdentifierPolicy.from_mapping({
    "default": {"suffixes": ["example.test"], "names": ["localhost"], "networks": ["127.0.0.0/8"]},
    "accounts": {"narrow-kid": {"names": ["only.example.test"]}},
})


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    with open_store(f"sqlite:///{tmp_path_factory.mktemp('acme') / 'inventory.db'}") as opened:
        yield opened


@pytest.fixture(scope="module")
def ca(store: Store, tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    directory: Path = tmp_path_factory.mktemp("ca") / "ca"
    return CertificateAuthority.init(directory, store, name="ACME Test", passphrase=b"test passphrase")


def _client(ca: CertificateAuthority, store: Store, *, require_eab: bool = False) -> Iterator[TestClient]:
    acme = create_acme_service(ca.directory, store, ca=ca, policy=POLICY, require_eab=require_eab,
                               validation=ValidationSettings(always_valid=True))
    with TestClient(Starlette(routes=[Mount("/acme", app=acme)])) as client:
        yield client


@pytest.fixture(scope="module")
def http(ca: CertificateAuthority, store: Store) -> Iterator[TestClient]:
    yield from _client(ca, store)


@pytest.fixture(scope="module")
def eab_http(ca: CertificateAuthority, store: Store) -> Iterator[TestClient]:
    yield from _client(ca, store, require_eab=True)
