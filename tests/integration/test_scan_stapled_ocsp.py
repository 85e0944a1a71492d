"""A stapled OCSP response, end to end: ``openssl s_server -status_file`` staples it, the handshake records the
bytes, the engine judges them against the presented issuer and fills ``Session.ocsp_status``."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from tests.integration.test_wire_capture import s_server
from tlsward.engine import Scanner, ScanOptions
from tlsward.lab.pki import DAY, LabPKI, LeafSpec, build_pki
from tlsward.model.scan import ScanResult
from tlsward.model.target import Target

NAME = "stapled.example.test"
UNREACHABLE_PKI = "http://127.0.0.1:9"   # the discard port: nothing may be fetched when a staple settles it


@pytest.fixture(scope="module")
def pki() -> LabPKI:
    return build_pki({"leaf": LeafSpec(names=(NAME,))}, dt.datetime.now(dt.UTC), UNREACHABLE_PKI)


def staple(pki: LabPKI, status: ocsp.OCSPCertStatus) -> bytes:
    now = dt.datetime.now(dt.UTC)
    issuer = pki.cas["intermediate"]
    revoked = status == ocsp.OCSPCertStatus.REVOKED
    return (ocsp.OCSPResponseBuilder()
            .add_response(cert=pki.leaves["leaf"].cert, issuer=issuer.cert, algorithm=hashes.SHA256(),
                          cert_status=status, this_update=now - DAY, next_update=now + DAY,
                          revocation_time=now - DAY if revoked else None,
                          revocation_reason=x509.ReasonFlags.key_compromise if revoked else None)
            .responder_id(ocsp.OCSPResponderEncoding.HASH, issuer.cert)
            .sign(issuer.key, hashes.SHA256()).public_bytes(Encoding.DER))


def scan_stapled(pki: LabPKI, tmp_path: Path, response: bytes) -> ScanResult:
    leaf = pki.leaves["leaf"]
    files = {"key.pem": leaf.key_pem, "leaf.pem": leaf.cert_pem, "chain.pem": pki.cas["intermediate"].cert_pem,
             "root.pem": pki.cas["root"].cert_pem, "staple.der": response}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    scanner = Scanner(ScanOptions(ca_files=(str(tmp_path / "root.pem"),), mozilla=False, system=False, timeout=3))
    with s_server(tmp_path / "key.pem", tmp_path / "leaf.pem", "-cert_chain", str(tmp_path / "chain.pem"),
                  "-status_file", str(tmp_path / "staple.der")) as port:
        return asyncio.run(scanner.scan_one(Target.parse(f"{NAME}:{port}", connect="127.0.0.1")))


@pytest.mark.integration
def test_stapled_revoked_response(pki: LabPKI, tmp_path: Path) -> None:
    result = scan_stapled(pki, tmp_path, staple(pki, ocsp.OCSPCertStatus.REVOKED))
    assert result.session is not None and result.session.ocsp_stapled
    assert result.session.ocsp_status == "revoked"
    assert result.revocation is not None
    assert (result.revocation.status, result.revocation.source) == ("revoked", "stapled-ocsp")
    assert result.revocation.checked_urls == ()
    assert "cert.revoked" in {f.id for f in result.findings}
    assert not result.notes


@pytest.mark.integration
def test_stapled_good_response(pki: LabPKI, tmp_path: Path) -> None:
    result = scan_stapled(pki, tmp_path, staple(pki, ocsp.OCSPCertStatus.GOOD))
    assert result.session is not None and result.session.ocsp_status == "good"
    assert result.revocation is not None and result.revocation.status == "good"
