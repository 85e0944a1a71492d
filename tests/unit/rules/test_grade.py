"""The SSL Labs-style grade (Server Rating Guide 2009r), table-driven over hand-built deep scans."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.unit.scan_builders import (
    ANALYSIS,
    DAY,
    HEALTHY_DEEP,
    INTERMEDIATE,
    LEAF,
    NOW,
    RSA_LEAF,
    TLS12,
    TLS13,
    UNTRUSTED,
    groups,
    result,
    suite,
    version,
    with_versions,
)
from tlsward.model.certificate import RevocationStatus
from tlsward.model.deep import Features
from tlsward.model.findings import Finding, Severity
from tlsward.model.scan import HttpFacts
from tlsward.model.target import Target
from tlsward.rules.grade import (
    cipher_score,
    ec_rsa_equivalent,
    grade,
    group_rsa_equivalent,
    key_exchange_score,
    letter_for,
    protocol_score,
)

NO_TLS13 = version("TLSv1.3", accepted=False)
NO_TLS12 = version("TLSv1.2", accepted=False)
TLS10 = version("TLSv1.0", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA")
TLS11 = version("TLSv1.1", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA")
RSA_CHAIN = (RSA_LEAF, INTERMEDIATE)


@pytest.mark.parametrize(("changes", "letter", "reasons"), [
    pytest.param({}, "A+", [], id="healthy with HSTS"),
    pytest.param({"deep": with_versions(NO_TLS13)}, "A-", ["warning: TLS 1.3 is not supported"], id="no TLS 1.3"),
    pytest.param({"http": HttpFacts(200, None, None)}, "A-", ["warning: no Strict-Transport-Security"],
                 id="no HSTS"),
    pytest.param({"http": HttpFacts(200, "max-age=86400", None)}, "A-",
                 ["warning: HSTS max-age is 86400 seconds (less than 180 days)"], id="short HSTS"),
    pytest.param({"http": HttpFacts(200, "max-age=8640000", None)}, "A-",
                 ["warning: HSTS max-age is 100 days (less than 180 days)"], id="HSTS 100 days"),
    pytest.param({"http": HttpFacts(200, "max-age=1; max-age=2", None)}, "A-", ["warning: the Strict-Transport-"
                 "Security header is malformed"], id="malformed HSTS"),
    pytest.param({"http": None}, "A-", ["warning: HSTS could not be checked"], id="https without an HTTP answer"),
    pytest.param({"target": Target.parse("a.test"), "http": None}, "A+", [], id="tls target needs no HSTS"),
    pytest.param({"target": Target.parse("smtp://a.test"), "http": None, "deep": with_versions(NO_TLS13)}, "A-",
                 ["warning: TLS 1.3 is not supported"], id="smtp without TLS 1.3"),
    pytest.param({"deep": with_versions(TLS10)}, "B", ["capped at B: TLS 1.0 is supported"], id="TLS 1.0"),
    pytest.param({"deep": with_versions(TLS11)}, "B", ["capped at B: TLS 1.1 is supported"], id="TLS 1.1"),
    pytest.param({"deep": with_versions(version("SSLv3", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"))}, "B",
                 ["capped at B: SSL 3.0 is supported"], id="SSL 3.0"),
    pytest.param({"deep": with_versions(TLS10, TLS11, NO_TLS12, NO_TLS13)}, "C",
                 ["capped at C: neither TLS 1.2 nor TLS 1.3", "capped at B: TLS 1.0", "capped at B: TLS 1.1",
                  "warning: TLS 1.3 is not supported"], id="no TLS 1.2"),
    pytest.param({"deep": with_versions(version("TLSv1.2", *TLS12, "TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA"))}, "C",
                 ["capped at C: 3DES or RC4 is accepted with TLS 1.1 or newer: TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA "
                  "(TLSv1.2)"], id="3DES with TLS 1.2"),
    pytest.param({"deep": with_versions(TLS10, version("TLSv1.0", "TLS_RSA_EXPORT_WITH_RC4_40_MD5")),
                  "chain": RSA_CHAIN}, "F",
                 ["capped at F: export cipher suites are accepted: TLS_RSA_EXPORT_WITH_RC4_40_MD5"], id="export"),
    pytest.param({"deep": with_versions(version("TLSv1.2", "TLS_RSA_WITH_RC4_128_SHA"), NO_TLS13),
                  "chain": RSA_CHAIN}, "F",
                 ["capped at F: RC4 is the only cipher", "capped at C: 3DES or RC4",
                  "capped at B: no cipher suite with forward secrecy", "capped at B: no AEAD"], id="RC4 only"),
    pytest.param({"deep": replace(HEALTHY_DEEP, features=Features(secure_renegotiation=False))}, "F",
                 ["capped at F: insecure renegotiation"], id="insecure renegotiation"),
    pytest.param({"deep": replace(with_versions(NO_TLS12), features=Features(secure_renegotiation=False))}, "A+",
                 [], id="no renegotiation in a TLS 1.3-only server"),
    pytest.param({"deep": replace(HEALTHY_DEEP, features=Features(secure_renegotiation=None))}, "A+", [],
                 id="inconclusive renegotiation is no cap"),
    pytest.param({"deep": with_versions(version("SSLv2", "TLS_RSA_WITH_RC4_128_MD5")), "chain": RSA_CHAIN}, "F",
                 ["capped at F: SSL 2.0 is supported"], id="SSL 2.0"),
    pytest.param({"deep": with_versions(version("TLSv1.2", *TLS12, suite("TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
                                                                         dh_bits=1024)))},
                 "B", ["capped at B: a key or DH parameters below 2048 bits: 1024-bit DH parameters "
                       "(TLS_DHE_RSA_WITH_AES_128_GCM_SHA256)"], id="DH 1024 caps B"),
    pytest.param({"deep": with_versions(version("TLSv1.2", *TLS12, suite("TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
                                                                         dh_bits=512)))},
                 "F", ["capped at F: the weakest key exchange is below 1024 bits: 512-bit DH"], id="DH 512 is F"),
    pytest.param({"deep": replace(HEALTHY_DEEP, groups=groups("x25519", "secp160r1"))}, "B",
                 ["capped at B: a key or DH parameters below 2048 bits: the secp160r1 group"], id="weak curve"),
    pytest.param({"chain": (replace(RSA_LEAF, key_bits=1024), INTERMEDIATE)}, "B",
                 ["capped at B: a key or DH parameters below 2048 bits: RSA 1024-bit certificate key"], id="RSA 1024"),
    pytest.param({"chain": (replace(RSA_LEAF, key_bits=512), INTERMEDIATE)}, "F",
                 ["capped at F: the weakest key exchange is below 1024 bits: RSA 512-bit certificate key"],
                 id="RSA 512"),
    pytest.param({"deep": with_versions(version("TLSv1.2", "TLS_RSA_WITH_AES_128_GCM_SHA256"), NO_TLS13),
                  "chain": RSA_CHAIN}, "B",
                 ["capped at B: no cipher suite with forward secrecy", "warning: TLS 1.3"], id="no forward secrecy"),
    pytest.param({"deep": with_versions(version("TLSv1.2", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256"), NO_TLS13)},
                 "B", ["capped at B: no AEAD"], id="no AEAD"),
    pytest.param({"analysis": replace(ANALYSIS, incomplete=True)}, "B", ["capped at B: the chain is incomplete"],
                 id="incomplete chain"),
])
def test_grade(changes: dict[str, object], letter: str, reasons: list[str]) -> None:
    got = grade(result(**changes))
    assert got is not None
    said = [*got.caps, *(f"warning: {w}" for w in got.warnings)]
    assert got.letter == letter, said
    for reason in reasons:
        assert any(line.startswith(reason) for line in said), f"{reason!r} not in {said}"
    if not reasons:
        assert said == []
    assert got.letter_without_trust == ""


@pytest.mark.parametrize(("changes", "letter", "without", "reason"), [
    pytest.param({"analysis": UNTRUSTED}, "T", "A+", "T (not trusted): the chain does not lead to a trusted root "
                 "(mozilla: unable to get local issuer certificate)", id="untrusted"),
    pytest.param({"chain": (replace(LEAF, not_after=NOW - DAY), INTERMEDIATE), "analysis": UNTRUSTED}, "T", "A+",
                 "T (not trusted): the certificate expired on 2030-05-31", id="expired"),
    pytest.param({"chain": (replace(LEAF, self_signed=True, self_issued=True),), "analysis": UNTRUSTED}, "T", "A+",
                 "T (not trusted): the certificate is self-signed", id="self-signed"),
    pytest.param({"revocation": RevocationStatus("revoked", "crl")}, "T", "A+",
                 "T (not trusted): the certificate has been revoked", id="revoked"),
    pytest.param({"findings": (Finding("chain.untrusted", Severity.CRITICAL, "t", "e"),)}, "T", "A+",
                 "T (not trusted): the chain does not lead to a trusted root", id="from the findings"),
    pytest.param({"analysis": replace(ANALYSIS, hostname_matches=False)}, "M", "A+",
                 "M (name mismatch): the certificate does not cover a.test", id="mismatch"),
    pytest.param({"analysis": replace(UNTRUSTED, hostname_matches=False), "deep": with_versions(TLS10)}, "T", "B",
                 "M (name mismatch)", id="untrusted and mismatched"),
])
def test_trust_and_name_replace_the_letter(changes: dict[str, object], letter: str, without: str,
                                           reason: str) -> None:
    got = grade(result(**changes))
    assert got is not None
    assert (got.letter, got.letter_without_trust) == (letter, without)
    assert any(line.startswith(reason) for line in got.caps), got.caps


def test_healthy_scores() -> None:
    got = grade(result())
    assert got is not None
    # protocol (100 + 100) / 2; key exchange: P-256 ≈ RSA 3072 → 90; cipher (AES-256 100 + AES-128 80) / 2
    assert (got.protocol_score, got.key_exchange_score, got.cipher_score, got.score) == (100, 90, 90, 93)


def test_scores_with_old_protocols_and_3des() -> None:
    deep = with_versions(version("TLSv1.0", "TLS_RSA_WITH_3DES_EDE_CBC_SHA"), NO_TLS13,
                         version("TLSv1.2", "TLS_RSA_WITH_AES_256_CBC_SHA", "TLS_RSA_WITH_3DES_EDE_CBC_SHA"))
    got = grade(result(deep=deep, chain=RSA_CHAIN))
    assert got is not None
    assert (got.protocol_score, got.key_exchange_score, got.cipher_score) == (95, 90, 60)
    assert got.score == 80          # 28.5 + 27 + 24 = 79.5, rounded half up
    assert got.letter == "C"        # the score says A; 3DES with TLS 1.2 caps it at C


def test_no_grade_without_a_deep_scan_or_an_accepted_version() -> None:
    assert grade(result(deep=None)) is None
    nothing = with_versions(NO_TLS12, NO_TLS13)
    assert grade(result(deep=nothing)) is None


@pytest.mark.parametrize(("versions", "score"), [
    (["TLSv1.3"], 100), (["TLSv1.2", "TLSv1.3"], 100), (["TLSv1.0", "TLSv1.3"], 95), (["SSLv3", "TLSv1.2"], 90),
    (["SSLv2", "TLSv1.2"], 50), ([], 0),
])
def test_protocol_score(versions: list[str], score: int) -> None:
    assert protocol_score(versions) == score


@pytest.mark.parametrize(("bits", "score"), [(384, 20), (512, 40), (1023, 40), (1024, 80), (2048, 90),
                                             (3072, 90), (4096, 100), (15360, 100)])
def test_key_exchange_score(bits: int, score: int) -> None:
    assert key_exchange_score(bits) == score


@pytest.mark.parametrize(("strengths", "score"), [([0], 0), ([40], 20), ([112, 256], 60), ([128], 80),
                                                  ([128, 256], 90), ([256], 100)])
def test_cipher_score(strengths: list[int], score: int) -> None:
    assert cipher_score(strengths) == score


@pytest.mark.parametrize(("score", "letter"), [(100, "A"), (80, "A"), (79, "B"), (65, "B"), (64, "C"), (50, "C"),
                                               (49, "D"), (35, "D"), (34, "E"), (20, "E"), (19, "F"), (0, "F")])
def test_letter_thresholds(score: int, letter: str) -> None:
    assert letter_for(score) == letter


@pytest.mark.parametrize(("group", "bits"), [("x25519", 3072), ("secp256r1", 3072), ("prime256v1", 3072),
                                             ("secp384r1", 7680), ("secp521r1", 15360), ("x448", 7680),
                                             ("secp224r1", 2048), ("sect163k1", 1024), ("ffdhe2048", 2048),
                                             ("ffdhe4096", 4096), ("X25519MLKEM768", 7680), ("MLKEM512", 3072),
                                             ("SecP384r1MLKEM1024", 15360), ("brainpoolP256r1", 3072),
                                             ("nonsense", None)])
def test_group_strength(group: str, bits: int | None) -> None:
    assert group_rsa_equivalent(group) == bits


def test_ec_equivalents_follow_sp800_57() -> None:
    assert [ec_rsa_equivalent(b) for b in (160, 224, 256, 384, 521)] == [1024, 2048, 3072, 7680, 15360]


def test_tls13_only_server_is_not_capped_for_tls12() -> None:
    got = grade(result(deep=with_versions(NO_TLS12)))
    assert got is not None and got.letter == "A+" and not got.caps
    assert all(s in TLS13 or s in TLS12 for s in (x.name for x in HEALTHY_DEEP.all_suites))
