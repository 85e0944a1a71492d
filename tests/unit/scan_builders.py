"""Hand-built scan results for table-driven tests of the grade and the policy checks: a healthy endpoint
(ECDSA P-256 leaf, TLS 1.2 + 1.3 with Mozilla-intermediate ECDHE suites, x25519, HSTS two years), and helpers
that change one fact at a time."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from tlsward.model.certificate import CertificateFacts, ChainAnalysis, TrustVerdict
from tlsward.model.deep import AcceptedSuite, DeepScan, Features, GroupSupport, VersionSupport
from tlsward.model.registry import cipher_by_name, group_by_name
from tlsward.model.scan import HttpFacts, ScanResult, Session, Timings
from tlsward.model.target import Target

NOW = dt.datetime(2030, 6, 1, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
LEAF = CertificateFacts(
    subject="CN=a.test", issuer="CN=R11,O=Let's Encrypt,C=US", serial="01", not_before=NOW - 10 * DAY,
    not_after=NOW + 80 * DAY - dt.timedelta(seconds=1), dns_names=("a.test",), ip_addresses=(), key_type="EC",
    key_bits=256, curve="secp256r1", signature_algorithm="ecdsa-with-SHA256", signature_hash="sha256", sha256="aa",
    spki_sha256="bb", is_ca=False, path_length=None, key_usage=("digitalSignature",),
    extended_key_usage=("serverAuth",), ocsp_urls=(), ca_issuers_urls=(), crl_urls=(), sct_count=2,
    must_staple=False, self_issued=False, self_signed=False)
RSA_LEAF = replace(LEAF, key_type="RSA", key_bits=2048, curve=None, signature_algorithm="sha256WithRSAEncryption")
INTERMEDIATE = replace(LEAF, subject="CN=R11,O=Let's Encrypt,C=US", issuer="CN=ISRG Root X1", is_ca=True,
                       not_after=NOW + 900 * DAY)
ANALYSIS = ChainAnalysis(hostname="a.test", hostname_matches=True, leaf_self_signed=False, in_order=True,
                         incomplete=False, contains_root=False, expired_intermediates=(), weak_keys=(),
                         weak_signatures=(), verdicts=(TrustVerdict("mozilla", True, ""),))
UNTRUSTED = replace(ANALYSIS, verdicts=(TrustVerdict("mozilla", False, "unable to get local issuer certificate"),))
SESSION = Session("TLSv1.3", "TLS_AES_128_GCM_SHA256", 0x1301, "x25519", "h2", False, None, ())
HSTS_2Y = HttpFacts(200, "max-age=63072000; includeSubDomains", None)

TLS13 = ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")
TLS12 = ("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
         "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256")


def suite(name: str, *, kx_group: str | None = "x25519", dh_bits: int | None = None) -> AcceptedSuite:
    """An accepted suite as the deep scan reports it, flags from the registry."""
    known = cipher_by_name(name)
    assert known is not None, name
    if known.key_exchange not in ("ECDHE", "any"):
        kx_group = None
    return AcceptedSuite(known.code, known.name, known.key_exchange, known.forward_secrecy or known.tls13,
                         known.aead, known.weak, kx_group, dh_bits)


def version(name: str, *suites: str | AcceptedSuite, accepted: bool | None = True,
            server_order: bool | None = True) -> VersionSupport:
    built = tuple(s if isinstance(s, AcceptedSuite) else suite(s) for s in suites)
    return VersionSupport(name, accepted, built if accepted else (), server_order if accepted else None)


def groups(*names: str) -> tuple[GroupSupport, ...]:
    out = []
    for name in names:
        found = group_by_name(name)
        assert found is not None, name
        out.append(GroupSupport(found.name, found.code, found.post_quantum, True, "key_share"))
    return tuple(out)


HEALTHY_DEEP = DeepScan(
    versions=(version("SSLv3", accepted=False), version("TLSv1.0", accepted=False),
              version("TLSv1.1", accepted=False), version("TLSv1.2", *TLS12), version("TLSv1.3", *TLS13)),
    groups=groups("x25519", "secp256r1"),
    features=Features(fallback_scsv=True, secure_renegotiation=True, compression=False, ocsp_stapling=False),
)


def with_versions(*supports: VersionSupport, deep: DeepScan = HEALTHY_DEEP) -> DeepScan:
    """The healthy deep scan with the given versions replaced (by name) or added."""
    given = {s.version: s for s in supports}
    kept = [given.pop(v.version, v) for v in deep.versions]
    return replace(deep, versions=(*kept, *given.values()))


def result(**changes: object) -> ScanResult:
    """An https:// endpoint, deep-scanned, healthy, with ``changes`` applied."""
    base = ScanResult(Target.parse("https://a.test"), "192.0.2.1", NOW, Timings(), session=SESSION,
                      chain=(LEAF, INTERMEDIATE), analysis=ANALYSIS, http=HSTS_2Y, deep=HEALTHY_DEEP)
    return replace(base, **changes)  # type: ignore[arg-type]
