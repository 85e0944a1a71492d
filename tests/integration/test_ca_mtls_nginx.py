"""mTLS with a real nginx: `ssl_verify_client on` trusting the tlsward CA accepts a client certificate it issued,
and rejects it once revoked and the CRL is reloaded (curl is the client)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.integration.ca_support import free_port, run
from tests.integration.nginx_process import NginxProcess
from tlsward.ca.authority import CertificateAuthority
from tlsward.ca.keys import private_key_pem
from tlsward.storage import Store, open_store

pytestmark = pytest.mark.integration


class MtlsNginx(NginxProcess):
    """nginx with a master process (so that ``-s reload`` rereads the CRL), one worker, on loopback."""

    def __init__(self, prefix: Path, ca_dir: Path) -> None:
        self.prefix, self.port = prefix, free_port()
        self.conf = prefix / "nginx.conf"
        for sub in ("logs", "tmp"):
            (prefix / sub).mkdir(exist_ok=True)
        self.conf.write_text(f"""
daemon off;
master_process on;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {prefix}/logs/access.log;
    client_body_temp_path {prefix}/tmp;
    proxy_temp_path {prefix}/tmp;
    fastcgi_temp_path {prefix}/tmp;
    uwsgi_temp_path {prefix}/tmp;
    scgi_temp_path {prefix}/tmp;
    server {{
        listen 127.0.0.1:{self.port} ssl;
        ssl_certificate {prefix}/server.fullchain.pem;
        ssl_certificate_key {prefix}/server.key;
        ssl_client_certificate {ca_dir}/root.pem;
        ssl_trusted_certificate {ca_dir}/intermediate.pem;
        ssl_verify_client on;
        ssl_verify_depth 2;
        ssl_crl {ca_dir}/crl.pem;
        keepalive_timeout 0;
        location / {{ return 200 "hello $ssl_client_s_dn\\n"; }}
    }}
}}
""")

    def reload(self) -> None:
        proc = self._run("-s", "reload")
        assert proc.returncode == 0, proc.stderr


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(f"sqlite:///{tmp_path / 'inventory.db'}") as opened:
        yield opened


def _curl(port: int, client: Path, ca_dir: Path) -> str:
    """The HTTP status curl gets presenting ``client``'s certificate and chain ("000" if the handshake fails)."""
    done = run(shutil.which("curl") or "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
               "--cacert", str(ca_dir / "root.pem"), "--cert", str(client / "fullchain.pem"), "--key",
               str(client / "key.pem"), f"https://127.0.0.1:{port}/", check=False)
    return done.stdout.strip()


def test_nginx_accepts_then_rejects_a_revoked_client(tmp_path: Path, store: Store) -> None:
    ca = CertificateAuthority.init(tmp_path / "ca", store, name="mTLS", passphrase=b"mtls secret")
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = ca.issue(names=["localhost", "127.0.0.1"], public_key=server_key.public_key(), profile="server")
    (prefix / "server.fullchain.pem").write_bytes(server.fullchain_pem())
    (prefix / "server.key").write_bytes(private_key_pem(server_key, None))
    client_dir = tmp_path / "client"
    client_dir.mkdir()
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = ca.issue(names=["alice.clients.test"], public_key=client_key.public_key(), profile="client")
    (client_dir / "fullchain.pem").write_bytes(client.fullchain_pem())
    (client_dir / "key.pem").write_bytes(private_key_pem(client_key, None))
    # a server-only certificate is no client certificate: nginx must refuse it (EKU)
    wrong_dir = tmp_path / "wrong"
    wrong_dir.mkdir()
    wrong = ca.issue(names=["bob.clients.test"], public_key=client_key.public_key(), profile="server")
    (wrong_dir / "fullchain.pem").write_bytes(wrong.fullchain_pem())
    (wrong_dir / "key.pem").write_bytes(private_key_pem(client_key, None))

    nginx = MtlsNginx(prefix, ca.directory)
    nginx.check()
    nginx.start()
    try:
        assert _curl(nginx.port, client_dir, ca.directory) == "200"
        assert _curl(nginx.port, wrong_dir, ca.directory) == "400"
        ca.revoke(client.serial)          # writes crl.pem (intermediate CRL + root CRL) at once
        nginx.reload()
        deadline = time.monotonic() + 10  # the reload is asynchronous: new workers take over shortly
        status = _curl(nginx.port, client_dir, ca.directory)
        while status != "400":
            assert time.monotonic() < deadline, f"nginx still answers {status} to a revoked client after 10 s"
            time.sleep(0.1)
            status = _curl(nginx.port, client_dir, ca.directory)
        log = (prefix / "logs" / "error.log").read_text()
        assert "certificate revoked" in log, log[-2000:]
        # a fresh client certificate still works with the new CRL
        fresh = ca.issue(names=["carol.clients.test"], public_key=client_key.public_key(), profile="client")
        (client_dir / "fullchain.pem").write_bytes(fresh.fullchain_pem())
        assert _curl(nginx.port, client_dir, ca.directory) == "200"
    finally:
        nginx.stop()
