"""``--deep`` against the built-in lab: every case reports all of ``expect`` and ``expect_deep`` and nothing
it forbids; every TLS case gets a grade, and the grades order the cases sensibly."""

from __future__ import annotations

import asyncio

import pytest

from tlsward.engine import Scanner, ScanOptions
from tlsward.lab import CASES, LabState, case_named
from tlsward.model.scan import ScanResult
from tlsward.model.target import Target
from tlsward.probes.enumerate import DeepOptions


@pytest.fixture(scope="module")
def deep_results(lab: LabState) -> dict[str, ScanResult]:
    scanner = Scanner(ScanOptions(timeout=2.0, ca_files=(lab.ca_file,), deep=DeepOptions(timeout=2.0)))
    targets = {Target.parse(ep.target, connect=lab.host): ep.name for ep in lab.endpoints}

    async def run() -> dict[str, ScanResult]:
        return {targets[r.target]: r async for r in scanner.scan(list(targets))}

    return asyncio.run(run())


@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_deep_scan_reports_exactly_its_declared_findings(deep_results: dict[str, ScanResult], name: str) -> None:
    case = case_named(name)
    reported = {f.id for f in deep_results[name].findings}
    missing = (case.expect | case.expect_deep) - reported
    false_positives = reported & case.forbidden()
    assert not missing, f"{name}: expected {sorted(missing)} not reported; got {sorted(reported)}"
    assert not false_positives, f"{name}: false positives {sorted(false_positives)}"


@pytest.mark.parametrize("name", [c.name for c in CASES if c.kind == "tls"])
def test_deep_versions_match_the_declared_ones(deep_results: dict[str, ScanResult], name: str) -> None:
    deep = deep_results[name].deep
    assert deep is not None
    declared = {"TLSv1": "TLSv1.0"}
    expected = {declared.get(v, v) for v in case_named(name).versions}
    assert set(deep.accepted_versions) == expected, deep.versions
    assert all(v.accepted is not None for v in deep.versions), "no inconclusive verdict on a healthy loopback"


def test_grades(deep_results: dict[str, ScanResult]) -> None:
    def letter(name: str) -> str:
        grade = deep_results[name].grade
        assert grade is not None, name
        return grade.letter

    assert letter("https-hsts") == "A+"
    assert letter("healthy-rsa") == "A+"        # HSTS is only judged on https:// targets
    assert letter("tls12-only") == "A-"         # no TLS 1.3: a warning
    assert letter("tls10-11") == "C"            # no TLS 1.2
    assert letter("legacy-3des") == "C"
    assert letter("expired") == "T" and letter("untrusted-root") == "T"
    assert letter("name-mismatch") == "M"
    grade = deep_results["expired"].grade
    assert grade is not None and grade.letter_without_trust.startswith("A")
