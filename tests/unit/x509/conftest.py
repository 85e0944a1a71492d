"""One lab PKI per test session, issued relative to a fixed ``NOW`` so every verdict is deterministic."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tlsward.lab.pki import DAY, LabPKI, LeafSpec, build_pki
from tlsward.x509.trust import TrustStore

NOW = dt.datetime(2031, 5, 17, 12, 0, tzinfo=dt.UTC)
PKI_URL = "http://127.0.0.1:9/pki"

LEAVES: dict[str, LeafSpec] = {
    "ok": LeafSpec(names=("ok.example.test", "www.ok.example.test")),
    "wildcard": LeafSpec(names=("*.wild.example.test",)),
    "deep": LeafSpec(names=("deep.example.test",), issuer="sub-intermediate"),
    "weak": LeafSpec(names=("weak.example.test",), key="rsa1024"),
    "sha1": LeafSpec(names=("sha1.example.test",), key="rsa2048", signature_hash="sha1"),
    "expired": LeafSpec(names=("expired.example.test",), not_before=-92 * DAY, not_after=-2 * DAY),
    "future": LeafSpec(names=("future.example.test",), not_before=2 * DAY, not_after=92 * DAY),
    "self": LeafSpec(names=("self.example.test",), self_signed=True),
    "old-ca": LeafSpec(names=("old-ca.example.test",), issuer="expired-intermediate"),
    "stranger": LeafSpec(names=("stranger.example.test",), issuer="untrusted-root"),
    "client": LeafSpec(names=("client.example.test",), issuer="intermediate-2", client=True),
    "ip": LeafSpec(names=("127.0.0.1", "::1")),
}


@pytest.fixture(scope="session")
def pki() -> LabPKI:
    return build_pki(LEAVES, NOW, PKI_URL)


@pytest.fixture(scope="session")
def lab_store(pki: LabPKI) -> TrustStore:
    return TrustStore("lab", (pki.cas["root"].cert,))


def der(certs: Sequence[x509.Certificate]) -> list[bytes]:
    return [c.public_bytes(Encoding.DER) for c in certs]
