"""Revocation, decided from bytes: CRLs, OCSP requests and responses (fetched or stapled), AIA downloads.

Pure: no network and no clock. The caller fetches (``tlsward.net.fetch``) and passes ``now``; this module
says what the bytes prove about one certificate, as a :class:`~tlsward.model.certificate.RevocationStatus`:

* ``good`` / ``revoked``: an answer whose signature verifies with the certificate's issuer (for OCSP also a
  delegated responder that the issuer certified for OCSPSigning), about this exact certificate (issuer name,
  issuer key and serial), and current at ``now`` (thisUpdate ≤ now ≤ nextUpdate, five minutes of clock skew
  allowed);
* ``unknown``: an answer that does not settle it (expired CRL, bad signature, wrong certificate id, the
  responder does not know the certificate, malformed bytes);
* ``unavailable``: the responder asked us to come back (tryLater, internalError).

Each ``reason`` is one line naming the URL. OCSP requests use a SHA-1 certificate id: RFC 6960 allows others,
but responders in the field (Let's Encrypt's among them) answer only SHA-1 ids. Responses are matched with
whatever hash algorithm they use.

Not covered: delta CRLs and indirect CRLs (reported as ``unknown``), OCSP nonces (responders serve
pre-signed responses and ignore them).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import warnings

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, SignatureAlgorithmOID

from tlsward.model.certificate import RevocationSource, RevocationState, RevocationStatus
from tlsward.model.errors import CertificateError
from tlsward.x509.facts import parse_der, verify_signature
from tlsward.x509.validate import issued_by

__all__ = [
    "CLOCK_SKEW",
    "OCSP_REQUEST_TYPE",
    "Crl",
    "crl_status",
    "is_ocsp_response",
    "issues",
    "load_crl",
    "load_issuer_certificates",
    "ocsp_cache_key",
    "ocsp_next_update",
    "ocsp_request",
    "ocsp_status",
    "serial_hex",
]

OCSP_REQUEST_TYPE = "application/ocsp-request"
CLOCK_SKEW = dt.timedelta(minutes=5)

_RESPONSE_STATUS_NAMES: dict[ocsp.OCSPResponseStatus, str] = {
    ocsp.OCSPResponseStatus.MALFORMED_REQUEST: "malformedRequest",
    ocsp.OCSPResponseStatus.INTERNAL_ERROR: "internalError",
    ocsp.OCSPResponseStatus.TRY_LATER: "tryLater",
    ocsp.OCSPResponseStatus.SIG_REQUIRED: "sigRequired",
    ocsp.OCSPResponseStatus.UNAUTHORIZED: "unauthorized",
}
_COME_BACK_LATER = (ocsp.OCSPResponseStatus.TRY_LATER, ocsp.OCSPResponseStatus.INTERNAL_ERROR)
_SIGNING_KEYS = (rsa.RSAPublicKey, ec.EllipticCurvePublicKey, dsa.DSAPublicKey, ed25519.Ed25519PublicKey,
                 ed448.Ed448PublicKey)


def serial_hex(serial: int) -> str:
    """``0x1a2b``: how a reason line names a certificate serial."""
    return hex(serial)


def issues(issuer_der: bytes, cert_der: bytes) -> bool:
    """Did ``issuer_der`` issue ``cert_der`` (issuer name and signature)? Never raises."""
    try:
        return issued_by(parse_der(cert_der), parse_der(issuer_der))
    except CertificateError:
        return False


def _stamp(when: dt.datetime) -> str:
    return f"{when:%Y-%m-%d %H:%M} UTC"


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = text.split(" {", 1)[0]
    return text if len(text) <= 120 else text[:117] + "..."


# --- CRL --------------------------------------------------------------------------------------------------


class Crl:
    """A parsed CRL and the URL it came from: parsed once, then checked for every certificate it covers."""

    __slots__ = ("_verified", "crl", "url")

    def __init__(self, url: str, crl: x509.CertificateRevocationList) -> None:
        self.url = url
        self.crl = crl
        self._verified: dict[bytes, bool] = {}   # issuer DER hash → signature verifies (a 10 MiB CRL costs ms)

    @property
    def this_update(self) -> dt.datetime:
        return self.crl.last_update_utc

    @property
    def next_update(self) -> dt.datetime | None:
        return self.crl.next_update_utc

    def signed_by(self, issuer: x509.Certificate) -> bool:
        key = hashlib.sha256(issuer.public_bytes(serialization.Encoding.DER)).digest()
        if key not in self._verified:
            try:
                public_key = issuer.public_key()
                self._verified[key] = isinstance(public_key, _SIGNING_KEYS) and self.crl.is_signature_valid(public_key)
            except (TypeError, ValueError, UnsupportedAlgorithm):
                self._verified[key] = False
        return self._verified[key]


def load_crl(data: bytes, url: str) -> Crl:
    """A DER or PEM CRL, or :class:`CertificateError` (one line naming ``url``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        try:
            if data.lstrip().startswith(b"-----BEGIN"):
                crl = x509.load_pem_x509_crl(data)
            else:
                crl = x509.load_der_x509_crl(data)
        except ValueError as exc:
            raise CertificateError(f"CRL {url} is not a CRL ({len(data)} bytes: {_short(exc)})") from None
    return Crl(url, crl)


def crl_status(crl: Crl, cert_der: bytes, issuer_der: bytes, now: dt.datetime) -> RevocationStatus:
    """What ``crl`` says about ``cert_der``, checked against the issuer's key and ``now``."""
    cert, issuer = parse_der(cert_der), parse_der(issuer_der)
    url = crl.url
    serial = serial_hex(cert.serial_number)

    def unknown(reason: str) -> RevocationStatus:
        return RevocationStatus("unknown", "crl", reason, checked_urls=(url,))

    if crl.crl.issuer != cert.issuer:
        return unknown(f"CRL {url} is issued by {crl.crl.issuer.rfc4514_string()}, not by the certificate's "
                       f"issuer {cert.issuer.rfc4514_string()}")
    if not _may_sign_crls(issuer):
        return unknown(f"CRL {url}: the issuer {issuer.subject.rfc4514_string()} is not allowed to sign CRLs "
                       "(no cRLSign key usage)")
    if not crl.signed_by(issuer):
        return unknown(f"CRL {url} signature does not verify with the key of {issuer.subject.rfc4514_string()}")
    for extension in crl.crl.extensions:
        if isinstance(extension.value, x509.DeltaCRLIndicator):
            return unknown(f"CRL {url} is a delta CRL (its base CRL is not fetched)")
        if isinstance(extension.value, x509.IssuingDistributionPoint) and extension.value.indirect_crl:
            return unknown(f"CRL {url} is an indirect CRL (not supported)")
    if crl.this_update > now + CLOCK_SKEW:
        return unknown(f"CRL {url} is not valid yet (thisUpdate {_stamp(crl.this_update)})")
    next_update = crl.next_update
    if next_update is not None and next_update < now - CLOCK_SKEW:
        return unknown(f"CRL expired: {url} (nextUpdate {_stamp(next_update)})")
    entry = crl.crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    code = _crl_reason(entry) if entry is not None else None
    if entry is None or code == "removeFromCRL":
        until = f"; next update {_stamp(next_update)}" if next_update else ""
        return RevocationStatus("good", "crl", f"serial {serial} not listed in {url}{until}", checked_urls=(url,),
                                url=url)
    since = entry.revocation_date_utc
    return RevocationStatus("revoked", "crl", f"serial {serial} listed in {url} since {since:%Y-%m-%d}"
                            + (f" ({code})" if code else ""), revoked_at=since, checked_urls=(url,), url=url)


def _crl_reason(entry: x509.RevokedCertificate) -> str | None:
    try:
        return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason.value
    except (x509.ExtensionNotFound, ValueError):
        return None


def _may_sign_crls(issuer: x509.Certificate) -> bool:
    try:
        return issuer.extensions.get_extension_for_class(x509.KeyUsage).value.crl_sign
    except x509.ExtensionNotFound:
        return True
    except ValueError:
        return False


# --- OCSP -------------------------------------------------------------------------------------------------


def ocsp_request(cert_der: bytes, issuer_der: bytes) -> bytes:
    """A DER OCSPRequest for ``cert_der`` (SHA-1 certificate id, no nonce), to POST to a responder."""
    return _request(parse_der(cert_der), parse_der(issuer_der), hashes.SHA1()).public_bytes(  # noqa: S303
        serialization.Encoding.DER)


def ocsp_cache_key(cert_der: bytes, issuer_der: bytes) -> str:
    """Identifies the certificate an OCSP answer is about: issuer key hash and serial (hex)."""
    request = _request(parse_der(cert_der), parse_der(issuer_der), hashes.SHA1())  # noqa: S303
    return f"{request.issuer_key_hash.hex()}:{request.serial_number:x}"


def is_ocsp_response(data: bytes) -> bool:
    """Do the bytes parse as an OCSPResponse (of any status)?"""
    try:
        ocsp.load_der_ocsp_response(data)
    except ValueError:
        return False
    return True


def ocsp_next_update(response_der: bytes) -> dt.datetime | None:
    """The earliest nextUpdate in a response (None when absent or unparseable): how long to reuse it."""
    try:
        response = ocsp.load_der_ocsp_response(response_der)
        if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
            return None
        updates = [single.next_update_utc for single in response.responses if single.next_update_utc]
    except ValueError:
        return None
    return min(updates) if updates else None


def ocsp_status(response_der: bytes, cert_der: bytes, issuer_der: bytes, now: dt.datetime, *, url: str = "",
                source: RevocationSource = "ocsp") -> RevocationStatus:
    """What an OCSP response (from responder ``url``, or stapled when ``source`` says so) says about
    ``cert_der``: signature, certificate id and validity window are checked first."""
    cert, issuer = parse_der(cert_der), parse_der(issuer_der)
    serial = serial_hex(cert.serial_number)
    where = f"OCSP responder {url}" if url else "the stapled OCSP response"
    checked = (url,) if url else ()

    def verdict(status: RevocationState, reason: str) -> RevocationStatus:
        return RevocationStatus(status, source, reason, checked_urls=checked)

    try:
        response = ocsp.load_der_ocsp_response(response_der)
    except ValueError as exc:
        return verdict("unknown", f"{where}: malformed OCSP response ({len(response_der)} bytes: {_short(exc)})")
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        name = _RESPONSE_STATUS_NAMES.get(response.response_status, response.response_status.name)
        state: RevocationState = "unavailable" if response.response_status in _COME_BACK_LATER else "unknown"
        return verdict(state, f"{where} answered {name} instead of a status")
    try:
        single = _single_for(response, cert, issuer)
        if single is None:
            return verdict("unknown", f"{where} answered about another certificate (no response for serial {serial} "
                           f"of {issuer.subject.rfc4514_string()})")
        signer = _signer(response, issuer, now)
        if isinstance(signer, str):
            return verdict("unknown", f"{where}: {signer}")
        if not _verifies(signer.public_key(), response.signature, response.tbs_response_bytes,
                         response.signature_hash_algorithm, response.signature_algorithm_oid):
            return verdict("unknown", f"{where}: response signature does not verify with the key of "
                           f"{signer.subject.rfc4514_string()}")
        this_update, next_update = single.this_update_utc, single.next_update_utc
        if this_update > now + CLOCK_SKEW:
            return verdict("unknown", f"{where}: response is not valid yet (thisUpdate {_stamp(this_update)})")
        if next_update is not None and next_update < now - CLOCK_SKEW:
            return verdict("unknown", f"{where}: response expired (nextUpdate {_stamp(next_update)})")
        status = single.certificate_status
        if status == ocsp.OCSPCertStatus.GOOD:
            until = f" (valid until {_stamp(next_update)})" if next_update else ""
            return RevocationStatus("good", source, f"{where} says serial {serial} is good{until}",
                                    checked_urls=checked, url=url)
        if status == ocsp.OCSPCertStatus.REVOKED:
            since = single.revocation_time_utc
            code = single.revocation_reason.value if single.revocation_reason is not None else None
            when = f" since {since:%Y-%m-%d}" if since else ""
            return RevocationStatus("revoked", source, f"serial {serial} reported revoked by {where}{when}"
                                    + (f" ({code})" if code else ""), revoked_at=since, checked_urls=checked,
                                    url=url)
        return verdict("unknown", f"{where} does not know serial {serial} (status unknown)")
    except (ValueError, UnsupportedAlgorithm) as exc:
        return verdict("unknown", f"{where}: unusable OCSP response ({_short(exc)})")


def _request(cert: x509.Certificate, issuer: x509.Certificate, algorithm: hashes.HashAlgorithm) -> ocsp.OCSPRequest:
    return ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, algorithm).build()


def _single_for(response: ocsp.OCSPResponse, cert: x509.Certificate,
                issuer: x509.Certificate) -> ocsp.OCSPSingleResponse | None:
    """The single response whose certificate id (issuer name hash, issuer key hash, serial) is ``cert``'s."""
    ids: dict[str, ocsp.OCSPRequest] = {}
    for single in response.responses:
        algorithm = single.hash_algorithm
        if not isinstance(algorithm, hashes.SHA1 | hashes.SHA224 | hashes.SHA256 | hashes.SHA384 | hashes.SHA512):
            continue
        if algorithm.name not in ids:
            ids[algorithm.name] = _request(cert, issuer, algorithm)
        expected = ids[algorithm.name]
        if (single.serial_number == expected.serial_number
                and single.issuer_key_hash == expected.issuer_key_hash
                and single.issuer_name_hash == expected.issuer_name_hash):
            return single
    return None


def _signer(response: ocsp.OCSPResponse, issuer: x509.Certificate, now: dt.datetime) -> x509.Certificate | str:
    """The certificate whose key must verify the response: the issuer, or a delegated responder (RFC 6960
    4.2.2.2: issued by the issuer, with id-kp-OCSPSigning, valid now). A string says why there is none."""
    if _is_responder(response, issuer):
        return issuer
    for cert in response.certificates:
        if not _is_responder(response, cert):
            continue
        subject = cert.subject.rfc4514_string()
        if not issued_by(cert, issuer):
            return f"delegated responder {subject} is not certified by the issuer {issuer.subject.rfc4514_string()}"
        if not _ocsp_signing(cert):
            return f"delegated responder {subject} lacks the OCSPSigning extended key usage"
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            return f"delegated responder certificate {subject} is not valid now"
        return cert
    return "signed by an unknown responder (neither the issuer nor a delegated responder it certified)"


def _is_responder(response: ocsp.OCSPResponse, cert: x509.Certificate) -> bool:
    if response.responder_name is not None:
        return response.responder_name == cert.subject
    try:
        key_hash = x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest
    except (ValueError, UnsupportedAlgorithm):
        return False
    return response.responder_key_hash == key_hash


def _ocsp_signing(cert: x509.Certificate) -> bool:
    try:
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    return ExtendedKeyUsageOID.OCSP_SIGNING in usage


def _verifies(key: CertificatePublicKeyTypes, signature: bytes, data: bytes, algorithm: hashes.HashAlgorithm | None,
              oid: x509.ObjectIdentifier) -> bool:
    """Does ``key`` verify ``signature`` over ``data`` (a CRL or an OCSP response)? Never raises."""
    parameters: object = None
    if isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
        parameters = (padding.PSS(mgf=padding.MGF1(algorithm), salt_length=padding.PSS.AUTO)
                      if oid == SignatureAlgorithmOID.RSASSA_PSS else padding.PKCS1v15())
    return verify_signature(key, signature, data, algorithm, parameters)


# --- AIA caIssuers ----------------------------------------------------------------------------------------


def load_issuer_certificates(data: bytes, url: str) -> tuple[bytes, ...]:
    """The certificates an AIA caIssuers URL served, as DER: one DER or PEM certificate, a PEM bundle, or a
    PKCS#7 "certs-only" bundle (DER or PEM). :class:`CertificateError` (one line naming ``url``) otherwise."""
    from cryptography.hazmat.primitives.serialization import pkcs7  # only here: it loads the email package

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        try:
            if data.lstrip().startswith(b"-----BEGIN"):
                if b"-----BEGIN PKCS7-----" in data:
                    certs = pkcs7.load_pem_pkcs7_certificates(data)
                else:
                    certs = x509.load_pem_x509_certificates(data)
            else:
                try:
                    certs = [x509.load_der_x509_certificate(data)]
                except ValueError:
                    certs = pkcs7.load_der_pkcs7_certificates(data)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise CertificateError(f"caIssuers {url} served no certificate ({len(data)} bytes: {_short(exc)})") \
                from None
    if not certs:
        raise CertificateError(f"caIssuers {url} served an empty certificate bundle")
    return tuple(cert.public_bytes(serialization.Encoding.DER) for cert in certs)
