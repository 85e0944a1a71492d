"""The OCSP responder (RFC 6960): good, revoked, unknown, nonce, and every malformed input answered, never raised."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from tests.unit.ca.conftest import NOW, PASSPHRASE, ROOT_PASSPHRASE
from tlsward.ca.authority import CertificateAuthority
from tlsward.storage import Store

SHA1 = hashes.SHA1()  # noqa: S303 (OCSP's CertID hash: what openssl and browsers send)


def _request(cert: x509.Certificate, issuer: x509.Certificate, *, algorithm: hashes.HashAlgorithm = SHA1,
             nonce: bytes | None = None) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, algorithm)
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def _verify(response: ocsp.OCSPResponse, ca: CertificateAuthority) -> None:
    """The response is signed by the intermediate itself (a CA-signed response, RFC 6960 4.2.2.2)."""
    assert response.responder_key_hash == x509.SubjectKeyIdentifier.from_public_key(
        ca.intermediate.public_key()).digest  # type: ignore[arg-type]
    key = ca.intermediate.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert response.signature_hash_algorithm is not None
    key.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(response.signature_hash_algorithm))


@pytest.mark.parametrize("algorithm", [SHA1, hashes.SHA256()])
def test_good_then_revoked(ca: CertificateAuthority, leaf_key: ec.EllipticCurvePrivateKey,
                           algorithm: hashes.HashAlgorithm) -> None:
    issued = ca.issue(names=["o.example.test"], public_key=leaf_key.public_key(), now=NOW)
    request = _request(issued.certificate, ca.intermediate, algorithm=algorithm)
    good = ocsp.load_der_ocsp_response(ca.ocsp_response(request, now=NOW))
    assert good.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert good.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert good.serial_number == issued.serial
    assert good.this_update_utc == NOW and good.next_update_utc == NOW + dt.timedelta(hours=1)
    assert good.hash_algorithm.name == algorithm.name
    _verify(good, ca)
    revoked_at = NOW + dt.timedelta(minutes=10)
    ca.revoke(issued.serial, reason=x509.ReasonFlags.key_compromise, now=revoked_at)
    later = NOW + dt.timedelta(minutes=11)
    revoked = ocsp.load_der_ocsp_response(ca.ocsp_response(request, now=later))
    assert revoked.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert revoked.revocation_time_utc == revoked_at
    assert revoked.revocation_reason == x509.ReasonFlags.key_compromise
    _verify(revoked, ca)


def test_unknown_serial_and_nonce_echo(ca: CertificateAuthority, leaf_key: ec.EllipticCurvePrivateKey) -> None:
    stranger = (x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(ca.intermediate.subject)
                .public_key(leaf_key.public_key()).serial_number(12345).not_valid_before(NOW)
                .not_valid_after(NOW + dt.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName("x.test")]), critical=True)
                .sign(leaf_key, hashes.SHA256()))
    nonce = os.urandom(16)
    answer = ocsp.load_der_ocsp_response(ca.ocsp_response(_request(stranger, ca.intermediate, nonce=nonce), now=NOW))
    assert answer.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert answer.certificate_status == ocsp.OCSPCertStatus.UNKNOWN
    assert answer.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce
    _verify(answer, ca)


def test_another_issuer_is_unauthorized(tmp_path: Path, ca: CertificateAuthority, ca_store: Store,
                                        leaf_key: ec.EllipticCurvePrivateKey) -> None:
    other = CertificateAuthority.init(tmp_path / "other", ca_store, name="Other", passphrase=PASSPHRASE,
                                      root_passphrase=ROOT_PASSPHRASE, now=NOW)
    foreign = other.issue(names=["f.example.test"], public_key=leaf_key.public_key(), now=NOW)
    answer = ocsp.load_der_ocsp_response(ca.ocsp_response(_request(foreign.certificate, other.intermediate),
                                                          now=NOW))
    assert answer.response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED
    # the intermediate itself (issued by the root) is not this responder's to answer for either
    answer = ocsp.load_der_ocsp_response(ca.ocsp_response(_request(ca.intermediate, ca.root), now=NOW))
    assert answer.response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED


def _two_certificate_request(ca: CertificateAuthority, leaf_key: ec.EllipticCurvePrivateKey) -> bytes:
    """An OCSPRequest listing two certificates (legal DER; this responder answers one at a time)."""
    one = _request(ca.issue(names=["a.example.test"], public_key=leaf_key.public_key(), now=NOW).certificate,
                   ca.intermediate)
    # OCSPRequest { TBSRequest { requestList SEQUENCE OF Request } }: duplicate the single Request
    tbs_start = 2 + (one[1] & 0x7F if one[1] & 0x80 else 0)
    list_start = tbs_start + 2 + (one[tbs_start + 1] & 0x7F if one[tbs_start + 1] & 0x80 else 0)
    request_start = list_start + 2
    request = one[request_start:request_start + 2 + one[request_start + 1]]
    request_list = b"\x30" + bytes([len(request) * 2]) + request * 2
    tbs = b"\x30" + bytes([len(request_list)]) + request_list
    return b"\x30" + bytes([len(tbs)]) + tbs


@pytest.mark.parametrize("make", [
    lambda ca, key: b"",
    lambda ca, key: b"\x00",
    lambda ca, key: b"not der at all",
    lambda ca, key: b"\x30\x82\xff\xff" + b"\x00" * 10,                    # length beyond the data
    lambda ca, key: b"\x30\x03\x02\x01\x05",                               # a SEQUENCE holding an INTEGER
    lambda ca, key: os.urandom(300),
    lambda ca, key: b"\x30" * 20000,                                       # over the size limit
    lambda ca, key: _request(ca.intermediate, ca.root)[:-3],               # truncated
    _two_certificate_request,
], ids=["empty", "nul", "text", "long-length", "wrong-structure", "random", "huge", "truncated", "two-requests"])
def test_malformed_requests_get_malformed_request(ca: CertificateAuthority, leaf_key: ec.EllipticCurvePrivateKey,
                                                  make: object) -> None:
    assert callable(make)
    answer = ocsp.load_der_ocsp_response(ca.ocsp_response(make(ca, leaf_key), now=NOW))
    assert answer.response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
