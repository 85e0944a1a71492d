"""The drills' PKI: chains up to the right root, URLs at the responder, OCSP and CRL answers tlsward accepts."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID

from tlsward.drills.pki import DRILL_HOST, DrillPKI
from tlsward.x509.revocation import crl_status, load_crl, ocsp_request, ocsp_status

URL = "http://127.0.0.1:9"


@pytest.fixture(scope="module")
def pki() -> DrillPKI:
    return DrillPKI.create(URL)


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def test_leaves_chain_to_the_lab_root_or_the_new_one(pki: DrillPKI) -> None:
    old = pki.issue()
    assert [c.subject.rfc4514_string() for c in old.chain] == [
        f"CN={DRILL_HOST},O=tlsward lab", "CN=tlsward lab Intermediate CA,O=tlsward lab"]
    assert old.chain[1].issuer == pki.cas["root"].cert.subject
    new = pki.issue(ca="intermediate-g2")
    assert new.chain[1].subject.rfc4514_string() == "CN=tlsward lab Intermediate CA G2,O=tlsward lab"
    assert new.chain[1].issuer == pki.cas["root-g2"].cert.subject
    assert pki.root_for("intermediate-g2") is pki.cas["root-g2"] and pki.root_for("intermediate") is pki.cas["root"]
    assert pki.cas["root-g2"].cert.subject != pki.cas["root"].cert.subject


def test_validity_is_relative_to_now(pki: DrillPKI) -> None:
    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    leaf = pki.issue(not_before=dt.timedelta(days=-29.5), not_after=dt.timedelta(days=6.5), now=now)
    assert leaf.cert.not_valid_after_utc == now + dt.timedelta(days=6.5)
    assert leaf.cert.not_valid_after_utc - leaf.cert.not_valid_before_utc == dt.timedelta(days=36)


def test_leaves_point_at_the_responder(pki: DrillPKI) -> None:
    leaf = pki.issue(("a.example", "b.example"))
    aia = leaf.cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    urls = {d.access_method: d.access_location.value for d in aia}
    assert urls[AuthorityInformationAccessOID.OCSP] == f"{URL}/ocsp/intermediate"
    assert urls[AuthorityInformationAccessOID.CA_ISSUERS] == f"{URL}/intermediate.der"
    cdp = leaf.cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert cdp[0].full_name[0].value == f"{URL}/intermediate.crl"
    san = leaf.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["a.example", "b.example"]
    assert {"/intermediate.crl", "/root-g2.der", "/intermediate-g2.pem"} <= pki.routes()


def test_ocsp_answers_good_then_revoked_and_refuses_strangers(pki: DrillPKI) -> None:
    leaf = pki.issue()
    issuer = der(pki.cas["intermediate"].cert)
    now = dt.datetime.now(dt.UTC)
    request = ocsp_request(der(leaf.cert), issuer)
    assert ocsp_status(pki.ocsp_answer("intermediate", request), der(leaf.cert), issuer, now).status == "good"
    pki.revoked.add(("intermediate", leaf.cert.serial_number))
    assert ocsp_status(pki.ocsp_answer("intermediate", request), der(leaf.cert), issuer, now).status == "revoked"
    crl = load_crl(pki.crl("intermediate"), f"{URL}/intermediate.crl")
    assert crl_status(crl, der(leaf.cert), issuer, now).status == "revoked"
    stranger = pki.issue(ca="intermediate-g2")
    answer = ocsp.load_der_ocsp_response(pki.ocsp_answer(
        "intermediate", ocsp_request(der(stranger.cert), der(pki.cas["intermediate-g2"].cert))))
    assert answer.response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED
    garbage = ocsp.load_der_ocsp_response(pki.ocsp_answer("intermediate", b"not a request"))
    assert garbage.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_a_crl_without_revocations_says_good(pki: DrillPKI) -> None:
    leaf = pki.issue(ca="intermediate-g2")
    issuer = der(pki.cas["intermediate-g2"].cert)
    crl = load_crl(pki.crl("intermediate-g2"), f"{URL}/intermediate-g2.crl")
    assert crl_status(crl, der(leaf.cert), issuer, dt.datetime.now(dt.UTC)).status == "good"
