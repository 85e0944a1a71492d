"""The "renewed on disk but not deployed" check against a real nginx: the certificate file is replaced while
nginx keeps serving the old one in memory, and ``tlsward inventory discover configs --check`` says so; after a
restart it is quiet again."""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.e2e.test_scan_cli import explain, tlsward
from tests.integration.nginx_process import NginxProcess
from tlsward.cli.exit_codes import ExitCode

NAME = "app.deploy.test"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Deploy Test CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert, key


def _write_leaf(directory: Path, ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey], days: int) -> str:
    """A leaf for NAME valid ``days`` more days, written over cert.pem/key.pem; its SHA-256 fingerprint."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAME)]))
            .issuer_name(ca[0].subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME)]), critical=False)
            .sign(ca[1], hashes.SHA256()))
    (directory / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                          serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    (directory / "key.pem").chmod(0o600)
    (directory / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert.fingerprint(hashes.SHA256()).hex()


class Nginx(NginxProcess):
    def __init__(self, prefix: Path, port: int) -> None:
        self.prefix, self.port = prefix, port
        self.conf = prefix / "nginx.conf"

    def write_config(self) -> None:
        (self.prefix / "logs").mkdir(exist_ok=True)
        self.conf.write_text(f"""
master_process off;
daemon off;
pid {self.prefix}/nginx.pid;
error_log {self.prefix}/logs/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {self.prefix}/tmp;
    proxy_temp_path {self.prefix}/tmp;
    fastcgi_temp_path {self.prefix}/tmp;
    uwsgi_temp_path {self.prefix}/tmp;
    scgi_temp_path {self.prefix}/tmp;
    server {{
        listen 127.0.0.1:{self.port} ssl;
        server_name {NAME};
        ssl_certificate {self.prefix}/cert.pem;
        ssl_certificate_key {self.prefix}/key.pem;
        location / {{ return 200 "ok\\n"; }}
    }}
}}
""")


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[Nginx]:
    (tmp_path / "tmp").mkdir()
    server = Nginx(tmp_path, _free_port())
    yield server
    server.stop()


def test_nginx_serving_an_old_certificate_after_renewal_on_disk(nginx: Nginx, tmp_path: Path) -> None:
    ca = _ca()
    (tmp_path / "ca.pem").write_bytes(ca[0].public_bytes(serialization.Encoding.PEM))
    _write_leaf(tmp_path, ca, days=5)
    nginx.write_config()
    nginx.check()
    nginx.start()
    db = f"sqlite:///{tmp_path / 'inventory.db'}"
    args = ("inventory", "discover", "configs", str(nginx.conf), "--check", "--ca-file", str(tmp_path / "ca.pem"),
            "--team", "web", "--db", db)
    target = f"{NAME}:{nginx.port}"

    fresh = tlsward(*args)
    assert fresh.returncode == ExitCode.OK, explain(fresh)
    assert f"{target}  <- {tmp_path}/cert.pem" in fresh.stdout and "deploy.not_deployed" not in fresh.stdout

    renewed = _write_leaf(tmp_path, ca, days=90)      # certbot renewed; nobody reloaded nginx
    stale = tlsward(*args)
    assert stale.returncode == ExitCode.FINDINGS, explain(stale)
    assert f"{target}: deploy.not_deployed" in stale.stdout, explain(stale)
    assert "renewed on disk but the server still serves the old certificate" in stale.stdout
    assert renewed[:16] in stale.stdout and "nginx -s reload" in stale.stdout

    shown = tlsward("inventory", "show", target, "--db", db)
    assert shown.returncode == ExitCode.OK and "connect 127.0.0.1" in shown.stdout, explain(shown)

    nginx.stop()
    nginx.start()                                      # the reload that was forgotten
    deployed = tlsward(*args)
    assert deployed.returncode == ExitCode.OK, explain(deployed)
    assert "deploy.not_deployed" not in deployed.stdout
