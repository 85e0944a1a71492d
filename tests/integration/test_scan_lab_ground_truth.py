"""Against the built-in lab, every case reports exactly its declared findings: all of ``expect``, and
nothing the case forbids (no false positives on healthy cases). The catalogue is the ground truth."""

from __future__ import annotations

import asyncio

import pytest

from tlsward.engine import Scanner, ScanOptions
from tlsward.lab import CASES, LabState, case_named
from tlsward.model.scan import ScanResult
from tlsward.model.target import Target
from tlsward.net.tls import ClientIdentity


@pytest.fixture(scope="module")
def results(lab: LabState) -> dict[str, ScanResult]:
    scanner = Scanner(ScanOptions(timeout=2.0, ca_files=(lab.ca_file,)))
    targets = {Target.parse(ep.target, connect=lab.host): ep.name for ep in lab.endpoints}

    async def run() -> dict[str, ScanResult]:
        return {targets[r.target]: r async for r in scanner.scan(list(targets))}

    return asyncio.run(run())


@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_case_reports_exactly_its_declared_findings(results: dict[str, ScanResult], name: str) -> None:
    case = case_named(name)
    reported = {f.id for f in results[name].findings}
    missing = case.expect - reported
    false_positives = reported & case.forbidden()
    assert not missing, f"{name}: expected {sorted(missing)} not reported; got {sorted(reported)}"
    assert not false_positives, f"{name}: false positives {sorted(false_positives)}"


def test_every_finding_carries_evidence_and_an_actionable_remediation(results: dict[str, ScanResult]) -> None:
    for name, result in results.items():
        for finding in result.findings:
            assert finding.evidence, (name, finding.id)
            assert finding.remediation.fix and finding.remediation.confirm, (name, finding.id)


def test_healthy_scan_facts(results: dict[str, ScanResult]) -> None:
    result = results["healthy-ecdsa"]
    assert result.session is not None and result.session.version == "TLSv1.3"
    assert result.session.cipher.startswith("TLS_AES_") and result.session.group
    assert [c.key_type for c in result.chain] == ["EC", "RSA"]
    assert result.analysis is not None and result.analysis.trusted and result.analysis.hostname_matches
    verdicts = {v.store.split(" ")[0]: v.trusted for v in result.analysis.verdicts}
    assert verdicts == {"ca-file": True, "mozilla": False, "system": False}
    assert result.timings.connect_ms is not None and result.timings.handshake_ms is not None


def test_legacy_3des_is_diagnosed_with_a_hand_made_hello(results: dict[str, ScanResult]) -> None:
    result = results["legacy-3des"]
    assert result.session is not None and not result.session.completed
    assert result.session.cipher == "TLS_RSA_WITH_3DES_EDE_CBC_SHA"
    assert len(result.chain) == 2  # read from the plaintext TLS 1.2 Certificate message


def test_mtls_cases_name_the_acceptable_cas(results: dict[str, ScanResult]) -> None:
    for name, required in (("mtls-required", True), ("mtls-optional", False)):
        session = results[name].session
        assert session is not None
        assert session.client_auth.requested and session.client_auth.required is required
        assert any("Intermediate CA 2" in ca for ca in session.client_auth.acceptable_cas)


def test_presenting_a_client_certificate(lab: LabState) -> None:
    """With --cert/--key, a server that requires one is still reported as requiring it, and accepts ours."""
    scanner = Scanner(ScanOptions(timeout=3.0, ca_files=(lab.ca_file,),
                                  client=ClientIdentity(lab.client_cert, lab.client_key)))
    ep = lab.endpoint("mtls-required")
    result = asyncio.run(scanner.scan_one(Target.parse(f"https://{ep.sni}:{ep.port}", connect=lab.host)))
    assert result.session is not None and result.failure is None
    auth = result.session.client_auth
    assert auth.required and auth.presented_accepted is True
    assert result.http is not None and result.http.status == 200  # the second, authenticated connection
    assert [f.id for f in result.findings] == ["mtls.required"]
