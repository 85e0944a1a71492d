"""tlsward's ACME server as a real process on loopback for third-party clients (certbot, lego): a fresh internal
CA, an HTTPS listener whose certificate that CA issued, http-01 validation pointed at a free loopback port (every
name is connected to at 127.0.0.1: ``--validation-address``), and an identifier policy."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tlsward.ca.authority import CertificateAuthority
from tlsward.storage import open_store

PASSPHRASE = "acme integration passphrase"
POLICY = """
[default]
suffixes = ["tlsward.test"]
names = ["localhost"]
networks = ["127.0.0.0/8"]
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class AcmeServer:
    directory_url: str
    root_pem: Path          # trust anchor for the server's HTTPS and for what it issues
    http_port: int          # where http-01 validation connects
    db_url: str
    ca_dir: Path
    log: Path


@contextlib.contextmanager
def running_acme_server(directory: Path, *, extra: tuple[str, ...] = ()) -> Iterator[AcmeServer]:
    db_url = f"sqlite:///{directory / 'inventory.db'}"
    ca_dir = directory / "ca"
    with open_store(db_url) as store:
        ca = CertificateAuthority.init(ca_dir, store, name="tlsward ACME integration", passphrase=PASSPHRASE.encode())
        key = ec.generate_private_key(ec.SECP256R1())
        issued = ca.issue(names=["localhost", "127.0.0.1"], public_key=key.public_key(), requester="test")
    (directory / "server.pem").write_bytes(issued.fullchain_pem())
    (directory / "server.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                             serialization.PrivateFormat.PKCS8,
                                                             serialization.NoEncryption()))
    (directory / "policy.toml").write_text(POLICY)
    port, http_port = free_port(), free_port()
    log = directory / "acme-server.log"
    command = [sys.executable, "-c", "from tlsward.cli.acme import app; app()", "serve", "--ca-dir", str(ca_dir),
               "--db", db_url, "--listen", f"127.0.0.1:{port}", "--tls-cert", str(directory / "server.pem"),
               "--tls-key", str(directory / "server.key"), "--policy", str(directory / "policy.toml"),
               "--http-port", str(http_port), "--validation-address", "127.0.0.1", *extra]
    with log.open("wb") as sink:
        proc = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT,
                                env={**os.environ, "TLSWARD_CA_PASSPHRASE": PASSPHRASE})
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the ACME server exited: {log.read_text(errors='replace')[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the ACME server did not listen: {log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)
        yield AcmeServer(f"https://127.0.0.1:{port}/acme/directory", ca_dir / "root.pem", http_port, db_url,
                         ca_dir, log)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
