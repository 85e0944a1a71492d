"""Rules are pure: table-driven over hand-built facts. One root cause, one finding."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from tlsward.model.certificate import CertificateFacts, ChainAnalysis, TrustVerdict
from tlsward.model.policy import hsts_max_age
from tlsward.model.scan import ClientAuth, Failure, FailureKind, HttpFacts, ScanResult, Session, Timings
from tlsward.model.target import Target
from tlsward.rules.evaluate import evaluate

NOW = dt.datetime(2030, 6, 1, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
LEAF = CertificateFacts(
    subject="CN=a.test", issuer="CN=Int", serial="01", not_before=NOW - 10 * DAY, not_after=NOW + 80 * DAY,
    dns_names=("a.test",), ip_addresses=(), key_type="EC", key_bits=256, curve="secp256r1",
    signature_algorithm="ecdsa-with-SHA256", signature_hash="sha256", sha256="aa", spki_sha256="bb", is_ca=False,
    path_length=None, key_usage=("digitalSignature",), extended_key_usage=("serverAuth",), ocsp_urls=(),
    ca_issuers_urls=(), crl_urls=(), sct_count=0, must_staple=False, self_issued=False, self_signed=False)
INTERMEDIATE = replace(LEAF, subject="CN=Int", issuer="CN=Root", is_ca=True, not_after=NOW + 900 * DAY)
TRUSTED = TrustVerdict("ca-file x", True, "")
ANALYSIS = ChainAnalysis(hostname="a.test", hostname_matches=True, leaf_self_signed=False, in_order=True,
                         incomplete=False, contains_root=False, expired_intermediates=(), weak_keys=(),
                         weak_signatures=(), verdicts=(TRUSTED,))
SESSION = Session("TLSv1.3", "TLS_AES_128_GCM_SHA256", 0x1301, "x25519", "h2", False, None, ())


def ids(**changes: object) -> list[str]:
    base = ScanResult(Target.parse("a.test"), "192.0.2.1", NOW, Timings(), session=SESSION,
                      chain=(LEAF, INTERMEDIATE), analysis=ANALYSIS)
    return sorted(f.id for f in evaluate(replace(base, **changes), NOW))  # type: ignore[arg-type]


UNTRUSTED = replace(ANALYSIS, verdicts=(TrustVerdict("ca-file x", False, "root CN=Root is not in this store"),))


@pytest.mark.parametrize(("changes", "expected"), [
    ({}, []),
    ({"chain": (replace(LEAF, not_after=NOW - DAY), INTERMEDIATE),
      "analysis": replace(UNTRUSTED, verdicts=(TrustVerdict("x", False, "expired leaf"),))}, ["cert.expired"]),
    ({"chain": (replace(LEAF, not_before=NOW + DAY), INTERMEDIATE), "analysis": UNTRUSTED}, ["cert.not_yet_valid"]),
    ({"analysis": UNTRUSTED}, ["chain.untrusted"]),
    ({"analysis": replace(UNTRUSTED, incomplete=True)}, ["chain.incomplete"]),
    ({"analysis": replace(ANALYSIS, in_order=False)}, ["chain.order"]),
    ({"analysis": replace(ANALYSIS, hostname_matches=False)}, ["name.mismatch"]),
    ({"analysis": replace(UNTRUSTED, expired_intermediates=(1,))}, ["chain.expired_intermediate"]),
    ({"chain": (replace(LEAF, self_signed=True, self_issued=True),), "analysis": UNTRUSTED}, ["cert.self_signed"]),
    ({"chain": (replace(LEAF, key_type="RSA", key_bits=1024), INTERMEDIATE)}, ["cert.weak_key"]),
    ({"chain": (replace(LEAF, signature_hash="sha1", signature_algorithm="sha1WithRSAEncryption"), INTERMEDIATE),
      "analysis": replace(UNTRUSTED, weak_signatures=(0,))}, ["cert.weak_signature"]),
    ({"session": replace(SESSION, version="TLSv1.2", cipher_code=0xC02F)}, ["protocol.no_tls13"]),
    ({"session": replace(SESSION, version="TLSv1.0", cipher_code=0xC013)},
     ["protocol.no_tls12", "protocol.no_tls13", "protocol.tls10"]),
    ({"session": replace(SESSION, version="TLSv1.2", cipher_code=0x009C)},
     ["cipher.no_forward_secrecy", "protocol.no_tls13"]),
    ({"session": replace(SESSION, version="TLSv1.2", cipher_code=0xC027)}, ["cipher.cbc_only", "protocol.no_tls13"]),
    ({"session": replace(SESSION, version="TLSv1.2", cipher_code=0x000A, completed=False)},
     ["cipher.cbc_only", "cipher.no_forward_secrecy", "cipher.weak"]),
    ({"session": replace(SESSION, client_auth=ClientAuth(True, True, ("CN=CA",)))}, ["mtls.required"]),
    ({"session": replace(SESSION, client_auth=ClientAuth(True, False))}, ["mtls.optional"]),
    ({"target": Target.parse("https://a.test"), "http": HttpFacts(200, None, None)}, ["http.no_hsts"]),
    ({"target": Target.parse("https://a.test"), "http": HttpFacts(200, "max-age=63072000", None)}, []),
    ({"target": Target.parse("http://a.test"), "session": None, "chain": (), "analysis": None,
      "http": HttpFacts(301, None, "https://a.test/")}, []),
    ({"target": Target.parse("http://a.test"), "session": None, "chain": (), "analysis": None,
      "http": HttpFacts(301, None, "http://elsewhere.test/")}, ["http.no_https_redirect"]),
])
def test_rules(changes: dict[str, object], expected: list[str]) -> None:
    assert ids(**changes) == expected


@pytest.mark.parametrize(("kind", "finding"), [
    (FailureKind.DNS, "conn.dns"), (FailureKind.REFUSED, "conn.refused"), (FailureKind.RESET, "conn.reset"),
    (FailureKind.CONNECT_TIMEOUT, "conn.timeout"), (FailureKind.HANDSHAKE_TIMEOUT, "conn.timeout"),
    (FailureKind.PLAINTEXT_HTTP, "conn.plaintext_http"), (FailureKind.STARTTLS_NOT_OFFERED, "starttls.not_offered"),
    (FailureKind.NO_SHARED_CIPHER, "conn.no_shared_cipher"), (FailureKind.TLS_ALERT, "conn.tls_alert"),
    (FailureKind.CLOSED, "conn.protocol_error"), (FailureKind.NOT_TLS, "conn.protocol_error"),
])
def test_each_failure_is_one_finding(kind: FailureKind, finding: str) -> None:
    result = ScanResult(Target.parse("a.test"), None, NOW, Timings(), failure=Failure(kind, "why"))
    (only,) = evaluate(result, NOW)
    assert only.id == finding and only.evidence == "why" and only.remediation.fix


def test_findings_come_most_severe_first() -> None:
    result = ScanResult(Target.parse("a.test"), None, NOW, Timings(),
                        session=replace(SESSION, version="TLSv1.1", cipher_code=0xC013),
                        chain=(replace(LEAF, not_after=NOW - DAY), INTERMEDIATE), analysis=UNTRUSTED)
    severities = [f.severity for f in evaluate(result, NOW)]
    assert severities == sorted(severities, reverse=True)


@pytest.mark.parametrize(("value", "age"), [
    ("max-age=31536000; includeSubDomains", 31536000),
    ("max-age=\"63072000\"; includeSubDomains; preload", 63072000),
    ("  MAX-AGE = 600 ", 600),
    ("includeSubDomains", None),
    ("max-age=abc", None),
    ("max-age=1; max-age=2", None),
    ("max-age=1;; includeSubDomains; includesubdomains", None),
    ("", None),
])
def test_hsts_max_age(value: str, age: int | None) -> None:
    assert hsts_max_age(value) == age


@pytest.mark.parametrize(("header", "expected"), [
    ("max-age=31536000", []),
    ("max-age=86400", ["http.hsts_short"]),
    ("max-age=oops", ["http.no_hsts"]),
])
def test_hsts_findings(header: str, expected: list[str]) -> None:
    assert ids(target=Target.parse("https://a.test"), http=HttpFacts(200, header, None)) == expected


def test_redirect_to_another_host_is_info() -> None:
    plain = {"target": Target.parse("http://a.test"), "session": None, "chain": (), "analysis": None}
    assert ids(**plain, http=HttpFacts(301, None, "https://www.a.test/")) == ["http.redirect_other_host"]
    assert ids(**plain, http=HttpFacts(308, None, "https://A.test/x")) == []


def test_rate_limiting_is_its_own_verdict() -> None:
    result = ScanResult(Target.parse("smtp://mx.test"), None, NOW, Timings(),
                        failure=Failure(FailureKind.RATE_LIMITED, "421 4.7.0 too many connections"))
    (only,) = evaluate(result, NOW)
    assert only.id == "conn.rate_limited" and "421" in only.evidence
