"""Debian's certbot against tlsward's ACME server over HTTPS on loopback: obtain a certificate over http-01
(certbot's standalone responder), renew it, revoke it; a name outside the identifier policy is refused with
``rejectedIdentifier``. The certificates chain to the internal CA and the revocation reaches it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from tests.integration.acme_server_support import AcmeServer, running_acme_server
from tlsward.ca.authority import CertificateAuthority
from tlsward.storage import open_store

NAME = "www.tlsward.test"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> object:
    assert shutil.which("certbot"), "certbot (Debian) is required"
    with running_acme_server(tmp_path_factory.mktemp("acme-certbot")) as running:
        yield running


def certbot(server: AcmeServer, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = ["certbot", *args, "--server", server.directory_url, "--config-dir", str(home / "config"),
               "--work-dir", str(home / "work"), "--logs-dir", str(home / "logs"), "--non-interactive",
               "--agree-tos", "--register-unsafely-without-email", "--no-random-sleep-on-renew"]
    env = {**os.environ, "REQUESTS_CA_BUNDLE": str(server.root_pem)}
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, check=False)


def test_obtain_renew_revoke(server: AcmeServer, tmp_path: Path) -> None:
    standalone = ("--standalone", "--preferred-challenges", "http", "--http-01-port", str(server.http_port),
                  "--http-01-address", "127.0.0.1")
    obtained = certbot(server, tmp_path, "certonly", *standalone, "-d", NAME, "-d", "tlsward.test",
                       "--cert-name", "site")
    assert obtained.returncode == 0, obtained.stdout + obtained.stderr
    live = tmp_path / "config" / "live" / "site"
    first = x509.load_pem_x509_certificates((live / "fullchain.pem").read_bytes())
    assert len(first) == 2
    root = x509.load_pem_x509_certificate(server.root_pem.read_bytes())
    first[1].verify_directly_issued_by(root)
    first[0].verify_directly_issued_by(first[1])
    assert set(first[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
               .get_values_for_type(x509.DNSName)) == {NAME, "tlsward.test"}

    renewed = certbot(server, tmp_path, "renew", "--force-renewal", "--cert-name", "site", *standalone)
    assert renewed.returncode == 0, renewed.stdout + renewed.stderr
    second = x509.load_pem_x509_certificates((live / "fullchain.pem").read_bytes())
    assert second[0].serial_number != first[0].serial_number

    revoked = certbot(server, tmp_path, "revoke", "--cert-path", str(live / "cert.pem"), "--reason", "superseded",
                      "--no-delete-after-revoke")
    assert revoked.returncode == 0, revoked.stdout + revoked.stderr
    with open_store(server.db_url) as store:
        ca = CertificateAuthority.open(server.ca_dir, store, passphrase=b"acme integration passphrase")
        assert ca.record(second[0].serial_number).revoked_at is not None
        assert ca.record(first[0].serial_number).revoked_at is None


def test_name_outside_policy_is_refused(server: AcmeServer, tmp_path: Path) -> None:
    refused = certbot(server, tmp_path, "certonly", "--standalone", "--http-01-port", str(server.http_port),
                      "--http-01-address", "127.0.0.1", "-d", "www.example.org")
    assert refused.returncode != 0
    # Debian's certbot 2.1 on Python 3.11 prints "AttributeError: can't set attribute" for every ACME error
    # (josepy's immutable Error meets contextlib's traceback assignment); the server's problem is in its log.
    output = refused.stdout + refused.stderr + (tmp_path / "logs" / "letsencrypt.log").read_text(errors="replace")
    assert "urn:ietf:params:acme:error:rejectedIdentifier" in output, output[-3000:]
    assert "policy forbids issuing for www.example.org" in output
    assert not list((tmp_path / "config").glob("live/*/cert.pem"))
