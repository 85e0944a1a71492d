"""Certificate bytes → :class:`~tlsward.model.certificate.CertificateFacts`, extracted once.

Why here: every other ring asks questions about certificates (expiry, names, key strength, revocation
pointers) and none of them should know pyca/cryptography's types, its lazy extension parsing or the
quirks of old certificates (SHA-1 signatures that the library refuses to verify, negative serials).
Parsing failures become one-line model errors; nothing here raises a library exception.
"""

from __future__ import annotations

import base64
import hashlib
import re
import warnings
from collections.abc import Iterator
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa, x448, x25519
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from tlsward.model.certificate import CertificateFacts
from tlsward.model.errors import CertificateError, UsageError

__all__ = [
    "facts_from_der",
    "is_self_signed",
    "load_certificates",
    "parse_der",
    "sha256_fingerprint",
    "signature_hash_name",
    "signature_verifies",
]

E = TypeVar("E", bound=x509.ExtensionType)

_EKU_NAMES: dict[str, str] = {
    ExtendedKeyUsageOID.SERVER_AUTH.dotted_string: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH.dotted_string: "clientAuth",
    ExtendedKeyUsageOID.CODE_SIGNING.dotted_string: "codeSigning",
    ExtendedKeyUsageOID.EMAIL_PROTECTION.dotted_string: "emailProtection",
    ExtendedKeyUsageOID.TIME_STAMPING.dotted_string: "timeStamping",
    ExtendedKeyUsageOID.OCSP_SIGNING.dotted_string: "OCSPSigning",
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE.dotted_string: "anyExtendedKeyUsage",
    ExtendedKeyUsageOID.IPSEC_IKE.dotted_string: "ipsecIKE",
    ExtendedKeyUsageOID.SMARTCARD_LOGON.dotted_string: "smartcardLogon",
    ExtendedKeyUsageOID.KERBEROS_PKINIT_KDC.dotted_string: "pkInitKDC",
}

# RFC 5280 names, in the order of the KeyUsage bit string.
_KEY_USAGE_NAMES: tuple[tuple[str, str], ...] = (
    ("digital_signature", "digitalSignature"),
    ("content_commitment", "contentCommitment"),
    ("key_encipherment", "keyEncipherment"),
    ("data_encipherment", "dataEncipherment"),
    ("key_agreement", "keyAgreement"),
    ("key_cert_sign", "keyCertSign"),
    ("crl_sign", "cRLSign"),
)

_HASH_NAMES = ("md2", "md4", "md5", "sha1", "sha224", "sha256", "sha384", "sha512")

_PEM_CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", re.DOTALL)


def _reason(exc: BaseException) -> str:
    """A library message cut down to one short line (no FAQ links, no Rust debug structures)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = text.split(" See https://", 1)[0]
    text = text.split(" {", 1)[0]
    return text if len(text) <= 160 else text[:157] + "..."


def parse_der(der: bytes) -> x509.Certificate:
    """One DER certificate, or :class:`CertificateError` with a one-line reason.

    Old and odd certificates (negative serials...) make cryptography warn; we parse them quietly.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        try:
            return x509.load_der_x509_certificate(der)
        except ValueError as exc:
            raise CertificateError(f"not a DER certificate ({len(der)} bytes): {_reason(exc)}") from None


def load_certificates(data: bytes, source: str) -> list[x509.Certificate]:
    """Every certificate in a PEM bundle, or the one certificate of a DER file.

    ``source`` names where the bytes came from (a path, "stdin"); a failure is a one-line
    :class:`UsageError` that starts with it.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        if b"-----BEGIN" in data:
            blocks = _PEM_CERTIFICATE.findall(data)
            if not blocks:
                raise UsageError(f"{source}: PEM data without any CERTIFICATE block")
            certs: list[x509.Certificate] = []
            for number, block in enumerate(blocks, start=1):
                try:
                    certs.append(x509.load_pem_x509_certificate(block))
                except ValueError as exc:
                    raise UsageError(
                        f"{source}: certificate {number} of {len(blocks)} is malformed ({_reason(exc)})"
                    ) from None
            return certs
        if not data.strip():
            raise UsageError(f"{source}: empty, no certificates in it")
        try:
            return [x509.load_der_x509_certificate(data)]
        except ValueError as exc:
            raise UsageError(f"{source}: neither PEM nor a DER certificate ({_reason(exc)})") from None


def sha256_fingerprint(cert: x509.Certificate) -> str:
    """Hex SHA-256 of the certificate's DER: the identity used in paths and reports."""
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


def verify_signature(key: CertificatePublicKeyTypes, signature: bytes, data: bytes,
                     hash_algorithm: hashes.HashAlgorithm | None, parameters: object) -> bool:
    """Does ``key`` verify ``signature`` over ``data``? Never raises. ``parameters`` is the padding (RSA) or
    ``ec.ECDSA`` (EC) the signed object names; one place for certificates, CRLs and OCSP responses."""
    try:
        if isinstance(key, rsa.RSAPublicKey):
            if not isinstance(parameters, padding.PKCS1v15 | padding.PSS) or hash_algorithm is None:
                return False
            key.verify(signature, data, parameters, hash_algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            if isinstance(parameters, ec.ECDSA):
                key.verify(signature, data, parameters)
            elif hash_algorithm is not None:
                key.verify(signature, data, ec.ECDSA(hash_algorithm))
            else:
                return False
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(signature, data)
        elif isinstance(key, dsa.DSAPublicKey):
            if hash_algorithm is None:
                return False
            key.verify(signature, data, hash_algorithm)
        else:
            return False
    except Exception:
        return False
    return True


def signature_verifies(cert: x509.Certificate, public_key: CertificatePublicKeyTypes) -> bool:
    """Does ``public_key`` verify ``cert``'s signature? Never raises.

    Verifies by hand with the padding/hash the certificate names, because cryptography's own
    ``verify_directly_issued_by`` refuses SHA-1 and other legacy algorithms that we must still diagnose.
    """
    try:
        parameters, hash_algorithm = cert.signature_algorithm_parameters, cert.signature_hash_algorithm
    except Exception:
        return False
    return verify_signature(public_key, cert.signature, cert.tbs_certificate_bytes, hash_algorithm, parameters)


def is_self_signed(cert: x509.Certificate) -> bool:
    """Self-issued (subject == issuer) and the signature verifies under its own key."""
    if cert.subject != cert.issuer:
        return False
    try:
        key = cert.public_key()
    except Exception:
        return False
    return signature_verifies(cert, key)


def facts_from_der(der: bytes) -> CertificateFacts:
    """Every field of :class:`CertificateFacts` for one DER certificate.

    Raises :class:`CertificateError` (one line) when the bytes or an extension cannot be parsed.
    """
    cert = parse_der(der)
    fingerprint = hashlib.sha256(der).hexdigest()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        try:
            return _facts(cert, der, fingerprint)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise CertificateError(f"certificate sha256 {fingerprint[:16]}…: {_reason(exc)}") from None


def _facts(cert: x509.Certificate, der: bytes, fingerprint: str) -> CertificateFacts:
    key_type, key_bits, curve = _key(cert)
    san = _extension(cert, x509.SubjectAlternativeName)
    constraints = _extension(cert, x509.BasicConstraints)
    eku = _extension(cert, x509.ExtendedKeyUsage)
    scts = _extension(cert, x509.PrecertificateSignedCertificateTimestamps)
    tls_feature = _extension(cert, x509.TLSFeature)
    ocsp, ca_issuers = _aia(cert)
    self_issued = cert.subject == cert.issuer
    return CertificateFacts(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        serial=f"{cert.serial_number:x}",
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        dns_names=tuple(san.get_values_for_type(x509.DNSName)) if san else (),
        ip_addresses=tuple(str(ip) for ip in san.get_values_for_type(x509.IPAddress)) if san else (),
        key_type=key_type,
        key_bits=key_bits,
        curve=curve,
        signature_algorithm=cert.signature_algorithm_oid._name,
        signature_hash=signature_hash_name(cert),
        sha256=fingerprint,
        spki_sha256=base64.b64encode(hashlib.sha256(_spki(der)).digest()).decode("ascii"),
        is_ca=bool(constraints and constraints.ca),
        path_length=constraints.path_length if constraints else None,
        key_usage=_key_usage(cert),
        extended_key_usage=tuple(_EKU_NAMES.get(oid.dotted_string, oid.dotted_string) for oid in eku)
        if eku else (),
        ocsp_urls=ocsp,
        ca_issuers_urls=ca_issuers,
        crl_urls=_crl_urls(cert),
        sct_count=len(scts) if scts else 0,
        must_staple=bool(tls_feature and x509.TLSFeatureType.status_request in tls_feature),
        self_issued=self_issued,
        self_signed=self_issued and is_self_signed(cert),
    )


def signature_hash_name(cert: x509.Certificate) -> str | None:
    """``sha256``, ``sha1``, ``md5``...; None for EdDSA, whose signatures have no separate hash."""
    try:
        algorithm = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        # An algorithm cryptography has no hash object for (md2/md4...): read it from the OID's name.
        name = cert.signature_algorithm_oid._name.lower().replace("-", "")
        return next((h for h in _HASH_NAMES if name.startswith(h) or f"with{h}" in name), None)
    return algorithm.name if algorithm else None


def _key(cert: x509.Certificate) -> tuple[str, int, str | None]:
    """Key type, size in bits (EdDSA: the public key's length) and EC curve name."""
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        oid = cert.public_key_algorithm_oid
        return (oid._name if oid._name != "Unknown OID" else oid.dotted_string), 0, None
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size, None
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", key.curve.key_size, key.curve.name
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size, None
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256, None
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456, None
    if isinstance(key, x25519.X25519PublicKey):
        return "X25519", 256, None
    if isinstance(key, x448.X448PublicKey):
        return "X448", 448, None
    return type(key).__name__, 0, None


def _extension(cert: x509.Certificate, kind: type[E]) -> E | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _key_usage(cert: x509.Certificate) -> tuple[str, ...]:
    usage = _extension(cert, x509.KeyUsage)
    if usage is None:
        return ()
    names = [rfc_name for attribute, rfc_name in _KEY_USAGE_NAMES if getattr(usage, attribute)]
    if usage.key_agreement:   # the two *_only bits are defined (and readable) only with keyAgreement
        names += [n for a, n in (("encipher_only", "encipherOnly"), ("decipher_only", "decipherOnly"))
                  if getattr(usage, a)]
    return tuple(names)


def _aia(cert: x509.Certificate) -> tuple[tuple[str, ...], tuple[str, ...]]:
    aia = _extension(cert, x509.AuthorityInformationAccess)
    ocsp: list[str] = []
    ca_issuers: list[str] = []
    for description in aia or ():
        location = description.access_location
        if not isinstance(location, x509.UniformResourceIdentifier):
            continue
        if description.access_method == AuthorityInformationAccessOID.OCSP:
            ocsp.append(location.value)
        elif description.access_method == AuthorityInformationAccessOID.CA_ISSUERS:
            ca_issuers.append(location.value)
    return tuple(ocsp), tuple(ca_issuers)


def _crl_urls(cert: x509.Certificate) -> tuple[str, ...]:
    points = _extension(cert, x509.CRLDistributionPoints)
    return tuple(
        name.value
        for point in points or ()
        for name in point.full_name or ()
        if isinstance(name, x509.UniformResourceIdentifier)
    )


def _tlv(der: bytes, offset: int) -> tuple[int, int, int]:
    """(tag, start of content, end) of the DER element at ``offset``."""
    tag, length = der[offset], der[offset + 1]
    offset += 2
    if length & 0x80:
        size = length & 0x7F
        length = int.from_bytes(der[offset:offset + size], "big")
        offset += size
    return tag, offset, offset + length


def _elements(der: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(tag, element start, element end) of each element inside a constructed value."""
    while start < end:
        tag, _, element_end = _tlv(der, start)
        yield tag, start, element_end
        start = element_end


def _spki(der: bytes) -> bytes:
    """The SubjectPublicKeyInfo exactly as encoded (pins hash these bytes, whatever the key type).

    The certificate has already been parsed by cryptography, so the DER is well formed.
    """
    _, certificate_start, _ = _tlv(der, 0)
    _, tbs_start, tbs_end = _tlv(der, certificate_start)
    fields = [(s, e) for tag, s, e in _elements(der, tbs_start, tbs_end) if tag != 0xA0]   # skip [0] version
    # serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo
    start, end = fields[5]
    return der[start:end]

