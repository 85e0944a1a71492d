"""``tlsward serve --acme``: the ACME app mounted into the web app answers under /acme with its own URLs (the JWS
url check sees the mount prefix), beside the dashboards and the API."""

from __future__ import annotations

from pathlib import Path

from starlette.testclient import TestClient

from tests.unit.acme.server.acme_support import Acme
from tlsward.acme.server import ValidationSettings
from tlsward.ca.authority import CertificateAuthority
from tlsward.lifecycle.acme_service import create_acme_service
from tlsward.storage import Store
from tlsward.web.app import create_app
from tlsward.web.settings import WebSettings


def test_mounted_in_the_web_app(ca: CertificateAuthority, store: Store, tmp_path: Path) -> None:
    acme = create_acme_service(ca.directory, store, ca=ca, validation=ValidationSettings(always_valid=True))
    web = create_app(WebSettings(db_url=f"sqlite:///{tmp_path / 'web.db'}"), mounts=[("/acme", acme)])
    with TestClient(web) as http:
        assert http.get("/healthz").status_code == 200
        directory = http.get("/acme/directory").json()
        assert directory["newOrder"] == "http://testserver/acme/new-order"
        client = Acme(http)
        assert client.register().status_code == 201
        _, _, download = client.issue("mounted.example.test")
        assert download.status_code == 200 and download.text.count("BEGIN CERTIFICATE") == 2
