"""Deep-scan rules: table-driven over hand-built enumerations; inconclusive never becomes a finding."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tlsward.model.deep import AcceptedSuite, DeepScan, Features, VersionSupport
from tlsward.model.target import Target
from tlsward.rules.base import Context
from tlsward.rules.deep import deep_rules

GCM = AcceptedSuite(0xC02F, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE", True, True, False, "x25519")
CBC = AcceptedSuite(0xC013, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE", True, False, False, "x25519")
STATIC = AcceptedSuite(0x002F, "TLS_RSA_WITH_AES_128_CBC_SHA", "RSA", False, False, False)
DES3 = AcceptedSuite(0x000A, "TLS_RSA_WITH_3DES_EDE_CBC_SHA", "RSA", False, False, True)
DHE1024 = AcceptedSuite(0x009E, "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", "DHE", True, True, False, None, 1024)
T13 = AcceptedSuite(0x1301, "TLS_AES_128_GCM_SHA256", "any", True, True, False, "x25519")
SAFE = Features(fallback_scsv=True, secure_renegotiation=True, compression=False)


def deep(v10: bool | None = False, v11: bool | None = False, v12: tuple[AcceptedSuite, ...] | None = (GCM,),
         v13: bool | None = True, features: Features = SAFE) -> DeepScan:
    return DeepScan(versions=(
        VersionSupport("SSLv3", False),
        VersionSupport("TLSv1.0", v10, (CBC,) if v10 else ()),
        VersionSupport("TLSv1.1", v11, (CBC,) if v11 else ()),
        VersionSupport("TLSv1.2", v12 is not None and bool(v12), v12 or ()),
        VersionSupport("TLSv1.3", v13, (T13,) if v13 else ()),
    ), features=features)


CTX = Context(Target.parse("a.test"), "192.0.2.1")


@pytest.mark.parametrize(("scan", "expected"), [
    (deep(), []),
    (deep(v10=True), ["protocol.tls10"]),
    (deep(v10=True, v11=True), ["protocol.tls10", "protocol.tls11"]),
    (deep(v13=False), ["protocol.no_tls13"]),
    (deep(v13=None), []),                                   # inconclusive is not "no"
    (deep(v12=(GCM, STATIC)), ["cipher.no_forward_secrecy"]),
    (deep(v12=(CBC,), v13=False), ["cipher.cbc_only", "protocol.no_tls13"]),
    (deep(v12=(GCM, DES3)), ["cipher.no_forward_secrecy", "cipher.weak"]),
    (deep(v12=(GCM, DHE1024)), ["group.weak_dh"]),
    (deep(features=replace(SAFE, secure_renegotiation=False)), ["reneg.insecure"]),
    (deep(features=replace(SAFE, fallback_scsv=False)), ["fallback_scsv.missing"]),
    (deep(features=replace(SAFE, compression=True)), ["compression.enabled"]),
    (deep(features=Features()), []),                        # nothing determined: nothing claimed
])
def test_deep_rules(scan: DeepScan, expected: list[str]) -> None:
    assert sorted(f.id for f in deep_rules(scan, CTX)) == expected


def test_evidence_names_the_suites() -> None:
    (weak,) = [f for f in deep_rules(deep(v12=(GCM, DES3)), CTX) if f.id == "cipher.weak"]
    assert "TLS_RSA_WITH_3DES_EDE_CBC_SHA" in weak.evidence
    (dh,) = deep_rules(deep(v12=(GCM, DHE1024)), CTX)
    assert "1024-bit" in dh.evidence
