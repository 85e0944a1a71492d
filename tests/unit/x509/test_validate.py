"""Chain analysis over the lab PKI: one row per way a chain goes wrong, each with its plain-English cause."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from tests.unit.x509.conftest import NOW, der
from tlsward.lab.pki import DAY, LabPKI
from tlsward.model.errors import CertificateError
from tlsward.x509.facts import sha256_fingerprint
from tlsward.x509.trust import TrustStore
from tlsward.x509.validate import analyse_chain, issued_by

ROOT = "CN=tlsward lab Root CA,O=tlsward lab"
INTERMEDIATE = "CN=tlsward lab Intermediate CA,O=tlsward lab"
EXPIRED_INTERMEDIATE = "CN=tlsward lab Expired Intermediate CA,O=tlsward lab"
UNTRUSTED_ROOT = "CN=tlsward lab Untrusted Root CA,O=tlsward lab"

Certs = Callable[[LabPKI], list[x509.Certificate]]


def chain(leaf: str) -> Certs:
    return lambda pki: pki.chain_for(leaf)


def leaf_only(leaf: str) -> Certs:
    return lambda pki: [pki.leaves[leaf].cert]


def cas(*names: str) -> Certs:
    return lambda pki: [pki.cas[n].cert for n in names]


def nothing(pki: LabPKI) -> list[x509.Certificate]:
    return []


@dataclass(frozen=True)
class Case:
    id: str
    presented: Certs
    hostname: str
    reason: str                       # "" means trusted by the lab store
    extras: Certs = nothing
    path_length: int = 0              # certificates on the validated path, when trusted
    completed_via_aia: bool = False
    hostname_matches: bool = True
    leaf_self_signed: bool = False
    in_order: bool = True
    incomplete: bool = False
    contains_root: bool = False
    expired_intermediates: tuple[int, ...] = ()
    weak_keys: tuple[int, ...] = ()
    weak_signatures: tuple[int, ...] = ()


CASES = [
    Case("healthy", chain("ok"), "ok.example.test", "", path_length=3),
    Case("healthy, second SAN", chain("ok"), "www.ok.example.test", "", path_length=3),
    Case("wildcard", chain("wildcard"), "shop.wild.example.test", "", path_length=3),
    Case("two intermediates", chain("deep"), "deep.example.test", "", path_length=4),
    Case("expired leaf", chain("expired"), "expired.example.test", "expired leaf"),
    Case("not yet valid", chain("future"), "future.example.test", "leaf not yet valid"),
    Case("expired intermediate", chain("old-ca"), "old-ca.example.test",
         f"expired intermediate {EXPIRED_INTERMEDIATE}", expired_intermediates=(1,)),
    Case("untrusted root, not sent", chain("stranger"), "stranger.example.test",
         f"root {UNTRUSTED_ROOT} is not in this store"),
    Case("untrusted root, sent", lambda p: [*p.chain_for("stranger"), p.cas["untrusted-root"].cert],
         "stranger.example.test", f"root {UNTRUSTED_ROOT} is not in this store", contains_root=True),
    Case("untrusted root fetched by AIA", chain("stranger"), "stranger.example.test",
         f"root {UNTRUSTED_ROOT} is not in this store", extras=cas("untrusted-root")),
    Case("self-signed", chain("self"), "self.example.test", "self-signed leaf", leaf_self_signed=True),
    Case("leaf only", leaf_only("ok"), "ok.example.test",
         f"unable to find the issuer {INTERMEDIATE} (incomplete chain?)", incomplete=True),
    Case("leaf only, completed by AIA", leaf_only("ok"), "ok.example.test", "", extras=cas("intermediate"),
         path_length=3, completed_via_aia=True, incomplete=True),
    Case("one of two intermediates missing", lambda p: p.chain_for("deep")[:2], "deep.example.test",
         f"unable to find the issuer {INTERMEDIATE} (incomplete chain?)", incomplete=True),
    Case("AIA fetch did not reach far enough", lambda p: p.chain_for("deep")[:1], "deep.example.test",
         f"unable to find the issuer {INTERMEDIATE} (incomplete chain?)", extras=cas("sub-intermediate"),
         incomplete=True),
    Case("wrong order", lambda p: [p.chain_for("deep")[i] for i in (0, 2, 1)], "deep.example.test", "",
         path_length=4, in_order=False),
    Case("root included", lambda p: [*p.chain_for("ok"), p.cas["root"].cert], "ok.example.test", "",
         path_length=3, contains_root=True),
    Case("extra certificate after the root is ignored by in_order",
         lambda p: [*p.chain_for("ok"), p.cas["root"].cert, p.cas["intermediate-2"].cert], "ok.example.test", "",
         path_length=3, contains_root=True),
    Case("unrelated intermediate", lambda p: [p.leaves["ok"].cert, p.cas["intermediate-2"].cert], "ok.example.test",
         f"unable to find the issuer {INTERMEDIATE} (incomplete chain?)", in_order=False, incomplete=True),
    Case("RSA-1024 leaf", chain("weak"), "weak.example.test", "", path_length=3, weak_keys=(0,)),
    Case("SHA-1 signed leaf", chain("sha1"), "sha1.example.test", "SHA-1 signed leaf", weak_signatures=(0,)),
    Case("client certificate", chain("client"), "client.example.test",
         "leaf is not for TLS servers (no serverAuth extended key usage)"),
    Case("name mismatch", chain("ok"), "other.example.test", "", path_length=3, hostname_matches=False),
    Case("wildcard does not cover the apex", chain("wildcard"), "wild.example.test", "", path_length=3,
         hostname_matches=False),
    Case("IPv4 SAN", chain("ip"), "127.0.0.1", "", path_length=3),
    Case("IPv6 SAN", chain("ip"), "0:0::1", "", path_length=3),
    Case("IP target vs DNS SANs", chain("ok"), "127.0.0.1", "", path_length=3, hostname_matches=False),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_chain_analysis(case: Case, pki: LabPKI, lab_store: TrustStore) -> None:
    presented = case.presented(pki)
    analysis = analyse_chain(der(presented), case.hostname, [lab_store], NOW, der(case.extras(pki)))

    assert analysis.hostname == case.hostname
    assert analysis.hostname_matches is case.hostname_matches
    assert analysis.leaf_self_signed is case.leaf_self_signed
    assert analysis.in_order is case.in_order
    assert analysis.incomplete is case.incomplete
    assert analysis.contains_root is case.contains_root
    assert analysis.expired_intermediates == case.expired_intermediates
    assert analysis.weak_keys == case.weak_keys
    assert analysis.weak_signatures == case.weak_signatures
    (verdict,) = analysis.verdicts
    assert verdict.store == "lab"
    assert verdict.reason == case.reason
    assert verdict.trusted is (case.reason == "") is analysis.trusted
    assert verdict.completed_via_aia is case.completed_via_aia
    assert len(verdict.path) == case.path_length
    if verdict.trusted:
        assert verdict.path[0] == sha256_fingerprint(presented[0])
        assert verdict.path[-1] == sha256_fingerprint(pki.cas["root"].cert)
        assert verdict.effective_expiry == NOW + 89 * DAY      # the leaf is the first to expire
    else:
        assert verdict.effective_expiry is None


def test_trusted_path_lists_the_validated_chain(pki: LabPKI, lab_store: TrustStore) -> None:
    wrong_order = [pki.chain_for("deep")[i] for i in (0, 2, 1)]
    (verdict,) = analyse_chain(der(wrong_order), "deep.example.test", [lab_store], NOW).verdicts
    expected = [pki.leaves["deep"].cert, pki.cas["sub-intermediate"].cert, pki.cas["intermediate"].cert,
                pki.cas["root"].cert]
    assert verdict.path == tuple(sha256_fingerprint(c) for c in expected)


def test_effective_expiry_is_the_earliest_on_the_path(pki: LabPKI) -> None:
    # A root that expires before the leaf does: validation still passes at NOW, the path ends sooner.
    root = pki.cas["root"]
    short_root = (
        x509.CertificateBuilder()
        .subject_name(root.cert.subject).issuer_name(root.cert.subject).public_key(root.key.public_key())
        .serial_number(7).not_valid_before(NOW - DAY).not_valid_after(NOW + 10 * DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root.key.public_key()), critical=False)
        .sign(root.key, hashes.SHA256())
    )
    store = TrustStore("short", (short_root,))
    (verdict,) = analyse_chain(der(pki.chain_for("ok")), "ok.example.test", [store], NOW).verdicts
    assert verdict.trusted
    assert verdict.effective_expiry == NOW + 10 * DAY
    (later,) = analyse_chain(der(pki.chain_for("ok")), "ok.example.test", [store], NOW + 20 * DAY).verdicts
    assert later.reason == f"expired root {ROOT}"


def test_one_verdict_per_store(pki: LabPKI, lab_store: TrustStore) -> None:
    other = TrustStore("other", (pki.cas["untrusted-root"].cert,))
    ok = analyse_chain(der(pki.chain_for("ok")), "ok.example.test", [lab_store, other], NOW)
    assert [(v.store, v.trusted, v.reason) for v in ok.verdicts] == [
        ("lab", True, ""),
        # The lab root is known from the other store, so it is named as a root, not a missing intermediate.
        ("other", False, f"root {ROOT} is not in this store"),
    ]
    assert ok.trusted
    stranger = analyse_chain(der(pki.chain_for("stranger")), "stranger.example.test", [lab_store, other], NOW)
    assert [v.trusted for v in stranger.verdicts] == [False, True]
    assert not stranger.incomplete


def test_no_stores_still_analyses_the_chain(pki: LabPKI) -> None:
    analysis = analyse_chain(der(leaf_only("ok")(pki)), "ok.example.test", [], NOW)
    assert analysis.verdicts == ()
    assert not analysis.trusted
    assert analysis.incomplete


def test_missing_issuer_known_as_an_intermediate_is_incomplete_even_if_named_root(pki: LabPKI) -> None:
    # A leaf-only chain whose issuer is named "...Root..." but is known (from AIA) to be an intermediate.
    intermediate_key = ec.generate_private_key(ec.SECP256R1())
    root = pki.cas["root"]
    name = x509.Name.from_rfc4514_string("CN=Issuing Root-Signed CA,O=tlsward lab")
    intermediate = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(root.cert.subject).public_key(intermediate_key.public_key())
        .serial_number(8).not_valid_before(NOW - DAY).not_valid_after(NOW + 300 * DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(root.key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name.from_rfc4514_string("CN=named.example.test")).issuer_name(name)
        .public_key(ec.generate_private_key(ec.SECP256R1()).public_key())
        .serial_number(9).not_valid_before(NOW - DAY).not_valid_after(NOW + 30 * DAY)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("named.example.test")]), critical=False)
        .sign(intermediate_key, hashes.SHA256())
    )
    without = analyse_chain(der([leaf]), "named.example.test", [], NOW)
    assert not without.incomplete            # nothing known: the word "Root" in the name decides
    with_aia = analyse_chain(der([leaf]), "named.example.test", [], NOW, der([intermediate]))
    assert with_aia.incomplete


def test_leaf_without_san(pki: LabPKI, lab_store: TrustStore) -> None:
    issuer = pki.cas["intermediate"]
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name.from_rfc4514_string("CN=cn-only.example.test")).issuer_name(issuer.cert.subject)
        .public_key(ec.generate_private_key(ec.SECP256R1()).public_key())
        .serial_number(10).not_valid_before(NOW - DAY).not_valid_after(NOW + 30 * DAY)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False)
        .sign(issuer.key, hashes.SHA256())
    )
    analysis = analyse_chain(der([leaf, issuer.cert]), "cn-only.example.test", [lab_store], NOW)
    assert not analysis.hostname_matches       # no Common Name fallback
    (verdict,) = analysis.verdicts
    assert not verdict.trusted
    assert verdict.reason == "leaf has no subjectAltName (names in the Common Name are ignored)"


def test_issued_by(pki: LabPKI) -> None:
    assert issued_by(pki.leaves["ok"].cert, pki.cas["intermediate"].cert)
    assert issued_by(pki.leaves["sha1"].cert, pki.cas["intermediate"].cert)       # SHA-1 checked by hand
    assert not issued_by(pki.leaves["ok"].cert, pki.cas["intermediate-2"].cert)   # wrong name
    assert not issued_by(pki.cas["intermediate"].cert, pki.cas["untrusted-root"].cert)


def test_no_certificates_is_an_error() -> None:
    with pytest.raises(CertificateError, match="no certificates"):
        analyse_chain([], "example.test", [], NOW)


def test_garbage_certificate_is_a_one_line_error() -> None:
    with pytest.raises(CertificateError) as info:
        analyse_chain([b"\x30\x03\x02\x01\x00"], "example.test", [], NOW)
    assert "\n" not in str(info.value)


def test_now_must_be_aware(pki: LabPKI) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        analyse_chain(der(pki.chain_for("ok")), "ok.example.test", [], dt.datetime(2031, 5, 17))
