"""Revocation rules: revoked is always a finding (and the root cause); "could not find out" only in hard mode."""

from __future__ import annotations

import subprocess
from dataclasses import replace

import pytest

from tests.unit.rules.test_rules import ANALYSIS, INTERMEDIATE, LEAF, NOW, SESSION, UNTRUSTED
from tlsward.model.certificate import RevocationStatus
from tlsward.model.findings import Finding
from tlsward.model.scan import ScanResult, Timings
from tlsward.model.target import Target
from tlsward.rules.evaluate import evaluate

CRL = "http://crl.example.test/int.crl"
REVOKED = RevocationStatus("revoked", "crl", f"serial 0x1 listed in {CRL} since 2030-05-30 (keyCompromise)",
                           revoked_at=NOW, checked_urls=(CRL,), url=CRL)
UNAVAILABLE = RevocationStatus("unavailable", "", f"CRL {CRL} unreachable: connection refused", checked_urls=(CRL,))


def findings(status: RevocationStatus | None, *, hard: bool = False, **changes: object) -> list[Finding]:
    result = ScanResult(Target.parse("a.test"), "192.0.2.1", NOW, Timings(), session=SESSION,
                        chain=(LEAF, INTERMEDIATE), analysis=ANALYSIS, revocation=status)
    return list(evaluate(replace(result, **changes), NOW, revocation_required=hard))  # type: ignore[arg-type]


@pytest.mark.parametrize(("status", "hard", "expected"), [
    (None, False, []),
    (None, True, []),
    (replace(REVOKED, status="good", revoked_at=None), True, []),
    (REVOKED, False, ["cert.revoked"]),
    (REVOKED, True, ["cert.revoked"]),
    (UNAVAILABLE, False, []),
    (UNAVAILABLE, True, ["cert.revocation_unknown"]),
    (replace(UNAVAILABLE, status="unknown", checked_urls=()), True, ["cert.revocation_unknown"]),
])
def test_revocation_rules(status: RevocationStatus | None, hard: bool, expected: list[str]) -> None:
    assert [f.id for f in findings(status, hard=hard)] == expected


def test_revoked_leaf_is_not_also_untrusted() -> None:
    assert [f.id for f in findings(REVOKED, analysis=UNTRUSTED)] == ["cert.revoked"]


def test_revoked_finding_carries_the_reason_and_a_command_that_shows_it() -> None:
    (revoked,) = findings(REVOKED)
    assert revoked.evidence == REVOKED.reason
    assert "generate a new key and CSR" in revoked.remediation.fix
    assert revoked.remediation.confirm == (f"openssl crl -inform DER -in <(curl -s {CRL}) -noout -text "
                                           "| grep -A1 'Serial Number: 01'")
    stapled = replace(REVOKED, source="stapled-ocsp", url="", checked_urls=())
    assert "-status" in findings(stapled)[0].remediation.confirm


def test_unknown_finding_names_the_url_to_try() -> None:
    (unknown,) = findings(UNAVAILABLE, hard=True)
    assert unknown.evidence == UNAVAILABLE.reason
    assert unknown.remediation.confirm == f"curl -sS -o /dev/null -w '%{{http_code}}\\n' {CRL}"
    assert subprocess.run(["bash", "-n", "-c", unknown.remediation.confirm], check=False).returncode == 0
