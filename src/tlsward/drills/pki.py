"""The drills' PKI: the lab's CA hierarchy (:func:`tlsward.lab.pki.build_pki`), a second generation ("G2") root
and intermediate for the CA-rotation drill, leaves issued on demand while a drill runs, and what a CA's
responder serves (CRLs, CA certificates, OCSP answers).

Every leaf points at the drill's PKI responder: CRL distribution point ``{pki_url}/{ca}.crl``, AIA OCSP
``{pki_url}/ocsp/{ca}`` and caIssuers ``{pki_url}/{ca}.der``, so a drill can take revocation checking down
by stopping the responder.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from tlsward.lab.pki import DAY, LAB_DOMAIN, Issued, build_pki, generate_key

__all__ = ["DRILL_HOST", "DrillPKI", "Leaf"]

DRILL_HOST = f"drill.{LAB_DOMAIN}"
# The CAs drills issue from: the lab's own, and the next generation the CA-rotation drill moves to.
DRILL_CAS = ("root", "intermediate", "root-g2", "intermediate-g2")
CA_PARENT = {"intermediate": "root", "intermediate-g2": "root-g2"}


@dataclass(frozen=True, slots=True)
class Leaf:
    """A served certificate: its chain as a server sends it (leaf first, no root) and its key."""

    issued: Issued
    issuer: str                      # the CA id that signed it
    chain: tuple[x509.Certificate, ...]

    @property
    def cert(self) -> x509.Certificate:
        return self.issued.cert

    @property
    def sha256(self) -> str:
        return self.issued.cert.fingerprint(hashes.SHA256()).hex()


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tlsward lab"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _ca(common_name: str, parent: Issued | None, now: dt.datetime, pki_url: str, parent_id: str) -> Issued:
    key = generate_key("p256")
    signer = parent.key if parent else key
    builder = (x509.CertificateBuilder().subject_name(_name(common_name))
               .issuer_name(parent.cert.subject if parent else _name(common_name))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - DAY).not_valid_after(now + 3650 * DAY)
               .add_extension(x509.BasicConstraints(ca=True, path_length=None if parent is None else 0), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                            content_commitment=False, key_encipherment=False, data_encipherment=False,
                                            key_agreement=False, encipher_only=False, decipher_only=False),
                              critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if parent is not None:
        builder = (builder
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(parent.key.public_key()),
                                  critical=False)
                   .add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
                       [x509.UniformResourceIdentifier(f"{pki_url}/{parent_id}.crl")], None, None, None)]),
                       critical=False))
    return Issued(builder.sign(signer, hashes.SHA256()), key)


@dataclass
class DrillPKI:
    """The CAs of one drill run and every leaf issued so far (the OCSP responder answers for those)."""

    now: dt.datetime
    pki_url: str
    cas: dict[str, Issued] = field(default_factory=dict)
    leaves: dict[tuple[str, int], x509.Certificate] = field(default_factory=dict)   # (ca, serial) -> leaf
    revoked: set[tuple[str, int]] = field(default_factory=set)

    @classmethod
    def create(cls, pki_url: str, now: dt.datetime | None = None) -> DrillPKI:
        """The lab's root and intermediate (``build_pki``), plus the G2 root and intermediate."""
        now = now or dt.datetime.now(dt.UTC)
        lab = build_pki({}, now, pki_url)
        pki = cls(now=now, pki_url=pki_url)
        pki.cas["root"], pki.cas["intermediate"] = lab.cas["root"], lab.cas["intermediate"]
        pki.cas["root-g2"] = _ca("tlsward lab Root CA G2", None, now, pki_url, "")
        pki.cas["intermediate-g2"] = _ca("tlsward lab Intermediate CA G2", pki.cas["root-g2"], now, pki_url,
                                         "root-g2")
        return pki

    def root_for(self, ca: str) -> Issued:
        while ca in CA_PARENT:
            ca = CA_PARENT[ca]
        return self.cas[ca]

    def issue(self, names: Sequence[str] = (DRILL_HOST,), *, ca: str = "intermediate",
              not_before: dt.timedelta = -DAY, not_after: dt.timedelta = 89 * DAY,
              now: dt.datetime | None = None) -> Leaf:
        """A server leaf for ``names`` under ``ca``, valid from ``now + not_before`` to ``now + not_after``
        (``now``: the real time at the call, so a drill's certificates mean what they say)."""
        issuer = self.cas[ca]
        now = now or dt.datetime.now(dt.UTC)
        key = generate_key("p256")
        sans: list[x509.GeneralName] = [x509.DNSName(name) for name in names]
        cert = (x509.CertificateBuilder().subject_name(_name(names[0])).issuer_name(issuer.cert.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now + not_before).not_valid_after(now + not_after)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False,
                                             content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False, encipher_only=False,
                                             decipher_only=False), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .add_extension(x509.SubjectAlternativeName(sans), critical=False)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
                               critical=False)
                .add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
                    [x509.UniformResourceIdentifier(f"{self.pki_url}/{ca}.crl")], None, None, None)]), critical=False)
                .add_extension(x509.AuthorityInformationAccess([
                    x509.AccessDescription(AuthorityInformationAccessOID.OCSP,
                                           x509.UniformResourceIdentifier(f"{self.pki_url}/ocsp/{ca}")),
                    x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS,
                                           x509.UniformResourceIdentifier(f"{self.pki_url}/{ca}.der")),
                ]), critical=False)
                .sign(issuer.key, hashes.SHA256()))
        self.leaves[(ca, cert.serial_number)] = cert
        chain = [cert]
        parent: str | None = ca
        while parent in CA_PARENT:
            chain.append(self.cas[parent].cert)
            parent = CA_PARENT[parent]
        return Leaf(Issued(cert, key), ca, tuple(chain))

    # -- what the responder serves -----------------------------------------------------------------------

    def crl(self, ca: str) -> bytes:
        issuer = self.cas[ca]
        now = dt.datetime.now(dt.UTC)
        builder = (x509.CertificateRevocationListBuilder().issuer_name(issuer.cert.subject)
                   .last_update(now - dt.timedelta(hours=1)).next_update(now + 7 * DAY)
                   .add_extension(x509.CRLNumber(1), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
                                  critical=False))
        for revoked_ca, serial in sorted(self.revoked):
            if revoked_ca == ca:
                builder = builder.add_revoked_certificate(
                    x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now - DAY).build())
        return builder.sign(issuer.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    def ca_der(self, ca: str) -> bytes:
        return self.cas[ca].cert.public_bytes(serialization.Encoding.DER)

    def ocsp_answer(self, ca: str, request_der: bytes) -> bytes:
        """The CA's signed OCSP response to a DER request: good, revoked, or unauthorized for a stranger."""
        issuer = self.cas[ca]
        try:
            request = ocsp.load_der_ocsp_request(request_der)
        except ValueError:
            return ocsp.OCSPResponseBuilder.build_unsuccessful(
                ocsp.OCSPResponseStatus.MALFORMED_REQUEST).public_bytes(serialization.Encoding.DER)
        cert = self.leaves.get((ca, request.serial_number))
        if cert is None:
            return ocsp.OCSPResponseBuilder.build_unsuccessful(
                ocsp.OCSPResponseStatus.UNAUTHORIZED).public_bytes(serialization.Encoding.DER)
        now = dt.datetime.now(dt.UTC)
        revoked = (ca, request.serial_number) in self.revoked
        builder = ocsp.OCSPResponseBuilder().add_response(
            cert=cert, issuer=issuer.cert, algorithm=request.hash_algorithm,
            cert_status=ocsp.OCSPCertStatus.REVOKED if revoked else ocsp.OCSPCertStatus.GOOD,
            this_update=now - dt.timedelta(hours=1), next_update=now + DAY,
            revocation_time=now - DAY if revoked else None, revocation_reason=None,
        ).responder_id(ocsp.OCSPResponderEncoding.HASH, issuer.cert)
        return builder.sign(issuer.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    def routes(self) -> set[str]:
        """The GET paths the responder serves."""
        return {f"/{ca}.{ext}" for ca in self.cas for ext in ("crl", "der", "pem")}
