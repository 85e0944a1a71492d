"""Shared by the lifecycle integration tests: a real nginx (master and workers, so `nginx -s reload` is graceful)
serving tls/fullchain.pem + tls/www.key on one port and a fixed other certificate on another, and throw-away
self-signed certificates to start it with."""

from __future__ import annotations

import datetime as dt
import socket
import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.integration.nginx_process import NginxProcess

NAME = "www.lifecycle.test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def self_signed(directory: Path, stem: str) -> str:
    """A throw-away self-signed certificate (what a fresh server ships with); its SHA-256."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAME)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME)]), critical=False)
            .sign(key, hashes.SHA256()))
    (directory / f"{stem}.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                              serialization.PrivateFormat.PKCS8,
                                                              serialization.NoEncryption()))
    (directory / f"{stem}.key").chmod(0o600)
    (directory / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert.fingerprint(hashes.SHA256()).hex()


class Nginx(NginxProcess):
    """A master with workers (a graceful `nginx -s reload` needs the master), serving tls/fullchain.pem with
    tls/www.key on ``port`` and a fixed other certificate on ``other_port``."""

    def __init__(self, prefix: Path) -> None:
        self.prefix, self.port, self.other_port = prefix, free_port(), free_port()
        self.conf = prefix / "nginx.conf"
        (prefix / "logs").mkdir(exist_ok=True)
        (prefix / "tmp").mkdir(exist_ok=True)
        temp = "\n".join(f"    {kind}_temp_path {prefix}/tmp;" for kind in
                         ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        self.conf.write_text(f"""
master_process on;
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
{temp}
    server {{
        listen 127.0.0.1:{self.port} ssl;
        server_name {NAME};
        ssl_certificate {prefix}/tls/fullchain.pem;
        ssl_certificate_key {prefix}/tls/www.key;
        location / {{ return 200 "ok\\n"; }}
    }}
    server {{
        listen 127.0.0.1:{self.other_port} ssl;
        ssl_certificate {prefix}/other.pem;
        ssl_certificate_key {prefix}/other.key;
    }}
}}
""")

    def served(self, port: int | None = None) -> str:
        """The SHA-256 of the leaf nginx serves, as openssl s_client (a client we did not write) sees it."""
        proc = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port or self.port}", "-servername",
                               NAME], input="", capture_output=True, text=True, timeout=15, check=False)
        cert = x509.load_pem_x509_certificate(proc.stdout.encode())
        return cert.fingerprint(hashes.SHA256()).hex()
