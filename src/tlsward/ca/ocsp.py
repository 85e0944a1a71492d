"""An RFC 6960 OCSP responder: request bytes in, response bytes out, never an exception.

The intermediate answers for the certificates it issued, signing with its own key (RFC 6960 4.2.2.2: the CA
itself is an authorised responder, so no delegated responder certificate has to be kept fresh). A request it is
not authoritative for is answered ``unauthorized``; bytes that are not one well-formed request get
``malformedRequest``. The nonce, when asked for, is echoed (RFC 8954).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509 import ocsp

from tlsward.model.ca import RevocationRecord

OCSP_VALIDITY = dt.timedelta(hours=1)    # nextUpdate of a response: how long a client may cache it
MAX_REQUEST_BYTES = 16 * 1024

# status(serial) -> (issued by this CA?, its revocation if revoked)
StatusLookup = Callable[[int], tuple[bool, RevocationRecord | None]]


class OcspResponder:
    """Answers for one issuer, with the issuer's hashes precomputed per hash algorithm."""

    def __init__(self, issuer: x509.Certificate, key: CertificateIssuerPrivateKeyTypes,
                 signature_hash: hashes.SHA256 | hashes.SHA384 | None, status: StatusLookup,
                 validity: dt.timedelta = OCSP_VALIDITY) -> None:
        self.issuer, self.key, self.signature_hash, self.status = issuer, key, signature_hash, status
        self.validity = validity
        self._name_der = issuer.subject.public_bytes()
        self._key_bits = _public_key_bits(issuer)
        self._hashes: dict[str, tuple[bytes, bytes]] = {}

    def _issuer_hashes(self, algorithm: hashes.HashAlgorithm) -> tuple[bytes, bytes]:
        if algorithm.name not in self._hashes:
            self._hashes[algorithm.name] = (_digest(algorithm, self._name_der), _digest(algorithm, self._key_bits))
        return self._hashes[algorithm.name]

    def respond(self, request_der: bytes, *, now: dt.datetime | None = None) -> bytes:
        """The DER OCSPResponse for ``request_der``."""
        if not request_der or len(request_der) > MAX_REQUEST_BYTES:
            return unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        try:
            request = ocsp.load_der_ocsp_request(request_der)
            algorithm = request.hash_algorithm
            name_hash, key_hash, serial = request.issuer_name_hash, request.issuer_key_hash, request.serial_number
            nonce = _nonce(request)
        except (ValueError, UnsupportedAlgorithm, TypeError):
            return unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        if (name_hash, key_hash) != self._issuer_hashes(algorithm):
            return unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
        try:
            known, revocation = self.status(serial)
        except Exception:   # a database outage: tell the client to retry rather than guess
            return unsuccessful(ocsp.OCSPResponseStatus.TRY_LATER)
        moment = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
        if not known:
            status, revoked_at, reason = ocsp.OCSPCertStatus.UNKNOWN, None, None
        elif revocation is None:
            status, revoked_at, reason = ocsp.OCSPCertStatus.GOOD, None, None
        else:
            status, revoked_at = ocsp.OCSPCertStatus.REVOKED, revocation.revoked_at.replace(microsecond=0)
            reason = None if revocation.reason == "unspecified" else x509.ReasonFlags(revocation.reason)
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            issuer_name_hash=name_hash, issuer_key_hash=key_hash, serial_number=serial, algorithm=algorithm,
            cert_status=status, this_update=moment, next_update=moment + self.validity,
            revocation_time=revoked_at, revocation_reason=reason,
        ).responder_id(ocsp.OCSPResponderEncoding.HASH, self.issuer)
        if nonce is not None:
            builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
        response = builder.sign(self.key, self.signature_hash)
        return response.public_bytes(serialization.Encoding.DER)


def unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    """An unsigned error response (malformedRequest, unauthorized, tryLater, internalError)."""
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(serialization.Encoding.DER)


def _nonce(request: ocsp.OCSPRequest) -> bytes | None:
    try:
        return request.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    except x509.ExtensionNotFound:
        return None


def _digest(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    digest = hashes.Hash(algorithm)
    digest.update(data)
    return digest.finalize()


def _public_key_bits(cert: x509.Certificate) -> bytes:
    """The subjectPublicKey BIT STRING's content (what issuerKeyHash hashes, RFC 6960 4.1.1)."""
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    offset = _skip_header(spki, 0)          # into the SEQUENCE
    offset = _element_end(spki, offset)     # past the AlgorithmIdentifier
    start = _skip_header(spki, offset)      # the BIT STRING's value
    return spki[start + 1:_element_end(spki, offset)]   # minus the unused-bits octet


def _skip_header(data: bytes, offset: int) -> int:
    length = data[offset + 1]
    return offset + 2 + (length & 0x7F if length & 0x80 else 0)


def _element_end(data: bytes, offset: int) -> int:
    length = data[offset + 1]
    start = offset + 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[start:start + count], "big")
        start += count
    return start + length
