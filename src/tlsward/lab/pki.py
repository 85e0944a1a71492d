"""The lab PKI: a fresh set of CAs, leaves and CRLs generated at every start, so dates never rot.

Hierarchy (all names under ``lab.tlsward.test``)::

    root (RSA 2048) ─┬─ intermediate (RSA 2048) ── sub-intermediate (P-256)
                     ├─ intermediate-2 (P-256)          issues client certificates for mTLS cases
                     └─ expired-intermediate (P-256)     its validity ended ten days ago
    untrusted-root (P-256)                               not in the lab trust bundle

Leaves are described by :class:`LeafSpec` and issued by :func:`build_pki`; the catalogue decides which
case gets which leaf. Everything here is pure computation over ``now``; writing files is separate.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KeyKind = Literal["rsa2048", "rsa1024", "p256"]
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
CAName = Literal["root", "intermediate", "sub-intermediate", "intermediate-2", "expired-intermediate",
                 "untrusted-root"]

LAB_DOMAIN = "lab.tlsward.test"
# Who issued each intermediate CA (roots are absent: a chain stops below them).
CA_ISSUER: dict[str, str] = {
    "intermediate": "root", "sub-intermediate": "intermediate", "intermediate-2": "root",
    "expired-intermediate": "root",
}
DAY = dt.timedelta(days=1)


@dataclass(frozen=True, slots=True)
class LeafSpec:
    """How to issue one leaf. Offsets are relative to ``now`` so a case keeps its meaning forever."""

    names: Sequence[str]
    key: KeyKind = "p256"
    issuer: CAName = "intermediate"
    not_before: dt.timedelta = -DAY
    not_after: dt.timedelta = 89 * DAY
    signature_hash: Literal["sha256", "sha1"] = "sha256"
    self_signed: bool = False
    client: bool = False
    revoked: bool = False


@dataclass(frozen=True, slots=True)
class Issued:
    """A certificate with its private key."""

    cert: x509.Certificate
    key: PrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


@dataclass(frozen=True, slots=True)
class LabPKI:
    """Every CA, leaf and CRL of one lab start."""

    cas: Mapping[str, Issued]
    leaves: Mapping[str, Issued]
    crls: Mapping[str, x509.CertificateRevocationList]
    leaf_issuer: Mapping[str, str | None] = field(default_factory=dict)   # None: self-signed

    def chain_for(self, leaf: str) -> list[x509.Certificate]:
        """The leaf's issuing path up to (not including) the root, leaf first."""
        chain = [self.leaves[leaf].cert]
        issuer = self.leaf_issuer[leaf]
        while issuer is not None and issuer in CA_ISSUER:
            chain.append(self.cas[issuer].cert)
            issuer = CA_ISSUER[issuer]
        return chain


def generate_key(kind: KeyKind) -> PrivateKey:
    if kind == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=1024 if kind == "rsa1024" else 2048)


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tlsward lab"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _ski(key: PrivateKey) -> x509.SubjectKeyIdentifier:
    return x509.SubjectKeyIdentifier.from_public_key(key.public_key())


SHA256_WITH_RSA = bytes.fromhex("06092a864886f70d01010b")
SHA1_WITH_RSA = bytes.fromhex("06092a864886f70d010105")


def _der(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    length = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def resign_sha1(cert: x509.Certificate, key: rsa.RSAPrivateKey) -> x509.Certificate:
    """Re-sign an RSA/SHA-256 certificate with SHA-1, which cryptography's builder no longer offers.

    The two algorithm OIDs have the same length, so swapping them inside the TBS keeps its DER valid.
    """
    tbs = cert.tbs_certificate_bytes
    if SHA256_WITH_RSA not in tbs:
        raise ValueError("resign_sha1 needs a certificate signed with sha256WithRSAEncryption")
    tbs = tbs.replace(SHA256_WITH_RSA, SHA1_WITH_RSA, 1)
    signature = key.sign(tbs, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303 - SHA-1 on purpose: a lab case
    algorithm = _der(0x30, SHA1_WITH_RSA + b"\x05\x00")
    der = _der(0x30, tbs + algorithm + _der(0x03, b"\x00" + signature))
    return x509.load_der_x509_certificate(der)


def _make_ca(
    common_name: str, key: PrivateKey, issuer: Issued | None, now: dt.datetime,
    not_before: dt.timedelta, not_after: dt.timedelta, pki_url: str, path_length: int | None,
) -> Issued:
    signer_key = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(issuer.cert.subject if issuer else _name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + not_before)
        .not_valid_after(now + not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          encipher_only=False, decipher_only=False),
            critical=True,
        )
        .add_extension(_ski(key), critical=False)
    )
    if issuer:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
        ).add_extension(_crl_dp(pki_url, "root"), critical=False)
    return Issued(builder.sign(signer_key, hashes.SHA256()), key)


def _crl_dp(pki_url: str, ca: str) -> x509.CRLDistributionPoints:
    return x509.CRLDistributionPoints([
        x509.DistributionPoint([x509.UniformResourceIdentifier(f"{pki_url}/{ca}.crl")], None, None, None)
    ])


def _general_names(names: Sequence[str]) -> list[x509.GeneralName]:
    result: list[x509.GeneralName] = []
    for name in names:
        try:
            result.append(x509.IPAddress(ip_address(name)))
        except ValueError:
            result.append(x509.DNSName(name))
    return result


def _make_leaf(spec: LeafSpec, issuer: Issued | None, issuer_name: str, now: dt.datetime, pki_url: str) -> Issued:
    key = generate_key(spec.key)
    subject = _name(spec.names[0])
    eku = ExtendedKeyUsageOID.CLIENT_AUTH if spec.client else ExtendedKeyUsageOID.SERVER_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject if issuer is None else issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + spec.not_before)
        .not_valid_after(now + spec.not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
        .add_extension(x509.SubjectAlternativeName(_general_names(spec.names)), critical=False)
        .add_extension(_ski(key), critical=False)
    )
    if issuer is not None:
        builder = (
            builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
            )
            .add_extension(_crl_dp(pki_url, issuer_name), critical=False)
            .add_extension(
                x509.AuthorityInformationAccess([
                    x509.AccessDescription(
                        x509.oid.AuthorityInformationAccessOID.CA_ISSUERS,
                        x509.UniformResourceIdentifier(f"{pki_url}/{issuer_name}.der"),
                    )
                ]),
                critical=False,
            )
        )
    signer = key if issuer is None else issuer.key
    cert = builder.sign(signer, hashes.SHA256())
    if spec.signature_hash == "sha1":
        if not isinstance(signer, rsa.RSAPrivateKey):
            raise ValueError("a SHA-1 lab leaf needs an RSA issuer")
        cert = resign_sha1(cert, signer)
    return Issued(cert, key)


def _make_crl(ca: Issued, revoked_serials: Sequence[int], now: dt.datetime) -> x509.CertificateRevocationList:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(now - dt.timedelta(hours=1))
        .next_update(now + 7 * DAY)
        .add_extension(x509.CRLNumber(1), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
    )
    for serial in revoked_serials:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(now - DAY)
            .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False)
            .build()
        )
    return builder.sign(ca.key, hashes.SHA256())


def build_pki(leaves: Mapping[str, LeafSpec], now: dt.datetime, pki_url: str) -> LabPKI:
    """Issue the CA hierarchy, every leaf in ``leaves`` and one CRL per CA.

    ``pki_url`` is where the lab serves CRLs and CA certificates (``{pki_url}/<ca>.crl`` and ``.der``);
    leaves point there through their CRL distribution point and AIA caIssuers extensions.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    years = 365 * DAY
    root = _make_ca("tlsward lab Root CA", generate_key("rsa2048"), None, now, -DAY, 10 * years, pki_url, None)
    intermediate = _make_ca("tlsward lab Intermediate CA", generate_key("rsa2048"), root, now, -DAY, 5 * years,
                            pki_url, 1)
    cas: dict[str, Issued] = {
        "root": root,
        "intermediate": intermediate,
        "sub-intermediate": _make_ca("tlsward lab Sub-Intermediate CA", generate_key("p256"), intermediate, now,
                                     -DAY, 4 * years, pki_url, 0),
        "intermediate-2": _make_ca("tlsward lab Intermediate CA 2", generate_key("p256"), root, now, -DAY,
                                   5 * years, pki_url, 0),
        "expired-intermediate": _make_ca("tlsward lab Expired Intermediate CA", generate_key("p256"), root, now,
                                         -400 * DAY, -10 * DAY, pki_url, 0),
        "untrusted-root": _make_ca("tlsward lab Untrusted Root CA", generate_key("p256"), None, now, -DAY,
                                   10 * years, pki_url, None),
    }
    leaf_issuer: dict[str, str | None] = {}
    issued: dict[str, Issued] = {}
    revoked: dict[str, list[int]] = {name: [] for name in cas}
    for name, spec in leaves.items():
        issuer = None if spec.self_signed else cas[spec.issuer]
        issued[name] = _make_leaf(spec, issuer, spec.issuer, now, pki_url)
        leaf_issuer[name] = None if spec.self_signed else spec.issuer
        if spec.revoked:
            revoked[spec.issuer].append(issued[name].cert.serial_number)
    crls = {name: _make_crl(ca, revoked[name], now) for name, ca in cas.items()}
    return LabPKI(cas=cas, leaves=issued, crls=crls, leaf_issuer=leaf_issuer)


def pem_bundle(certs: Sequence[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def write_private(path: Path, data: bytes) -> None:
    """Write a key file readable by its owner only, atomically."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.touch(mode=0o600)
    tmp.write_bytes(data)
    tmp.replace(path)
