"""Certificate facts: every field on lab certificates and on hand-built ones for the rarer key types and
extensions; malformed input fails with one line that names its source."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import struct
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.unit.x509.conftest import NOW, PKI_URL, der
from tlsward.lab.pki import DAY, LabPKI, pem_bundle, resign_sha1
from tlsward.model.certificate import CertificateFacts
from tlsward.model.errors import CertificateError, UsageError
from tlsward.x509.facts import facts_from_der, load_certificates, signature_verifies

SignKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey | (
    dsa.DSAPrivateKey)


def self_signed(key: SignKey, *extensions: x509.ExtensionType, name: str = "odd.example.test") -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(0xC0FFEE).not_valid_before(NOW - DAY).not_valid_after(NOW + 30 * DAY)
    )
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm)


def facts(cert: x509.Certificate) -> CertificateFacts:
    return facts_from_der(cert.public_bytes(serialization.Encoding.DER))


def sct_list(count: int) -> x509.UnrecognizedExtension:
    """The RFC 6962 SCT list extension, with ``count`` syntactically valid (unverifiable) SCTs."""
    entries = b""
    for n in range(count):
        signature = b"\x30\x06\x02\x01\x01\x02\x01\x01"
        sct = (b"\x00" + bytes([n]) * 32 + struct.pack(">Q", 1_900_000_000_000) + b"\x00\x00"
               + b"\x04\x03" + struct.pack(">H", len(signature)) + signature)
        entries += struct.pack(">H", len(sct)) + sct
    tls_list = struct.pack(">H", len(entries)) + entries
    size = len(tls_list)
    length = bytes([size]) if size < 0x80 else b"\x82" + struct.pack(">H", size) if size > 0xFF else bytes([0x81, size])
    octet_string = b"\x04" + length + tls_list
    return x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2"), octet_string)


def test_lab_leaf_every_field(pki: LabPKI) -> None:
    cert = pki.leaves["ok"].cert
    f = facts_from_der(der([cert])[0])
    assert f.subject == "CN=ok.example.test,O=tlsward lab"
    assert f.issuer == "CN=tlsward lab Intermediate CA,O=tlsward lab"
    assert f.serial == format(cert.serial_number, "x")
    assert f.not_before == NOW - DAY and f.not_before.tzinfo is not None
    assert f.not_after == NOW + 89 * DAY
    assert f.lifetime == 90 * DAY
    assert f.dns_names == ("ok.example.test", "www.ok.example.test")
    assert f.ip_addresses == ()
    assert (f.key_type, f.key_bits, f.curve) == ("EC", 256, "secp256r1")
    assert (f.signature_algorithm, f.signature_hash) == ("sha256WithRSAEncryption", "sha256")  # RSA issuer
    assert f.sha256 == hashlib.sha256(der([cert])[0]).hexdigest()
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    assert f.spki_sha256 == base64.b64encode(hashlib.sha256(spki).digest()).decode()
    assert (f.is_ca, f.path_length) == (False, None)
    assert f.key_usage == ()
    assert f.extended_key_usage == ("serverAuth",)
    assert f.ocsp_urls == ()
    assert f.ca_issuers_urls == (f"{PKI_URL}/intermediate.der",)
    assert f.crl_urls == (f"{PKI_URL}/intermediate.crl",)
    assert (f.sct_count, f.must_staple) == (0, False)
    assert (f.self_issued, f.self_signed) == (False, False)


def test_lab_cas(pki: LabPKI) -> None:
    root = facts(pki.cas["root"].cert)
    assert (root.key_type, root.key_bits, root.curve) == ("RSA", 2048, None)
    assert (root.is_ca, root.path_length) == (True, None)
    assert root.key_usage == ("digitalSignature", "keyCertSign", "cRLSign")
    assert (root.self_issued, root.self_signed) == (True, True)
    assert root.crl_urls == () and root.ca_issuers_urls == ()
    intermediate = facts(pki.cas["intermediate"].cert)
    assert (intermediate.is_ca, intermediate.path_length) == (True, 1)
    assert intermediate.crl_urls == (f"{PKI_URL}/root.crl",)
    assert not intermediate.self_signed
    sub = facts(pki.cas["sub-intermediate"].cert)
    assert (sub.key_type, sub.curve, sub.path_length) == ("EC", "secp256r1", 0)
    assert sub.signature_algorithm == "sha256WithRSAEncryption"
    expired = facts(pki.cas["expired-intermediate"].cert)
    assert not expired.is_valid_at(NOW)
    assert expired.days_left(NOW) == pytest.approx(-10)


def test_ip_leaf(pki: LabPKI) -> None:
    f = facts(pki.leaves["ip"].cert)
    assert f.dns_names == ()
    assert f.ip_addresses == ("127.0.0.1", "::1")


def test_sha1_signed_leaf(pki: LabPKI) -> None:
    f = facts(pki.leaves["sha1"].cert)
    assert (f.signature_algorithm, f.signature_hash) == ("sha1WithRSAEncryption", "sha1")


def test_sha1_self_signed_root_does_not_crash() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = resign_sha1(self_signed(key, x509.BasicConstraints(ca=True, path_length=None)), key)
    f = facts(cert)
    assert f.signature_hash == "sha1"
    assert (f.self_issued, f.self_signed) == (True, True)


def test_self_issued_but_not_self_signed() -> None:
    # Same subject and issuer, signed by somebody else's key: self-issued (a key rollover), not self-signed.
    key, other = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rollover")])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(1).not_valid_before(NOW - DAY).not_valid_after(NOW + DAY).sign(other, hashes.SHA256()))
    f = facts(cert)
    assert (f.self_issued, f.self_signed) == (True, False)


def _dsa_1024() -> dsa.DSAPrivateKey:
    return dsa.generate_private_key(1024)  # noqa: S505 - a small key keeps the test fast; strength is not tested


def _rsa_1024() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 1024)  # noqa: S505 - the weak key is the point


@pytest.mark.parametrize(
    ("make_key", "key_type", "bits", "curve", "algorithm", "hash_name"),
    [
        (lambda: ed25519.Ed25519PrivateKey.generate(), "Ed25519", 256, None, "ed25519", None),
        (lambda: ed448.Ed448PrivateKey.generate(), "Ed448", 456, None, "ed448", None),
        (lambda: ec.generate_private_key(ec.SECP384R1()), "EC", 384, "secp384r1", "ecdsa-with-SHA256", "sha256"),
        (_dsa_1024, "DSA", 1024, None, "dsa-with-sha256", "sha256"),
        (_rsa_1024, "RSA", 1024, None, "sha256WithRSAEncryption", "sha256"),
    ],
    ids=["ed25519", "ed448", "p384", "dsa", "rsa1024"],
)
def test_key_types(make_key: Callable[[], SignKey], key_type: str, bits: int, curve: str | None, algorithm: str,
                   hash_name: str | None) -> None:
    cert = self_signed(make_key())
    f = facts(cert)
    assert (f.key_type, f.key_bits, f.curve) == (key_type, bits, curve)
    assert (f.signature_algorithm, f.signature_hash) == (algorithm, hash_name)
    assert f.self_signed
    assert signature_verifies(cert, cert.public_key())


def test_extensions() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = self_signed(
        key,
        x509.SubjectAlternativeName([x509.DNSName("a.example.test"),
                                     x509.IPAddress(ipaddress.ip_address("2001:db8::1"))]),
        x509.AuthorityInformationAccess([
            x509.AccessDescription(x509.oid.AuthorityInformationAccessOID.OCSP,
                                   x509.UniformResourceIdentifier("http://ocsp.example.test")),
            x509.AccessDescription(x509.oid.AuthorityInformationAccessOID.CA_ISSUERS,
                                   x509.UniformResourceIdentifier("http://ca.example.test/i.der")),
        ]),
        x509.CRLDistributionPoints([
            x509.DistributionPoint([x509.UniformResourceIdentifier("http://crl.example.test/1.crl"),
                                    x509.DNSName("not-a-url.example.test")], None, None, None),
            x509.DistributionPoint([x509.UniformResourceIdentifier("ldap://crl.example.test/2")], None, None, None),
        ]),
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH,
                               x509.ObjectIdentifier("1.2.3.4.5")]),
        x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                      data_encipherment=False, key_agreement=True, key_cert_sign=False, crl_sign=False,
                      encipher_only=True, decipher_only=False),
        x509.TLSFeature([x509.TLSFeatureType.status_request]),
        sct_list(3),
    )
    f = facts(cert)
    assert f.dns_names == ("a.example.test",)
    assert f.ip_addresses == ("2001:db8::1",)
    assert f.ocsp_urls == ("http://ocsp.example.test",)
    assert f.ca_issuers_urls == ("http://ca.example.test/i.der",)
    assert f.crl_urls == ("http://crl.example.test/1.crl", "ldap://crl.example.test/2")
    assert f.extended_key_usage == ("serverAuth", "clientAuth", "1.2.3.4.5")
    assert f.key_usage == ("digitalSignature", "keyAgreement", "encipherOnly")
    assert f.must_staple
    assert f.sct_count == 3
    assert f.serial == "c0ffee"


@pytest.mark.parametrize("count", [0, 1, 5])
def test_sct_count(count: int) -> None:
    extensions = [sct_list(count)] if count else []
    assert facts(self_signed(ec.generate_private_key(ec.SECP256R1()), *extensions)).sct_count == count


def test_tls_feature_without_status_request_is_not_must_staple() -> None:
    cert = self_signed(ec.generate_private_key(ec.SECP256R1()),
                       x509.TLSFeature([x509.TLSFeatureType.status_request_v2]))
    assert not facts(cert).must_staple


def test_validity_is_utc() -> None:
    f = facts(self_signed(ec.generate_private_key(ec.SECP256R1())))
    assert f.not_before.utcoffset() == dt.timedelta(0)
    assert f.not_before == NOW - DAY


@pytest.mark.parametrize("garbage", [b"", b"garbage", b"\x30\x03\x02\x01\x00", b"\x30\x82\xff\xff"])
def test_garbage_der_is_a_one_line_error(garbage: bytes) -> None:
    with pytest.raises(CertificateError) as info:
        facts_from_der(garbage)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("not a DER certificate")


def test_load_pem_bundle_and_der(pki: LabPKI) -> None:
    certs = [pki.leaves["ok"].cert, pki.cas["intermediate"].cert, pki.cas["root"].cert]
    bundle = b"# a comment\n" + pem_bundle(certs) + b"\ntrailing text\n"
    assert load_certificates(bundle, "bundle.pem") == certs
    assert load_certificates(der(certs[:1])[0], "leaf.der") == certs[:1]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "in.pem: empty, no certificates in it"),
        (b"   \n", "in.pem: empty, no certificates in it"),
        (b"hello world", "in.pem: neither PEM nor a DER certificate"),
        (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
         "in.pem: PEM data without any CERTIFICATE block"),
        (b"-----BEGIN CERTIFICATE-----\n!!notbase64!!\n-----END CERTIFICATE-----\n",
         "in.pem: certificate 1 of 1 is malformed"),
    ],
    ids=["empty", "blank", "text", "key-only", "bad-base64"],
)
def test_load_garbage_is_a_one_line_usage_error(data: bytes, message: str) -> None:
    with pytest.raises(UsageError) as info:
        load_certificates(data, "in.pem")
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)
    assert "https://" not in str(info.value)


def test_load_names_the_broken_block(pki: LabPKI) -> None:
    good = pem_bundle([pki.cas["root"].cert])
    bad = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    with pytest.raises(UsageError, match=r"^ca\.pem: certificate 2 of 2 is malformed"):
        load_certificates(good + bad, "ca.pem")
