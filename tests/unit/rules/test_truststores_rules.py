"""Trust-store comparison, audit and the rotation plan, on hand-built stores (pure functions: no files)."""

from __future__ import annotations

import datetime as dt

import pytest

from tlsward.model.certificate import ChainAnalysis, TrustVerdict
from tlsward.model.target import Target
from tlsward.model.truststores import RootInfo, StoreInfo
from tlsward.rules.base import Context
from tlsward.rules.truststores import (
    add_root_command,
    audit_store,
    diff_stores,
    distrust_of,
    holds,
    rotation_plan,
    stores_fail_finding,
    summarize,
)

NOW = dt.datetime(2026, 11, 28, tzinfo=dt.UTC)


def root(name: str, *, key: str | None = None, cert: str | None = None, days: int = 3650, org: str = "") -> RootInfo:
    return RootInfo(sha256=(cert or name).ljust(64, "0")[:64], spki_sha256=(key or name).ljust(64, "f")[:64],
                    subject=f"CN={name}" + (f",O={org}" if org else ""), not_after=NOW + dt.timedelta(days=days),
                    organization=org)


def store(sid: str, kind: str, *roots: RootInfo, problem: str = "", path: str = "") -> StoreInfo:
    return StoreInfo(id=sid, kind=kind, path=path or f"/stores/{sid}", label=f"{sid} store",  # type: ignore[arg-type]
                     roots=roots, problem=problem, clients="some clients",
                     modified=NOW - dt.timedelta(days=400))


OLD, NEW = root("Old Root"), root("New Root")
A, B, C = root("A"), root("B"), root("C")


def test_diff_matches_roots_by_key_not_by_certificate_bytes() -> None:
    reissued = root("A", cert="A-reissued")          # same subject and key, another certificate
    left, right = store("l", "file", A, B), store("r", "file", reissued, C)
    diff = diff_stores(left, right)
    assert [r.subject for r in diff.only_a] == ["CN=B"]
    assert [r.subject for r in diff.only_b] == ["CN=C"]
    assert diff.common == 1
    assert [(a.sha256, b.sha256) for a, b in diff.same_key_other_cert] == [(A.sha256, reissued.sha256)]
    assert not diff.identical
    assert diff_stores(left, store("same", "file", B, A)).identical


def test_a_same_name_with_another_key_is_a_different_root() -> None:
    impostor = root("A", key="other-key")
    assert not holds(store("s", "file", impostor), A)
    assert holds(store("s", "file", root("A", cert="x")), A)


def test_distrust_is_matched_by_organisation() -> None:
    assert distrust_of(root("TrustCor RootCert CA-1", org="TrustCor Systems S. de R.L.")) is not None
    entrust = distrust_of(root("Entrust Root Certification Authority - G2", org="Entrust, Inc."))
    assert entrust is not None and "2024" in entrust.since
    assert distrust_of(root("ISRG Root X1", org="Internet Security Research Group")) is None
    assert distrust_of(root("no org")) is None


def test_audit_reports_each_problem_with_the_store_and_its_fix() -> None:
    expired = root("Expired Root", days=-10)
    expiring = root("Soon Root", days=30)
    distrusted = root("TrustCor ECA-1", org="TrustCor Systems S. de R.L.")
    internal = root("Internal CA")
    java = store("java:/jdk/cacerts", "java", A, expired, expiring, distrusted, path="/jdk/lib/security/cacerts")
    reference = store("mozilla", "file", A, B)
    summary = summarize(java, now=NOW, reference=reference, internal=[internal])
    found = {f.id: f for f in audit_store(summary, now=NOW)}
    assert set(found) == {"truststore.internal_ca_missing", "truststore.distrusted_root", "truststore.root_expired",
                          "truststore.root_expiring", "truststore.stale"}
    assert "keytool -importcert -noprompt -alias internal-ca" in found["truststore.internal_ca_missing"].remediation.fix
    assert "/jdk/lib/security/cacerts" in found["truststore.internal_ca_missing"].evidence
    assert "TrustCor" in found["truststore.distrusted_root"].evidence
    assert "Expired Root" in found["truststore.root_expired"].evidence
    assert "Soon Root" in found["truststore.root_expiring"].evidence
    assert "lacks 1 root(s)" in found["truststore.stale"].evidence and "CN=B" not in found["truststore.stale"].evidence
    assert "B" in found["truststore.stale"].evidence


def test_a_healthy_store_has_no_findings_and_a_private_bundle_is_not_compared_with_mozilla() -> None:
    reference = store("mozilla", "file", A, B)
    assert list(audit_store(summarize(store("sys", "system-bundle", A, B), now=NOW, reference=reference),
                            now=NOW)) == []
    assert list(audit_store(summarize(store("mine", "file", OLD), now=NOW, reference=reference), now=NOW)) == []


def test_an_unreadable_store_is_one_finding_and_nothing_else() -> None:
    broken = store("nss:/home/x/.pki/nssdb", "nss", problem="cert9.db: file is not a database",
                   path="/home/x/.pki/nssdb")
    found = list(audit_store(summarize(broken, now=NOW, internal=[OLD]), now=NOW))
    assert [f.id for f in found] == ["truststore.unreadable"]
    assert "not a database" in found[0].evidence


@pytest.mark.parametrize(("kind", "path", "expected"), [
    ("system-bundle", "/etc/ssl/certs/ca-certificates.crt", "update-ca-certificates"),
    ("system-bundle", "/etc/pki/tls/certs/ca-bundle.crt", "update-ca-trust"),
    ("java", "/usr/lib/jvm/x/lib/security/cacerts", "keytool -importcert -noprompt -alias new-root -file NEW.pem"),
    ("certifi", "/venv/lib/python3.11/site-packages/certifi/cacert.pem", "REQUESTS_CA_BUNDLE="),
    ("node", "/usr/bin/node", "NODE_EXTRA_CA_CERTS=NEW.pem"),
    ("nss", "/root/.pki/nssdb", "certutil -A -d sql:/root/.pki/nssdb -n new-root -t C,, -i NEW.pem"),
])
def test_add_root_command_is_the_exact_one_for_the_kind(kind: str, path: str, expected: str) -> None:
    assert expected in add_root_command(store("s", kind, path=path), "NEW.pem", "new-root")


def test_rotation_plan_predicts_who_breaks_at_each_step() -> None:
    both = store("both", "java", OLD, NEW)
    old_only = store("old-only", "certifi", OLD)
    new_only = store("new-only", "node", NEW)
    neither = store("neither", "nss", A)
    broken = store("broken", "java", problem="keystore was tampered with")
    plan = rotation_plan([both, old_only, new_only, neither, broken], [OLD], [NEW], new_pem="/ca/new.pem")
    steps = {s.name: s for s in plan.steps}
    assert [b.store_id for b in steps["add-new-root"].breaks] == ["new-only", "neither"]
    assert [b.store_id for b in steps["switch-issuer"].breaks] == ["old-only", "neither"]
    assert [b.store_id for b in steps["remove-old-root"].breaks] == ["old-only", "neither"]
    assert set(steps["switch-issuer"].safe) == {"both", "new-only"}
    assert plan.unreadable == ("broken",)
    fix = next(b.fix for b in steps["switch-issuer"].breaks if b.store_id == "neither")
    assert fix == "certutil -A -d sql:/stores/neither -n new-root -t C,, -i /ca/new.pem"


def test_a_cross_sign_keeps_old_root_stores_working_until_the_old_root_goes() -> None:
    plan = rotation_plan([store("old-only", "certifi", OLD), store("both", "java", OLD, NEW)], [OLD], [NEW],
                         cross_signed=True)
    steps = {s.name: s for s in plan.steps}
    assert steps["switch-issuer"].breaks == ()
    assert [b.store_id for b in steps["remove-old-root"].breaks] == ["old-only"]


def test_rotation_needs_both_cas() -> None:
    with pytest.raises(ValueError, match="at least one root"):
        rotation_plan([], [], [NEW])


def _analysis(*verdicts: TrustVerdict) -> ChainAnalysis:
    return ChainAnalysis(hostname="h.test", hostname_matches=True, leaf_self_signed=False, in_order=True,
                         incomplete=False, contains_root=False, expired_intermediates=(), weak_keys=(),
                         weak_signatures=(), verdicts=verdicts)


def test_store_fails_only_when_the_host_stores_disagree() -> None:
    ctx = Context(Target("h.test", 443), "127.0.0.1")
    ok = TrustVerdict("system bundle", True, "")
    java = TrustVerdict("Java 17 cacerts", False, "root CN=Lab Root is not in this store")
    certifi = TrustVerdict("certifi 2023.7.22", False, "root CN=Lab Root is not in this store")
    split = stores_fail_finding(_analysis(ok, java, certifi), {"system bundle", "Java 17 cacerts", "certifi 2023.7.22"},
                                ctx)
    assert split is not None and split.id == "trust.store_fails"
    assert split.evidence == ("Java 17 cacerts and certifi 2023.7.22 will fail: root CN=Lab Root is not in this "
                              "store (trusted by system bundle)")
    assert stores_fail_finding(_analysis(java, certifi), {"Java 17 cacerts", "certifi 2023.7.22"}, ctx) is None
    assert stores_fail_finding(_analysis(ok, ok), {"system bundle"}, ctx) is None
    # a failing store that is not one of the host's (the --ca-file or Mozilla reference) is not this finding
    assert stores_fail_finding(_analysis(ok, java), {"system bundle"}, ctx) is None


def test_many_failing_stores_are_grouped_by_reason_and_capped() -> None:
    ctx = Context(Target("h.test", 443), None)
    ok = TrustVerdict("CA file lab.pem", True, "")
    missing = [TrustVerdict(f"certifi {n}", False, "root CN=Lab Root is not in this store") for n in range(11)]
    expired = TrustVerdict("Java 8 cacerts", False, "expired root CN=Old Root")
    split = stores_fail_finding(_analysis(ok, *missing, expired), {v.store for v in (*missing, expired)}, ctx)
    assert split is not None
    assert split.evidence.count("root CN=Lab Root is not in this store") == 1
    assert "certifi 7 and 3 more will fail" in split.evidence
    assert "; Java 8 cacerts will fail: expired root CN=Old Root" in split.evidence
