"""tlsward end to end against itself: `tlsward renew` (the ACME client) obtains a certificate from `tlsward acme
serve` (the ACME server on the internal CA, a real process on loopback), deploys it behind a real nginx and
verifies it is served. Then ARI live: the next run asks the server's renewalInfo and finds it not due; once the
certificate is revoked in the CA, the server's suggested window opens at once and the next run renews because of
ARI (the 2/3 rule alone would have waited weeks), replacing the old certificate (RFC 9773 `replaces`)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from tests.integration.acme_server_support import AcmeServer, running_acme_server
from tests.integration.lifecycle_support import Nginx, self_signed
from tlsward.ca.authority import CertificateAuthority
from tlsward.storage import open_store
from tlsward.storage.ca import CaStore
from tlsward.storage.lifecycle import LifecycleStore

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

NAME = "www.tlsward.test"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AcmeServer]:
    with running_acme_server(tmp_path_factory.mktemp("acme-own")) as running:
        yield running


def _renew(config: Path, db: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from tlsward.cli.main import run; run()", "renew", "--all",
                           "--config", str(config), "--db", db], capture_output=True, text=True, timeout=90,
                          env={**os.environ, "COLUMNS": "200"}, check=False)


def _served_leaf(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificates(path.read_bytes())[0]


def test_renew_obtains_from_tlswards_acme_server_and_ari_drives_the_next_renewal(server: AcmeServer,
                                                                                   tmp_path: Path) -> None:
    (tmp_path / "tls").mkdir()
    self_signed(tmp_path, "boot")
    (tmp_path / "boot.pem").rename(tmp_path / "tls" / "fullchain.pem")
    (tmp_path / "boot.key").rename(tmp_path / "tls" / "www.key")
    self_signed(tmp_path, "other")
    config = tmp_path / "certificates.toml"
    config.write_text(f"""
state_dir = "state"
[[certificate]]
name = "www"
names = ["{NAME}"]
source = "acme"
[certificate.acme]
directory = "{server.directory_url}"
ca_bundle = "{server.root_pem}"
email = "ops@tlsward.test"
challenge = "http-01-listener"
listen = "127.0.0.1:{server.http_port}"
[certificate.deploy]
fullchain = "tls/fullchain.pem"
key = "tls/www.key"
reload = {{ nginx = true, config = "nginx.conf", prefix = "." }}
[certificate.verify]
endpoints = [{{ target = "127.0.0.1:PORT", sni = "{NAME}" }}]
trust = "{server.root_pem}"
timeout = "15s"
""", encoding="utf-8")
    nginx = Nginx(tmp_path)
    config.write_text(config.read_text().replace("PORT", str(nginx.port)))
    nginx.check()
    nginx.start()
    db = f"sqlite:///{tmp_path / 'lifecycle.db'}"
    try:
        first = _renew(config, db)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "deployed, nginx reloaded, verified 127.0.0.1:" in first.stdout, first.stdout
        leaf = _served_leaf(tmp_path / "tls" / "fullchain.pem")
        assert nginx.served() == leaf.fingerprint(hashes.SHA256()).hex()
        assert leaf.issuer == x509.load_pem_x509_certificates(
            (server.ca_dir / "intermediate.pem").read_bytes())[0].subject, "issued by tlsward's intermediate"

        again = _renew(config, db)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "not due" in again.stdout and "ARI renewal window" in again.stdout, again.stdout

        with open_store(server.db_url) as store:       # the CA side: revoke it (key compromise, say)
            ca = CertificateAuthority.open(server.ca_dir, store, passphrase=b"acme integration passphrase")
            ca.revoke(leaf.serial_number, reason=x509.ReasonFlags.key_compromise)

        third = _renew(config, db)
        assert third.returncode == 0, third.stdout + third.stderr
        assert "renewed (the CA's ARI renewal window has passed)" in third.stdout \
            or "renewed (inside the CA's ARI renewal window)" in third.stdout, third.stdout
        renewed = _served_leaf(tmp_path / "tls" / "fullchain.pem")
        assert renewed.serial_number != leaf.serial_number
        assert nginx.served() == renewed.fingerprint(hashes.SHA256()).hex()
        lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
        assert dt.datetime.now(dt.UTC) < leaf.not_valid_before_utc + lifetime * 2 / 3, \
            "the 2/3 rule alone would not have renewed yet: ARI did"
        with open_store(server.db_url) as store:
            record = CaStore(store).find(renewed.fingerprint(hashes.SHA256()).hex())
        assert record is not None and record.replaces == leaf.serial_number, "the order named what it replaces"
        with open_store(db) as store:
            assert [e.outcome.value for e in LifecycleStore(store).history("www")] == ["verified", "verified"]
    finally:
        nginx.stop()
