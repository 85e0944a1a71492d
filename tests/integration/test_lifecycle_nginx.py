"""Certificate lifecycle against a real nginx: tlsward's own CA issues, the files are deployed, nginx is reloaded
and the endpoint is scanned until it serves the new certificate. A broken deploy (the certificate written next to
a key nginx does not read, so `nginx -t` fails) and a deploy the endpoint does not serve are rolled back, nginx
keeps serving the previous certificate, and the monitor raises cert.deploy_failed until a good run resolves it.
Two renewals of one certificate never run at once."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.integration.lifecycle_support import NAME, Nginx, self_signed
from tlsward.ca.authority import CertificateAuthority
from tlsward.lifecycle.config import LifecycleConfig, load_lifecycle_config
from tlsward.lifecycle.renew import renew_certificates
from tlsward.model.alerts import AlertStatus, Notification
from tlsward.model.lifecycle import Outcome
from tlsward.model.monitor import MonitorConfig
from tlsward.monitor.scheduler import Monitor
from tlsward.storage import Store, open_store
from tlsward.storage.alerts import AlertStore
from tlsward.storage.lifecycle import LifecycleStore

pytestmark = pytest.mark.integration


@dataclass
class Site:
    dir: Path
    nginx: Nginx
    store: Store
    db_url: str
    bootstrap_sha: str

    def config(self, *, key: str = "tls/www.key", verify_port: int | None = None,
               verify_timeout: str = "4s") -> LifecycleConfig:
        """certificates.toml for www; ``key`` where the deploy writes the key, ``verify_port`` what is checked."""
        path = self.dir / "certificates.toml"
        path.write_text(f"""
state_dir = "state"
[[certificate]]
name = "www"
names = ["{NAME}"]
source = "ca"
[certificate.ca]
dir = "ca"
lifetime = "7d"
[certificate.deploy]
cert = "tls/www.crt"
chain = "tls/chain.pem"
fullchain = "tls/fullchain.pem"
key = "{key}"
reload = {{ nginx = true, config = "nginx.conf", prefix = "." }}
reload_timeout = "20s"
[certificate.verify]
endpoints = [{{ target = "127.0.0.1:{verify_port or self.nginx.port}", sni = "{NAME}" }}]
timeout = "{verify_timeout}"
""", encoding="utf-8")
        return load_lifecycle_config(path)

    def files(self) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted((self.dir / "tls").iterdir()) if p.is_file()}

    def renew(self, config: LifecycleConfig) -> tuple[str, list[str]]:
        [result] = renew_certificates(config, ["www"], store=self.store, force=True)
        return result.status, result.lines

    def monitor_once(self) -> list[Notification]:
        sent: list[Notification] = []
        monitor = Monitor(self.db_url, MonitorConfig(), submit=sent.append, receivers=["oncall"])
        asyncio.run(monitor.run(asyncio.Event(), once=True))
        return sent


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    (tmp_path / "tls").mkdir()
    bootstrap = self_signed(tmp_path, "boot")
    (tmp_path / "boot.pem").rename(tmp_path / "tls" / "fullchain.pem")
    (tmp_path / "boot.key").rename(tmp_path / "tls" / "www.key")
    self_signed(tmp_path, "other")
    db_url = f"sqlite:///{tmp_path / 'inventory.db'}"
    store = open_store(db_url)
    CertificateAuthority.init(tmp_path / "ca", store, name="Lifecycle Test CA", passphrase=None,
                              root_passphrase=b"root secret of the test CA")
    nginx = Nginx(tmp_path)
    nginx.check()
    nginx.start()
    try:
        yield Site(tmp_path, nginx, store, db_url, bootstrap)
    finally:
        nginx.stop()
        store.close()


def sha_of(pem: bytes) -> str:
    return hashlib.sha256(x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)).hexdigest()


def test_issue_deploy_reload_verify_then_a_wrong_key_is_rolled_back_and_alerted(site: Site) -> None:
    assert site.nginx.served() == site.bootstrap_sha
    status, lines = site.renew(site.config())
    assert status == "verified", lines
    issued = sha_of((site.dir / "tls" / "www.crt").read_bytes())
    assert site.nginx.served() == issued, "nginx really serves the CA-issued certificate"
    assert lines[-1].startswith("www: renewed (no certificate deployed yet: "), lines
    assert f"www.crt does not exist), deployed, nginx reloaded, verified 127.0.0.1:{site.nginx.port}" in lines[-1]
    assert f"serves {issued[:8]}…" in lines[-1]
    assert (site.dir / "tls" / "www.key").stat().st_mode & 0o777 == 0o600
    assert (site.dir / "tls" / "fullchain.pem.prev").exists(), "the previous version is kept"
    good = site.files()

    # The deploy writes the new key where nginx does not read it: nginx -t refuses the pair, tlsward restores.
    status, lines = site.renew(site.config(key="tls/www-new.key"))
    assert status == "rolled_back", lines
    assert "nginx -t" in lines[-2] and "key values mismatch" in lines[-2], lines
    assert "previous files restored, nginx reloaded again" in lines[-1], lines
    assert f"the previous certificate {issued[:8]}… is served again" in lines[-1], lines
    now = site.files()
    deployed = ("www.crt", "chain.pem", "fullchain.pem", "www.key")
    assert {k: now[k] for k in deployed} == {k: good[k] for k in deployed}, "the whole set is the previous one"
    assert "www-new.key" not in now, "a file that did not exist before the deploy is removed again"
    assert site.nginx.served() == issued
    event = LifecycleStore(site.store).latest()["www"]
    assert event.outcome is Outcome.ROLLED_BACK and event.old_sha256 == issued and "key values mismatch" in event.reason

    sent = site.monitor_once()
    firing = {r.alert.key: r.alert for r in AlertStore(site.store).load(status=AlertStatus.FIRING)}
    alert = firing["cert.deploy_failed:www"]
    assert alert.rule == "cert.deploy_failed" and "key values mismatch" in alert.description
    assert alert.endpoints == (f"127.0.0.1:{site.nginx.port} (sni {NAME})",)
    assert [n.alert.key for n in sent] == ["cert.deploy_failed:www"] and sent[0].receiver == "oncall"
    assert sent[0].alert.runbook_url == "docs/findings.md#certdeploy_failed"

    # Fixed config: the next run succeeds and the monitor resolves the alert.
    status, lines = site.renew(site.config())
    assert status == "verified", lines
    site.monitor_once()
    resolved = {r.alert.key: r.alert for r in AlertStore(site.store).load()}
    assert resolved["cert.deploy_failed:www"].status is AlertStatus.RESOLVED


def test_an_endpoint_that_does_not_serve_the_new_certificate_is_rolled_back(site: Site) -> None:
    status, lines = site.renew(site.config())
    assert status == "verified", lines
    issued = sha_of((site.dir / "tls" / "www.crt").read_bytes())
    status, lines = site.renew(site.config(verify_port=site.nginx.other_port, verify_timeout="1.5s"))
    assert status == "rolled_back", lines
    assert "verify failed" in lines[-2] and "instead of the new" in lines[-2], lines
    assert "previous files restored, nginx reloaded again, the previous certificate is NOT served" in lines[-1]
    event = LifecycleStore(site.store).latest()["www"]
    assert event.outcome is Outcome.ROLLED_BACK and event.new_sha256 != issued
    assert site.nginx.served() == issued
    assert sha_of((site.dir / "tls" / "www.crt").read_bytes()) == issued


HOLD = """
import sys, time
from pathlib import Path
from tlsward.lifecycle.lock import certificate_lock
with certificate_lock(Path(sys.argv[1]), "www"):
    print("held", flush=True)
    time.sleep(30)
"""


def test_a_concurrent_renewal_of_the_same_certificate_is_refused(site: Site) -> None:
    config = site.config()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(config.state_dir)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        [result] = renew_certificates(config, ["www"], store=site.store, force=True)
        assert result.status == "busy" and not result.ok
        assert result.lines == [f"www: skipped, renewal of www already running (pid {holder.pid})"]
        assert site.nginx.served() == site.bootstrap_sha, "nothing was touched"
    finally:
        holder.kill()
        holder.wait(10)
    [result] = renew_certificates(config, ["www"], store=site.store, force=True, lock_wait=5)
    assert result.status == "verified", result.lines
