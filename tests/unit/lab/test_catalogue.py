"""The catalogue is ground truth for every scanner test: it must be complete and self-consistent."""

from __future__ import annotations

import pytest

from tlsward.lab.catalogue import CASES, LabCase, PortPlan, case_named
from tlsward.model.findings import FINDING_CATALOGUE

REQUIRED_SITUATIONS = {
    "healthy-rsa", "healthy-ecdsa", "expired", "not-yet-valid", "expiring-5d", "expiring-20d", "short-lived",
    "name-mismatch", "wildcard-too-deep", "wildcard", "self-signed", "untrusted-root", "missing-intermediate",
    "wrong-order", "expired-intermediate", "rsa-1024", "sha1-signature", "revoked", "tls10-only", "tls10-11",
    "tls12-only", "static-rsa", "legacy-3des", "mtls-required", "mtls-optional", "plain-http-on-tls-port",
    "https-no-hsts", "https-hsts", "http-redirect", "http-no-redirect", "smtp-starttls", "smtp-no-starttls",
    "postgres", "blackhole", "reset", "closed",
}


def test_at_least_thirty_cases_covering_every_required_situation() -> None:
    names = [c.name for c in CASES]
    assert len(names) >= 30
    assert len(set(names)) == len(names), "case names must be unique"
    assert set(names) >= REQUIRED_SITUATIONS


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_expectations_use_known_ids_and_do_not_contradict(case: LabCase) -> None:
    assert case.expect <= FINDING_CATALOGUE.keys()
    assert case.expect_deep <= FINDING_CATALOGUE.keys()
    assert not (case.expect & case.forbidden())
    assert not (case.expect_deep & case.forbidden())
    assert case.situation


@pytest.mark.parametrize("case", [c for c in CASES if c.kind in ("tls", "smtp", "postgres", "legacy_3des")
                                  and (c.kind != "smtp" or c.starttls)], ids=lambda c: c.name)
def test_every_tls_case_has_a_leaf(case: LabCase) -> None:
    assert case.leaf is not None
    assert case.versions


def test_healthy_cases_forbid_every_problem() -> None:
    for name in ("healthy-rsa", "healthy-ecdsa", "wildcard", "valid-40d", "https-hsts", "smtp-starttls", "postgres"):
        case = case_named(name)
        assert case.expect == frozenset()
        problems = {fid for fid, spec in FINDING_CATALOGUE.items() if spec.severity > 0}
        assert problems <= case.forbidden(), name


def test_each_broken_case_expects_its_root_cause_only() -> None:
    # One cause, one finding: the expired case must not also cry "untrusted chain".
    assert case_named("expired").expect == {"cert.expired"}
    assert "chain.untrusted" in case_named("expired").forbidden()
    assert "chain.untrusted" in case_named("missing-intermediate").forbidden()
    assert "cert.expiring" in case_named("valid-40d").forbidden()


def test_allow_patterns_are_globs() -> None:
    case = LabCase("x", "y", allow=frozenset({"cipher.*"}))
    assert not any(fid.startswith("cipher.") for fid in case.forbidden())
    assert "cert.expired" in case.forbidden()


def test_targets_carry_the_scheme_and_sni() -> None:
    assert case_named("smtp-starttls").target(25) == "smtp://smtp-starttls.lab.tlsward.test:25"
    assert case_named("healthy-rsa").target(443) == "healthy-rsa.lab.tlsward.test:443"
    assert case_named("wildcard-too-deep").sni == "a.b.wild.lab.tlsward.test"


def test_port_plan() -> None:
    plan = PortPlan.for_base("::1", 30000)
    assert plan.pki_url == "http://[::1]:30000"
    assert sorted(plan.ports.values()) == list(range(30001, 30001 + len(CASES)))
    with pytest.raises(KeyError):
        case_named("nope")
