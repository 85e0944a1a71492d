"""Revocation and AIA completion against the built-in lab: its CRLs and CA certificates are served over HTTP
on the lab's base port, and the leaves point there (CRL distribution points, AIA caIssuers)."""

from __future__ import annotations

import asyncio

import pytest

from tlsward.engine import Scanner, ScanOptions
from tlsward.lab import LabState
from tlsward.model.scan import ScanResult
from tlsward.model.target import Target


def scan(lab: LabState, name: str, revocation: str = "soft") -> ScanResult:
    scanner = Scanner(ScanOptions(ca_files=(lab.ca_file,), timeout=3, revocation=revocation))
    return asyncio.run(scanner.scan_one(Target.parse(lab.endpoint(name).target, connect="127.0.0.1")))


def ids(result: ScanResult) -> set[str]:
    return {f.id for f in result.findings}


@pytest.mark.integration
def test_revoked_leaf_is_reported_from_the_crl(lab: LabState) -> None:
    result = scan(lab, "revoked")
    status = result.revocation
    assert status is not None and (status.status, status.source) == ("revoked", "crl")
    assert status.url == f"{lab.pki_url}/intermediate.crl" and status.revoked_at is not None
    assert status.reason.endswith("(keyCompromise)")
    assert "cert.revoked" in ids(result) and "chain.untrusted" not in ids(result)
    revoked = next(f for f in result.findings if f.id == "cert.revoked")
    assert revoked.evidence == status.reason and status.url in revoked.remediation.confirm


@pytest.mark.integration
def test_healthy_leaf_is_good(lab: LabState) -> None:
    result = scan(lab, "healthy-rsa")
    assert result.revocation is not None and (result.revocation.status, result.revocation.source) == ("good", "crl")
    assert not ids(result) & {"cert.revoked", "cert.revocation_unknown"} and not result.notes


@pytest.mark.integration
def test_missing_intermediate_would_be_repaired_by_aia(lab: LabState) -> None:
    result = scan(lab, "missing-intermediate")
    assert result.analysis is not None and result.analysis.incomplete
    lab_verdict = next(v for v in result.analysis.verdicts if v.store.startswith("ca-file"))
    assert lab_verdict.trusted and lab_verdict.completed_via_aia
    incomplete = next(f for f in result.findings if f.id == "chain.incomplete")
    assert "AIA caIssuers URL in the leaf does serve the missing issuer" in incomplete.evidence
    # the issuer fetched from AIA also verifies the CRL
    assert result.revocation is not None and result.revocation.status == "good"


@pytest.mark.integration
def test_revocation_off_checks_nothing(lab: LabState) -> None:
    result = scan(lab, "revoked", revocation="off")
    assert result.revocation is None and "cert.revoked" not in ids(result)


@pytest.mark.integration
def test_hard_mode_is_still_good_when_the_crl_answers(lab: LabState) -> None:
    result = scan(lab, "healthy-ecdsa", revocation="hard")
    assert result.revocation is not None and result.revocation.status == "good"
    assert "cert.revocation_unknown" not in ids(result)


def test_one_scanner_serves_several_event_loops(lab: LabState) -> None:
    """The revocation check is shared per chain; reusing a Scanner from a new event loop must still work."""
    scanner = Scanner(ScanOptions(timeout=3.0, ca_files=(lab.ca_file,)))
    target = Target.parse(lab.endpoint("revoked").target, connect=lab.host)
    first = asyncio.run(scanner.scan_one(target))
    second = asyncio.run(scanner.scan_one(target))
    for result in (first, second):
        assert result.revocation is not None and result.revocation.status == "revoked"
