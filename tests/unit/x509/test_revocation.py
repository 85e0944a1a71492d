"""CRL and OCSP verdicts from bytes: every answer built with cryptography's own builders, checked at ``NOW``."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.unit.x509.conftest import NOW
from tlsward.lab.pki import DAY, Issued, LabPKI, PrivateKey
from tlsward.model.errors import CertificateError
from tlsward.x509.revocation import (
    crl_status,
    is_ocsp_response,
    issues,
    load_crl,
    load_issuer_certificates,
    ocsp_cache_key,
    ocsp_next_update,
    ocsp_request,
    ocsp_status,
)

URL = "http://127.0.0.1:9/pki/intermediate.crl"
OCSP_URL = "http://127.0.0.1:9/ocsp"
SHA1 = hashes.SHA1()  # noqa: S303 - OCSP certificate ids are SHA-1 in practice (RFC 6960, CA/B Forum)


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


@pytest.fixture(scope="module")
def leaf(pki: LabPKI) -> Issued:
    return pki.leaves["ok"]


@pytest.fixture(scope="module")
def issuer(pki: LabPKI) -> Issued:
    return pki.cas["intermediate"]


def make_crl(ca: Issued, revoked: dict[int, x509.ReasonFlags | None], *, this_update: dt.datetime = NOW - DAY,
             next_update: dt.datetime | None = NOW + 6 * DAY, signer: PrivateKey | None = None,
             name: x509.Name | None = None) -> x509.CertificateRevocationList:
    builder = (x509.CertificateRevocationListBuilder()
               .issuer_name(name or ca.cert.subject)
               .last_update(this_update)
               .next_update(next_update or this_update + DAY))
    for serial, reason in revoked.items():
        entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(NOW - 2 * DAY)
        if reason is not None:
            entry = entry.add_extension(x509.CRLReason(reason), critical=False)
        builder = builder.add_revoked_certificate(entry.build())
    return builder.sign(signer or ca.key, hashes.SHA256())


# --- CRL --------------------------------------------------------------------------------------------------


def test_crl_not_listing_the_serial_says_good(leaf: Issued, issuer: Issued) -> None:
    crl = load_crl(make_crl(issuer, {12345: None}).public_bytes(Encoding.DER), URL)
    status = crl_status(crl, _der(leaf.cert), _der(issuer.cert), NOW)
    assert (status.status, status.source, status.url, status.checked_urls) == ("good", "crl", URL, (URL,))
    assert status.reason.startswith(f"serial {hex(leaf.cert.serial_number)} not listed in {URL}")
    assert status.revoked_at is None and status.established


def test_crl_listing_the_serial_says_revoked_with_date_and_reason(leaf: Issued, issuer: Issued) -> None:
    listed = make_crl(issuer, {leaf.cert.serial_number: x509.ReasonFlags.key_compromise})
    status = crl_status(load_crl(listed.public_bytes(Encoding.DER), URL), _der(leaf.cert), _der(issuer.cert), NOW)
    since = NOW - 2 * DAY
    assert status.status == "revoked"
    assert status.revoked_at == since.replace(microsecond=0)
    assert status.reason == (f"serial {hex(leaf.cert.serial_number)} listed in {URL} since {since:%Y-%m-%d} "
                             "(keyCompromise)")


def test_pem_crl_and_entry_without_reason(leaf: Issued, issuer: Issued) -> None:
    listed = make_crl(issuer, {leaf.cert.serial_number: None})
    status = crl_status(load_crl(listed.public_bytes(Encoding.PEM), URL), _der(leaf.cert), _der(issuer.cert), NOW)
    assert status.status == "revoked" and not status.reason.endswith(")")


def test_remove_from_crl_entry_is_not_a_revocation(leaf: Issued, issuer: Issued) -> None:
    listed = make_crl(issuer, {leaf.cert.serial_number: x509.ReasonFlags.remove_from_crl})
    status = crl_status(load_crl(listed.public_bytes(Encoding.DER), URL), _der(leaf.cert), _der(issuer.cert), NOW)
    assert status.status == "good"


def test_stale_crl_is_unknown_crl_expired(leaf: Issued, issuer: Issued) -> None:
    stale = make_crl(issuer, {leaf.cert.serial_number: x509.ReasonFlags.key_compromise},
                     this_update=NOW - 9 * DAY, next_update=NOW - 2 * DAY)
    status = crl_status(load_crl(stale.public_bytes(Encoding.DER), URL), _der(leaf.cert), _der(issuer.cert), NOW)
    assert status.status == "unknown"
    assert status.reason.startswith(f"CRL expired: {URL} (nextUpdate ")
    assert not status.established


def test_crl_from_the_future_is_unknown(leaf: Issued, issuer: Issued) -> None:
    early = make_crl(issuer, {}, this_update=NOW + DAY, next_update=NOW + 8 * DAY)
    status = crl_status(load_crl(early.public_bytes(Encoding.DER), URL), _der(leaf.cert), _der(issuer.cert), NOW)
    assert status.status == "unknown" and "not valid yet" in status.reason


def test_crl_with_a_bad_signature_never_says_revoked(pki: LabPKI, leaf: Issued, issuer: Issued) -> None:
    forged = make_crl(issuer, {leaf.cert.serial_number: x509.ReasonFlags.key_compromise},
                      signer=pki.cas["intermediate-2"].key)
    status = crl_status(load_crl(forged.public_bytes(Encoding.DER), URL), _der(leaf.cert), _der(issuer.cert), NOW)
    assert status.status == "unknown"
    assert status.reason == (f"CRL {URL} signature does not verify with the key of "
                             f"{issuer.cert.subject.rfc4514_string()}")


def test_crl_of_another_ca_is_unknown(pki: LabPKI, leaf: Issued, issuer: Issued) -> None:
    other = make_crl(pki.cas["intermediate-2"], {leaf.cert.serial_number: None})
    status = crl_status(load_crl(other.public_bytes(Encoding.DER), URL), _der(leaf.cert), _der(issuer.cert), NOW)
    assert status.status == "unknown" and "not by the certificate's issuer" in status.reason


@pytest.mark.parametrize("data", [b"", b"not a crl", b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"])
def test_garbage_is_not_a_crl(data: bytes) -> None:
    with pytest.raises(CertificateError, match=f"^CRL {URL} is not a CRL"):
        load_crl(data, URL)


def test_crl_signature_check_is_memoised(leaf: Issued, issuer: Issued) -> None:
    crl = load_crl(make_crl(issuer, {}).public_bytes(Encoding.DER), URL)
    for _ in range(3):
        assert crl_status(crl, _der(leaf.cert), _der(issuer.cert), NOW).status == "good"
    assert len(crl._verified) == 1


# --- OCSP -------------------------------------------------------------------------------------------------


def make_response(cert: x509.Certificate, issuer: Issued, status: ocsp.OCSPCertStatus, *,
                  signer: Issued | None = None, include: tuple[x509.Certificate, ...] = (),
                  algorithm: hashes.HashAlgorithm | None = None, next_update: dt.datetime | None = NOW + 3 * DAY,
                  by_name: bool = False) -> bytes:
    signer = signer or issuer
    revoked = status == ocsp.OCSPCertStatus.REVOKED
    builder = (ocsp.OCSPResponseBuilder()
               .add_response(cert=cert, issuer=issuer.cert, algorithm=algorithm or SHA1,
                             cert_status=status, this_update=NOW - DAY, next_update=next_update,
                             revocation_time=NOW - 3 * DAY if revoked else None,
                             revocation_reason=x509.ReasonFlags.superseded if revoked else None)
               .responder_id(ocsp.OCSPResponderEncoding.NAME if by_name else ocsp.OCSPResponderEncoding.HASH,
                             signer.cert))
    if include:
        builder = builder.certificates(list(include))
    return builder.sign(signer.key, hashes.SHA256()).public_bytes(Encoding.DER)


def make_responder(ca: Issued, *, eku: bool = True, name: str = "tlsward test OCSP responder") -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
               .issuer_name(ca.cert.subject)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(NOW - DAY)
               .not_valid_after(NOW + 30 * DAY))
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
    return Issued(builder.sign(ca.key, hashes.SHA256()), key)


def test_ocsp_request_asks_about_the_leaf_with_a_sha1_id(leaf: Issued, issuer: Issued) -> None:
    request = ocsp.load_der_ocsp_request(ocsp_request(_der(leaf.cert), _der(issuer.cert)))
    assert request.serial_number == leaf.cert.serial_number
    assert isinstance(request.hash_algorithm, hashes.SHA1)
    assert ocsp_cache_key(_der(leaf.cert), _der(issuer.cert)).endswith(f":{leaf.cert.serial_number:x}")


@pytest.mark.parametrize("algorithm", [SHA1, hashes.SHA256()], ids=["sha1-id", "sha256-id"])
def test_ocsp_good_signed_by_the_issuer(leaf: Issued, issuer: Issued, algorithm: hashes.HashAlgorithm) -> None:
    response = make_response(leaf.cert, issuer, ocsp.OCSPCertStatus.GOOD, algorithm=algorithm)
    status = ocsp_status(response, _der(leaf.cert), _der(issuer.cert), NOW, url=OCSP_URL)
    assert (status.status, status.source, status.url, status.checked_urls) == ("good", "ocsp", OCSP_URL, (OCSP_URL,))
    assert status.reason.startswith(f"OCSP responder {OCSP_URL} says serial {hex(leaf.cert.serial_number)} is good")
    assert ocsp_next_update(response) == (NOW + 3 * DAY).replace(microsecond=0)


def test_ocsp_revoked(leaf: Issued, issuer: Issued) -> None:
    response = make_response(leaf.cert, issuer, ocsp.OCSPCertStatus.REVOKED, by_name=True)
    status = ocsp_status(response, _der(leaf.cert), _der(issuer.cert), NOW, url=OCSP_URL)
    assert status.status == "revoked"
    assert status.revoked_at == (NOW - 3 * DAY).replace(microsecond=0)
    assert status.reason == (f"serial {hex(leaf.cert.serial_number)} reported revoked by OCSP responder {OCSP_URL} "
                             f"since {NOW - 3 * DAY:%Y-%m-%d} (superseded)")


def test_ocsp_unknown_certificate_status(leaf: Issued, issuer: Issued) -> None:
    response = make_response(leaf.cert, issuer, ocsp.OCSPCertStatus.UNKNOWN)
    status = ocsp_status(response, _der(leaf.cert), _der(issuer.cert), NOW, url=OCSP_URL)
    assert status.status == "unknown" and "does not know serial" in status.reason


def test_ocsp_response_about_another_certificate_is_unknown(pki: LabPKI, leaf: Issued, issuer: Issued) -> None:
    response = make_response(pki.leaves["wildcard"].cert, issuer, ocsp.OCSPCertStatus.REVOKED)
    status = ocsp_status(response, _der(leaf.cert), _der(issuer.cert), NOW, url=OCSP_URL)
    assert status.status == "unknown" and "answered about another certificate" in status.reason


def test_ocsp_bad_signature_never_says_revoked(leaf: Issued, issuer: Issued) -> None:
    signed = make_response(leaf.cert, issuer, ocsp.OCSPCertStatus.REVOKED, by_name=True)
    response = signed[:-1] + bytes([signed[-1] ^ 0xFF])   # the signature is the last field: corrupt it
    status = ocsp_status(response, _der(leaf.cert), _der(issuer.cert), NOW, url=OCSP_URL)
    assert status.status == "unknown"
    assert status.reason == (f"OCSP responder {OCSP_URL}: response signature does not verify with the key of "
                             f"{issuer.cert.subject.rfc4514_string()}")


def test_ocsp_delegated_responder_certified_by_the_issuer(leaf: Issued, issuer: Issued) -> None:
    responder = make_responder(issuer)
    response = make_response(leaf.cert, issuer, ocsp.OCSPCertStatus.REVOKED, signer=responder,
                             include=(responder.cert,))
    assert ocsp_status(response, _der(leaf.cert), _der(issuer.cert), NOW, url=OCSP_URL).status == "revoked"


def test_ocsp_delegated_responder_without_ocsp_signing_is_refused(leaf: Issued, issuer: Issued) -> None:
    responder = make_responder(issuer, eku=False)
    response = make_response(leaf.cert, issuer, ocsp.OCSPCertStatus.GOOD, signer=responder,
                             include=(responder.cert,))
    status = ocsp_status(response, _der(leaf.cert), _der(issuer.cert), NOW, url=OCSP_URL)
    assert status.status == "unknown" and "lacks the OCSPSigning extended key usage" in status.reason


def test_ocsp_delegated_responder_of_another_ca_is_refused(pki: LabPKI, leaf: Issued, issuer: Issued) -> None:
    responder = make_responder(pki.cas["intermediate-2"])
    response = make_response(leaf.cert, issuer, ocsp.OCSPCertStatus.REVOKED, signer=responder,
                             include=(responder.cert,))
    status = ocsp_status(response, _der(leaf.cert), _der(issuer.cert), NOW, url=OCSP_URL)
    assert status.status == "unknown" and "is not certified by the issuer" in status.reason


def test_ocsp_responder_not_included_is_unknown(leaf: Issued, issuer: Issued) -> None:
    responder = make_responder(issuer)
    response = make_response(leaf.cert, issuer, ocsp.OCSPCertStatus.GOOD, signer=responder)
    status = ocsp_status(response, _der(leaf.cert), _der(issuer.cert), NOW, url=OCSP_URL)
    assert status.status == "unknown" and "unknown responder" in status.reason


def test_expired_ocsp_response_is_unknown(leaf: Issued, issuer: Issued) -> None:
    response = make_response(leaf.cert, issuer, ocsp.OCSPCertStatus.GOOD, next_update=NOW - DAY / 2)
    status = ocsp_status(response, _der(leaf.cert), _der(issuer.cert), NOW, url=OCSP_URL)
    assert status.status == "unknown" and "response expired" in status.reason


def test_stapled_response_is_judged_the_same_way(leaf: Issued, issuer: Issued) -> None:
    response = make_response(leaf.cert, issuer, ocsp.OCSPCertStatus.GOOD)
    status = ocsp_status(response, _der(leaf.cert), _der(issuer.cert), NOW, source="stapled-ocsp")
    assert (status.status, status.source, status.url, status.checked_urls) == ("good", "stapled-ocsp", "", ())
    assert status.reason.startswith("the stapled OCSP response says serial")


@pytest.mark.parametrize(("code", "expected"), [(ocsp.OCSPResponseStatus.TRY_LATER, "unavailable"),
                                                 (ocsp.OCSPResponseStatus.INTERNAL_ERROR, "unavailable"),
                                                 (ocsp.OCSPResponseStatus.UNAUTHORIZED, "unknown")])
def test_unsuccessful_ocsp_answers(leaf: Issued, issuer: Issued, code: ocsp.OCSPResponseStatus,
                                   expected: str) -> None:
    response = ocsp.OCSPResponseBuilder.build_unsuccessful(code).public_bytes(Encoding.DER)
    status = ocsp_status(response, _der(leaf.cert), _der(issuer.cert), NOW, url=OCSP_URL)
    assert status.status == expected and "instead of a status" in status.reason
    assert ocsp_next_update(response) is None


def test_malformed_ocsp_bytes(leaf: Issued, issuer: Issued) -> None:
    assert not is_ocsp_response(b"\x30\x03\x0a\x01")
    status = ocsp_status(b"<html>proxy error</html>", _der(leaf.cert), _der(issuer.cert), NOW, url=OCSP_URL)
    assert status.status == "unknown" and "malformed OCSP response" in status.reason
    assert ocsp_next_update(b"junk") is None


# --- AIA caIssuers ----------------------------------------------------------------------------------------


def test_issuer_downloads_in_every_format(pki: LabPKI, issuer: Issued) -> None:
    root = pki.cas["root"].cert
    want = (_der(issuer.cert),)
    assert load_issuer_certificates(_der(issuer.cert), "u") == want
    assert load_issuer_certificates(issuer.cert.public_bytes(Encoding.PEM), "u") == want
    bundle = [issuer.cert, root]
    p7_der = pkcs7.serialize_certificates(bundle, serialization.Encoding.DER)
    p7_pem = pkcs7.serialize_certificates(bundle, serialization.Encoding.PEM)
    assert set(load_issuer_certificates(p7_der, "u")) == {*want, _der(root)}   # a SET OF: DER order
    assert set(load_issuer_certificates(p7_pem, "u")) == {*want, _der(root)}


def test_issuer_download_that_is_not_a_certificate() -> None:
    with pytest.raises(CertificateError, match=r"^caIssuers http://x/ca\.der served no certificate"):
        load_issuer_certificates(b"<html>404</html>", "http://x/ca.der")


def test_issues_checks_name_and_signature(pki: LabPKI, leaf: Issued, issuer: Issued) -> None:
    assert issues(_der(issuer.cert), _der(leaf.cert))
    assert not issues(_der(pki.cas["intermediate-2"].cert), _der(leaf.cert))
    assert not issues(b"junk", _der(leaf.cert))
