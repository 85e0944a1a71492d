"""check_policy: one policy.violation per broken rule, its evidence citing the rule and what the server does."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from tests.unit.scan_builders import (
    DAY,
    HEALTHY_DEEP,
    INTERMEDIATE,
    LEAF,
    NOW,
    RSA_LEAF,
    SESSION,
    TLS12,
    groups,
    result,
    suite,
    version,
    with_versions,
)
from tlsward.model.deep import Features
from tlsward.model.findings import Severity
from tlsward.model.policy import PolicyProfile
from tlsward.model.scan import HttpFacts
from tlsward.model.target import Target
from tlsward.policy import check_policy, load_policy

TLS10 = version("TLSv1.0", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA")
OCSP_LEAF = replace(LEAF, ocsp_urls=("http://ocsp.example.test",))


def rules(profile: PolicyProfile, **changes: object) -> list[str]:
    """The rule each violation cites, in order."""
    found = check_policy(result(**changes), profile, NOW)
    prefix = f"policy {profile.name}: "
    assert all(f.evidence.startswith(prefix) for f in found), [f.evidence for f in found]
    return [f.evidence[len(prefix):].split(" ", 1)[0] for f in found]


def evidence(profile: PolicyProfile, **changes: object) -> str:
    (only,) = check_policy(result(**changes), profile, NOW)
    return only.evidence


@pytest.mark.parametrize("name", ["mozilla-intermediate", "mozilla-old"])
def test_healthy_endpoint_passes(name: str) -> None:
    profile = load_policy(name)
    if name == "mozilla-old":   # old wants RSA certificates and the server's own suite order
        assert rules(profile) == ["key_types", "signature_algorithms"]
        assert rules(profile, chain=(RSA_LEAF, INTERMEDIATE)) == []
    else:
        assert check_policy(result(), profile, NOW) == ()


def test_intermediate_with_tls10_cites_the_rule() -> None:
    found = check_policy(result(deep=with_versions(TLS10)), load_policy("mozilla-intermediate"), NOW)
    assert [f.evidence for f in found] == [
        "policy mozilla-intermediate: versions allows TLSv1.2, TLSv1.3; the server accepts TLSv1.0",
        "policy mozilla-intermediate: suites allows 12 suites (`tlsward policy show mozilla-intermediate`); the "
        "server accepts TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, not among them",
    ]
    for f in found:
        assert (f.id, f.severity, f.title) == ("policy.violation", Severity.MEDIUM,
                                               "Configuration violates the policy profile")
        assert f.remediation.fix and f.remediation.confirm.startswith("nmap --script ssl-enum-ciphers -p 443 ")
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in found[0].remediation.fix
    assert "ECDHE-ECDSA-AES128-GCM-SHA256" in found[1].remediation.fix


def test_modern_refuses_tls12() -> None:
    assert rules(load_policy("mozilla-modern")) == ["versions", "suites"]
    suites = check_policy(result(), load_policy("mozilla-modern"), NOW)[1]
    assert suites.remediation.fix == "disable TLS 1.2 and older (this profile allows TLS 1.3 suites only)"


def test_a_tls13_suite_outside_the_list_gets_the_ciphersuites_fix() -> None:
    profile = P("p", suites=("TLS_AES_256_GCM_SHA384", *TLS12))
    (found,) = check_policy(result(), profile, NOW)
    assert found.remediation.fix == "nginx: `ssl_conf_command Ciphersuites TLS_AES_256_GCM_SHA384;`"


def test_without_deep_scan_the_negotiated_session_is_judged() -> None:
    session = replace(SESSION, version="TLSv1.0", cipher="TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", cipher_code=0xC009)
    found = check_policy(result(deep=None, session=session), load_policy("mozilla-intermediate"), NOW)
    assert found[0].evidence == ("policy mozilla-intermediate: versions allows TLSv1.2, TLSv1.3; the server "
                                 "negotiated TLSv1.0 (quick scan: --deep lists everything the server accepts)")
    assert check_policy(result(deep=None), load_policy("mozilla-intermediate"), NOW) == ()


def test_nothing_to_judge_without_a_session() -> None:
    bare = result(deep=None, session=None, chain=(), analysis=None, http=None)
    assert check_policy(bare, load_policy("mozilla-modern"), NOW) == ()


P = PolicyProfile


@pytest.mark.parametrize(("profile", "changes", "expected"), [
    # protocol rules
    (P("p", versions=("TLSv1.3",)), {}, "versions allows TLSv1.3; the server accepts TLSv1.2"),
    (P("p", suites=TLS12), {}, "suites allows 3 suites (`tlsward policy show p`); the server accepts "
                                "TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256, "
                                "not among them"),
    (P("p", forbidden_suites=("TLS_CHACHA20_POLY1305_SHA256", "TLS_RSA_WITH_RC4_128_SHA")), {},
     "forbidden_suites forbids TLS_CHACHA20_POLY1305_SHA256, TLS_RSA_WITH_RC4_128_SHA; the server accepts "
     "TLS_CHACHA20_POLY1305_SHA256"),
    (P("p", forward_secrecy_required=True), {"deep": with_versions(version("TLSv1.2", *TLS12,
                                                                           "TLS_RSA_WITH_AES_128_GCM_SHA256"))},
     "forward_secrecy_required is true; the server accepts TLS_RSA_WITH_AES_128_GCM_SHA256 (no forward secrecy)"),
    (P("p", aead_required=True), {"deep": with_versions(TLS10)},
     "aead_required is true; the server accepts TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA (not AEAD)"),
    (P("p", groups=("x25519", "secp256r1")), {"deep": replace(HEALTHY_DEEP, groups=groups("x25519", "x448"))},
     "groups allows x25519, secp256r1; the server accepts x448"),
    (P("p", min_dh_bits=2048), {"deep": with_versions(version("TLSv1.2", *TLS12, suite(
        "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", dh_bits=1024)))},
     "min_dh_bits is 2048; the server uses 1024-bit DH (TLS_DHE_RSA_WITH_AES_128_GCM_SHA256)"),
    (P("p", min_dh_bits=3072), {"deep": replace(HEALTHY_DEEP, groups=groups("x25519", "ffdhe2048"))},
     "min_dh_bits is 3072; the server uses 2048-bit DH (ffdhe2048)"),
    (P("p", server_preference_required=True), {"deep": with_versions(version("TLSv1.2", *TLS12,
                                                                             server_order=False))},
     "server_preference_required is true; with TLSv1.2 the server follows the client's suite order"),
    (P("p", ocsp_stapling_required=True), {"chain": (OCSP_LEAF, INTERMEDIATE)},
     "ocsp_stapling_required is true; the server staples no OCSP response although the leaf names the responder "
     "http://ocsp.example.test"),
    # certificate rules
    (P("p", key_types=("EC",)), {"chain": (RSA_LEAF, INTERMEDIATE)},
     "key_types allows EC; the leaf key is RSA 2048 bits"),
    (P("p", curves=("secp384r1",)), {}, "curves allows secp384r1; the leaf key is on secp256r1"),
    (P("p", min_rsa_bits=3072), {"chain": (RSA_LEAF, INTERMEDIATE)},
     "min_rsa_bits is 3072; the leaf key is RSA 2048 bits"),
    (P("p", min_ec_bits=384), {}, "min_ec_bits is 384; the leaf key is EC 256 bits on secp256r1"),
    (P("p", signature_algorithms=("sha256WithRSAEncryption", "rsa_pss_rsae_sha256")), {},
     "signature_algorithms allows sha256WithRSAEncryption, rsa_pss_rsae_sha256; the leaf is signed with "
     "ecdsa-with-SHA256"),
    (P("p", max_cert_lifetime_days=47), {},
     "max_cert_lifetime_days is 47; the leaf is valid for 90 days (2030-05-22 to 2030-08-19)"),
    (P("p", allowed_issuers=("O=DigiCert Inc", "Sectigo")), {},
     "allowed_issuers allows 'O=DigiCert Inc', 'Sectigo'; the leaf is issued by CN=R11,O=Let's Encrypt,C=US"),
    # HTTP rules
    (P("p", hsts_required=True), {"http": HttpFacts(200, None, None)},
     "hsts_required is true; GET / answered 200 without Strict-Transport-Security"),
    (P("p", hsts_required=True), {"http": HttpFacts(200, "max-age=soon", None)},
     "hsts_required is true; GET / answered 200 with a Strict-Transport-Security header that has no valid max-age "
     "('max-age=soon')"),
    (P("p", hsts_required=True, hsts_min_max_age=63072000), {"http": HttpFacts(200, "max-age=31536000", None)},
     "hsts_min_max_age is 63072000 s (730 days); the header says max-age=31536000 (365 days)"),
])
def test_each_rule(profile: PolicyProfile, changes: dict[str, object], expected: str) -> None:
    assert evidence(profile, **changes) == f"policy p: {expected}"


@pytest.mark.parametrize(("profile", "changes"), [
    (P("p", versions=("TLSv1.2", "TLSv1.3")), {"deep": with_versions(version("TLSv1.0", accepted=None))}),
    (P("p", server_preference_required=True), {"deep": None}),
    (P("p", server_preference_required=True), {"deep": with_versions(version("TLSv1.2", TLS12[0],
                                                                             server_order=False))}),
    (P("p", ocsp_stapling_required=True), {}),   # the leaf names no OCSP responder: nothing to staple
    (P("p", ocsp_stapling_required=True), {"chain": (OCSP_LEAF, INTERMEDIATE),
                                           "deep": replace(HEALTHY_DEEP, features=Features(ocsp_stapling=True))}),
    (P("p", ocsp_stapling_required=True), {"chain": (OCSP_LEAF, INTERMEDIATE), "deep": None,
                                           "session": replace(SESSION, ocsp_stapled=True)}),
    (P("p", hsts_required=True), {"target": Target.parse("a.test"), "http": None}),
    (P("p", hsts_required=True), {"http": HttpFacts(404, None, None)}),
    (P("p", allowed_issuers=("O=Let's Encrypt",)), {}),
    (P("p", allowed_issuers=("organizationName=let's encrypt, c=US",)), {}),
    (P("p", allowed_issuers=("R11",)), {}),
    (P("p", signature_algorithms=("ecdsa_secp256r1_sha256",)), {}),
    (P("p", signature_algorithms=("rsa_pss_rsae_sha256",)),
     {"chain": (replace(RSA_LEAF, signature_algorithm="rsassaPss"), INTERMEDIATE)}),
    (P("p", max_cert_lifetime_days=90), {}),   # notBefore .. notBefore + 90 days - 1 s is 90 days (inclusive)
    (P("p", curves=("prime256v1",)), {}),
    (P("p", min_rsa_bits=4096), {}),             # an EC leaf is judged by min_ec_bits
])
def test_no_violation(profile: PolicyProfile, changes: dict[str, object]) -> None:
    assert check_policy(result(**changes), profile, NOW) == ()


def test_pss_signature_hash_must_match() -> None:
    leaf = replace(RSA_LEAF, signature_algorithm="rsassaPss", signature_hash="sha384")
    assert rules(P("p", signature_algorithms=("rsa_pss_rsae_sha256",)), chain=(leaf, INTERMEDIATE)) == \
        ["signature_algorithms"]


def test_lifetime_one_second_over_is_a_violation() -> None:
    leaf = replace(LEAF, not_after=LEAF.not_before + 90 * DAY + dt.timedelta(seconds=2))
    assert rules(P("p", max_cert_lifetime_days=90), chain=(leaf, INTERMEDIATE)) == ["max_cert_lifetime_days"]


def test_every_rule_in_one_profile_in_rule_order() -> None:
    strict = P("strict", versions=("TLSv1.3",), min_ec_bits=384, hsts_required=True)
    assert rules(strict, http=HttpFacts(200, None, None)) == ["versions", "min_ec_bits", "hsts_required"]
