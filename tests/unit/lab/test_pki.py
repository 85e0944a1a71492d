"""The lab PKI builder: every certificate has the property its case relies on, relative to ``now``."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import DNSName, ExtensionOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from tlsward.lab.pki import DAY, LabPKI, LeafSpec, build_pki, resign_sha1

NOW = dt.datetime(2031, 5, 17, 12, 0, tzinfo=dt.UTC)
URL = "http://127.0.0.1:9"
LEAVES = {
    "ok": LeafSpec(names=("ok.example.test",)),
    "rsa": LeafSpec(names=("rsa.example.test",), key="rsa2048"),
    "weak": LeafSpec(names=("weak.example.test",), key="rsa1024"),
    "sha1": LeafSpec(names=("sha1.example.test",), key="rsa2048", signature_hash="sha1"),
    "expired": LeafSpec(names=("expired.example.test",), not_before=-92 * DAY, not_after=-2 * DAY),
    "future": LeafSpec(names=("future.example.test",), not_before=2 * DAY, not_after=92 * DAY),
    "self": LeafSpec(names=("self.example.test",), self_signed=True),
    "revoked": LeafSpec(names=("revoked.example.test",), revoked=True),
    "deep": LeafSpec(names=("deep.example.test",), issuer="sub-intermediate"),
    "old-ca": LeafSpec(names=("old-ca.example.test",), issuer="expired-intermediate"),
    "stranger": LeafSpec(names=("stranger.example.test",), issuer="untrusted-root"),
    "client": LeafSpec(names=("client.example.test",), issuer="intermediate-2", client=True),
    "ip": LeafSpec(names=("127.0.0.1",)),
}


@pytest.fixture(scope="module")
def pki() -> LabPKI:
    return build_pki(LEAVES, NOW, URL)


def _verify(pki: LabPKI, leaf: str, when: dt.datetime = NOW, name: str | None = None) -> None:
    chain = pki.chain_for(leaf)
    verifier = (PolicyBuilder().store(Store([pki.cas["root"].cert])).time(when)
                .build_server_verifier(DNSName(name or LEAVES[leaf].names[0])))
    verifier.verify(chain[0], chain[1:])


def test_requires_aware_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        build_pki({}, dt.datetime(2030, 1, 1), URL)


@pytest.mark.parametrize("leaf", ["ok", "rsa", "revoked", "deep"])
def test_good_leaves_validate_to_the_root(pki: LabPKI, leaf: str) -> None:
    _verify(pki, leaf)


@pytest.mark.parametrize("leaf", ["expired", "future", "old-ca", "stranger", "self"])
def test_broken_leaves_do_not_validate(pki: LabPKI, leaf: str) -> None:
    with pytest.raises(VerificationError):
        _verify(pki, leaf)


def test_validity_is_relative_to_now(pki: LabPKI) -> None:
    expired = pki.leaves["expired"].cert
    assert expired.not_valid_after_utc == NOW - 2 * DAY
    assert pki.leaves["future"].cert.not_valid_before_utc == NOW + 2 * DAY
    assert pki.cas["expired-intermediate"].cert.not_valid_after_utc < NOW
    assert pki.leaves["old-ca"].cert.not_valid_after_utc > NOW


def test_key_kinds_and_sizes(pki: LabPKI) -> None:
    weak = pki.leaves["weak"].cert.public_key()
    assert isinstance(weak, rsa.RSAPublicKey) and weak.key_size == 1024
    strong = pki.leaves["rsa"].cert.public_key()
    assert isinstance(strong, rsa.RSAPublicKey) and strong.key_size == 2048
    assert isinstance(pki.leaves["ok"].cert.public_key(), ec.EllipticCurvePublicKey)


def test_sha1_leaf_is_really_signed_with_sha1(pki: LabPKI) -> None:
    cert = pki.leaves["sha1"].cert
    assert cert.signature_algorithm_oid == x509.SignatureAlgorithmOID.RSA_WITH_SHA1
    # The signature is genuine: the intermediate's key verifies it (raises InvalidSignature otherwise).
    issuer_key = pki.cas["intermediate"].cert.public_key()
    assert isinstance(issuer_key, rsa.RSAPublicKey)
    issuer_key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303


def test_resign_sha1_refuses_non_rsa_sha256(pki: LabPKI) -> None:
    key = pki.cas["intermediate"].key
    assert isinstance(key, rsa.RSAPrivateKey)
    with pytest.raises(ValueError, match="sha256WithRSAEncryption"):
        resign_sha1(pki.leaves["deep"].cert, key)  # signed by the ECDSA sub-intermediate


def test_chain_paths(pki: LabPKI) -> None:
    assert [c.subject for c in pki.chain_for("deep")] == [
        pki.leaves["deep"].cert.subject, pki.cas["sub-intermediate"].cert.subject, pki.cas["intermediate"].cert.subject,
    ]
    assert len(pki.chain_for("self")) == 1
    assert len(pki.chain_for("stranger")) == 1  # issued directly by the untrusted root
    self_signed = pki.leaves["self"].cert
    assert self_signed.issuer == self_signed.subject


def test_revoked_leaf_is_in_its_issuers_crl_and_others_are_not(pki: LabPKI) -> None:
    crl = pki.crls["intermediate"]
    assert crl.is_signature_valid(pki.cas["intermediate"].key.public_key())  # type: ignore[arg-type]
    assert crl.get_revoked_certificate_by_serial_number(pki.leaves["revoked"].cert.serial_number) is not None
    assert crl.get_revoked_certificate_by_serial_number(pki.leaves["ok"].cert.serial_number) is None
    assert crl.next_update_utc is not None and crl.next_update_utc > NOW


def test_leaves_point_at_the_lab_pki_server(pki: LabPKI) -> None:
    cert = pki.leaves["ok"].cert
    cdp = cert.extensions.get_extension_for_oid(ExtensionOID.CRL_DISTRIBUTION_POINTS).value
    assert cdp[0].full_name[0].value == f"{URL}/intermediate.crl"
    aia = cert.extensions.get_extension_for_oid(ExtensionOID.AUTHORITY_INFORMATION_ACCESS).value
    assert aia[0].access_location.value == f"{URL}/intermediate.der"


def test_extended_key_usage(pki: LabPKI) -> None:
    def eku(name: str) -> list[x509.ObjectIdentifier]:
        return list(pki.leaves[name].cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)

    assert eku("ok") == [x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]
    assert eku("client") == [x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]


def test_ip_names_become_ip_sans(pki: LabPKI) -> None:
    san = pki.leaves["ip"].cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    _verify(pki, "ok")


def test_fresh_keys_every_build() -> None:
    a = build_pki({"x": LEAVES["ok"]}, NOW, URL)
    b = build_pki({"x": LEAVES["ok"]}, NOW, URL)
    assert a.cas["root"].cert.fingerprint(a.cas["root"].cert.signature_hash_algorithm) != \
        b.cas["root"].cert.fingerprint(b.cas["root"].cert.signature_hash_algorithm)  # type: ignore[arg-type]


def test_leaf_named_like_its_ca_still_gets_the_ca_in_its_chain() -> None:
    pki = build_pki({"expired-intermediate": LeafSpec(names=("x.test",), issuer="expired-intermediate")}, NOW, URL)
    chain = pki.chain_for("expired-intermediate")
    assert [c.subject for c in chain] == [pki.leaves["expired-intermediate"].cert.subject,
                                         pki.cas["expired-intermediate"].cert.subject]
