"""Scan results for storage tests: real DER bytes are not needed, only consistent fingerprints."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import replace

from tlsward.model.certificate import CertificateFacts
from tlsward.model.findings import Finding, Severity
from tlsward.model.scan import Failure, FailureKind, ScanResult, Session, Timings
from tlsward.model.target import Target

NOW = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def cert(name: str, *, issuer: str = "CN=Lab Intermediate", days_left: float = 80) -> tuple[CertificateFacts, bytes]:
    der = f"DER of {name} by {issuer}".encode()
    facts = CertificateFacts(
        subject=f"CN={name}", issuer=issuer, serial=hashlib.sha1(der).hexdigest()[:16],  # noqa: S324
        not_before=NOW - 10 * DAY, not_after=NOW + dt.timedelta(days=days_left), dns_names=(name,),
        ip_addresses=("127.0.0.1",), key_type="EC", key_bits=256, curve="secp256r1",
        signature_algorithm="ecdsa-with-SHA256", signature_hash="sha256", sha256=hashlib.sha256(der).hexdigest(),
        spki_sha256="x", is_ca=False, path_length=None, key_usage=(), extended_key_usage=("serverAuth",),
        ocsp_urls=(), ca_issuers_urls=(), crl_urls=(), sct_count=0, must_staple=False, self_issued=False,
        self_signed=False)
    return facts, der


INTERMEDIATE, INTERMEDIATE_DER = cert("Lab Intermediate", issuer="CN=Lab Root", days_left=900)
INTERMEDIATE = replace(INTERMEDIATE, is_ca=True)


def finding(id_: str, severity: Severity) -> Finding:
    return Finding(id_, severity, id_, "evidence")


def scan_result(target: str, *, leaf: str | None = None, issuer: str = "CN=Lab Intermediate", days_left: float = 80,
                findings: tuple[Finding, ...] = (), at: dt.datetime = NOW) -> ScanResult:
    """A successful scan of ``target`` presenting leaf + the shared intermediate."""
    parsed = Target.parse(target)
    facts, der = cert(leaf or parsed.host, issuer=issuer, days_left=days_left)
    session = Session("TLSv1.3", "TLS_AES_128_GCM_SHA256", 0x1301, "x25519", None, False, None,
                      (der, INTERMEDIATE_DER))
    return ScanResult(target=parsed, address="127.0.0.1", scanned_at=at, timings=Timings(handshake_ms=3.5),
                      session=session, chain=(facts, INTERMEDIATE), findings=findings)


def failed_result(target: str, *, at: dt.datetime = NOW) -> ScanResult:
    return ScanResult(target=Target.parse(target), address="127.0.0.1", scanned_at=at, timings=Timings(),
                      failure=Failure(FailureKind.REFUSED, "connection refused", "connect"),
                      findings=(finding("conn.refused", Severity.CRITICAL),))
