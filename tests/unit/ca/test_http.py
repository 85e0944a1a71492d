"""The CA's ASGI app in-process (Starlette's TestClient: no sockets): routes, media types, OCSP by POST and GET,
garbage answered with malformedRequest, the CRL refresher started by the lifespan or by the first request."""

from __future__ import annotations

import base64

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from starlette.testclient import TestClient

from tlsward.ca.authority import CertificateAuthority
from tlsward.ca.crl import crl_number
from tlsward.ca.http import create_ca_app


def test_routes(ca: CertificateAuthority, leaf_key: ec.EllipticCurvePrivateKey) -> None:
    issued = ca.issue(names=["h.example.test"], public_key=leaf_key.public_key())
    app = create_ca_app(ca)
    with TestClient(app) as client:
        assert app.state.crl_refresher._task is not None   # type: ignore[attr-defined]  (lifespan started it)
        crl = client.get("/crl")
        assert crl.status_code == 200 and crl.headers["content-type"] == "application/pkix-crl"
        assert crl.headers["cache-control"].startswith("max-age=")
        assert x509.load_der_x509_crl(crl.content).issuer == ca.intermediate.subject
        assert x509.load_pem_x509_crl(client.get("/crl.pem").content).issuer == ca.intermediate.subject
        assert x509.load_der_x509_crl(client.get("/root.crl").content).issuer == ca.root.subject
        assert client.get("/root.pem").content == ca.ca_bundle_pem()
        assert client.get("/intermediate.pem").content == ca.intermediate.public_bytes(serialization.Encoding.PEM)
        assert client.get("/chain.pem").content == ca.chain_pem()
        assert client.get("/nothing").status_code == 404
        assert client.post("/crl").status_code == 405

        request = ocsp.OCSPRequestBuilder().add_certificate(
            issued.certificate, ca.intermediate, hashes.SHA256()).build().public_bytes(serialization.Encoding.DER)
        posted = client.post("/ocsp", content=request, headers={"content-type": "application/ocsp-request"})
        assert posted.headers["content-type"] == "application/ocsp-response"
        assert ocsp.load_der_ocsp_response(posted.content).certificate_status == ocsp.OCSPCertStatus.GOOD
        ca.revoke(issued.serial)
        for encoded in (base64.b64encode(request).decode(), base64.urlsafe_b64encode(request).decode().rstrip("=")):
            got = client.get(f"/ocsp/{encoded}")
            assert ocsp.load_der_ocsp_response(got.content).certificate_status == ocsp.OCSPCertStatus.REVOKED
            assert got.headers["cache-control"] == "max-age=300, public"
        for bad in ("!!!", "AAAA", "x" * 5):
            answer = ocsp.load_der_ocsp_response(client.get(f"/ocsp/{bad}").content)
            assert answer.response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
        huge = client.post("/ocsp", content=b"\x30" * 100_000)
        assert ocsp.load_der_ocsp_response(huge.content).response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
        assert crl_number(x509.load_der_x509_crl(client.get("/crl").content)) == crl_number(ca.crl())
    assert app.state.crl_refresher._task is None   # type: ignore[attr-defined]  (stopped with the app)


def test_mounted_app_starts_the_refresher_on_first_request(ca: CertificateAuthority) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    inner = create_ca_app(ca)
    outer = Starlette(routes=[Mount("/ca", app=inner)])
    with TestClient(outer) as client:
        assert inner.state.crl_refresher._task is None   # type: ignore[attr-defined]  (no lifespan passed down)
        assert client.get("/ca/crl").status_code == 200
        assert inner.state.crl_refresher._task is not None   # type: ignore[attr-defined]
